// Registers the InstructRec likelihood ranker as the games-seq candidate ranker "instruct":
//   chatrec eval --protocol games-seq --ranker instruct --llm builtin [--search]
//       [--lora ADAPTER.gguf] [--fusion]
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "chat/fusion.h"
#include "cli/eval_hooks.h"
#include "common/error.h"
#include "common/progress.h"
#include "common/random.h"
#include "data/splits.h"
#include "instruct/candidate_ranker.h"
#include "instruct/tuning.h"
#include "llm/factory.h"
#include "llm/language_model.h"
#include "llm/runtime/gguf.h"
#include "recommend/registry.h"

namespace chatrec::cli {
namespace {

// The LLM's order fused with the base model's order by weighted Borda count (chat/fusion.h), the
// weight chosen on validation cases only: each sampled user's second-to-last item (their
// games.valid.inter target) with 9 fresh negatives, ranked by a copy of the base model refit
// without those targets, so neither the base nor the choice sees a test target. With a tuned
// adapter the users are the ones its tuning held out (it trained on everyone else's validation
// target). A weight above 0 must beat the base by a significant paired margin; at weight 0 the LLM
// is not called.
class FusedCandidateRanker : public protocols::CandidateRanker {
 public:
  FusedCandidateRanker(std::unique_ptr<instruct::InstructCandidateRanker> llm,
                       const data::Dataset& ds, const data::InteractionMatrix& train,
                       const recommend::Recommender& base, std::uint64_t seed,
                       std::vector<data::UserIndex> validation_sample)
      : llm_(std::move(llm)), base_(base), n_items_(ds.num_items()) {
    std::vector<data::Interaction> fit_rows;
    std::vector<data::UserIndex> users;
    for (data::UserIndex u = 0; u < train.num_users(); ++u) {
      const auto& seq = train.sequence(u);
      for (std::size_t k = 0; k + 1 < seq.size(); ++k)
        fit_rows.push_back({u, seq[k], data::kNoRating, static_cast<std::int64_t>(k)});
      if (seq.size() >= 3) users.push_back(u);
    }
    const data::InteractionMatrix fit_train(train.num_users(), train.num_items(), fit_rows);
    auto val_base = recommend::make_recommender(base.name(), base.params());
    recommend::FitOptions fo;
    fo.seed = seed;
    fo.progress = false;
    val_base->fit(fit_train, fo);
    const data::InteractionMatrix all(ds.num_users(), ds.num_items(), ds.interactions());
    // The popularity prior as the validation cases may know it: without their own targets.
    std::vector<double> val_popularity(n_items_, 0.0);
    for (data::ItemIndex i = 0; i < fit_train.num_items() && i < n_items_; ++i)
      val_popularity[i] = static_cast<double>(fit_train.users_of(i).size());
    struct Scored {
      std::vector<data::ItemIndex> candidates;
      std::vector<std::size_t> by_base;
      std::optional<std::vector<double>> llm;
      data::ItemIndex target;
    };
    std::vector<Scored> scored;
    std::vector<float> scratch;
    // An adapter's own held-out users when it has them (the ones it never trained on), else a
    // seeded sample.
    const auto sample = validation_sample.empty()
                            ? data::sample_users(users, 200, seed ^ 0x5EEDF00Dull)
                            : validation_sample;
    Progress bar("fusion validation", sample.size(), "users");
    for (data::UserIndex u : sample) {
      const auto& seq = train.sequence(u);
      const data::ItemIndex target = seq.back();
      std::vector<data::ItemIndex> history(seq.begin(), seq.end() - 1);
      std::vector<data::ItemIndex> candidates = {target};
      Rng rng(seed * 31 + u);
      while (candidates.size() < 10) {
        const auto i = static_cast<data::ItemIndex>(rng.below(n_items_));
        if (all.contains(u, i) ||
            std::find(candidates.begin(), candidates.end(), i) != candidates.end())
          continue;
        candidates.push_back(i);
      }
      rng.shuffle(candidates);
      // The fused order works on the base order: candidates re-indexed best-first by the base.
      scratch.assign(n_items_, 0.0f);
      val_base->score(u, scratch);
      auto by_base = order_by_scores(candidates, scratch);
      auto llm_scores = llm_->log_scores(u, history, candidates);
      scored.push_back({std::move(candidates), std::move(by_base), std::move(llm_scores), target});
      bar.advance();
    }
    bar.finish();
    auto cases_for = [&](double prior_weight) {
      std::vector<chat::ValidationCase> cases;
      for (const auto& s : scored) {
        chat::ValidationCase c;
        c.llm_order = llm_order_in_base_index(
            s.by_base, llm_->rank_scores(s.llm, s.candidates, prior_weight, val_popularity));
        c.relevant.assign(s.candidates.size(), false);
        for (std::size_t r = 0; r < s.by_base.size(); ++r)
          c.relevant[r] = s.candidates[s.by_base[r]] == s.target;
        c.num_relevant = 1;
        cases.push_back(std::move(c));
      }
      return cases;
    };
    // First the LLM ranker's own popularity prior (its NDCG@5 alone on the validation users),
    // then the weight of the LLM's order against the base's.
    double best_llm = -1.0;
    for (double w : {0.0, 0.5, 1.0, 1.5, 2.0, 3.0}) {
      const auto cases = cases_for(w);
      double ndcg = 0.0;
      for (const auto& c : cases)
        ndcg += chat::ndcg_at_k(c.llm_order, c.relevant, c.num_relevant, 5);
      ndcg /= static_cast<double>(std::max<std::size_t>(1, cases.size()));
      if (w == 0.0) ndcg_llm_alone_ = ndcg;
      if (ndcg > best_llm + 1e-12) {
        best_llm = ndcg;
        prior_weight_ = w;
      }
    }
    choice_ = chat::choose_fusion_weight(cases_for(prior_weight_), 5);
    spdlog::info(
        "fusion on {} validation users: NDCG@5 LLM {:.4f}, with popularity prior x{:.1f} {:.4f}; "
        "base {:.4f}; weight {:.1f} ({:.4f})",
        scored.size(), ndcg_llm_alone_, prior_weight_, choice_.ndcg_llm, choice_.ndcg_base,
        choice_.weight, choice_.ndcg_chosen);
  }

  std::string name() const override { return llm_->name() + "+fusion"; }

  std::vector<float> score(data::UserIndex user, std::span<const data::ItemIndex> history,
                           std::span<const data::ItemIndex> candidates) override {
    std::vector<float> scratch(n_items_, 0.0f);
    base_.score(user, scratch);
    const std::vector<data::ItemIndex> cand(candidates.begin(), candidates.end());
    const auto by_base = order_by_scores(cand, scratch);
    std::vector<std::size_t> llm_order(by_base.size());
    for (std::size_t r = 0; r < llm_order.size(); ++r) llm_order[r] = r;
    if (choice_.weight > 0.0) {
      llm_order = llm_order_in_base_index(
          by_base, llm_->rank_scores(llm_->log_scores(user, history, candidates), candidates,
                                     prior_weight_, llm_->popularity()));
    }
    const auto fused = chat::fuse_orders(llm_order, cand.size(), choice_.weight, cand.size());
    std::vector<float> out(cand.size(), 0.0f);
    for (std::size_t pos = 0; pos < fused.size(); ++pos)
      out[by_base[fused[pos]]] = static_cast<float>(fused.size() - pos);
    return out;
  }

  eval::StageStats stats() const override {
    eval::StageStats s = llm_->stats();
    s.resolutions["fusion_weight_x100"] = std::lround(choice_.weight * 100);
    s.resolutions["fusion_prior_weight_x100"] = std::lround(prior_weight_ * 100);
    s.resolutions["fusion_val_ndcg5_llm_alone_x10000"] = std::lround(ndcg_llm_alone_ * 10000);
    s.resolutions["fusion_val_ndcg5_base_x10000"] = std::lround(choice_.ndcg_base * 10000);
    s.resolutions["fusion_val_ndcg5_llm_x10000"] = std::lround(choice_.ndcg_llm * 10000);
    s.resolutions["fusion_val_ndcg5_chosen_x10000"] = std::lround(choice_.ndcg_chosen * 10000);
    return s;
  }

 private:
  // Candidate positions sorted by the base's score (best first; ties by position).
  static std::vector<std::size_t> order_by_scores(const std::vector<data::ItemIndex>& candidates,
                                                  const std::vector<float>& scores) {
    std::vector<std::size_t> order(candidates.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    auto key = [&](std::size_t k) {
      const float v = candidates[k] < scores.size() ? scores[candidates[k]] : 0.0f;
      return std::isnan(v) ? -std::numeric_limits<float>::infinity() : v;
    };
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return key(a) > key(b); });
    return order;
  }
  // The LLM's order (best first) expressed as indices into the base order.
  static std::vector<std::size_t> llm_order_in_base_index(const std::vector<std::size_t>& by_base,
                                                          const std::vector<float>& llm_scores) {
    std::vector<std::size_t> idx(by_base.size());
    for (std::size_t r = 0; r < idx.size(); ++r) idx[r] = r;
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      return llm_scores[by_base[a]] > llm_scores[by_base[b]];
    });
    return idx;
  }

  std::unique_ptr<instruct::InstructCandidateRanker> llm_;
  const recommend::Recommender& base_;
  std::size_t n_items_;
  chat::FusionChoice choice_;
  double prior_weight_ = 0.0;
  double ndcg_llm_alone_ = 0.0;
};

const CandidateRankerHook instruct_hook(
    "instruct",
    [](const data::Dataset& ds, const data::InteractionMatrix& train,
       const recommend::Recommender& base,
       const LlmEvalOptions& options) -> std::unique_ptr<protocols::CandidateRanker> {
      instruct::CandidateRankerConfig config;
      config.search = options.search;
      if (config.search && !instruct::has_categories(ds)) {
        // Refuse before loading the model: the query of ⟨P1,I2,T3⟩ is the target's category labels.
        throw InputError(
            ds.name(), 0, "--search",
            "personalised search ⟨P1,I2,T3⟩ needs the target's category labels and this "
            "dataset's items have none (Amazon Games as shipped has titles only); drop --search "
            "for the sequential scenario ⟨P1,I0,T3⟩");
      }
      // Fall back to the training popularity of the harness's own split.
      config.popularity.resize(ds.num_items(), 0.0);
      for (data::ItemIndex i = 0; i < train.num_items() && i < ds.num_items(); ++i) {
        config.popularity[i] = static_cast<double>(train.users_of(i).size());
      }
      // An adapter from `chatrec instruct tune` says how it ranks (label or title scoring) and
      // with how much history; the ranker follows it.
      std::vector<data::UserIndex> fusion_users;
      if (!options.open.lora.empty()) {
        const auto file = llm::runtime::GgufFile::open(options.open.lora);
        config.scoring = file.get_string("chatrec.instruct.scoring", config.scoring);
        config.calibration = file.get_string("chatrec.instruct.calibration", "");
        const std::string pmi_weight = file.get_string("chatrec.instruct.pmi_weight", "1");
        try {
          config.pmi_weight = std::stod(pmi_weight);
        } catch (const std::exception&) {
          throw InputError(options.open.lora, 0, "chatrec.instruct.pmi_weight",
                           "'" + pmi_weight + "' is not a number");
        }
        config.template_id = file.get_string("chatrec.instruct.template", config.template_id);
        const std::string history = file.get_string("chatrec.instruct.history", "");
        if (!history.empty()) config.history_length = std::stoul(history);
        // The adapter trained on other users' second-to-last items, which are exactly the fusion
        // validation targets: choose the weight on the users it held out.
        if (options.fusion && file.get_string("chatrec.instruct.protocol", "") == "games-seq") {
          instruct::TuneOptions t;
          t.protocol = "games-seq";
          t.seed = std::stoull(file.get_string("chatrec.instruct.seed", "2023"));
          t.validation_users =
              std::stoul(file.get_string("chatrec.instruct.validation_users", "0"));
          t.examples = 0;
          for (const auto& c : instruct::tuning_cases(ds, t).validation)
            fusion_users.push_back(c.user);
          std::sort(fusion_users.begin(), fusion_users.end());
          if (fusion_users.empty())
            throw InputError(options.open.lora, 0, "chatrec.instruct.validation_users",
                             "the adapter held out no validation users, so --fusion has no "
                             "unseen users to choose its weight on; tune with --validation-users");
        }
      }
      if (!options.template_id.empty()) config.template_id = options.template_id;
      if (options.history > 0) config.history_length = options.history;
      if (!options.scoring.empty()) config.scoring = options.scoring;
      if (!options.calibration.empty()) config.calibration = options.calibration;
      if (options.pmi_weight >= 0.0) config.pmi_weight = options.pmi_weight;
      std::shared_ptr<llm::LanguageModel> model = llm::open_language_model(
          options.llm_spec.empty() ? "builtin" : options.llm_spec, options.open);
      auto ranker = std::make_unique<instruct::InstructCandidateRanker>(ds, std::move(model),
                                                                        std::move(config));
      if (!options.fusion) return ranker;
      return std::make_unique<FusedCandidateRanker>(std::move(ranker), ds, train, base,
                                                    options.seed, std::move(fusion_users));
    });

}  // namespace
}  // namespace chatrec::cli
