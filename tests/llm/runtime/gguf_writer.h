#pragma once
// Test-side GGUF writer: builds small GGUF images in memory (metadata of every type, tensors
// quantised with simple round-to-nearest reference quantisers) and tiny random-weight llama/qwen2
// models with a synthetic byte-level BPE vocabulary, so that the runtime is tested without any
// download.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "llm/runtime/quants.h"

namespace chatrec::llm::runtime::testing {

// Reference quantisation of `n` floats (n a multiple of the type's block size) into the GGUF block
// layout.
std::vector<std::uint8_t> quantize(GgmlType type, const float* x, std::int64_t n);

class GgufWriter {
 public:
  explicit GgufWriter(std::uint32_t version = 3, std::uint32_t alignment = 32)
      : version_(version), alignment_(alignment) {}

  void add_string(const std::string& key, const std::string& value);
  void add_u32(const std::string& key, std::uint32_t value);
  void add_i32(const std::string& key, std::int32_t value);
  void add_u64(const std::string& key, std::uint64_t value);
  void add_f32(const std::string& key, float value);
  void add_f64(const std::string& key, double value);
  void add_bool(const std::string& key, bool value);
  void add_u8(const std::string& key, std::uint8_t value);
  void add_i16(const std::string& key, std::int16_t value);
  void add_strings(const std::string& key, const std::vector<std::string>& values);
  void add_f32s(const std::string& key, const std::vector<float>& values);
  void add_i32s(const std::string& key, const std::vector<std::int32_t>& values);

  // Quantises `values` (row-major, dims[0] contiguous) to `type`.
  void add_tensor(const std::string& name, GgmlType type, const std::vector<std::int64_t>& dims,
                  const std::vector<float>& values);
  // Raw tensor bytes (for malformed-file tests).
  void add_raw_tensor(const std::string& name, std::uint32_t type,
                      const std::vector<std::int64_t>& dims, std::vector<std::uint8_t> data);

  std::vector<std::uint8_t> bytes() const;
  void write(const std::filesystem::path& path) const;

 private:
  struct Tensor {
    std::string name;
    std::uint32_t type;
    std::vector<std::int64_t> dims;
    std::vector<std::uint8_t> data;
  };
  void key(const std::string& k, std::uint32_t type);
  std::uint32_t version_;
  std::uint32_t alignment_;
  std::uint64_t n_kv_ = 0;
  std::vector<std::uint8_t> kv_;
  std::vector<Tensor> tensors_;
};

struct TinyModelSpec {
  std::string arch = "llama";  // or "qwen2"
  GgmlType weight_type = GgmlType::F32;
  int n_layer = 2;
  int n_embd = 64;  // must be a multiple of 256 for K-quant weight types
  int n_ff = 128;
  int n_head = 4;
  int n_head_kv = 2;
  int n_ctx = 256;
  bool tied_embeddings = true;
  std::uint64_t seed = 7;
};

// Synthetic vocabulary: 3 control tokens (<|endoftext|>, <|im_start|>, <|im_end|>), the 256 byte
// tokens, then merged tokens for the merges below.
std::vector<std::string> tiny_vocab();
std::vector<std::string> tiny_merges();

std::vector<std::uint8_t> make_tiny_model(const TinyModelSpec& spec);

}  // namespace chatrec::llm::runtime::testing
