// `chatrec bench llm`: prompt-processing and generation speed of the built-in runtime, measured
// like llama.cpp's llama-bench (pp: one batch of N random prompt tokens; tg: N single-token decode
// steps from an empty cache), plus the process's peak resident memory.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

#include "cli/command.h"
#include "llm/runtime/builtin_model.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/kernels.h"
#include "llm/runtime/model.h"

namespace chatrec::cli {
namespace {

namespace rt = chatrec::llm::runtime;

struct BenchLlmArgs {
  std::string model;
  std::string threads = "1,2";
  int prompt_tokens = 128;
  int gen_tokens = 64;
  int repetitions = 3;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Stat {
  double mean = 0.0, stdev = 0.0;
};
Stat stat(const std::vector<double>& v) {
  Stat s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  for (double x : v) s.stdev += (x - s.mean) * (x - s.mean);
  s.stdev = v.size() > 1 ? std::sqrt(s.stdev / static_cast<double>(v.size() - 1)) : 0.0;
  return s;
}

void run_bench(const BenchLlmArgs& a) {
  const std::string path = rt::resolve_model_path(a.model).string();
  rt::Model model(rt::GgufFile::open(path));
  const auto& c = model.config();
  model.init_cache(a.prompt_tokens + a.gen_tokens + 1);
  std::vector<int> threads;
  std::stringstream ss(a.threads);
  for (std::string item; std::getline(ss, item, ',');) threads.push_back(std::stoi(item));
  std::mt19937 rng(1234);
  std::vector<int> prompt(static_cast<std::size_t>(a.prompt_tokens));
  for (int& t : prompt) t = static_cast<int>(rng() % static_cast<unsigned>(c.n_vocab));
  std::vector<float> logits;
  std::cout << fmt::format("model {} ({} {}L, {} kernels)\n", path, c.arch, c.n_layer,
                           rt::active_isa() == rt::KernelIsa::kAvx2 ? "AVX2" : "scalar");
  std::cout << fmt::format("{:>8} {:>10} {:>18}\n", "threads", "test", "t/s");
  model.forward(std::span(prompt).first(std::min<std::size_t>(prompt.size(), 16)), 0,
                rt::ForwardOutput::kLastLogits, logits,
                threads.front());  // warm-up: page in the weights
  for (int nt : threads) {
    std::vector<double> pp, tg;
    for (int r = 0; r < a.repetitions; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      model.forward(prompt, 0, rt::ForwardOutput::kLastLogits, logits, nt);
      pp.push_back(a.prompt_tokens / seconds_since(t0));
      t0 = std::chrono::steady_clock::now();
      int token = prompt.front();
      for (int i = 0; i < a.gen_tokens; ++i) {
        model.forward(std::span<const int>(&token, 1), i, rt::ForwardOutput::kLastLogits, logits,
                      nt);
        token = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      }
      tg.push_back(a.gen_tokens / seconds_since(t0));
    }
    const Stat p = stat(pp), g = stat(tg);
    std::cout << fmt::format("{:>8} {:>10} {:>10.2f} ± {:<6.2f}\n", nt,
                             fmt::format("pp{}", a.prompt_tokens), p.mean, p.stdev);
    std::cout << fmt::format("{:>8} {:>10} {:>10.2f} ± {:<6.2f}\n", nt,
                             fmt::format("tg{}", a.gen_tokens), g.mean, g.stdev);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::cout << fmt::format("peak RSS {:.1f} MiB\n", static_cast<double>(usage.ru_maxrss) / 1024.0);
}

static Registration bench_llm_registration(91, [](CLI::App& root) {
  CLI::App& bench = group(root, "bench", "Benchmarks");
  auto args = std::make_shared<BenchLlmArgs>();
  auto* cmd = bench.add_subcommand("llm", "Prefill and decode speed of the built-in LLM runtime");
  cmd->add_option("--model", args->model,
                  "GGUF file or built-in model name (default: smollm2-135m)");
  cmd->add_option("--threads", args->threads, "Comma-separated thread counts")
      ->capture_default_str();
  cmd->add_option("--prompt-tokens", args->prompt_tokens, "Prompt tokens per prefill")
      ->capture_default_str();
  cmd->add_option("--gen-tokens", args->gen_tokens, "Decode steps")->capture_default_str();
  cmd->add_option("--repetitions", args->repetitions, "Repetitions per test")
      ->capture_default_str();
  cmd->callback([args] { run_bench(*args); });
});

}  // namespace
}  // namespace chatrec::cli
