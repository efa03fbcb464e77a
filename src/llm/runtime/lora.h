#pragma once
// LoRA adapters for the runtime's models: per layer and projection a pair of f32 matrices A (rank x
// n_in) and B (n_out x rank) so that the projection computes W x + scale * B (A x), scale = alpha /
// rank times the user's adapter scale. Stored as a GGUF file in the layout llama.cpp's --lora
// reads: general.type = "adapter", adapter.type = "lora", adapter.lora.alpha, and per adapted
// tensor
// "<base tensor name>.lora_a" with ggml shape [n_in, rank] and ".lora_b" with [rank, n_out], so one
// file serves chatrec and llama.cpp.
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace chatrec::llm::runtime {

struct ModelConfig;
class Model;
class GgufFile;

// The projections of a block that can carry an adapter.
enum class LoraTarget { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kLoraTargets = 7;
const char* to_string(LoraTarget target);           // "q", "k", ..., "down"
const char* base_tensor_suffix(LoraTarget target);  // "attn_q.weight", ...
// (n_in, n_out) of the projection as the model computes it: A is rank x n_in, B is n_out x rank.
std::pair<int, int> projection_shape(const ModelConfig& c, LoraTarget t);
// Parses a comma-separated list such as "q,k,v,o,gate,up,down" (also "all"); throws
// std::invalid_argument naming the unknown entry.
std::vector<LoraTarget> parse_lora_targets(const std::string& list);

struct LoraMatrix {
  int n_in = 0;
  int n_out = 0;
  int rank = 0;
  std::vector<float> a;  // rank rows of n_in
  std::vector<float> b;  // n_out rows of rank
  bool empty() const { return a.empty(); }
};

struct LoraAdapter {
  std::string architecture;  // the base model's general.architecture
  int rank = 0;
  float alpha = 0.0f;
  // layers[l][target]; an empty matrix means that projection is not adapted.
  std::vector<std::array<LoraMatrix, kLoraTargets>> layers;
  // Free-form string metadata saved with the file (training recipe, prompt format, ...), keys
  // without a prefix; stored as "chatrec.<key>".
  std::map<std::string, std::string> info;

  // A fresh adapter for `config`: A drawn uniformly in ±1/sqrt(n_in) (seeded), B = 0, so the
  // adapted model starts out equal to the base.
  static LoraAdapter create(const ModelConfig& config, const std::vector<LoraTarget>& targets,
                            int rank, float alpha, std::uint64_t seed);
  float scale() const { return rank > 0 ? alpha / static_cast<float>(rank) : 0.0f; }
  std::size_t parameter_count() const;

  void save(const std::filesystem::path& path) const;
  // Loads an adapter file and checks it against `base` (architecture, layer count, tensor shapes);
  // a mismatch is a GgufError naming the file and the tensor.
  static LoraAdapter load(const std::filesystem::path& path, const Model& base);
  // The same for a file already opened or parsed in memory; errors name file.name().
  static LoraAdapter load(const GgufFile& file, const Model& base);
};

}  // namespace chatrec::llm::runtime
