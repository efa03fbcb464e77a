#pragma once
// The splitters of docs/protocols.md. Seeded and deterministic: the same seed gives a
// byte-identical split.
#include <cstdint>
#include <string>
#include <vector>

#include <map>

#include "data/dataset.h"
#include "data/matrix.h"

namespace chatrec::data {

struct Split {
  std::string protocol;
  std::uint64_t seed = 0;
  std::vector<Interaction> train;
  std::vector<Interaction> test;      // held-out interactions (ground truth)
  std::vector<Interaction> valid;     // validation targets, when the protocol has them
  std::vector<UserIndex> eval_users;  // users evaluated, sorted
  // Canonical text form (one interaction per line), used to check byte-identical determinism.
  std::string serialize() const;
};

// Protocol A (ml100k-topk): per user, shuffle the liked items (rating >= liked_threshold) with the
// seeded RNG and hold out ceil(20%) of them; everything else is training data. Users with no liked
// item are not evaluated.
Split split_topk_holdout(const Dataset& ds, std::uint64_t seed, float liked_threshold = 4.0f,
                         double holdout_fraction = 0.2);

// Protocol B1: for each of the given users, hold out a seeded 20% (ceil) of all their ratings.
Split split_rating_holdout(const Dataset& ds, const std::vector<UserIndex>& users,
                           std::uint64_t seed, double holdout_fraction = 0.2);

// Protocol B2: the official fold uN.base / uN.test (fold 1..5) of MovieLens-100K in `dir`, mapped
// onto `ds` (which must be the full ML-100K dataset).
Split split_official_fold(const Dataset& ds, const std::string& dir, int fold);

// Protocol C (games-seq): per user the last interaction (by timestamp) is the test target, the one
// before it the validation target; training data is everything but the test target
// (validation-aware models exclude the validation target themselves via `valid`).
Split split_leave_last_out(const Dataset& ds);

// A validation carve-out of a training split, for choices made on training data only (Chat-Rec's
// fusion weight, `instruct tune --dataset ml-100k`): a seeded sample of up to `users` users with at
// least 5 liked (>= 4) training items, ceil(20%) of whose liked items are held out. `kept` is the
// rest of the training data, each user's interactions in their time order. For one seed, a
// smaller `users` gives a subset of the users of a larger one, with the same items held out.
struct LikedHoldout {
  std::vector<UserIndex> users;                      // sorted
  std::map<UserIndex, std::vector<ItemIndex>> held;  // per user, sorted
  std::vector<Interaction> kept;
};
LikedHoldout split_liked_validation(const InteractionMatrix& train, std::uint64_t seed,
                                    std::size_t users);

// A seeded sample of n users from `users` (all when n >= size), sorted.
std::vector<UserIndex> sample_users(const std::vector<UserIndex>& users, std::size_t n,
                                    std::uint64_t seed);

}  // namespace chatrec::data
