#pragma once
// EASE^R (Steck 2019): a closed-form item-item linear autoencoder, B = I - P diag(1/diag(P)) with
// P = (X^T X + lambda I)^-1 and a zero diagonal. Dense in the number of items: fit checks that the
// item-item matrices fit in the memory the machine has (or under max_items when it is set) before
// it allocates them.
#include <Eigen/Dense>

#include <cstdint>
#include <optional>
#include <string>

#include "recommend/recommender.h"

namespace chatrec::recommend {

class EaseRecommender : public Recommender {
 public:
  explicit EaseRecommender(const Params& params = {});
  std::string name() const override { return "ease"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  bool supports_fold_in() const override { return true; }
  void score_items(std::span<const ItemIndex> history, std::span<float> out) const override;

  // Peak bytes fit allocates for `items` items.
  static std::uint64_t bytes_needed(std::size_t items);
  // Why fit would refuse `items` items (over an explicit max_items > 0, or more than 90% of the
  // available memory), or nullopt when they fit.
  static std::optional<std::string> memory_problem(std::size_t items, int max_items,
                                                   std::optional<std::uint64_t> available_bytes);

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  double lambda_;
  int max_items_;            // 0: as many as the memory allows
  Eigen::MatrixXf weights_;  // B^T: column h = the weights item h gives every item
};

}  // namespace chatrec::recommend
