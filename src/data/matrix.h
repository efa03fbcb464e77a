#pragma once
// Compressed sparse rows of the user-item interactions, the input every recommender trains on.
#include <span>
#include <vector>

#include "data/dataset.h"

namespace chatrec::data {

class InteractionMatrix {
 public:
  InteractionMatrix() = default;
  // Duplicate (user, item) pairs keep the last rating. Items of each row are sorted by index; the
  // chronological order per user is kept separately in sequence().
  InteractionMatrix(std::size_t num_users, std::size_t num_items,
                    const std::vector<Interaction>& interactions);

  std::size_t num_users() const { return num_users_; }
  std::size_t num_items() const { return num_items_; }
  std::size_t nnz() const { return items_.size(); }

  std::span<const ItemIndex> items_of(UserIndex u) const {
    return {items_.data() + row_ptr_[u], row_ptr_[u + 1] - row_ptr_[u]};
  }
  std::span<const float> ratings_of(UserIndex u) const {
    return {ratings_.data() + row_ptr_[u], row_ptr_[u + 1] - row_ptr_[u]};
  }
  std::span<const UserIndex> users_of(ItemIndex i) const {
    return {users_.data() + col_ptr_[i], col_ptr_[i + 1] - col_ptr_[i]};
  }
  std::span<const float> item_ratings_of(ItemIndex i) const {
    return {col_ratings_.data() + col_ptr_[i], col_ptr_[i + 1] - col_ptr_[i]};
  }
  // Chronological items of the user (by timestamp, then input order).
  const std::vector<ItemIndex>& sequence(UserIndex u) const { return sequences_[u]; }
  bool contains(UserIndex u, ItemIndex i) const;
  bool has_ratings() const { return has_ratings_; }
  double global_mean() const { return global_mean_; }

 private:
  std::size_t num_users_ = 0, num_items_ = 0;
  std::vector<std::size_t> row_ptr_{0};
  std::vector<ItemIndex> items_;
  std::vector<float> ratings_;
  std::vector<std::size_t> col_ptr_{0};
  std::vector<UserIndex> users_;
  std::vector<float> col_ratings_;
  std::vector<std::vector<ItemIndex>> sequences_;
  bool has_ratings_ = false;
  double global_mean_ = 0.0;
};

}  // namespace chatrec::data
