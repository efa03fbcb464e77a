// The LoRA adapter loader on arbitrary GGUF bytes, against a tiny llama model written in memory.
//
// Properties: a bad adapter is a GgufError; an accepted one fits the base model (every matrix has
// its projection's shape and the adapter's rank, with as many values as the shape says); and it
// survives save + load unchanged (weights bit for bit, alpha, rank, the free-form info), since
// `instruct tune --init` continues from a loaded adapter and saves it again.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <utility>

#include "fuzz_util.h"
#include "gguf_writer.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/lora.h"
#include "llm/runtime/model.h"

namespace {

using namespace chatrec::llm::runtime;

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  // memcmp of an empty vector's null data() is undefined, even for zero bytes.
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Model base(GgufFile::parse(
      testing::make_tiny_model(testing::TinyModelSpec{.n_layer = 2, .n_embd = 32, .n_ff = 48}),
      "tiny"));
  const ModelConfig& c = base.config();

  std::optional<LoraAdapter> adapter;
  try {
    adapter = LoraAdapter::load(GgufFile::parse({data, size}, "fuzz.gguf"), base);
  } catch (const GgufError&) {
    return 0;
  }

  FUZZ_CHECK(adapter->architecture == c.arch);
  FUZZ_CHECK(adapter->rank >= 1);
  FUZZ_CHECK(adapter->layers.size() == static_cast<std::size_t>(c.n_layer));
  std::size_t adapted = 0;
  for (const auto& layer : adapter->layers) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const LoraMatrix& m = layer[static_cast<std::size_t>(t)];
      if (m.empty()) continue;
      ++adapted;
      const auto [n_in, n_out] = projection_shape(c, static_cast<LoraTarget>(t));
      FUZZ_CHECK(m.n_in == n_in && m.n_out == n_out && m.rank == adapter->rank);
      FUZZ_CHECK(m.a.size() == static_cast<std::size_t>(m.rank) * static_cast<std::size_t>(n_in));
      FUZZ_CHECK(m.b.size() == static_cast<std::size_t>(n_out) * static_cast<std::size_t>(m.rank));
    }
  }
  FUZZ_CHECK(adapted > 0);

  const auto file = chatrec::fuzz::ScratchDir::path() / "adapter.gguf";
  adapter->save(file);
  const LoraAdapter again = LoraAdapter::load(file, base);
  FUZZ_CHECK(again.rank == adapter->rank);
  FUZZ_CHECK(std::memcmp(&again.alpha, &adapter->alpha, sizeof(float)) == 0);
  FUZZ_CHECK(again.info == adapter->info);
  for (std::size_t l = 0; l < adapter->layers.size(); ++l) {
    for (std::size_t t = 0; t < adapter->layers[l].size(); ++t) {
      FUZZ_CHECK(same_floats(again.layers[l][t].a, adapter->layers[l][t].a));
      FUZZ_CHECK(same_floats(again.layers[l][t].b, adapter->layers[l][t].b));
    }
  }
  return 0;
}
