#include "recommend/mf.h"

#include <cmath>

namespace chatrec::recommend {

MfRecommender::MfRecommender(const Params& params) : BiasedFactorRecommender("mf") {
  detail::ParamReader r(name(), params);
  read_sgd_options(r, {.factors = 100, .epochs = 40, .lr_decay = 0.97});
  r.finish();
}

void MfRecommender::fit(const data::InteractionMatrix& train, const FitOptions& options) {
  auto run = start_fit(train, options);
  struct Rating {
    UserIndex u;
    ItemIndex i;
    float r;
  };
  std::vector<Rating> ratings;
  ratings.reserve(train.nnz());
  for (UserIndex u = 0; u < train.num_users(); ++u) {
    auto items = train.items_of(u);
    auto rs = train.ratings_of(u);
    for (std::size_t k = 0; k < items.size(); ++k) {
      if (!std::isnan(rs[k])) ratings.push_back({u, items[k], rs[k]});
    }
  }
  for (int epoch = 0; epoch < epochs_; ++epoch) {
    run.rng.shuffle(ratings);
    const float lr = run.lr, reg = run.reg, reg_b = run.reg_bias;
    double sse = 0;
    for (const auto& x : ratings) {
      auto p = user_factors_.col(x.u);
      auto q = item_factors_.col(x.i);
      const float e = x.r - (mu_ + user_bias_(x.u) + item_bias_(x.i) + p.dot(q));
      sse += static_cast<double>(e) * e;
      step_biases(x.u, x.i, e, lr, reg_b);
      for (int f = 0; f < factors_; ++f) {
        const float pf = p(f), qf = q(f);
        p(f) += lr * (e * qf - reg * pf);
        q(f) += lr * (e * pf - reg * qf);
      }
    }
    end_epoch(run, sse, ratings.size());
  }
}

}  // namespace chatrec::recommend
