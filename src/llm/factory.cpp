#include "llm/factory.h"

#include <filesystem>

#include "llm/mock_model.h"
#include "llm/openai/openai_client.h"
#include "llm/runtime/builtin_model.h"

namespace chatrec::llm {

std::unique_ptr<LanguageModel> open_language_model(const std::string& spec,
                                                   const OpenOptions& options) {
  runtime::BuiltinOptions builtin;
  builtin.lora = options.lora;
  builtin.lora_scale = options.lora_scale;
  const bool is_builtin =
      spec == "builtin" || spec.rfind("builtin:", 0) == 0 ||
      (spec != "mock" && spec.rfind("openai:", 0) != 0 && std::filesystem::exists(spec));
  if (!options.lora.empty() && !is_builtin)
    throw LlmError(LlmError::Kind::kUnsupported,
                   "--lora applies to the built-in runtime only (--llm builtin or builtin:FILE); "
                   "serve the adapter with the endpoint itself for '" +
                       spec + "'");
  if (spec == "mock") return std::make_unique<MockModel>();
  if (spec == "builtin" || spec.rfind("builtin:", 0) == 0) {
    std::string path = spec.size() > 8 ? spec.substr(8) : runtime::default_model_path().string();
    return runtime::open_builtin_model(path, builtin);
  }
  if (spec.rfind("openai:", 0) == 0) {
    return openai::open_openai_model(openai::OpenAIConfig::from_env(spec.substr(7)));
  }
  if (std::filesystem::exists(spec)) return runtime::open_builtin_model(spec, builtin);
  throw LlmError(
      LlmError::Kind::kUnsupported,
      "unknown LLM spec '" + spec + "' (use builtin, builtin:FILE.gguf, openai:URL or mock)");
}

}  // namespace chatrec::llm
