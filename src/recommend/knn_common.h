#pragma once
// Shared machinery of the neighbourhood models (internal): ALS baselines and Pearson-baseline
// similarities as in Surprise's KNNBaseline, written once over an "entity x feature" view (items x
// users, or users x items).
#include <cstdint>
#include <span>
#include <vector>

#include "data/matrix.h"
#include "recommend/detail.h"

namespace chatrec::recommend::detail {

struct Baselines {
  float mu = 0.0f;
  std::vector<float> user, item;
  float operator()(UserIndex u, ItemIndex i) const { return mu + user[u] + item[i]; }
};

// Surprise's ALS baseline estimate (reg_u 15, reg_i 10, 10 sweeps by default).
Baselines fit_baselines(const data::InteractionMatrix& train, int sweeps, double reg_user,
                        double reg_item);
void write_baselines(std::ostream& out, const Baselines& b);
Baselines read_baselines(std::istream& in);

// Entity view of the training matrix: item-based (entities = items) or user-based (entities =
// users).
struct EntityView {
  const data::InteractionMatrix* m;
  bool items_are_entities;
  std::size_t num_entities() const { return items_are_entities ? m->num_items() : m->num_users(); }
  std::size_t num_features() const { return items_are_entities ? m->num_users() : m->num_items(); }
  std::span<const std::uint32_t> features_of(std::uint32_t e) const {
    return items_are_entities ? m->users_of(e) : m->items_of(e);
  }
  std::span<const float> feature_ratings_of(std::uint32_t e) const {
    return items_are_entities ? m->item_ratings_of(e) : m->ratings_of(e);
  }
  std::span<const std::uint32_t> entities_of(std::uint32_t f) const {
    return items_are_entities ? m->items_of(f) : m->users_of(f);
  }
  std::span<const float> entity_ratings_of(std::uint32_t f) const {
    return items_are_entities ? m->ratings_of(f) : m->item_ratings_of(f);
  }
  float baseline(const Baselines& b, std::uint32_t e, std::uint32_t f) const {
    return items_are_entities ? b(f, e) : b(e, f);
  }
};

// Implicit (binary) cosine neighbours of each entity, best first.
NeighbourLists implicit_neighbours(const EntityView& view, int k, double shrink, double alpha,
                                   int threads);

// Pearson-baseline similarities shrunk by (n-1)/(n-1+shrink); keeps each entity's `pool` most
// similar positive neighbours, sorted by id for merging.
NeighbourLists pearson_baseline_neighbours(const EntityView& view, const Baselines& b,
                                           double shrink, int pool, int threads);

// KNNBaseline estimate for (entity e, feature f): b + sum sim * (r - b) / sum sim over the k most
// similar entities that have a rating for f.
float knn_baseline_predict(const EntityView& view, const Baselines& b, const NeighbourLists& by_id,
                           std::uint32_t e, std::uint32_t f, int k);

}  // namespace chatrec::recommend::detail
