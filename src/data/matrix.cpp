#include "data/matrix.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace chatrec::data {

InteractionMatrix::InteractionMatrix(std::size_t num_users, std::size_t num_items,
                                     const std::vector<Interaction>& interactions)
    : num_users_(num_users), num_items_(num_items) {
  // Stable order: by user, then timestamp, then input position, so that sequences are chronological
  // and duplicates resolve to the last occurrence.
  std::vector<std::size_t> order(interactions.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto& x = interactions[a];
    const auto& y = interactions[b];
    if (x.user != y.user) return x.user < y.user;
    return x.timestamp < y.timestamp;
  });
  sequences_.assign(num_users, {});
  std::vector<std::vector<std::pair<ItemIndex, float>>> rows(num_users);
  double sum = 0;
  std::size_t rated = 0;
  for (std::size_t k : order) {
    const auto& x = interactions[k];
    if (x.user >= num_users || x.item >= num_items)
      throw std::out_of_range("interaction index out of range");
    sequences_[x.user].push_back(x.item);
    rows[x.user].emplace_back(x.item, x.rating);
  }
  row_ptr_.assign(num_users + 1, 0);
  for (std::size_t u = 0; u < num_users; ++u) {
    auto& r = rows[u];
    std::stable_sort(r.begin(), r.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    // Keep the last rating of a duplicated pair.
    std::vector<std::pair<ItemIndex, float>> dedup;
    for (const auto& p : r) {
      if (!dedup.empty() && dedup.back().first == p.first) {
        dedup.back() = p;
      } else {
        dedup.push_back(p);
      }
    }
    for (const auto& [item, rating] : dedup) {
      items_.push_back(item);
      ratings_.push_back(rating);
      if (!std::isnan(rating)) {
        sum += rating;
        ++rated;
      }
    }
    row_ptr_[u + 1] = items_.size();
  }
  has_ratings_ = rated > 0;
  global_mean_ = rated ? sum / static_cast<double>(rated) : 0.0;

  col_ptr_.assign(num_items + 1, 0);
  for (ItemIndex i : items_) ++col_ptr_[i + 1];
  for (std::size_t i = 0; i < num_items; ++i) col_ptr_[i + 1] += col_ptr_[i];
  users_.resize(items_.size());
  col_ratings_.resize(items_.size());
  std::vector<std::size_t> fill(col_ptr_.begin(), col_ptr_.end() - 1);
  for (std::size_t u = 0; u < num_users; ++u) {
    for (std::size_t k = row_ptr_[u]; k < row_ptr_[u + 1]; ++k) {
      std::size_t pos = fill[items_[k]]++;
      users_[pos] = static_cast<UserIndex>(u);
      col_ratings_[pos] = ratings_[k];
    }
  }
}

bool InteractionMatrix::contains(UserIndex u, ItemIndex i) const {
  auto row = items_of(u);
  return std::binary_search(row.begin(), row.end(), i);
}

}  // namespace chatrec::data
