// `chatrec instruct generate|templates`: InstructRec instruction data (src/instruct).
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/llm_args.h"
#include "common/error.h"
#include "data/loaders.h"
#include "instruct/generator.h"
#include "instruct/templates.h"
#include "instruct/tuning.h"
#include "llm/factory.h"
#include "llm/language_model.h"
#include "llm/runtime/builtin_model.h"

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
  llm::OpenOptions open;
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
    model = llm::open_language_model(a.llm, a.open);
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

std::string default_adapter_dir() {
  if (const char* v = std::getenv("CHATREC_CACHE_DIR"); v && *v)
    return std::string(v) + "/adapters";
  if (const char* home = std::getenv("HOME")) return std::string(home) + "/.cache/chatrec/adapters";
  return ".chatrec-cache/adapters";
}

struct TuneArgs {
  std::string dataset;
  std::string data_dir = default_data_dir();
  std::string model;
  std::string out;
  instruct::TuneOptions options;
};

void run_tune(TuneArgs a) {
  instruct::TuneOptions o = a.options;
  o.protocol = a.dataset == "games" ? "games-seq" : "ml100k-topk";
  o.model_path = llm::runtime::resolve_model_path(a.model);
  if (!std::filesystem::exists(o.model_path))
    throw InputError(
        o.model_path.string(), 0, "--model",
        "model file not found (`chatrec model fetch [NAME]` fetches the built-in ones)");
  if (a.out.empty()) {
    std::filesystem::create_directories(default_adapter_dir());
    a.out = default_adapter_dir() + "/" + a.dataset + ".gguf";
  }
  o.out = a.out;
  const data::Dataset ds = data::load_named(a.dataset, a.data_dir);
  std::cerr << fmt::format(
      "tuning {} on {} ({} users, {} items): loss {}, {} examples x {} "
      "epochs, rank {}, alpha {}, lr {}, targets {}, history {}\n",
      o.model_path.filename().string(), ds.name(), ds.num_users(), ds.num_items(), o.loss,
      o.examples, o.epochs, o.rank, o.alpha, o.lr, o.targets, o.history);
  const instruct::TuneSummary s = instruct::tune_adapter(ds, o);
  std::cout << s.to_text() << fmt::format("wrote {}\n", o.out.string());
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
  add_lora_options(gen, args->open);
  gen->add_flag("--no-progress{false}", args->options.progress, "No progress bar");
  gen->callback([args] { run_generate(*args); });

  auto targs = std::make_shared<TuneArgs>();
  CLI::App* tune = instruct.add_subcommand(
      "tune", "LoRA instruction tuning of the built-in model on the CPU (writes an adapter GGUF)");
  instruct::TuneOptions& to = targs->options;
  tune->add_option("--dataset", targs->dataset, "games")
      ->required()
      ->check(CLI::IsMember({"games", "ml-100k"}));
  tune->add_option("--data-dir", targs->data_dir, "Directory with ml-100k/ and amazon-games/")
      ->capture_default_str();
  tune->add_option(
      "--model", targs->model,
      "Base GGUF file or built-in model name, e.g. gemma3-270m (default: smollm2-135m)");
  tune->add_option("--out", targs->out,
                   "Adapter file (default ~/.cache/chatrec/adapters/DATASET.gguf)");
  tune->add_option("--loss", to.loss,
                   "seq (every item of the history as the next line), lm (title as the "
                   "answer), label (verbalizer over option letters) or yesno")
      ->capture_default_str()
      ->check(CLI::IsMember({"label", "lm", "yesno", "seq"}));
  tune->add_option("--examples", to.examples, "Training instructions")->capture_default_str();
  tune->add_option("--init", to.init,
                   "Continue from this adapter (its weights; its rank, alpha and targets)")
      ->check(CLI::ExistingFile);
  tune->add_option("--skip-examples", to.skip_examples,
                   "Skip the first N instructions of the seeded order (with --init: the ones "
                   "the adapter was tuned on)")
      ->capture_default_str();
  tune->add_option("--epochs", to.epochs, "Passes over them")->capture_default_str();
  tune->add_option("--rank", to.rank, "LoRA rank")->capture_default_str();
  tune->add_option("--alpha", to.alpha, "LoRA alpha (scale alpha/rank)")->capture_default_str();
  tune->add_option("--lr", to.lr, "Peak learning rate (AdamW)")->capture_default_str();
  tune->add_option("--weight-decay", to.weight_decay, "AdamW weight decay")->capture_default_str();
  tune->add_option("--batch", to.batch, "Instructions per optimizer step")->capture_default_str();
  tune->add_option("--warmup", to.warmup, "Warm-up fraction of the steps")->capture_default_str();
  tune->add_option("--targets", to.targets, "Adapted projections")->capture_default_str();
  tune->add_option("--layers", to.layers, "Adapt the last N layers only (0: all)")
      ->capture_default_str();
  tune->add_option("--history", to.history, "History items in each prompt")->capture_default_str();
  tune->add_option("--negatives", to.negatives, "Negatives per instruction")->capture_default_str();
  tune->add_option("--window-order", to.window_order,
                   "ml-100k: each user's likes in time order or shuffled before they are cut "
                   "into windows")
      ->capture_default_str()
      ->check(CLI::IsMember({"time", "random"}));
  tune->add_option("--candidates", to.candidates,
                   "ml-100k with --loss label: 'random' (target among random items) or a "
                   "recommender (e.g. ease) whose top negatives+1, in its order, are the listed "
                   "candidates, as the rerank sees them (pass --negatives 19 for its 20)")
      ->capture_default_str();
  tune->add_option("--option-order", to.option_order,
                   "With --candidates: list them in the recommender's order ('source') or in a "
                   "seeded permutation per user ('shuffled'), which the rerank then uses too")
      ->capture_default_str()
      ->check(CLI::IsMember({"source", "shuffled"}));
  tune->add_option("--template", to.template_id,
                   "Template id (default by loss: lm P05, label P07, yesno P02)");
  tune->add_option("--validation-users", to.validation_users, "Held-out users for validation")
      ->capture_default_str();
  tune->add_option("--eval-every", to.eval_every,
                   "Optimizer steps between validations (0: each epoch)")
      ->capture_default_str();
  tune->add_option("--checkpoint-minutes", to.checkpoint_minutes, "Minutes between checkpoints")
      ->capture_default_str();
  tune->add_option("--seed", to.seed, "Random seed (ml-100k: the split's; evaluate with the same)")
      ->capture_default_str();
  tune->add_option("--threads", to.threads, "Threads (0 = all cores)")->capture_default_str();
  tune->add_flag("--resume", to.resume, "Continue from OUT.ckpt when it exists");
  tune->add_option("--stop-after", to.stop_after,
                   "Stop after this many examples in total (checkpointed; --resume continues)");
  tune->callback([targs] { run_tune(*targs); });

  auto file = std::make_shared<std::string>();
  CLI::App* tpl = instruct.add_subcommand("templates", "Validate and list instruction templates");
  tpl->add_option("--file", *file, "Template file (default: the built-in set)");
  tpl->callback([file] { run_templates(*file); });
});

}  // namespace
}  // namespace chatrec::cli
