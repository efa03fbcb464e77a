#pragma once
// mf and svdpp predict r_ui ~ mu + b_u + b_i + v_u . q_i and differ only in the user vector v_u
// (p_u alone, or p_u plus the implicit item factors). They share the SGD options, the
// initialisation, the bias step, the learning-rate decay and the leading part of the saved state.
#include <Eigen/Dense>

#include <memory>
#include <string>

#include "common/progress.h"
#include "common/random.h"
#include "recommend/detail.h"
#include "recommend/recommender.h"

namespace chatrec::recommend {

class BiasedFactorRecommender : public Recommender {
 public:
  std::string name() const override { return name_; }
  Params params() const override;
  bool predicts_ratings() const override { return true; }
  float predict(UserIndex user, ItemIndex item) const override;
  void score(UserIndex user, std::span<float> out) const override;

 protected:
  struct Defaults {
    int factors, epochs;
    double lr_decay;
  };
  // What an SGD run carries from epoch to epoch (the learning rate decays after each).
  struct SgdRun {
    Rng rng;
    std::unique_ptr<Progress> progress;
    float lr, reg, reg_bias;
  };

  explicit BiasedFactorRecommender(std::string name) : name_(std::move(name)) {}
  // Reads the shared options; the caller reads its own and calls finish().
  void read_sgd_options(detail::ParamReader& r, Defaults defaults);
  // Checks for ratings, remembers the matrix, and sets the biases to zero and the user and item
  // factors to N(0, init_std) draws (users first, then items).
  SgdRun start_fit(const data::InteractionMatrix& train, const FitOptions& options);
  void fill_normal(Eigen::MatrixXf& m, SgdRun& run) const;
  void step_biases(UserIndex u, ItemIndex i, float e, float lr, float reg_bias) {
    user_bias_(u) += lr * (e - reg_bias * user_bias_(u));
    item_bias_(i) += lr * (e - reg_bias * item_bias_(i));
  }
  void end_epoch(SgdRun& run, double sse, std::size_t n) const;
  // The vectors v_u that predict() and score() use.
  virtual const Eigen::MatrixXf& user_vectors() const { return user_factors_; }

  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;
  // load_state() split in two, for a model whose state goes on after the shared part.
  void read_factor_state(std::istream& in);
  bool factor_state_fits() const;
  void throw_corrupt_state() const;

  int factors_ = 0, epochs_ = 0;
  float mu_ = 0.0f;
  Eigen::VectorXf user_bias_, item_bias_;
  Eigen::MatrixXf user_factors_, item_factors_;  // factors x entities (column per entity)

 private:
  std::string name_;
  double lr_ = 0, reg_ = 0, reg_bias_ = 0, init_std_ = 0, lr_decay_ = 0;
};

}  // namespace chatrec::recommend
