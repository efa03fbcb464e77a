#pragma once
// chatrec's built-in LLM backend: a GGUF model run in-process by the runtime in this directory,
// fully offline.
//
// Policies (see docs/llm-runtime.md):
//  - one request at a time (a mutex around the model); several KV cache slots are kept and a
//  request
//    takes the slot sharing its longest prompt prefix (or the least recently used one), so cached
//    prefixes survive across requests of different shapes; embeddings use a slot of their own;
//  - a prompt that does not fit the context raises LlmError(kContextOverflow); generation that
//  reaches the end
//    of the context stops with finish_reason "length";
//  - embed() is the mean over tokens of the final-norm hidden state, L2-normalised (texts longer
//  than the
//    context are truncated to it).
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>

#include "llm/language_model.h"

namespace chatrec::llm::runtime {

struct BuiltinOptions {
  int threads = 0;  // 0 = all cores
  int context = 0;  // 0 = min(model's training context, 4096)
  // Prompt KV caches kept side by side (plus one for embeddings), so that requests of different
  // shapes (intent, rerank, answer) each find their own prefix still cached.
  int cache_slots = 4;
  // A LoRA adapter (GGUF, llama.cpp layout) applied to every request, with its user scale.
  std::filesystem::path lora;
  float lora_scale = 1.0f;
};

std::unique_ptr<LanguageModel> open_builtin_model(const std::filesystem::path& path,
                                                  const BuiltinOptions& options);

// $CHATREC_MODEL, else
// ${CHATREC_MODEL_DIR:-~/.cache/chatrec/models}/SmolLM2-135M-Instruct.Q4_1.gguf.
std::filesystem::path default_model_path();

// The models chatrec knows by name; `scripts/fetch-model.sh NAME` (`chatrec model fetch NAME`)
// puts each into the model cache.
struct KnownModel {
  const char* name;         // e.g. "gemma3-270m"
  const char* file;         // its file name in the model cache
  const char* description;  // one line: what it is, quantisation, licence
};
std::span<const KnownModel> known_models();
// A known model's name to its path in the model cache; the default for ""; anything else is
// taken as a path to a GGUF file.
std::filesystem::path resolve_model_path(std::string_view name_or_path);

}  // namespace chatrec::llm::runtime
