// `chatrec model fetch [NAME]`: downloads a built-in model (scripts/fetch-model.sh NAME).
// `chatrec model info`: summarises a GGUF file's metadata and tensors.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <stdexcept>

#include "cli/command.h"
#include "llm/runtime/builtin_model.h"
#include "llm/runtime/chat_template.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/tokenizer.h"

namespace chatrec::cli {
namespace {

namespace fs = std::filesystem;
namespace rt = chatrec::llm::runtime;

// The script ships with the source tree: look beside the working directory and above the
// executable.
fs::path find_fetch_script() {
  const fs::path rel = fs::path("scripts") / "fetch-model.sh";
  if (const char* src = std::getenv("CHATREC_SOURCE_DIR");
      src && *src && fs::exists(fs::path(src) / rel))
    return fs::path(src) / rel;
  for (fs::path dir = fs::current_path(); !dir.empty(); dir = dir.parent_path()) {
    if (fs::exists(dir / rel)) return dir / rel;
    if (dir == dir.parent_path()) break;
  }
  std::error_code ec;
  for (fs::path dir = fs::read_symlink("/proc/self/exe", ec).parent_path(); !ec && !dir.empty();
       dir = dir.parent_path()) {
    if (fs::exists(dir / rel)) return dir / rel;
    if (dir == dir.parent_path()) break;
  }
  throw std::runtime_error(
      "scripts/fetch-model.sh not found (run from the source tree or set CHATREC_SOURCE_DIR)");
}

void run_fetch(const std::string& name) {
  const auto known = rt::known_models();
  if (std::none_of(known.begin(), known.end(), [&](const auto& m) { return name == m.name; })) {
    std::string names;
    for (const auto& m : known) names += (names.empty() ? "" : ", ") + std::string(m.name);
    throw std::runtime_error("unknown model '" + name + "' (known: " + names + ")");
  }
  const fs::path script = find_fetch_script();
  const std::string cmd = "bash '" + script.string() + "' '" + name + "'";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) throw std::runtime_error(fmt::format("{} failed (status {})", script.string(), rc));
}

std::string value_summary(const rt::GgufValue& v) {
  using T = rt::GgufValueType;
  switch (v.type) {
    case T::kString:
      return v.str.size() > 60
                 ? fmt::format("\"{}...\" ({} chars)", v.str.substr(0, 60), v.str.size())
                 : "\"" + v.str + "\"";
    case T::kArray:
      return fmt::format("[{} x {}]", v.array_size(), rt::to_string(v.element_type));
    case T::kFloat32:
    case T::kFloat64:
      return fmt::format("{}", v.f);
    case T::kBool:
      return v.u ? "true" : "false";
    default:
      return v.is_integer() && (v.type == T::kInt8 || v.type == T::kInt16 || v.type == T::kInt32 ||
                                v.type == T::kInt64)
                 ? fmt::format("{}", v.i)
                 : fmt::format("{}", v.u);
  }
}

void run_info(const std::string& model, bool all_keys) {
  const rt::GgufFile f = rt::GgufFile::open(rt::resolve_model_path(model));
  const std::string arch = f.get_string("general.architecture", "?");
  auto num = [&](const std::string& key) {
    const rt::GgufValue* v = f.find(arch + "." + key);
    return v ? value_summary(*v) : std::string("-");
  };
  std::cout << fmt::format("file            {}\n", f.name());
  std::cout << fmt::format("size            {:.1f} MiB, GGUF v{}, alignment {}\n",
                           static_cast<double>(f.file_size()) / (1 << 20), f.version(),
                           f.alignment());
  std::cout << fmt::format("name            {}\n", f.get_string("general.name", "-"));
  std::cout << fmt::format("architecture    {}\n", arch);
  std::cout << fmt::format("layers          {}\n", num("block_count"));
  std::cout << fmt::format("embedding       {}\n", num("embedding_length"));
  std::cout << fmt::format("feed-forward    {}\n", num("feed_forward_length"));
  std::cout << fmt::format("heads / kv      {} / {}\n", num("attention.head_count"),
                           num("attention.head_count_kv"));
  std::cout << fmt::format("context         {}\n", num("context_length"));
  std::cout << fmt::format("rope base       {}\n", num("rope.freq_base"));
  std::cout << fmt::format("rms epsilon     {}\n", num("attention.layer_norm_rms_epsilon"));
  const rt::GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  std::cout << fmt::format(
      "vocabulary      {} tokens, tokenizer {} (pre {})\n", tokens ? tokens->array_size() : 0,
      f.get_string("tokenizer.ggml.model", "-"), f.get_string("tokenizer.ggml.pre", "-"));
  try {
    const rt::Tokenizer tok(f);
    std::cout << fmt::format("chat format     {}\n",
                             rt::to_string(rt::ChatTemplate::detect(f, tok).format));
  } catch (const std::exception& e) {
    std::cout << fmt::format("chat format     - ({})\n", e.what());
  }
  std::map<std::string, std::pair<int, std::int64_t>> by_type;
  std::int64_t params = 0;
  for (const auto& t : f.tensors()) {
    auto& [count, elements] = by_type[rt::type_name(static_cast<std::uint32_t>(t.type))];
    ++count;
    elements += t.elements();
    params += t.elements();
  }
  std::cout << fmt::format("tensors         {} ({:.1f} M parameters)\n", f.tensors().size(),
                           static_cast<double>(params) / 1e6);
  for (const auto& [type, ce] : by_type)
    std::cout << fmt::format("  {:<8} {:>5} tensors {:>12} elements\n", type, ce.first, ce.second);
  if (all_keys) {
    std::cout << "metadata\n";
    for (const auto& [key, v] : f.metadata())
      std::cout << fmt::format("  {:<45} {}\n", key, value_summary(v));
  }
}

static Registration model_registration(80, [](CLI::App& root) {
  CLI::App& model = group(root, "model", "Built-in LLM model files");
  std::string fetch_help = "Download a built-in model into the model cache:";
  for (const auto& m : rt::known_models())
    fetch_help += std::string("\n  ") + m.name + ": " + m.description;
  auto* fetch = model.add_subcommand("fetch", fetch_help);
  static std::string fetch_name = rt::known_models()[0].name;
  fetch->add_option("name", fetch_name, "Model to fetch")->capture_default_str();
  fetch->callback([] { run_fetch(fetch_name); });
  auto path = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  auto* info = model.add_subcommand("info", "Print a GGUF file's metadata summary");
  info->add_option("--model", *path,
                   "GGUF file or built-in model name (default: the default built-in model)");
  info->add_flag("--all", *all, "Also list every metadata key");
  info->callback([path, all] { run_info(*path, *all); });
});

}  // namespace
}  // namespace chatrec::cli
