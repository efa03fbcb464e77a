#pragma once
// Reader for GGUF model files (versions 2 and 3): header, metadata key/values of every type, tensor
// infos and the aligned tensor data, memory-mapped so that weights are paged in on demand. Every
// read is bounds-checked; a malformed or truncated file raises GgufError naming the byte offset and
// the field, never a crash.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "llm/runtime/quants.h"

namespace chatrec::llm::runtime {

class GgufError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class GgufValueType : std::uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
const char* to_string(GgufValueType type);

// One metadata value. Scalars keep their exact integer or float value; arrays of numbers are
// widened to double (token scores and types fit exactly) and arrays of strings are kept as strings.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  GgufValueType element_type = GgufValueType::kUint8;  // for arrays
  std::uint64_t u = 0;
  std::int64_t i = 0;
  double f = 0.0;
  std::string str;
  std::vector<double> numbers;
  std::vector<std::string> strings;

  bool is_integer() const;
  bool is_number() const;
  std::size_t array_size() const;
};

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<std::int64_t> dims;  // dims[0] is the contiguous (row) dimension
  std::uint64_t offset = 0;        // relative to the data section
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;  // bytes
  std::int64_t elements() const;
};

class GgufFile {
 public:
  // Memory-maps and parses `path`.
  static GgufFile open(const std::filesystem::path& path);
  // Parses an in-memory image (copied); for tests and tools.
  static GgufFile parse(std::span<const std::uint8_t> bytes, std::string name = "<memory>");

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  const std::string& name() const { return name_; }
  std::size_t file_size() const { return size_; }

  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const GgufValue* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }
  // Typed getters; they throw GgufError when the key exists with the wrong type, and return the
  // fallback when it is absent (the overloads without fallback throw when absent).
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::int64_t get_int(const std::string& key) const;
  std::int64_t get_int(const std::string& key, std::int64_t fallback) const;
  double get_float(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  const std::vector<std::string>& get_strings(const std::string& key) const;
  const std::vector<double>* get_numbers(const std::string& key) const;  // nullptr when absent

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* tensor(const std::string& name) const;

 private:
  GgufFile() = default;
  void parse_all();

  std::string name_;
  const std::uint8_t* base_ = nullptr;
  std::size_t size_ = 0;
  void* mapping_ = nullptr;          // mmap region, or nullptr
  std::vector<std::uint8_t> owned_;  // in-memory image
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, std::size_t> tensor_index_;
};

}  // namespace chatrec::llm::runtime
