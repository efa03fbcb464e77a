#pragma once
// The backend factory: the one place that knows every LanguageModel implementation. Backends
// (runtime/, openai/) link only the interface (language_model.h); callers that open a model by spec
// link this.
#include <memory>
#include <string>

#include "llm/language_model.h"

namespace chatrec::llm {

// Opens a backend from a spec:
//   "builtin" (the default model file from the model cache), "builtin:/path/model.gguf",
//   "openai:http://host:port/v1" (model and key from CHATREC_OPENAI_MODEL / OPENAI_API_KEY),
//   "openai:URL1,URL2,..." (servers of the same model as one LanguageModelPool, pool.h),
//   "mock".
struct OpenOptions {
  std::string lora;  // LoRA adapter file for the built-in runtime (--lora)
  float lora_scale = 1.0f;
};
std::unique_ptr<LanguageModel> open_language_model(const std::string& spec,
                                                   const OpenOptions& options = {});

}  // namespace chatrec::llm
