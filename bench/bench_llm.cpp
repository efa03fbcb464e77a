// Google Benchmark programs for the built-in LLM runtime: matrix-vector and matrix-matrix kernels
// per weight type (synthetic weights of SmolLM2's FFN shape), and a decode step of the real model
// when it is present.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>
#include <random>
#include <vector>

#include "llm/runtime/builtin_model.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/kernels.h"
#include "llm/runtime/model.h"
#include "llm/runtime/quants.h"

namespace rt = chatrec::llm::runtime;

namespace {

// Random bytes are valid blocks for timing purposes once the fp16 scales are made finite.
std::vector<std::uint8_t> random_weights(rt::GgmlType type, std::int64_t cols, std::int64_t rows) {
  std::vector<std::uint8_t> w(rt::row_bytes(type, cols) * static_cast<std::size_t>(rows));
  std::mt19937 rng(1);
  for (auto& b : w) b = static_cast<std::uint8_t>(rng());
  const auto traits = *rt::type_traits(static_cast<std::uint32_t>(type));
  if (type == rt::GgmlType::F32) {
    auto* f = reinterpret_cast<float*>(w.data());
    for (std::size_t i = 0; i < w.size() / 4; ++i) f[i] = 0.01f;
  } else if (type == rt::GgmlType::F16) {
    auto* h = reinterpret_cast<std::uint16_t*>(w.data());
    for (std::size_t i = 0; i < w.size() / 2; ++i) h[i] = 0x2000;
  } else {
    for (std::size_t b = 0; b < w.size(); b += traits.block_bytes) {
      const std::size_t at = type == rt::GgmlType::Q6_K ? b + traits.block_bytes - 2 : b;
      w[at] = 0x00;
      w[at + 1] = 0x20;
    }
  }
  return w;
}

void BM_Matmul(benchmark::State& state, rt::GgmlType type) {
  const std::int64_t cols = 768, rows = 1536;  // K-quants need a multiple of 256 columns
  const int tokens = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const auto w = random_weights(type, cols, rows);
  rt::WeightMatrix m{type, cols, rows, w.data(), rt::row_bytes(type, cols)};
  std::vector<float> x(static_cast<std::size_t>(cols * tokens), 0.5f),
      y(static_cast<std::size_t>(rows * tokens));
  for (auto _ : state) {
    rt::matmul(m, x.data(), tokens, y.data(), threads);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * rows * cols * tokens);
}

#define CHATREC_MATMUL_BENCH(T)                    \
  BENCHMARK_CAPTURE(BM_Matmul, T, rt::GgmlType::T) \
      ->ArgsProduct({{1, 32}, {1, 2}})             \
      ->Unit(benchmark::kMicrosecond)
CHATREC_MATMUL_BENCH(F32);
CHATREC_MATMUL_BENCH(F16);
CHATREC_MATMUL_BENCH(Q4_0);
CHATREC_MATMUL_BENCH(Q4_1);
CHATREC_MATMUL_BENCH(Q8_0);
CHATREC_MATMUL_BENCH(Q4_K);
CHATREC_MATMUL_BENCH(Q5_K);
CHATREC_MATMUL_BENCH(Q6_K);

void BM_DecodeStep(benchmark::State& state) {
  const auto path = rt::default_model_path();
  if (!std::filesystem::exists(path)) {
    state.SkipWithError("model file absent; run scripts/fetch-model.sh");
    return;
  }
  static auto model = std::make_unique<rt::Model>(rt::GgufFile::open(path));
  model->init_cache(256);
  std::vector<float> logits;
  int pos = 0;
  for (auto _ : state) {
    const int token = 100 + pos;
    model->forward(std::span<const int>(&token, 1), pos, rt::ForwardOutput::kLastLogits, logits,
                   static_cast<int>(state.range(0)));
    pos = (pos + 1) % 128;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeStep)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
