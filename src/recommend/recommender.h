#pragma once
// The classic recommender "R" that Chat-Rec puts under the LLM. Every algorithm is a small class
// behind fit / score / predict (as in Surprise), created by name from the registry.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/matrix.h"

namespace chatrec::recommend {

using data::ItemIndex;
using data::UserIndex;

// Hyper-parameters as strings, so the CLI, reports and model files can carry them uniformly.
using Params = std::map<std::string, std::string>;

struct FitOptions {
  std::uint64_t seed = 2023;
  int threads = 0;  // 0 = all cores
  bool progress = true;
  // Held-out interactions for early stopping / model selection (never the test split).
  const std::vector<data::Interaction>* validation = nullptr;
};

struct ScoredItem {
  ItemIndex item;
  float score;
};

struct RankOptions {
  std::size_t k = 20;
  bool exclude_seen = true;               // drop items in the user's training data
  std::span<const ItemIndex> candidates;  // when non-empty, rank only these
  std::function<bool(ItemIndex)> filter;  // when set, keep only items passing it
  std::span<const ItemIndex> exclude;     // never return these (e.g. disliked in conversation)
};

class Recommender {
 public:
  virtual ~Recommender() = default;

  virtual std::string name() const = 0;
  virtual Params params() const = 0;
  virtual void fit(const data::InteractionMatrix& train, const FitOptions& options) = 0;

  // Scores every item for the user (higher is better), into `out` of size num_items.
  virtual void score(UserIndex user, std::span<float> out) const = 0;
  // Scores for a user described only by their items (a new user, or a conversation's items), when
  // supported.
  virtual bool supports_fold_in() const { return false; }
  virtual void score_items(std::span<const ItemIndex> history, std::span<float> out) const;

  virtual bool predicts_ratings() const { return false; }
  // Predicted rating (clipped by the caller); throws if the model does not predict ratings.
  virtual float predict(UserIndex user, ItemIndex item) const;

  // Top-k under the options, best first.
  std::vector<ScoredItem> recommend(UserIndex user, const RankOptions& options) const;
  std::vector<ScoredItem> recommend_for_history(std::span<const ItemIndex> history,
                                                const RankOptions& options) const;

  // Versioned binary model files: a header (magic, format version, model name, params, sizes) then
  // the model's state. A wrong or truncated file is a clear error.
  void save(const std::string& path) const;
  static std::unique_ptr<Recommender> load(const std::string& path);
  // As load(), but a file holding another model than `expected_name` is an error (empty = any
  // model).
  static std::unique_ptr<Recommender> load(const std::string& path,
                                           const std::string& expected_name);

  const data::InteractionMatrix* train_matrix() const { return train_; }
  std::size_t num_items() const { return num_items_; }
  std::size_t num_users() const { return num_users_; }

 protected:
  friend class BlendRecommender;  // saves, loads and re-targets its member models
  virtual void save_state(std::ostream& out) const = 0;
  virtual void load_state(std::istream& in) = 0;
  // Set by fit() implementations; kept by pointer (the caller owns the matrix) or rebuilt on load.
  void remember(const data::InteractionMatrix& train);
  const data::InteractionMatrix* train_ = nullptr;
  std::shared_ptr<data::InteractionMatrix> owned_train_;
  std::size_t num_users_ = 0, num_items_ = 0;

 private:
  std::vector<ScoredItem> top_k(std::vector<float>& scores, std::span<const ItemIndex> seen,
                                const RankOptions& options) const;
};

}  // namespace chatrec::recommend
