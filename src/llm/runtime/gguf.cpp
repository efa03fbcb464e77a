#include "llm/runtime/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

namespace chatrec::llm::runtime {
namespace {

constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr std::uint64_t kMaxStringBytes = std::uint64_t{1} << 26;
constexpr std::uint64_t kMaxKeyBytes = 1 << 16;
constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 24;  // tensors, key/values, array elements
constexpr std::uint32_t kMaxDims = 4;
constexpr std::int64_t kMaxDim = std::int64_t{1} << 40;

// Storage size of every ggml type, including those the kernels cannot compute with, so that any
// valid file can be inspected (`chatrec model info`).
struct Storage {
  std::int64_t block_elems;
  std::uint64_t block_bytes;
};
std::optional<Storage> storage_of(std::uint32_t type) {
  if (auto t = type_traits(type)) return Storage{t->block_elems, t->block_bytes};
  switch (type) {
    case 6:
      return Storage{32, 22};  // Q5_0
    case 7:
      return Storage{32, 24};  // Q5_1
    case 9:
      return Storage{32, 36};  // Q8_1
    case 10:
      return Storage{256, 84};  // Q2_K
    case 11:
      return Storage{256, 110};  // Q3_K
    case 15:
      return Storage{256, 292};  // Q8_K
    case 24:
      return Storage{1, 1};  // I8
    case 25:
      return Storage{1, 2};  // I16
    case 26:
      return Storage{1, 4};  // I32
    case 27:
      return Storage{1, 8};  // I64
    case 28:
      return Storage{1, 8};  // F64
    case 30:
      return Storage{1, 2};  // BF16
    default:
      return std::nullopt;
  }
}

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size, const std::string& file)
      : data_(data), size_(size), file_(file) {}

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw GgufError(file_ + ": offset " + std::to_string(pos_) + ": " + field + ": " + problem);
  }

  void need(std::uint64_t n, const std::string& field) const {
    if (n > size_ - pos_)
      fail(field, "truncated (needs " + std::to_string(n) + " bytes, " +
                      std::to_string(size_ - pos_) + " left)");
  }

  template <typename T>
  T read(const std::string& field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& field, std::uint64_t max_bytes = kMaxStringBytes) {
    const auto len = read<std::uint64_t>(field + " length");
    if (len > max_bytes) fail(field, "string length " + std::to_string(len) + " exceeds limit");
    need(len, field);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<std::size_t>(len));
    pos_ += static_cast<std::size_t>(len);
    return s;
  }

  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return size_ - pos_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  const std::string& file_;
};

std::size_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    case GgufValueType::kString:
      return 8;  // at least the length prefix
    case GgufValueType::kArray:
      return 0;
  }
  return 0;
}

bool valid_type(std::uint32_t t) {
  return t <= 12;
}

// Reads one scalar into the integer/float slots of `v`.
void read_scalar(Reader& r, GgufValueType t, GgufValue& v, const std::string& field) {
  switch (t) {
    case GgufValueType::kUint8:
      v.u = r.read<std::uint8_t>(field);
      v.i = static_cast<std::int64_t>(v.u);
      v.f = static_cast<double>(v.u);
      break;
    case GgufValueType::kInt8:
      v.i = r.read<std::int8_t>(field);
      v.u = static_cast<std::uint64_t>(v.i);
      v.f = static_cast<double>(v.i);
      break;
    case GgufValueType::kUint16:
      v.u = r.read<std::uint16_t>(field);
      v.i = static_cast<std::int64_t>(v.u);
      v.f = static_cast<double>(v.u);
      break;
    case GgufValueType::kInt16:
      v.i = r.read<std::int16_t>(field);
      v.u = static_cast<std::uint64_t>(v.i);
      v.f = static_cast<double>(v.i);
      break;
    case GgufValueType::kUint32:
      v.u = r.read<std::uint32_t>(field);
      v.i = static_cast<std::int64_t>(v.u);
      v.f = static_cast<double>(v.u);
      break;
    case GgufValueType::kInt32:
      v.i = r.read<std::int32_t>(field);
      v.u = static_cast<std::uint64_t>(v.i);
      v.f = static_cast<double>(v.i);
      break;
    case GgufValueType::kUint64:
      v.u = r.read<std::uint64_t>(field);
      v.i = static_cast<std::int64_t>(v.u);
      v.f = static_cast<double>(v.u);
      break;
    case GgufValueType::kInt64:
      v.i = r.read<std::int64_t>(field);
      v.u = static_cast<std::uint64_t>(v.i);
      v.f = static_cast<double>(v.i);
      break;
    case GgufValueType::kFloat32:
      v.f = r.read<float>(field);
      v.i = 0;
      break;
    case GgufValueType::kFloat64:
      v.f = r.read<double>(field);
      v.i = 0;
      break;
    case GgufValueType::kBool: {
      const auto b = r.read<std::uint8_t>(field);
      if (b > 1) r.fail(field, "bool value " + std::to_string(b));
      v.u = b;
      v.i = b;
      v.f = b;
      break;
    }
    case GgufValueType::kString:
      v.str = r.read_string(field);
      break;
    case GgufValueType::kArray:
      r.fail(field, "nested arrays are not supported");
  }
}

}  // namespace

const char* to_string(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "u8";
    case GgufValueType::kInt8:
      return "i8";
    case GgufValueType::kUint16:
      return "u16";
    case GgufValueType::kInt16:
      return "i16";
    case GgufValueType::kUint32:
      return "u32";
    case GgufValueType::kInt32:
      return "i32";
    case GgufValueType::kFloat32:
      return "f32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "u64";
    case GgufValueType::kInt64:
      return "i64";
    case GgufValueType::kFloat64:
      return "f64";
  }
  return "?";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kBool:
      return true;
    default:
      return false;
  }
}

bool GgufValue::is_number() const {
  return is_integer() || type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64;
}

std::size_t GgufValue::array_size() const {
  if (type != GgufValueType::kArray) return 0;
  return element_type == GgufValueType::kString ? strings.size() : numbers.size();
}

std::int64_t GgufTensor::elements() const {
  std::int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

GgufFile::GgufFile(GgufFile&& o) noexcept {
  *this = std::move(o);
}

GgufFile& GgufFile::operator=(GgufFile&& o) noexcept {
  if (this != &o) {
    if (mapping_) munmap(mapping_, size_);
    name_ = std::move(o.name_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapping_ = std::exchange(o.mapping_, nullptr);
    owned_ = std::move(o.owned_);
    version_ = o.version_;
    alignment_ = o.alignment_;
    metadata_ = std::move(o.metadata_);
    tensors_ = std::move(o.tensors_);
    tensor_index_ = std::move(o.tensor_index_);
  }
  return *this;
}

GgufFile::~GgufFile() {
  if (mapping_) munmap(mapping_, size_);
}

GgufFile GgufFile::open(const std::filesystem::path& path) {
  GgufFile f;
  f.name_ = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw GgufError(f.name_ + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw GgufError(f.name_ + ": cannot stat: " + std::strerror(err));
  }
  f.size_ = static_cast<std::size_t>(st.st_size);
  if (f.size_ == 0) {
    ::close(fd);
    throw GgufError(f.name_ + ": offset 0: header: empty file");
  }
  void* m = mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) throw GgufError(f.name_ + ": mmap failed: " + std::strerror(errno));
  f.mapping_ = m;
  f.base_ = static_cast<const std::uint8_t*>(m);
  f.parse_all();
  return f;
}

GgufFile GgufFile::parse(std::span<const std::uint8_t> bytes, std::string name) {
  GgufFile f;
  f.name_ = std::move(name);
  f.owned_.assign(bytes.begin(), bytes.end());
  f.base_ = f.owned_.data();
  f.size_ = f.owned_.size();
  f.parse_all();
  return f;
}

void GgufFile::parse_all() {
  Reader r(base_, size_, name_);
  if (r.read<std::uint32_t>("magic") != kMagic) r.fail("magic", "not a GGUF file");
  version_ = r.read<std::uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    r.fail("version", "unsupported GGUF version " + std::to_string(version_));
  const auto n_tensors = r.read<std::uint64_t>("tensor_count");
  const auto n_kv = r.read<std::uint64_t>("metadata_kv_count");
  if (n_tensors > kMaxCount) r.fail("tensor_count", std::to_string(n_tensors) + " exceeds limit");
  if (n_kv > kMaxCount) r.fail("metadata_kv_count", std::to_string(n_kv) + " exceeds limit");

  for (std::uint64_t k = 0; k < n_kv; ++k) {
    const std::string key = r.read_string("metadata key #" + std::to_string(k), kMaxKeyBytes);
    const auto raw_type = r.read<std::uint32_t>(key + " type");
    if (!valid_type(raw_type)) r.fail(key, "unknown value type " + std::to_string(raw_type));
    GgufValue v;
    v.type = static_cast<GgufValueType>(raw_type);
    if (v.type == GgufValueType::kArray) {
      const auto raw_elem = r.read<std::uint32_t>(key + " element type");
      if (!valid_type(raw_elem))
        r.fail(key, "unknown array element type " + std::to_string(raw_elem));
      v.element_type = static_cast<GgufValueType>(raw_elem);
      if (v.element_type == GgufValueType::kArray) r.fail(key, "nested arrays are not supported");
      const auto n = r.read<std::uint64_t>(key + " array length");
      if (n > kMaxCount || n * scalar_size(v.element_type) > r.remaining()) {
        r.fail(key, "array length " + std::to_string(n) + " exceeds the file");
      }
      if (v.element_type == GgufValueType::kString) {
        v.strings.reserve(static_cast<std::size_t>(n));
        for (std::uint64_t j = 0; j < n; ++j)
          v.strings.push_back(r.read_string(key + "[" + std::to_string(j) + "]"));
      } else {
        v.numbers.reserve(static_cast<std::size_t>(n));
        GgufValue e;
        e.type = v.element_type;
        for (std::uint64_t j = 0; j < n; ++j) {
          read_scalar(r, v.element_type, e, key);
          v.numbers.push_back(e.is_integer() ? static_cast<double>(e.i) : e.f);
        }
      }
    } else {
      read_scalar(r, v.type, v, key);
    }
    if (!metadata_.emplace(key, std::move(v)).second) r.fail(key, "duplicate metadata key");
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer() || a->u == 0 || a->u > (1u << 20) || (a->u & (a->u - 1)) != 0) {
      throw GgufError(name_ + ": general.alignment: must be a power of two, got " +
                      std::to_string(a->u));
    }
    alignment_ = a->u;
  }

  tensors_.reserve(static_cast<std::size_t>(n_tensors));
  for (std::uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    t.name = r.read_string("tensor #" + std::to_string(k) + " name", kMaxKeyBytes);
    const auto n_dims = r.read<std::uint32_t>(t.name + " n_dims");
    if (n_dims == 0 || n_dims > kMaxDims)
      r.fail(t.name, "n_dims " + std::to_string(n_dims) + " not in 1..4");
    std::int64_t elements = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = r.read<std::uint64_t>(t.name + " dim");
      if (dim == 0 || dim > static_cast<std::uint64_t>(kMaxDim))
        r.fail(t.name, "dimension " + std::to_string(dim) + " out of range");
      if (elements > kMaxDim / static_cast<std::int64_t>(dim))
        r.fail(t.name, "element count overflows");
      elements *= static_cast<std::int64_t>(dim);
      t.dims.push_back(static_cast<std::int64_t>(dim));
    }
    const auto raw_type = r.read<std::uint32_t>(t.name + " type");
    const auto storage = storage_of(raw_type);
    if (!storage) r.fail(t.name, "unknown tensor type " + std::to_string(raw_type));
    t.type = static_cast<GgmlType>(raw_type);
    if (t.dims[0] % storage->block_elems != 0) {
      r.fail(t.name, "row length " + std::to_string(t.dims[0]) +
                         " is not a multiple of the block size " +
                         std::to_string(storage->block_elems));
    }
    t.offset = r.read<std::uint64_t>(t.name + " offset");
    if (t.offset % alignment_ != 0)
      r.fail(t.name, "offset " + std::to_string(t.offset) + " is not aligned");
    t.size = static_cast<std::size_t>(elements / storage->block_elems *
                                      static_cast<std::int64_t>(storage->block_bytes));
    if (!tensor_index_.emplace(t.name, tensors_.size()).second)
      r.fail(t.name, "duplicate tensor name");
    tensors_.push_back(std::move(t));
  }

  const std::uint64_t data_start = (r.pos() + alignment_ - 1) / alignment_ * alignment_;
  for (GgufTensor& t : tensors_) {
    if (data_start > size_ || t.offset > size_ - data_start ||
        t.size > size_ - data_start - t.offset) {
      throw GgufError(name_ + ": tensor " + t.name + ": data [" +
                      std::to_string(data_start + t.offset) + ", +" + std::to_string(t.size) +
                      ") lies outside the file (" + std::to_string(size_) + " bytes)");
    }
    t.data = base_ + data_start + t.offset;
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) throw GgufError(name_ + ": missing metadata key " + key);
  if (v->type != GgufValueType::kString)
    throw GgufError(name_ + ": " + key + ": expected a string, got " + to_string(v->type));
  return v->str;
}

std::string GgufFile::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

std::int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) throw GgufError(name_ + ": missing metadata key " + key);
  if (!v->is_integer())
    throw GgufError(name_ + ": " + key + ": expected an integer, got " + to_string(v->type));
  return v->i;
}

std::int64_t GgufFile::get_int(const std::string& key, std::int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}

double GgufFile::get_float(const std::string& key, double fallback) const {
  const GgufValue* v = find(key);
  if (!v) return fallback;
  if (!v->is_number())
    throw GgufError(name_ + ": " + key + ": expected a number, got " + to_string(v->type));
  return v->is_integer() ? static_cast<double>(v->i) : v->f;
}

bool GgufFile::get_bool(const std::string& key, bool fallback) const {
  const GgufValue* v = find(key);
  if (!v) return fallback;
  if (!v->is_integer())
    throw GgufError(name_ + ": " + key + ": expected a bool, got " + to_string(v->type));
  return v->u != 0;
}

const std::vector<std::string>& GgufFile::get_strings(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) throw GgufError(name_ + ": missing metadata key " + key);
  if (v->type != GgufValueType::kArray || v->element_type != GgufValueType::kString) {
    throw GgufError(name_ + ": " + key + ": expected an array of strings");
  }
  return v->strings;
}

const std::vector<double>* GgufFile::get_numbers(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufValueType::kArray || v->element_type == GgufValueType::kString) {
    throw GgufError(name_ + ": " + key + ": expected an array of numbers");
  }
  return &v->numbers;
}

const GgufTensor* GgufFile::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace chatrec::llm::runtime
