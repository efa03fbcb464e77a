#include "recommend/recommender.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>

#include "recommend/detail.h"
#include "recommend/registry.h"

namespace chatrec::recommend {

namespace detail {

int thread_count(const FitOptions& options) {
  return options.threads > 0 ? options.threads : std::max(1, omp_get_max_threads());
}

void write_neighbours(std::ostream& out, const NeighbourLists& lists) {
  std::vector<std::uint32_t> sizes, ids;
  std::vector<float> sims;
  sizes.reserve(lists.size());
  for (const auto& l : lists) {
    sizes.push_back(static_cast<std::uint32_t>(l.size()));
    for (const auto& n : l) {
      ids.push_back(n.id);
      sims.push_back(n.sim);
    }
  }
  write_vec(out, sizes);
  write_vec(out, ids);
  write_vec(out, sims);
}

NeighbourLists read_neighbours(std::istream& in, const char* what) {
  auto sizes = read_vec<std::uint32_t>(in, what);
  auto ids = read_vec<std::uint32_t>(in, what);
  auto sims = read_vec<float>(in, what);
  if (ids.size() != sims.size())
    throw std::runtime_error(fmt::format("model file is corrupt: {}", what));
  NeighbourLists lists(sizes.size());
  std::size_t pos = 0;
  for (std::size_t a = 0; a < sizes.size(); ++a) {
    if (pos + sizes[a] > ids.size())
      throw std::runtime_error(fmt::format("model file is corrupt: {}", what));
    lists[a].reserve(sizes[a]);
    for (std::uint32_t j = 0; j < sizes[a]; ++j, ++pos) lists[a].push_back({ids[pos], sims[pos]});
  }
  return lists;
}

}  // namespace detail

namespace {

constexpr char kMagic[8] = {'C', 'H', 'A', 'T', 'R', 'E', 'C', '1'};
constexpr char kTrailer[8] = {'C', 'H', 'A', 'T', 'R', 'E', 'N', 'D'};
constexpr std::uint32_t kFormatVersion = 1;

}  // namespace

void Recommender::score_items(std::span<const ItemIndex>, std::span<float>) const {
  throw std::logic_error(
      fmt::format("model '{}' cannot score a history of items (no fold-in support)", name()));
}

float Recommender::predict(UserIndex, ItemIndex) const {
  throw std::logic_error(fmt::format("model '{}' does not predict ratings", name()));
}

void Recommender::remember(const data::InteractionMatrix& train) {
  if (owned_train_.get() != &train) owned_train_.reset();
  train_ = &train;
  num_users_ = train.num_users();
  num_items_ = train.num_items();
}

std::vector<ScoredItem> Recommender::recommend(UserIndex user, const RankOptions& options) const {
  if (!train_) throw std::logic_error(fmt::format("model '{}' is not trained", name()));
  if (user >= num_users_) {
    throw std::out_of_range(fmt::format("user index {} out of range (model '{}' knows {} users)",
                                        user, name(), num_users_));
  }
  std::vector<float> scores(num_items_);
  score(user, scores);
  std::span<const ItemIndex> seen;
  if (options.exclude_seen) seen = train_->items_of(user);
  return top_k(scores, seen, options);
}

std::vector<ScoredItem> Recommender::recommend_for_history(std::span<const ItemIndex> history,
                                                           const RankOptions& options) const {
  if (!train_) throw std::logic_error(fmt::format("model '{}' is not trained", name()));
  for (auto i : history) {
    if (i >= num_items_)
      throw std::out_of_range(fmt::format("item index {} out of range ({} items)", i, num_items_));
  }
  std::vector<float> scores(num_items_);
  score_items(history, scores);
  std::vector<ItemIndex> seen;
  if (options.exclude_seen) {
    seen.assign(history.begin(), history.end());
    std::sort(seen.begin(), seen.end());
  }
  return top_k(scores, seen, options);
}

std::vector<ScoredItem> Recommender::top_k(std::vector<float>& scores,
                                           std::span<const ItemIndex> seen,
                                           const RankOptions& options) const {
  // `seen` is sorted (CSR rows are); `exclude` may not be.
  std::vector<char> blocked;
  if (!options.exclude.empty() || !seen.empty()) {
    blocked.assign(num_items_, 0);
    for (auto i : seen) blocked[i] = 1;
    for (auto i : options.exclude) {
      if (i < num_items_) blocked[i] = 1;
    }
  }
  auto allowed = [&](ItemIndex i) {
    if (i >= num_items_) return false;
    if (!blocked.empty() && blocked[i]) return false;
    if (options.filter && !options.filter(i)) return false;
    return true;
  };
  std::vector<ScoredItem> pool;
  auto add = [&](ItemIndex i) {
    float s = scores[i];
    if (std::isnan(s)) s = -std::numeric_limits<float>::infinity();
    pool.push_back({i, s});
  };
  if (!options.candidates.empty()) {
    std::vector<char> taken(num_items_, 0);
    for (auto i : options.candidates) {
      if (allowed(i) && !taken[i]) {
        taken[i] = 1;
        add(i);
      }
    }
  } else {
    pool.reserve(num_items_);
    for (ItemIndex i = 0; i < num_items_; ++i) {
      if (allowed(i)) add(i);
    }
  }
  auto better = [](const ScoredItem& a, const ScoredItem& b) {
    return a.score > b.score || (a.score == b.score && a.item < b.item);
  };
  std::size_t k = std::min(options.k, pool.size());
  std::partial_sort(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(k), pool.end(),
                    better);
  pool.resize(k);
  return pool;
}

void Recommender::save(const std::string& path) const {
  if (!train_)
    throw std::logic_error(fmt::format("model '{}' is not trained; nothing to save", name()));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(fmt::format("cannot write model file '{}'", path));
  out.write(kMagic, sizeof kMagic);
  detail::write_pod(out, kFormatVersion);
  detail::write_string(out, name());
  auto p = params();
  detail::write_pod<std::uint32_t>(out, static_cast<std::uint32_t>(p.size()));
  for (const auto& [k, v] : p) {
    detail::write_string(out, k);
    detail::write_string(out, v);
  }
  detail::write_pod<std::uint64_t>(out, num_users_);
  detail::write_pod<std::uint64_t>(out, num_items_);
  // The training data, in chronological order with the (deduplicated) ratings, so that exclude_seen
  // and the sequential models work after load() exactly as after fit().
  std::vector<std::uint32_t> lengths, items;
  std::vector<float> ratings;
  lengths.reserve(num_users_);
  for (UserIndex u = 0; u < num_users_; ++u) {
    const auto& seq = train_->sequence(u);
    lengths.push_back(static_cast<std::uint32_t>(seq.size()));
    auto row = train_->items_of(u);
    auto row_r = train_->ratings_of(u);
    for (auto i : seq) {
      items.push_back(i);
      auto it = std::lower_bound(row.begin(), row.end(), i);
      ratings.push_back(row_r[static_cast<std::size_t>(it - row.begin())]);
    }
  }
  detail::write_vec(out, lengths);
  detail::write_vec(out, items);
  detail::write_vec(out, ratings);
  save_state(out);
  out.write(kTrailer, sizeof kTrailer);
  out.flush();
  if (!out) throw std::runtime_error(fmt::format("error writing model file '{}'", path));
}

std::unique_ptr<Recommender> Recommender::load(const std::string& path,
                                               const std::string& expected_name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot open model file '{}'", path));
  char magic[8] = {};
  in.read(magic, sizeof magic);
  if (in.gcount() != sizeof magic || std::memcmp(magic, kMagic, sizeof magic) != 0) {
    throw std::runtime_error(fmt::format("'{}' is not a chatrec model file (bad magic)", path));
  }
  auto version = detail::read_pod<std::uint32_t>(in, "format version");
  if (version != kFormatVersion) {
    throw std::runtime_error(
        fmt::format("model file '{}' has format version {}, this build reads version {}", path,
                    version, kFormatVersion));
  }
  auto name = detail::read_string(in, "model name");
  if (!is_known_recommender(name))
    throw std::runtime_error(fmt::format("model file '{}' holds unknown model '{}'", path, name));
  if (!expected_name.empty() && name != expected_name) {
    throw std::runtime_error(fmt::format("model file '{}' holds a '{}' model, expected '{}'", path,
                                         name, expected_name));
  }
  Params params;
  auto n = detail::read_pod<std::uint32_t>(in, "parameter count");
  if (n > 10000)
    throw std::runtime_error(fmt::format("model file '{}' is corrupt (parameter count)", path));
  for (std::uint32_t j = 0; j < n; ++j) {
    auto k = detail::read_string(in, "parameter name");
    params[k] = detail::read_string(in, "parameter value");
  }
  auto num_users = detail::read_pod<std::uint64_t>(in, "number of users");
  auto num_items = detail::read_pod<std::uint64_t>(in, "number of items");
  auto lengths = detail::read_vec<std::uint32_t>(in, "training data");
  auto items = detail::read_vec<std::uint32_t>(in, "training data");
  auto ratings = detail::read_vec<float>(in, "training data");
  if (lengths.size() != num_users || items.size() != ratings.size()) {
    throw std::runtime_error(fmt::format("model file '{}' is corrupt (training data sizes)", path));
  }
  std::vector<data::Interaction> interactions;
  interactions.reserve(items.size());
  std::size_t pos = 0;
  for (UserIndex u = 0; u < num_users; ++u) {
    for (std::uint32_t j = 0; j < lengths[u]; ++j, ++pos) {
      if (pos >= items.size() || items[pos] >= num_items) {
        throw std::runtime_error(fmt::format("model file '{}' is corrupt (training data)", path));
      }
      interactions.push_back({u, items[pos], ratings[pos], static_cast<std::int64_t>(j)});
    }
  }
  auto model = make_recommender(name, params);
  auto train = std::make_shared<data::InteractionMatrix>(num_users, num_items, interactions);
  model->owned_train_ = std::move(train);
  model->train_ = model->owned_train_.get();
  model->num_users_ = num_users;
  model->num_items_ = num_items;
  try {
    model->load_state(in);
    char trailer[8] = {};
    in.read(trailer, sizeof trailer);
    if (in.gcount() != sizeof trailer || std::memcmp(trailer, kTrailer, sizeof trailer) != 0) {
      throw std::runtime_error("model file is truncated or corrupt (missing end marker)");
    }
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("'{}': {}", path, e.what()));
  }
  return model;
}

std::unique_ptr<Recommender> Recommender::load(const std::string& path) {
  return load(path, std::string());
}

}  // namespace chatrec::recommend
