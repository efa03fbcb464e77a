#pragma once
// Writer for GGUF files (version 3 by default): metadata key/values and aligned tensor data, the
// layout gguf.h reads. LoRA adapters are saved with it; tests build tiny models with it.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "llm/runtime/quants.h"

namespace chatrec::llm::runtime {

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

  // Tensor bytes already in the layout of `type` (dims[0] contiguous).
  void add_raw_tensor(const std::string& name, std::uint32_t type,
                      const std::vector<std::int64_t>& dims, std::vector<std::uint8_t> data);

  void add_f32_tensor(const std::string& name, const std::vector<std::int64_t>& dims,
                      const float* values, std::size_t n);

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

}  // namespace chatrec::llm::runtime
