#include "chat_eval/adapters.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "chat/explain.h"
#include "chat/rerank.h"
#include "chat/title_match.h"
#include "chat/turn_context.h"
#include "common/error.h"
#include "common/progress.h"
#include "common/random.h"
#include "common/text.h"
#include "data/splits.h"
#include "instruct/candidate_ranker.h"
#include "instruct/tuning.h"
#include "recommend/registry.h"

namespace chatrec::chat {

namespace {

float rating_of(const data::InteractionMatrix& m, data::UserIndex u, data::ItemIndex i) {
  const auto items = m.items_of(u);
  const auto pos = std::lower_bound(items.begin(), items.end(), i) - items.begin();
  if (pos >= static_cast<long>(items.size()) || items[pos] != i) return 0.0f;
  const float r = m.ratings_of(u)[pos];
  return std::isnan(r) ? 0.0f : r;
}

}  // namespace

eval::StageStats to_stage_stats(const Stats& s) {
  eval::StageStats out;
  out.prompts = s.llm_calls;
  out.tokens_in = s.tokens_in;
  out.tokens_out = s.tokens_out;
  out.seconds = s.latency_ms / 1000.0;
  out.failures = s.failures;
  out.resolutions = s.resolutions;
  return out;
}

PromptContext history_context(const data::Dataset& ds, const data::InteractionMatrix& train,
                              data::UserIndex user, std::size_t max_liked,
                              std::size_t max_disliked) {
  PromptContext ctx;
  ctx.domain = "movies";
  if (user < ds.num_users()) ctx.profile = ds.user(user).attributes;
  if (user >= train.num_users()) return ctx;
  const auto& seq = train.sequence(user);
  for (auto it = seq.rbegin(); it != seq.rend(); ++it) {
    const float r = rating_of(train, user, *it);
    const data::Item& item = ds.item(*it);
    if (!item.domain.empty()) ctx.domain = item.domain;
    add_rated_item(ctx, item, r, max_liked, max_disliked);
  }
  return ctx;
}

ChatRecReranker::ChatRecReranker(std::shared_ptr<llm::LanguageModel> lm, ChatRecEvalOptions options)
    : lm_(std::move(lm)), options_(options) {}

std::string ChatRecReranker::name() const {
  std::string n = std::string("chatrec-") + to_string(options_.mode);
  if (options_.hint_top1) n += "+hint";
  if (options_.fusion) n += "+fusion";
  return n;
}

RerankResult ChatRecReranker::label_rerank(data::UserIndex user,
                                           const data::InteractionMatrix& train,
                                           const std::vector<recommend::ScoredItem>& candidates) {
  RerankResult r;
  const std::size_t n = candidates.size();
  r.llm_order.resize(n);
  std::iota(r.llm_order.begin(), r.llm_order.end(), 0);
  // The adapter knows as many letters as it was tuned on; any candidate past them keeps its base
  // place after the lettered ones.
  const std::size_t shown = std::min(n, options_.label->options);
  std::vector<std::size_t> listing(shown);
  std::iota(listing.begin(), listing.end(), std::size_t{0});
  if (options_.label->shuffled) listing = instruct::listed_order(options_.label->seed, user, shown);
  std::vector<data::ItemIndex> items;
  for (std::size_t j : listing) items.push_back(candidates[j].item);
  const std::vector<data::ItemIndex> history =
      instruct::latest_likes(train, user, options_.label->history);
  const auto terms = label_ranker_->likelihood_terms(user, history, items);
  if (!terms) {
    r.degraded = true;
    r.notes.push_back("the LLM did not score the options; showing the recommender's own ranking");
    return r;
  }
  r.llm_scores.assign(n, -1e9);
  for (std::size_t j = 0; j < shown; ++j) r.llm_scores[listing[j]] = terms->conditional[j];
  std::stable_sort(r.llm_order.begin(), r.llm_order.begin() + static_cast<std::ptrdiff_t>(shown),
                   [&](std::size_t a, std::size_t b) { return r.llm_scores[a] > r.llm_scores[b]; });
  r.llm_used = true;
  return r;
}

RerankResult ChatRecReranker::llm_rerank(data::UserIndex user, const data::InteractionMatrix& train,
                                         const std::vector<recommend::ScoredItem>& candidates,
                                         std::size_t k, bool keep_terms) {
  if (options_.label) return label_rerank(user, train, candidates);
  RerankRequest q;
  q.context =
      history_context(*ds_, train, user, options_.sequence ? options_.sequence->history : 10, 3);
  q.sequence = options_.sequence;
  if (q.sequence) q.sequence->keep_terms = keep_terms;
  for (const auto& c : candidates)
    q.candidates.push_back({ds_->item(c.item).id, prompt_item(ds_->item(c.item), 0)});
  q.k = k;
  q.mode = options_.mode;
  q.hint_top1 = options_.hint_top1;
  q.fusion_weight = 1.0;
  q.max_list_tokens = options_.max_list_tokens;
  q.timeout_seconds = options_.timeout_seconds;
  const data::Dataset* ds = ds_;
  q.in_catalogue = [ds](std::string_view title) {
    const std::string key = title_key(title);
    return std::any_of(ds->items().begin(), ds->items().end(),
                       [&](const data::Item& i) { return title_key(i.title) == key; });
  };
  Stats s;
  RerankResult r = chat::rerank(lm_.get(), q, &s);
  {
    std::lock_guard lock(mutex_);
    stats_.merge(s);
  }
  return r;
}

void ChatRecReranker::prepare(const data::Dataset& ds, const data::InteractionMatrix& train,
                              const recommend::Recommender& base) {
  ds_ = &ds;
  train_ = &train;
  weight_ = 1.0;
  if (options_.label) {
    if (!options_.label->source.empty() && options_.label->source != base.name())
      throw InputError("--model", 0, base.name(),
                       "the adapter was tuned to rerank " + options_.label->source +
                           "'s candidates, in its order; evaluate it on that model");
    instruct::CandidateRankerConfig config;
    config.scoring = "label";
    config.calibration = "none";
    config.template_id = options_.label->template_id;
    config.history_length = options_.label->history;
    label_ranker_ = std::make_shared<instruct::InstructCandidateRanker>(ds, lm_, config);
  }
  if (!options_.fusion) return;
  // Validation users carved out of the training data: 20% of their liked training items are held
  // out, a fresh base model is trained without them, and the weight is the best NDCG@5 of the fused
  // lists on them.
  const data::LikedHoldout holdout =
      data::split_liked_validation(train, options_.seed, options_.validation_users);
  const std::vector<data::UserIndex>& eligible = holdout.users;
  const auto& held = holdout.held;
  data::InteractionMatrix reduced(train.num_users(), train.num_items(), holdout.kept);
  auto model = recommend::make_recommender(base.name(), base.params());
  recommend::FitOptions fit;
  fit.seed = options_.seed;
  fit.progress = false;
  model->fit(reduced, fit);
  // With a sequence adapter the PMI weight is chosen here too, on these users' own candidates:
  // both likelihood terms are kept and every weight pair is tried.
  const bool choose_pmi = options_.choose_pmi_weight && options_.sequence && !options_.hint_top1;
  std::vector<ValidationCase> cases;
  std::vector<CandidateTerms> terms;
  std::ofstream dump;
  if (!options_.validation_dump.empty()) {
    dump.open(options_.validation_dump);
    if (!dump)
      throw InputError(options_.validation_dump, 0, "", "cannot write the validation dump");
  }
  Progress progress("fusion validation", eligible.size(), "users");
  for (data::UserIndex u : eligible) {
    recommend::RankOptions ro;
    ro.k = 20;
    const auto cands = model->recommend(u, ro);
    ValidationCase c;
    const RerankResult r = llm_rerank(u, reduced, cands, 5, choose_pmi);
    c.llm_order = r.llm_order;
    c.relevant.resize(cands.size());
    for (std::size_t j = 0; j < cands.size(); ++j) {
      c.relevant[j] = std::binary_search(held.at(u).begin(), held.at(u).end(), cands[j].item);
    }
    c.num_relevant = held.at(u).size();
    if (choose_pmi) {
      // A failed call ranks in base order: equal terms keep it.
      const std::vector<double> none(cands.size(), 0.0);
      terms.push_back({r.llm_conditional.empty() ? none : r.llm_conditional,
                       r.llm_unconditional.empty() ? none : r.llm_unconditional});
    }
    if (dump.is_open()) {
      nlohmann::json line;
      line["user"] = ds.user(u).id;
      line["num_relevant"] = c.num_relevant;
      line["llm_used"] = r.llm_used;
      for (std::size_t j = 0; j < cands.size(); ++j) {
        nlohmann::json cand;
        cand["item"] = ds.item(cands[j].item).id;
        cand["base_score"] = cands[j].score;
        cand["relevant"] = static_cast<bool>(c.relevant[j]);
        if (j < r.llm_scores.size()) cand["llm_score"] = r.llm_scores[j];
        if (j < r.llm_conditional.size()) cand["conditional"] = r.llm_conditional[j];
        if (j < r.llm_unconditional.size()) cand["unconditional"] = r.llm_unconditional[j];
        line["candidates"].push_back(std::move(cand));
      }
      dump << line.dump() << '\n';
    }
    cases.push_back(std::move(c));
    progress.advance();
  }
  progress.finish();
  if (choose_pmi) {
    const PmiFusionChoice choice = choose_pmi_and_fusion_weight(cases, terms, 5);
    fusion_ = choice.fusion;
    options_.sequence->pmi_weight = choice.pmi_weight;
    std::lock_guard lock(mutex_);
    stats_.resolutions["pmi_weight_x100"] = std::lround(choice.pmi_weight * 100);
    for (const auto& [beta, ndcg] : choice.ndcg_llm_by_pmi)
      stats_.resolutions[fmt::format("fusion_val_ndcg_llm_pmi{:03.0f}_x10000", beta * 100)] =
          std::lround(ndcg * 10000);
  } else {
    fusion_ = choose_fusion_weight(cases, 5);
  }
  weight_ = fusion_.weight;
  std::lock_guard lock(mutex_);
  stats_.resolutions["fusion_weight_x100"] = static_cast<std::int64_t>(std::lround(weight_ * 100));
  stats_.resolutions["fusion_validation_users"] = static_cast<std::int64_t>(cases.size());
  stats_.resolutions["fusion_val_ndcg_base_x10000"] = std::lround(fusion_.ndcg_base * 10000);
  stats_.resolutions["fusion_val_ndcg_llm_x10000"] = std::lround(fusion_.ndcg_llm * 10000);
  stats_.resolutions["fusion_val_ndcg_chosen_x10000"] = std::lround(fusion_.ndcg_chosen * 10000);
}

std::vector<data::ItemIndex> ChatRecReranker::rerank(
    data::UserIndex user, const std::vector<recommend::ScoredItem>& candidates, std::size_t k) {
  std::vector<data::ItemIndex> out;
  if (candidates.empty()) return out;
  std::vector<std::size_t> order;
  if (options_.fusion && weight_ == 0.0) {
    order.resize(candidates.size());
    std::iota(order.begin(), order.end(), 0);  // validation said the LLM does not help: no LLM call
  } else {
    order = llm_rerank(user, *train_, candidates, k, false).llm_order;
  }
  const auto top = fuse_orders(order, candidates.size(), options_.fusion ? weight_ : 1.0, k);
  for (std::size_t i : top) out.push_back(candidates[i].item);
  return out;
}

eval::StageStats ChatRecReranker::stats() const {
  std::lock_guard lock(mutex_);
  eval::StageStats out = to_stage_stats(stats_);
  if (label_ranker_) {
    const eval::StageStats l = label_ranker_->stats();
    out.prompts += l.prompts;
    out.tokens_in += l.tokens_in;
    out.tokens_out += l.tokens_out;
    out.seconds += l.seconds;
    for (const auto& [kind, count] : l.failures) out.failures[kind] += count;
    for (const auto& [kind, count] : l.resolutions) out.resolutions[kind] += count;
  }
  return out;
}

ChatRecRatingPredictor::ChatRecRatingPredictor(std::shared_ptr<llm::LanguageModel> lm,
                                               const data::Dataset& ds,
                                               const data::InteractionMatrix& train,
                                               const recommend::Recommender& base,
                                               ChatRecEvalOptions options)
    : lm_(std::move(lm)), ds_(ds), train_(train), base_(base), options_(options) {
  if (!options_.fusion) return;
  // Weight of the LLM against the base prediction, chosen on ratings of validation users taken from
  // the training data (the base model has seen them, so the choice leans towards the base: w = 0 is
  // kept unless the LLM strictly helps).
  std::vector<data::UserIndex> users;
  for (data::UserIndex u = 0; u < train.num_users(); ++u) {
    if (train.items_of(u).size() >= 20) users.push_back(u);
  }
  Rng rng(options_.seed ^ 0xfeedULL);
  rng.shuffle(users);
  if (users.size() > options_.validation_users) users.resize(options_.validation_users);
  std::vector<std::tuple<float, float, float>> obs;  // llm, base, truth
  Progress progress("rating fusion validation", users.size(), "users");
  for (data::UserIndex u : users) {
    const auto items = train.items_of(u);
    const auto ratings = train.ratings_of(u);
    for (int j = 0; j < 3; ++j) {
      const std::size_t at = static_cast<std::size_t>(rng.below(items.size()));
      bool used = false;
      const float l = llm_prediction(u, items[at], &used);
      obs.emplace_back(l, base_prediction(u, items[at]), ratings[at]);
    }
    progress.advance();
  }
  progress.finish();
  double best_w = 0.0, best_rmse = 1e9;
  for (int g = 0; g <= 10; ++g) {
    const double w = g / 10.0;
    double se = 0;
    for (const auto& [l, b, t] : obs) {
      const double p = std::clamp(w * l + (1 - w) * b, 1.0, 5.0);
      se += (p - t) * (p - t);
    }
    const double rmse = obs.empty() ? 0 : std::sqrt(se / obs.size());
    if (rmse < best_rmse - 1e-12) best_rmse = rmse, best_w = w;
  }
  weight_ = best_w;
  stats_.resolutions["fusion_weight_x100"] = std::lround(weight_ * 100);
}

float ChatRecRatingPredictor::base_prediction(data::UserIndex user, data::ItemIndex item) const {
  if (base_.predicts_ratings()) return base_.predict(user, item);
  // A ranking model: the user's mean rating.
  const auto r = train_.ratings_of(user);
  if (r.empty()) return static_cast<float>(train_.global_mean());
  double s = 0;
  for (float x : r) s += x;
  return static_cast<float>(s / r.size());
}

float ChatRecRatingPredictor::llm_prediction(data::UserIndex user, data::ItemIndex item,
                                             bool* used) {
  // History: the user's latest ratings (a fixed prefix per user, so the runtime's prompt cache is
  // reused).
  PromptContext ctx;
  ctx.domain = ds_.item(item).domain.empty() ? "movies" : ds_.item(item).domain;
  if (user < ds_.num_users()) ctx.profile = ds_.user(user).attributes;
  const auto& seq = train_.sequence(user);
  for (auto it = seq.rbegin(); it != seq.rend() && ctx.liked.size() < 12; ++it) {
    ctx.liked.push_back(prompt_item(ds_.item(*it), rating_of(train_, user, *it)));
  }
  Stats s;
  const float fallback = base_prediction(user, item);
  const float p = predict_rating_llm(lm_.get(), ctx, prompt_item(ds_.item(item), 0), fallback,
                                     options_.timeout_seconds, &s, used);
  std::lock_guard lock(mutex_);
  stats_.merge(s);
  return p;
}

float ChatRecRatingPredictor::predict(data::UserIndex user, data::ItemIndex item) {
  bool used = false;
  const float base = base_prediction(user, item);
  if (options_.fusion && weight_ == 0.0) return base;
  const float l = llm_prediction(user, item, &used);
  const double w = options_.fusion ? weight_ : 1.0;
  return static_cast<float>(w * l + (1 - w) * base);
}

eval::StageStats ChatRecRatingPredictor::stats() const {
  std::lock_guard lock(mutex_);
  return to_stage_stats(stats_);
}

}  // namespace chatrec::chat
