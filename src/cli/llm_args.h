#pragma once
// `--lora FILE [--lora-scale S]` on every command that opens a built-in model.
#include <CLI/CLI.hpp>

#include <string>

#include "llm/factory.h"
#include "llm/language_model.h"

namespace chatrec::cli {

inline void add_lora_options(CLI::App* cmd, llm::OpenOptions& o) {
  cmd->add_option("--lora", o.lora,
                  "LoRA adapter GGUF for the built-in model (from `chatrec instruct tune`, or any "
                  "llama.cpp adapter of the same base)");
  cmd->add_option("--lora-scale", o.lora_scale, "Adapter scale")->capture_default_str();
}

}  // namespace chatrec::cli
