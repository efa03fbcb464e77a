// `chatrec bench tune`: LoRA training speed of the built-in runtime (forward + backward + AdamW on
// batches of fixed-length examples) next to the same model's prefill speed, measured in the same
// run so that the ratio holds whatever the machine's load.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

#include "cli/command.h"
#include "common/error.h"
#include "common/memory.h"
#include "instruct/tuning.h"
#include "llm/runtime/builtin_model.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/lora.h"
#include "llm/runtime/model.h"
#include "llm/runtime/trainer.h"

namespace chatrec::cli {
namespace {

namespace rt = chatrec::llm::runtime;

struct BenchTuneArgs {
  std::string model;
  std::string threads = "1,2";
  int tokens = 256;
  int batch = 4;
  int rank = 8;
  std::string targets = "q,k,v,o,gate,up,down";
  int layers = 0;               // adapt the last N layers only (0: all)
  bool every_position = false;  // a language-model term at every position (the seq loss)
  int repetitions = 3;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void run_bench(const BenchTuneArgs& a) {
  const std::string path = rt::resolve_model_path(a.model).string();
  rt::Model model(rt::GgufFile::open(path));
  const auto& c = model.config();
  model.init_cache(a.tokens + 1);
  std::vector<int> threads;
  std::stringstream ss(a.threads);
  for (std::string item; std::getline(ss, item, ',');) threads.push_back(std::stoi(item));
  std::mt19937 rng(1234);
  std::vector<rt::TrainingSequence> batch(static_cast<std::size_t>(a.batch));
  for (auto& s : batch) {
    s.tokens.resize(static_cast<std::size_t>(a.tokens));
    for (int& t : s.tokens) t = static_cast<int>(rng() % static_cast<unsigned>(c.n_vocab));
    // A verbalizer term over ten label tokens and a language-model term, both at the end: the
    // backward pass runs through every layer for every token either way.
    std::vector<int> labels;
    for (int k = 0; k < 10; ++k) labels.push_back(s.tokens[static_cast<std::size_t>(k)]);
    s.terms.push_back({a.tokens - 1, labels[3], labels, 1.0f});
    s.terms.push_back({a.tokens - 2, s.tokens.back(), {}, 1.0f});
    if (a.every_position)
      for (int p = 0; p + 2 < a.tokens; ++p)
        s.terms.push_back({p, s.tokens[static_cast<std::size_t>(p + 1)], {}, 1.0f});
  }
  rt::LoraAdapter adapter =
      rt::LoraAdapter::create(c, rt::parse_lora_targets(a.targets), a.rank, 2.0f * a.rank, 1);
  if (a.layers < 0 || a.layers > c.n_layer)
    throw InputError("--layers", 0, "layers", "must be between 0 and the model's layer count");
  if (a.layers > 0)
    for (int l = 0; l < c.n_layer - a.layers; ++l) adapter.layers[static_cast<std::size_t>(l)] = {};
  std::cout << fmt::format(
      "model {} ({} {}L, n_embd {}), LoRA rank {} on {} of {} layers ({} parameters), batch {} x "
      "{} "
      "tokens, loss terms at {}\n",
      path, c.arch, c.n_layer, c.n_embd, a.rank, a.targets, a.layers > 0 ? a.layers : c.n_layer,
      adapter.parameter_count(), a.batch, a.tokens,
      a.every_position ? "every position (seq)" : "the last two positions");
  std::cout << fmt::format("{:>8} {:>14} {:>14} {:>8}\n", "threads", "prefill t/s", "train t/s",
                           "ratio");
  std::vector<float> logits;
  model.forward(std::span(batch[0].tokens).first(16), 0, rt::ForwardOutput::kLastLogits, logits,
                threads.front());  // page the weights in
  for (int nt : threads) {
    rt::LoraTrainer<float> trainer(model, adapter, rt::TrainerOptions{.threads = nt});
    std::vector<double> pp, tr;
    for (int r = 0; r < a.repetitions; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      for (const auto& s : batch)
        model.forward(s.tokens, 0, rt::ForwardOutput::kLastLogits, logits, nt);
      pp.push_back(a.batch * a.tokens / seconds_since(t0));
      t0 = std::chrono::steady_clock::now();
      for (const auto& s : batch) trainer.accumulate(s);
      trainer.step(1e-4, 1.0 / a.batch);
      tr.push_back(a.batch * a.tokens / seconds_since(t0));
    }
    const double p = median(pp), t = median(tr);
    std::cout << fmt::format("{:>8} {:>14.1f} {:>14.1f} {:>8.2f}\n", nt, p, t, t / p);
  }
  std::cout << fmt::format("peak RSS {:.0f} MiB (target: train >= 0.4 x prefill)\n",
                           memory::peak_rss_mib());
}

static Registration bench_tune_registration(92, [](CLI::App& root) {
  CLI::App& bench = group(root, "bench", "Benchmarks");
  auto args = std::make_shared<BenchTuneArgs>();
  auto* cmd = bench.add_subcommand(
      "tune", "LoRA training tokens/s of the built-in runtime next to its prefill tokens/s");
  cmd->add_option("--model", args->model,
                  "GGUF file or built-in model name (default: smollm2-135m)");
  cmd->add_option("--threads", args->threads, "Comma-separated thread counts")
      ->capture_default_str();
  cmd->add_option("--tokens", args->tokens, "Tokens per example")->capture_default_str();
  cmd->add_option("--batch", args->batch, "Examples per optimizer step")->capture_default_str();
  cmd->add_option("--rank", args->rank, "LoRA rank")->capture_default_str();
  cmd->add_option("--targets", args->targets, "Adapted projections")->capture_default_str();
  cmd->add_option("--layers", args->layers, "Adapt the last N layers only (0: all)")
      ->capture_default_str();
  cmd->add_flag("--every-position", args->every_position,
                "A language-model loss term at every position, as the seq loss trains");
  cmd->add_option("--repetitions", args->repetitions, "Repetitions (median reported)")
      ->capture_default_str();
  cmd->callback([args] { run_bench(*args); });
});

}  // namespace
}  // namespace chatrec::cli
