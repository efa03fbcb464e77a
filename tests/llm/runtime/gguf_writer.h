#pragma once
// Test-side GGUF writer: builds small GGUF images in memory (metadata of every type, tensors
// quantised with simple round-to-nearest reference quantisers) and tiny random-weight
// llama/qwen2/gemma3 models with a synthetic byte-level BPE vocabulary, so that the runtime is
// tested without any download.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "llm/runtime/gguf_writer.h"
#include "llm/runtime/quants.h"

namespace chatrec::llm::runtime::testing {

// Reference quantisation of `n` floats (n a multiple of the type's block size) into the GGUF block
// layout.
std::vector<std::uint8_t> quantize(GgmlType type, const float* x, std::int64_t n);

// The runtime's writer plus tensors quantised from floats.
class GgufWriter : public runtime::GgufWriter {
 public:
  using runtime::GgufWriter::GgufWriter;
  // Quantises `values` (row-major, dims[0] contiguous) to `type`.
  void add_tensor(const std::string& name, GgmlType type, const std::vector<std::int64_t>& dims,
                  const std::vector<float>& values);
};

struct TinyModelSpec {
  std::string arch = "llama";  // or "qwen2", "gemma3"
  GgmlType weight_type = GgmlType::F32;
  int n_layer = 2;
  int n_embd = 64;  // must be a multiple of 256 for K-quant weight types
  int n_ff = 128;
  int n_head = 4;
  int n_head_kv = 2;
  int n_ctx = 256;
  bool tied_embeddings = true;
  // gemma3 only: local layers see the last `sliding_window` positions; with swa_pattern p every
  // p-th layer is global (0: all local). The global layers rotate with base 1e6, the local ones
  // with 1e4.
  int sliding_window = 64;
  int swa_pattern = 2;
  std::uint64_t seed = 7;
};

// Synthetic vocabulary: 3 control tokens (<|endoftext|>, <|im_start|>, <|im_end|>), the 256 byte
// tokens, then merged tokens for the merges below.
std::vector<std::string> tiny_vocab();
std::vector<std::string> tiny_merges();

std::vector<std::uint8_t> make_tiny_model(const TinyModelSpec& spec);

}  // namespace chatrec::llm::runtime::testing
