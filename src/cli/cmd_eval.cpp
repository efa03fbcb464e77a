// `chatrec eval`: runs one protocol of docs/protocols.md on one model or all, optionally with an
// LLM stage served by a hook (cli/eval_hooks.h), and writes a JSON report plus a table.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/eval_hooks.h"
#include "cli/llm_args.h"
#include "cli/model_args.h"
#include "common/error.h"
#include "common/text.h"
#include "data/loaders.h"
#include "eval/report.h"
#include "protocols/protocols.h"
#include "recommend/registry.h"

namespace chatrec::cli {
namespace {

struct EvalArgs {
  std::string protocol;
  std::string model;
  std::uint64_t seed = 2023;
  std::size_t users = 0;
  std::string negatives = "9";
  std::string data_dir;
  std::string out;
  std::vector<std::string> params;
  double validation_fraction = 0.1;
  int threads = 0;
  LlmEvalOptions llm;
};

template <typename Stage>
const EvalHookFactory<Stage>& require_hook(const std::string& name, const char* what) {
  if (const auto* f = find_eval_hook<Stage>(name)) return *f;
  auto names = eval_hook_names<Stage>();
  throw std::runtime_error(fmt::format(
      "no {} named '{}' is registered in this build (available: {}); the LLM stages come from "
      "chat/ and "
      "instruct/",
      what, name, names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "))));
}

template <typename Stage>
protocols::StageFactory<Stage> bind(const EvalHookFactory<Stage>& hook, const LlmEvalOptions& llm) {
  return [&hook, llm](const data::Dataset& ds, const data::InteractionMatrix& train,
                      const recommend::Recommender& base) { return hook(ds, train, base, llm); };
}

void run_eval(const EvalArgs& a) {
  static const std::vector<std::string> kProtocols = {"ml100k-topk", "ml100k-rating",
                                                      "ml100k-folds", "games-seq"};
  if (std::find(kProtocols.begin(), kProtocols.end(), a.protocol) == kProtocols.end()) {
    throw InputError("--protocol", 0, a.protocol,
                     "unknown protocol (ml100k-topk, ml100k-rating, ml100k-folds, games-seq)");
  }
  std::size_t negatives = protocols::kAllNegatives;
  if (a.negatives != "all") {
    std::size_t used = 0;
    try {
      negatives = std::stoul(a.negatives, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != a.negatives.size() || negatives == 0)
      throw InputError("--negatives", 0, a.negatives,
                       "expected a number of sampled negatives (9, 99, ...) or 'all'");
  }
  std::vector<std::string> models;
  if (a.model == "all") {
    models = protocols::models_for_protocol(a.protocol);
  } else {
    for (const auto& m : text::split(a.model, ',')) {
      if (!m.empty()) models.push_back(m);
    }
  }
  if (models.empty()) throw InputError("--model", 0, a.model, "no model to evaluate");
  const bool llm = !a.llm.llm_spec.empty() || !a.llm.ranker.empty();
  if (a.protocol == "ml100k-folds" && llm) {
    throw InputError("--llm", 0, a.llm.llm_spec,
                     "ml100k-folds evaluates classic rating models only");
  }

  protocols::ProtocolOptions o;
  o.seed = a.seed;
  o.users = a.users;
  o.negatives = negatives;
  o.validation_fraction = a.validation_fraction;
  o.threads = a.threads;
  o.keep_going = models.size() > 1;
  std::filesystem::path data_dir = a.data_dir;
  o.folds_dir = (data_dir / "ml-100k").string();
  auto make = [&](const std::string& name) {
    return recommend::make_recommender(name, parse_model_params(name, a.params));
  };

  auto t_load = std::chrono::steady_clock::now();
  data::Dataset ds = data::load_named(a.protocol == "games-seq" ? "games" : "ml-100k", data_dir);
  spdlog::info("loaded {}: {} users, {} items, {} interactions in {:.1f} s", ds.name(),
               ds.num_users(), ds.num_items(), ds.interactions().size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count());

  eval::Report report;
  if (a.protocol == "ml100k-topk") {
    protocols::StageFactory<protocols::TopkReranker> stage;
    if (llm) {
      o.stage_name = "chatrec";
      stage = bind(require_hook<protocols::TopkReranker>("chatrec", "top-k reranker"), a.llm);
    }
    report = protocols::run_topk(ds, models, make, o, stage);
  } else if (a.protocol == "ml100k-rating") {
    protocols::StageFactory<protocols::RatingPredictor> stage;
    if (llm) {
      o.stage_name = "chatrec";
      stage = bind(require_hook<protocols::RatingPredictor>("chatrec", "rating predictor"), a.llm);
    }
    report = protocols::run_rating(ds, models, make, o, stage);
  } else if (a.protocol == "ml100k-folds") {
    report = protocols::run_folds(ds, models, make, o);
  } else {
    protocols::StageFactory<protocols::CandidateRanker> stage;
    if (llm) {
      std::string name = a.llm.ranker.empty() ? "instruct" : a.llm.ranker;
      o.stage_name = name;
      stage = bind(require_hook<protocols::CandidateRanker>(name, "candidate ranker"), a.llm);
    }
    report = protocols::run_games_seq(ds, models, make, o, stage);
  }
  report.model = a.model;
  if (!a.llm.llm_spec.empty()) {
    auto [backend, file] = eval::describe_llm_spec(
        a.llm.llm_spec,
        (std::filesystem::path(default_model_dir()) / "SmolLM2-135M-Instruct.Q4_1.gguf").string());
    report.llm_backend = backend;
    report.llm_model_file = file;
    report.config["llm"] = {{"spec", a.llm.llm_spec},        {"rerank", a.llm.rerank_mode},
                            {"ranker", a.llm.ranker},        {"hint_top1", a.llm.hint_top1},
                            {"fusion", a.llm.fusion},        {"search", a.llm.search},
                            {"lora", a.llm.open.lora},       {"lora_scale", a.llm.open.lora_scale},
                            {"template", a.llm.template_id}, {"history", a.llm.history},
                            {"scoring", a.llm.scoring},      {"calibration", a.llm.calibration},
                            {"pmi_weight", a.llm.pmi_weight}};
  }
  if (!a.params.empty()) report.config["param_overrides"] = a.params;
  std::string out = a.out.empty() ? eval::default_report_path(report) : a.out;
  eval::write_report(report, out);
  std::cout << eval::format_table(report) << "report: " << out << "\n";
}

}  // namespace

static Registration eval_registration(30, [](CLI::App& root) {
  auto args = std::make_shared<EvalArgs>();
  auto* cmd = root.add_subcommand("eval", "Evaluate models under a protocol of docs/protocols.md");
  cmd->add_option("--protocol", args->protocol,
                  "ml100k-topk | ml100k-rating | ml100k-folds | games-seq")
      ->required();
  cmd->add_option("--model", args->model, "Model name, comma-separated names, or 'all'")
      ->required();
  cmd->add_option("--seed", args->seed, "Random seed of splits, samples and negatives")
      ->capture_default_str();
  cmd->add_option(
      "--users", args->users,
      "Evaluate a seeded sample of N users/cases (default: all; 200 / 500 with an LLM stage)");
  cmd->add_option("--negatives", args->negatives,
                  "games-seq negatives per case: 9, 99, or all (full ranking over every item the "
                  "user never interacted with: HR@1/5/10, NDCG@10, MRR)")
      ->capture_default_str();
  args->data_dir = default_data_dir();
  cmd->add_option("--data-dir", args->data_dir, "Directory holding ml-100k/ and amazon-games/")
      ->capture_default_str();
  cmd->add_option("--out", args->out,
                  "Report file (default reports/<protocol>-<model>-seed<N>.json)");
  cmd->add_option("--param", args->params,
                  "Hyper-parameter key=value (or model.key=value), repeatable");
  cmd->add_option("--valid-fraction", args->validation_fraction,
                  "Share of training interactions offered to models as validation")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--llm", args->llm.llm_spec,
                  "LLM backend spec (builtin[:file.gguf], openai:URL, mock)");
  cmd->add_option("--rerank", args->llm.rerank_mode, "Chat-Rec reranking: generate | score");
  cmd->add_flag("--hint-top1", args->llm.hint_top1, "Tell the LLM the base model's top candidate");
  cmd->add_flag("--fusion", args->llm.fusion, "Fuse LLM and base scores");
  cmd->add_option("--ranker", args->llm.ranker, "games-seq LLM ranker (e.g. instruct)");
  cmd->add_flag("--search", args->llm.search, "Personalised-search variant of the ranker");
  add_lora_options(cmd, args->llm.open);
  cmd->add_option("--template", args->llm.template_id,
                  "games-seq instruct ranker template: T3 (P07, ...) or T2 (P05, title scoring)");
  cmd->add_option("--history", args->llm.history, "games-seq instruct ranker history length");
  cmd->add_option("--scoring", args->llm.scoring,
                  "games-seq instruct ranker scoring: title, label, yesno or sequence (default: "
                  "title, or the adapter's)")
      ->check(CLI::IsMember({"title", "label", "yesno", "sequence"}));
  cmd->add_option("--calibration", args->llm.calibration,
                  "games-seq instruct ranker calibration: none, or pmi (the log-likelihood minus "
                  "the same candidate's after no history; default for sequence scoring)");
  cmd->add_option("--pmi-weight", args->llm.pmi_weight,
                  "The share of the no-history log-likelihood pmi subtracts, in [0, 1]. "
                  "games-seq instruct ranker default: the adapter's, chosen on its validation "
                  "users, else 1; ml100k-topk score rerank with a sequence adapter: chosen with "
                  "--fusion on the validation users' own candidates, else 0")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--dump-validation", args->llm.validation_dump,
                  "ml100k-topk with --fusion: write the validation cases the fusion weight is "
                  "chosen on (base candidates and scores, LLM scores, held-out items) as JSONL");
  cmd->callback([args] {
    args->llm.seed = args->seed;
    args->llm.data_dir = args->data_dir;
    run_eval(*args);
  });
});

}  // namespace chatrec::cli
