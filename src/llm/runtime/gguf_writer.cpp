#include "llm/runtime/gguf_writer.h"

#include <cstring>
#include <fstream>

#include "llm/runtime/gguf.h"

namespace chatrec::llm::runtime {
namespace {

template <typename T>
void put(std::vector<std::uint8_t>& out, T v) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}

void put_string(std::vector<std::uint8_t>& out, const std::string& s) {
  put<std::uint64_t>(out, s.size());
  const std::size_t at = out.size();
  out.resize(at + s.size());
  if (!s.empty()) std::memcpy(out.data() + at, s.data(), s.size());
}

}  // namespace

void GgufWriter::key(const std::string& k, std::uint32_t type) {
  put_string(kv_, k);
  put<std::uint32_t>(kv_, type);
  ++n_kv_;
}

void GgufWriter::add_string(const std::string& k, const std::string& v) {
  key(k, 8);
  put_string(kv_, v);
}
void GgufWriter::add_u32(const std::string& k, std::uint32_t v) {
  key(k, 4);
  put(kv_, v);
}
void GgufWriter::add_i32(const std::string& k, std::int32_t v) {
  key(k, 5);
  put(kv_, v);
}
void GgufWriter::add_u64(const std::string& k, std::uint64_t v) {
  key(k, 10);
  put(kv_, v);
}
void GgufWriter::add_f32(const std::string& k, float v) {
  key(k, 6);
  put(kv_, v);
}
void GgufWriter::add_f64(const std::string& k, double v) {
  key(k, 12);
  put(kv_, v);
}
void GgufWriter::add_bool(const std::string& k, bool v) {
  key(k, 7);
  put<std::uint8_t>(kv_, v ? 1 : 0);
}
void GgufWriter::add_u8(const std::string& k, std::uint8_t v) {
  key(k, 0);
  put(kv_, v);
}
void GgufWriter::add_i16(const std::string& k, std::int16_t v) {
  key(k, 3);
  put(kv_, v);
}

void GgufWriter::add_strings(const std::string& k, const std::vector<std::string>& values) {
  key(k, 9);
  put<std::uint32_t>(kv_, 8);
  put<std::uint64_t>(kv_, values.size());
  for (const auto& s : values) put_string(kv_, s);
}

void GgufWriter::add_f32s(const std::string& k, const std::vector<float>& values) {
  key(k, 9);
  put<std::uint32_t>(kv_, 6);
  put<std::uint64_t>(kv_, values.size());
  for (float v : values) put(kv_, v);
}

void GgufWriter::add_i32s(const std::string& k, const std::vector<std::int32_t>& values) {
  key(k, 9);
  put<std::uint32_t>(kv_, 5);
  put<std::uint64_t>(kv_, values.size());
  for (auto v : values) put(kv_, v);
}

void GgufWriter::add_raw_tensor(const std::string& name, std::uint32_t type,
                                const std::vector<std::int64_t>& dims,
                                std::vector<std::uint8_t> data) {
  tensors_.push_back({name, type, dims, std::move(data)});
}

std::vector<std::uint8_t> GgufWriter::bytes() const {
  std::vector<std::uint8_t> out;
  put<std::uint32_t>(out, 0x46554747);
  put<std::uint32_t>(out, version_);
  put<std::uint64_t>(out, tensors_.size());
  put<std::uint64_t>(out, n_kv_ + (alignment_ != 32 ? 1 : 0));
  out.insert(out.end(), kv_.begin(), kv_.end());
  if (alignment_ != 32) {
    put_string(out, "general.alignment");
    put<std::uint32_t>(out, 4);
    put<std::uint32_t>(out, alignment_);
  }
  auto align = [&](std::uint64_t v) { return (v + alignment_ - 1) / alignment_ * alignment_; };
  std::uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    put_string(out, t.name);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(t.dims.size()));
    for (auto d : t.dims) put<std::uint64_t>(out, static_cast<std::uint64_t>(d));
    put<std::uint32_t>(out, t.type);
    put<std::uint64_t>(out, offset);
    offset = align(offset + t.data.size());
  }
  out.resize(align(out.size()), 0);
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize(align(out.size()), 0);
  }
  return out;
}

void GgufWriter::write(const std::filesystem::path& path) const {
  const auto b = bytes();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw GgufError("cannot write " + path.string());
}

void GgufWriter::add_f32_tensor(const std::string& name, const std::vector<std::int64_t>& dims,
                                const float* values, std::size_t n) {
  std::vector<std::uint8_t> data(n * sizeof(float));
  if (n) std::memcpy(data.data(), values, data.size());
  add_raw_tensor(name, static_cast<std::uint32_t>(GgmlType::F32), dims, std::move(data));
}

}  // namespace chatrec::llm::runtime
