#include "data/splits.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "common/error.h"
#include "common/random.h"
#include "common/text.h"
#include "data/loaders.h"

namespace chatrec::data {

std::string Split::serialize() const {
  std::string out = fmt::format("protocol {} seed {}\n", protocol, seed);
  auto dump = [&](const char* tag, const std::vector<Interaction>& v) {
    for (const auto& x : v)
      out += fmt::format("{} {} {} {} {}\n", tag, x.user, x.item, x.rating, x.timestamp);
  };
  dump("train", train);
  dump("test", test);
  dump("valid", valid);
  for (auto u : eval_users) out += fmt::format("user {}\n", u);
  return out;
}

namespace {
std::vector<std::vector<std::size_t>> by_user(const Dataset& ds) {
  std::vector<std::vector<std::size_t>> rows(ds.num_users());
  const auto& all = ds.interactions();
  for (std::size_t k = 0; k < all.size(); ++k) rows[all[k].user].push_back(k);
  return rows;
}

// Per-user seeds derived from the protocol seed, so that one user's split does not depend on how
// many random numbers other users consumed.
std::uint64_t user_seed(std::uint64_t seed, UserIndex u) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + u + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
}  // namespace

Split split_topk_holdout(const Dataset& ds, std::uint64_t seed, float liked_threshold,
                         double holdout_fraction) {
  Split s;
  s.protocol = "ml100k-topk";
  s.seed = seed;
  const auto& all = ds.interactions();
  auto rows = by_user(ds);
  for (UserIndex u = 0; u < rows.size(); ++u) {
    std::vector<std::size_t> liked, other;
    for (auto k : rows[u])
      (all[k].has_rating() && all[k].rating >= liked_threshold ? liked : other).push_back(k);
    if (liked.empty()) {
      for (auto k : other) s.train.push_back(all[k]);
      continue;
    }
    Rng rng(user_seed(seed, u));
    rng.shuffle(liked);
    auto n_test = static_cast<std::size_t>(
        std::ceil(holdout_fraction * static_cast<double>(liked.size()) - 1e-9));
    for (std::size_t j = 0; j < liked.size(); ++j)
      (j < n_test ? s.test : s.train).push_back(all[liked[j]]);
    for (auto k : other) s.train.push_back(all[k]);
    s.eval_users.push_back(u);
  }
  return s;
}

Split split_rating_holdout(const Dataset& ds, const std::vector<UserIndex>& users,
                           std::uint64_t seed, double holdout_fraction) {
  Split s;
  s.protocol = "ml100k-rating";
  s.seed = seed;
  const auto& all = ds.interactions();
  auto rows = by_user(ds);
  std::set<UserIndex> chosen(users.begin(), users.end());
  for (UserIndex u = 0; u < rows.size(); ++u) {
    if (!chosen.count(u)) {
      for (auto k : rows[u]) s.train.push_back(all[k]);
      continue;
    }
    std::vector<std::size_t> rated;
    for (auto k : rows[u]) {
      if (all[k].has_rating()) rated.push_back(k);
    }
    Rng rng(user_seed(seed, u));
    rng.shuffle(rated);
    auto n_test = static_cast<std::size_t>(
        std::ceil(holdout_fraction * static_cast<double>(rated.size()) - 1e-9));
    std::set<std::size_t> held(rated.begin(), rated.begin() + static_cast<std::ptrdiff_t>(n_test));
    for (auto k : rows[u]) (held.count(k) ? s.test : s.train).push_back(all[k]);
    if (n_test > 0) s.eval_users.push_back(u);
  }
  return s;
}

Split split_official_fold(const Dataset& ds, const std::string& dir, int fold) {
  if (fold < 1 || fold > 5) throw InputError(dir, 0, "fold", "fold must be 1..5");
  Split s;
  s.protocol = fmt::format("ml100k-folds/u{}", fold);
  auto read = [&](const std::string& file, std::vector<Interaction>& out) {
    // The fold files have the u.data layout; parse them against ds so indices match.
    Dataset tmp;
    auto path = std::filesystem::path(dir) / file;
    std::ifstream in(path);
    if (!in) throw InputError(path.string(), 0, "", "cannot open fold file");
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (text::trim(line).empty()) continue;
      auto f = text::split(line, '\t');
      if (f.size() != 4) throw InputError(path.string(), n, "", "expected 4 tab-separated fields");
      auto u = ds.find_user(f[0]);
      auto i = ds.find_item(f[1]);
      if (!u) throw InputError(path.string(), n, "user id", "unknown user '" + f[0] + "'");
      if (!i) throw InputError(path.string(), n, "item id", "unknown item '" + f[1] + "'");
      float r;
      try {
        r = std::stof(f[2]);
      } catch (...) {
        throw InputError(path.string(), n, "rating", "expected a number, got '" + f[2] + "'");
      }
      out.push_back({*u, *i, r, std::stoll(f[3])});
    }
  };
  read(fmt::format("u{}.base", fold), s.train);
  read(fmt::format("u{}.test", fold), s.test);
  std::set<UserIndex> users;
  for (const auto& x : s.test) users.insert(x.user);
  s.eval_users.assign(users.begin(), users.end());
  return s;
}

Split split_leave_last_out(const Dataset& ds) {
  Split s;
  s.protocol = "games-seq";
  const auto& all = ds.interactions();
  auto rows = by_user(ds);
  for (UserIndex u = 0; u < rows.size(); ++u) {
    auto& r = rows[u];
    std::stable_sort(r.begin(), r.end(),
                     [&](auto a, auto b) { return all[a].timestamp < all[b].timestamp; });
    if (r.size() < 2) {
      for (auto k : r) s.train.push_back(all[k]);
      continue;
    }
    for (std::size_t j = 0; j + 1 < r.size(); ++j) s.train.push_back(all[r[j]]);
    s.test.push_back(all[r.back()]);
    s.valid.push_back(all[r[r.size() - 2]]);
    s.eval_users.push_back(u);
  }
  return s;
}

std::vector<UserIndex> sample_users(const std::vector<UserIndex>& users, std::size_t n,
                                    std::uint64_t seed) {
  std::vector<UserIndex> out = users;
  std::sort(out.begin(), out.end());
  if (n >= out.size()) return out;
  Rng rng(seed);
  rng.shuffle(out);
  out.resize(n);
  std::sort(out.begin(), out.end());
  return out;
}

LikedHoldout split_liked_validation(const InteractionMatrix& train, std::uint64_t seed,
                                    std::size_t users) {
  LikedHoldout out;
  for (UserIndex u = 0; u < train.num_users(); ++u) {
    std::size_t liked = 0;
    for (float r : train.ratings_of(u)) liked += r >= 4.0f;
    if (liked >= 5) out.users.push_back(u);
  }
  Rng rng(seed ^ 0x5eedf00dULL);
  rng.shuffle(out.users);
  if (out.users.size() > users) out.users.resize(users);
  std::sort(out.users.begin(), out.users.end());
  // Each user's held items come from their own stream, so a smaller sample is a subset of a larger
  // one with the same items held out.
  for (UserIndex u : out.users) {
    Rng rng(user_seed(seed ^ 0x5eedf00dULL, u));
    std::vector<ItemIndex> liked;
    const auto items = train.items_of(u);
    const auto ratings = train.ratings_of(u);
    for (std::size_t j = 0; j < items.size(); ++j) {
      if (ratings[j] >= 4.0f) liked.push_back(items[j]);
    }
    rng.shuffle(liked);
    liked.resize(static_cast<std::size_t>(std::ceil(0.2 * static_cast<double>(liked.size()))));
    std::sort(liked.begin(), liked.end());
    out.held[u] = liked;
  }
  for (UserIndex u = 0; u < train.num_users(); ++u) {
    const auto items = train.items_of(u);
    const auto ratings = train.ratings_of(u);
    const auto h = out.held.find(u);
    for (ItemIndex i : train.sequence(u)) {
      if (h != out.held.end() && std::binary_search(h->second.begin(), h->second.end(), i))
        continue;
      Interaction in;
      in.user = u;
      in.item = i;
      const auto at = std::lower_bound(items.begin(), items.end(), i);
      if (at != items.end() && *at == i)
        in.rating = ratings[static_cast<std::size_t>(at - items.begin())];
      out.kept.push_back(in);
    }
  }
  return out;
}

}  // namespace chatrec::data
