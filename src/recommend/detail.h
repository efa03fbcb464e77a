#pragma once
// Internal helpers shared by the model implementations: typed hyper-parameter parsing, binary state
// serialisation with truncation checks, thread counts and optional progress bars. Not part of the
// public API.
#include <fmt/format.h>
#include <Eigen/Dense>

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "common/progress.h"
#include "recommend/recommender.h"

namespace chatrec::recommend::detail {

// Reads typed options out of Params; unknown keys are an error naming the valid ones, so that a
// typo in a CLI flag never silently trains with defaults.
class ParamReader {
 public:
  ParamReader(std::string model, const Params& params)
      : model_(std::move(model)), params_(params) {}

  double real(const std::string& key, double def, double lo, double hi) {
    known_.insert(key);
    auto it = params_.find(key);
    if (it == params_.end()) return def;
    double v;
    try {
      std::size_t pos = 0;
      v = std::stod(it->second, &pos);
      if (pos != it->second.size()) throw std::invalid_argument("trailing");
    } catch (...) {
      throw std::invalid_argument(
          fmt::format("{}: option '{}' expects a number, got '{}'", model_, key, it->second));
    }
    if (!(v >= lo && v <= hi)) {
      throw std::invalid_argument(
          fmt::format("{}: option '{}' = {} is outside [{}, {}]", model_, key, v, lo, hi));
    }
    return v;
  }
  int integer(const std::string& key, int def, int lo, int hi) {
    double v = real(key, def, lo, hi);
    if (v != static_cast<double>(static_cast<int>(v))) {
      throw std::invalid_argument(
          fmt::format("{}: option '{}' expects an integer, got {}", model_, key, v));
    }
    return static_cast<int>(v);
  }
  std::string choice(const std::string& key, const std::string& def,
                     const std::vector<std::string>& allowed) {
    known_.insert(key);
    auto it = params_.find(key);
    std::string v = it == params_.end() ? def : it->second;
    for (const auto& a : allowed) {
      if (a == v) return v;
    }
    throw std::invalid_argument(fmt::format("{}: option '{}' = '{}' is not one of {}", model_, key,
                                            v, fmt::join(allowed, ", ")));
  }
  // Call after reading every option.
  void finish() const {
    for (const auto& [k, v] : params_) {
      if (!known_.count(k)) {
        throw std::invalid_argument(fmt::format(
            "{}: unknown option '{}' (known: {})", model_, k,
            known_.empty() ? std::string("none") : fmt::format("{}", fmt::join(known_, ", "))));
      }
    }
  }

 private:
  std::string model_;
  const Params& params_;
  std::set<std::string> known_;
};

inline std::string fmt_param(double v) {
  return fmt::format("{}", v);
}

// ---- binary state
// -------------------------------------------------------------------------------------

template <typename T>
void write_pod(std::ostream& out, const T& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.write(reinterpret_cast<const char*>(&v), sizeof(T));
}

// Throws on a short read, naming what was being read, so a truncated file says so.
template <typename T>
T read_pod(std::istream& in, const char* what) {
  static_assert(std::is_trivially_copyable_v<T>);
  T v{};
  in.read(reinterpret_cast<char*>(&v), sizeof(T));
  if (!in || in.gcount() != static_cast<std::streamsize>(sizeof(T))) {
    throw std::runtime_error(
        fmt::format("model file is truncated or corrupt (while reading {})", what));
  }
  return v;
}

template <typename T>
void write_vec(std::ostream& out, const std::vector<T>& v) {
  write_pod<std::uint64_t>(out, v.size());
  if (!v.empty())
    out.write(reinterpret_cast<const char*>(v.data()),
              static_cast<std::streamsize>(v.size() * sizeof(T)));
}

// `max_size` guards against allocating absurd sizes from a corrupt length field.
template <typename T>
std::vector<T> read_vec(std::istream& in, const char* what, std::uint64_t max_size = (1ULL << 32)) {
  auto n = read_pod<std::uint64_t>(in, what);
  if (n > max_size)
    throw std::runtime_error(fmt::format("model file is corrupt: {} has {} elements", what, n));
  std::vector<T> v;
  // Read in chunks so a lying length on a short file fails before allocating everything.
  constexpr std::uint64_t kChunk = 1 << 20;
  for (std::uint64_t done = 0; done < n;) {
    std::uint64_t m = std::min(kChunk, n - done);
    v.resize(done + m);
    in.read(reinterpret_cast<char*>(v.data() + done), static_cast<std::streamsize>(m * sizeof(T)));
    if (!in || in.gcount() != static_cast<std::streamsize>(m * sizeof(T))) {
      throw std::runtime_error(
          fmt::format("model file is truncated or corrupt (while reading {})", what));
    }
    done += m;
  }
  return v;
}

inline void write_string(std::ostream& out, const std::string& s) {
  write_pod<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

inline std::string read_string(std::istream& in, const char* what) {
  auto n = read_pod<std::uint32_t>(in, what);
  if (n > (1u << 24))
    throw std::runtime_error(fmt::format("model file is corrupt: {} has length {}", what, n));
  std::string s(n, '\0');
  in.read(s.data(), n);
  if (!in || in.gcount() != static_cast<std::streamsize>(n)) {
    throw std::runtime_error(
        fmt::format("model file is truncated or corrupt (while reading {})", what));
  }
  return s;
}

template <typename Matrix>
void write_matrix(std::ostream& out, const Matrix& m) {
  write_pod<std::uint64_t>(out, static_cast<std::uint64_t>(m.rows()));
  write_pod<std::uint64_t>(out, static_cast<std::uint64_t>(m.cols()));
  out.write(reinterpret_cast<const char*>(m.data()),
            static_cast<std::streamsize>(m.size() * sizeof(typename Matrix::Scalar)));
}

template <typename Matrix>
Matrix read_matrix(std::istream& in, const char* what) {
  auto rows = read_pod<std::uint64_t>(in, what);
  auto cols = read_pod<std::uint64_t>(in, what);
  if (rows > (1ULL << 31) || cols > (1ULL << 31) || rows * cols > (1ULL << 32)) {
    throw std::runtime_error(fmt::format("model file is corrupt: {} is {}x{}", what, rows, cols));
  }
  using Scalar = typename Matrix::Scalar;
  std::vector<Scalar> buf;
  {
    // Reuse the chunked reader for the truncation check.
    std::uint64_t n = rows * cols;
    constexpr std::uint64_t kChunk = 1 << 20;
    for (std::uint64_t done = 0; done < n;) {
      std::uint64_t m = std::min(kChunk, n - done);
      buf.resize(done + m);
      in.read(reinterpret_cast<char*>(buf.data() + done),
              static_cast<std::streamsize>(m * sizeof(Scalar)));
      if (!in || in.gcount() != static_cast<std::streamsize>(m * sizeof(Scalar))) {
        throw std::runtime_error(
            fmt::format("model file is truncated or corrupt (while reading {})", what));
      }
      done += m;
    }
  }
  Matrix m(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  if (!buf.empty()) std::copy(buf.begin(), buf.end(), m.data());
  return m;
}

// ---- runtime
// ------------------------------------------------------------------------------------------

int thread_count(const FitOptions& options);

// A progress bar only when the caller wants one.
inline std::unique_ptr<Progress> maybe_progress(const FitOptions& options, std::string label,
                                                std::uint64_t total, std::string unit) {
  if (!options.progress) return nullptr;
  return std::make_unique<Progress>(std::move(label), total, std::move(unit));
}

// Sparse top-k neighbour lists (sorted by similarity, best first), the shape
// itemknn/userknn/sequential models share.
struct Neighbour {
  std::uint32_t id;
  float sim;
};
using NeighbourLists = std::vector<std::vector<Neighbour>>;

void write_neighbours(std::ostream& out, const NeighbourLists& lists);
NeighbourLists read_neighbours(std::istream& in, const char* what);

// Cosine similarity between the rows of a binary sparse matrix given as "entity -> list of
// features" (rows) and its transpose (cols), shrunk by n / (n + shrink) on the co-occurrence count
// n, with each entity keeping its `k` most similar others. `alpha` (0.5 = cosine) sets asymmetric
// cosine normalisation |a|^alpha |b|^(1-alpha).
template <typename RowsOf, typename ColsOf>
NeighbourLists binary_cosine_neighbours(std::size_t num_entities, std::size_t num_features,
                                        RowsOf rows_of, ColsOf cols_of, int k, double shrink,
                                        double alpha, int threads);

}  // namespace chatrec::recommend::detail

#include "recommend/detail_neighbours.inl"
