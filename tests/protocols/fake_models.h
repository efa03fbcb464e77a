#pragma once
// Tiny recommenders with hand-checkable behaviour, so the protocol runners can be tested without
// the real models (and without depending on their numbers).
#include <functional>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <vector>

#include "recommend/recommender.h"

namespace chatrec::protocols::testing {

// Scores come from a function of (user, item); optionally predicts ratings with another.
class FakeRecommender : public recommend::Recommender {
 public:
  using ScoreFn = std::function<float(data::UserIndex, data::ItemIndex)>;
  FakeRecommender(std::string name, ScoreFn score, ScoreFn rating = {})
      : name_(std::move(name)), score_(std::move(score)), rating_(std::move(rating)) {}

  std::string name() const override { return name_; }
  recommend::Params params() const override { return {{"kind", "fake"}}; }
  void fit(const data::InteractionMatrix& train, const recommend::FitOptions& options) override {
    remember(train);
    if (on_fit) on_fit(train, options);
  }
  void score(data::UserIndex user, std::span<float> out) const override {
    for (data::ItemIndex i = 0; i < out.size(); ++i) out[i] = score_(user, i);
  }
  bool predicts_ratings() const override { return static_cast<bool>(rating_); }
  float predict(data::UserIndex user, data::ItemIndex item) const override {
    if (!rating_) throw std::logic_error("no ratings");
    return rating_(user, item);
  }

  // Lets a test look at what the runner trained the model on.
  std::function<void(const data::InteractionMatrix&, const recommend::FitOptions&)> on_fit;

 protected:
  void save_state(std::ostream&) const override {}
  void load_state(std::istream&) override {}

 private:
  std::string name_;
  ScoreFn score_, rating_;
};

}  // namespace chatrec::protocols::testing
