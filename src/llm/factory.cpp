#include "llm/factory.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "llm/mock_model.h"
#include "llm/openai/openai_client.h"
#include "llm/pool.h"
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
    // builtin:NAME names a known model (builtin:gemma3-270m), builtin:FILE a GGUF file.
    const std::string name = spec.size() > 8 ? spec.substr(8) : "";
    const std::filesystem::path path = runtime::resolve_model_path(name);
    const auto known = runtime::known_models();
    const bool is_known =
        name.empty() ||
        std::any_of(known.begin(), known.end(), [&](const auto& m) { return name == m.name; });
    if (is_known && !std::filesystem::exists(path))
      throw LlmError(LlmError::Kind::kModel,
                     "built-in model " + (name.empty() ? std::string(known[0].name) : name) +
                         " is not in the model cache (" + path.string() +
                         "): run `chatrec model fetch " +
                         (name.empty() ? std::string(known[0].name) : name) + "`");
    return runtime::open_builtin_model(path, builtin);
  }
  if (spec.rfind("openai:", 0) == 0) {
    const std::string urls = spec.substr(7);
    if (urls.find(',') == std::string::npos)
      return openai::open_openai_model(openai::OpenAIConfig::from_env(urls));
    // Several servers of one model: the pool fails over instead of retrying the same server.
    std::vector<std::unique_ptr<LanguageModel>> backends;
    std::size_t begin = 0;
    while (begin <= urls.size()) {
      std::size_t end = std::min(urls.find(',', begin), urls.size());
      const std::string url = urls.substr(begin, end - begin);
      if (url.empty())
        throw LlmError(LlmError::Kind::kUnsupported, "empty URL in LLM spec '" + spec + "'");
      openai::OpenAIConfig config = openai::OpenAIConfig::from_env(url);
      config.max_retries = 0;
      backends.push_back(openai::open_openai_model(config));
      begin = end + 1;
    }
    return std::make_unique<LanguageModelPool>(std::move(backends));
  }
  if (std::filesystem::exists(spec)) return runtime::open_builtin_model(spec, builtin);
  throw LlmError(
      LlmError::Kind::kUnsupported,
      "unknown LLM spec '" + spec + "' (use builtin, builtin:FILE.gguf, openai:URL or mock)");
}

}  // namespace chatrec::llm
