// `chatrec instruct generate|templates`: InstructRec instruction data (src/instruct).
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "common/error.h"
#include "data/loaders.h"
#include "instruct/generator.h"
#include "instruct/templates.h"
#include "llm/language_model.h"

namespace chatrec::cli {
namespace {

struct GenerateArgs {
  std::string dataset;
  std::string data_dir = default_data_dir();
  std::string out;
  std::string format = "openai-chat";
  std::string templates;
  std::string llm;
  std::string cache_dir;
  instruct::GenerateOptions options;
  bool no_variants = false;
};

std::string default_cache_dir() {
  if (const char* v = std::getenv("CHATREC_CACHE_DIR"); v && *v)
    return std::string(v) + "/instruct";
  if (const char* home = std::getenv("HOME")) return std::string(home) + "/.cache/chatrec/instruct";
  return ".chatrec-cache/instruct";
}

void run_generate(const GenerateArgs& a) {
  const instruct::OutputFormat format = instruct::parse_output_format(a.format);
  const instruct::TemplateSet templates =
      a.templates.empty() ? instruct::builtin_templates() : instruct::load_templates(a.templates);
  data::Dataset ds = data::load_named(a.dataset == "ml100k" ? "ml-100k" : a.dataset, a.data_dir);
  instruct::GenerateOptions options = a.options;
  options.variants = !a.no_variants;
  std::unique_ptr<llm::LanguageModel> model;
  if (!a.llm.empty()) {
    model = llm::open_language_model(a.llm);
    options.llm = model.get();
    options.cache_dir = a.cache_dir.empty() ? default_cache_dir() : a.cache_dir;
    std::cerr << fmt::format("LLM fields (P2, I1) from {} (cache {})\n", model->name(),
                             options.cache_dir.string());
  } else {
    std::cerr << "no --llm: P2 explicit-preference and I1 vague-intention templates are skipped\n";
  }
  std::ofstream out(a.out, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(a.out, 0, "--out", "cannot open for writing");
  const auto summary = instruct::generate_instructions(
      ds, templates, options,
      [&](const instruct::Instruction& ins) { out << instruct::to_jsonl(ins, format) << '\n'; });
  out.close();
  if (!out) throw InputError(a.out, 0, "--out", "write failed");
  std::ofstream(a.out + ".summary.json") << summary.to_json() << '\n';
  std::cout << fmt::format("dataset {} ({} users, {} items), templates {}, format {}, seed {}\n",
                           ds.name(), ds.num_users(), ds.num_items(), templates.source, a.format,
                           options.seed)
            << summary.to_text()
            << fmt::format("wrote {} (summary {}.summary.json)\n", a.out, a.out);
}

void run_templates(const std::string& file) {
  const instruct::TemplateSet set =
      file.empty() ? instruct::builtin_templates() : instruct::load_templates(file);
  std::size_t pref = 0, intent = 0, both = 0, variants = 0;
  for (const auto& t : set.templates) {
    std::cout << fmt::format("{:<5} {:<12} {:<10} {:<20} {}\n", t.id,
                             t.is_coarse() ? t.group : t.kind, t.cell.str(), t.output,
                             fmt::join(t.prompt_fields, ","));
    if (!t.is_coarse())
      ++variants;
    else if (t.group == "preference")
      ++pref;
    else if (t.group == "intention")
      ++intent;
    else
      ++both;
  }
  std::cout << fmt::format(
      "{}: {} coarse templates ({} preference, {} intention, {} both) and {} variants\n",
      set.source, pref + intent + both, pref, intent, both, variants);
}

const Registration registration(70, [](CLI::App& root) {
  CLI::App& instruct =
      group(root, "instruct", "InstructRec: instruction templates and training data");

  auto args = std::make_shared<GenerateArgs>();
  CLI::App* gen =
      instruct.add_subcommand("generate", "Write instruction-tuning data (JSONL) from a dataset");
  gen->add_option("--dataset", args->dataset, "games or ml100k")
      ->required()
      ->check(CLI::IsMember({"games", "ml100k", "ml-100k"}));
  gen->add_option("--data-dir", args->data_dir, "Directory with ml-100k/ and amazon-games/")
      ->capture_default_str();
  gen->add_option("--out", args->out, "Output JSONL file")->required();
  gen->add_option("--format", args->format, "openai-chat or alpaca")
      ->capture_default_str()
      ->check(CLI::IsMember({"openai-chat", "alpaca"}));
  gen->add_option("--seed", args->options.seed, "Random seed")->capture_default_str();
  gen->add_option("--llm", args->llm,
                  "Backend for P2/I1 fields (builtin, openai:URL, ...); none = skip them");
  gen->add_option("--max-users", args->options.max_users,
                  "Seeded sample of training users (0 = all)")
      ->capture_default_str();
  gen->add_option("--per-user", args->options.per_user, "Instructions per training user")
      ->capture_default_str();
  gen->add_option("--negatives", args->options.negatives, "Negatives in T3 candidate lists")
      ->capture_default_str();
  gen->add_option("--eval-users", args->options.eval_users,
                  "Size of the protocol C evaluation sample kept out of training")
      ->capture_default_str();
  gen->add_option("--eval-seed", args->options.eval_seed, "Seed of that evaluation sample")
      ->capture_default_str();
  gen->add_option("--templates", args->templates,
                  "Template file (default: the built-in assets/instruct set)");
  gen->add_option("--cache-dir", args->cache_dir, "Cache of LLM-written fields");
  gen->add_flag("--no-variants", args->no_variants, "Coarse templates only");
  gen->add_flag("--no-progress{false}", args->options.progress, "No progress bar");
  gen->callback([args] { run_generate(*args); });

  auto file = std::make_shared<std::string>();
  CLI::App* tpl = instruct.add_subcommand("templates", "Validate and list instruction templates");
  tpl->add_option("--file", *file, "Template file (default: the built-in set)");
  tpl->callback([file] { run_templates(*file); });
});

}  // namespace
}  // namespace chatrec::cli
