#include "protocols/protocols.h"

#include <fmt/format.h>
#include <omp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <set>

#include "common/progress.h"
#include "common/random.h"
#include "eval/metrics.h"
#include "recommend/registry.h"

namespace chatrec::protocols {

using namespace eval;
namespace {

using data::Interaction;
using data::InteractionMatrix;
using data::ItemIndex;
using data::UserIndex;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Per-user streams derived from the run seed, so one user's draws do not depend on any other
// user's.
std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t salt, std::uint64_t u) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + salt * 0xD1B54A32D192ED03ULL + u + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
constexpr std::uint64_t kSaltValidation = 1, kSaltNegatives = 2, kSaltOrder = 3;

void fill_dataset_fields(Report& r, const data::Dataset& ds) {
  r.dataset = ds.name();
  r.dataset_checksum = ds.checksum();
  r.dataset_users = ds.num_users();
  r.dataset_items = ds.num_items();
  r.dataset_interactions = ds.interactions().size();
}

// Runs body(index, scratch) for index in [0, n) on OpenMP threads; the first exception is rethrown.
template <typename Body>
void parallel_for(std::size_t n, int threads, Progress* progress, Body&& body) {
  std::exception_ptr error;
  std::mutex error_mutex;
  int nthreads = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<float> scratch;
#pragma omp for schedule(dynamic, 8)
    for (std::size_t i = 0; i < n; ++i) {
      {
        std::lock_guard lock(error_mutex);
        if (error) continue;
      }
      try {
        body(i, scratch);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
      if (progress) progress->advance();
    }
  }
  if (error) std::rethrow_exception(error);
}

// Averages per-row metric vectors in row order, so the result does not depend on the thread
// schedule.
std::vector<std::pair<std::string, double>> average(const std::vector<std::string>& names,
                                                    const std::vector<std::vector<double>>& rows) {
  MetricMeans means;
  for (const auto& row : rows) {
    for (std::size_t m = 0; m < names.size(); ++m) means.add(names[m], row[m]);
  }
  auto out = means.means();
  if (out.empty()) {
    for (const auto& n : names) out.emplace_back(n, 0.0);
  }
  return out;
}

// One metric row per user (or case) under a progress bar, averaged in row order. With `threads`
// (0 = all cores) rows are computed in parallel, each body call getting a per-thread score buffer;
// without, they are computed in order on the calling thread.
template <typename RowOf>
std::vector<std::pair<std::string, double>> average_rows(const std::string& label, const char* unit,
                                                         std::size_t n,
                                                         const std::vector<std::string>& names,
                                                         std::optional<int> threads,
                                                         RowOf&& row_of) {
  std::vector<std::vector<double>> rows(n);
  {
    Progress bar(label, n, unit);
    if (threads) {
      parallel_for(n, *threads, &bar, [&](std::size_t k, std::vector<float>& scratch) {
        rows[k] = row_of(k, scratch);
      });
    } else {
      std::vector<float> scratch;
      for (std::size_t k = 0; k < n; ++k) {
        rows[k] = row_of(k, scratch);
        bar.advance();
      }
    }
  }
  return average(names, rows);
}

Report start_report(const char* protocol, const data::Dataset& ds, const ProtocolOptions& o) {
  Report report;
  report.protocol = protocol;
  report.seed = o.seed;
  fill_dataset_fields(report, ds);
  return report;
}

struct Fitted {
  std::unique_ptr<recommend::Recommender> model;
  double fit_seconds = 0.0;
};

std::optional<Fitted> fit_model(const std::string& name, const RecommenderFactory& make,
                                const InteractionMatrix& train,
                                const std::vector<Interaction>* validation,
                                const ProtocolOptions& o, Report& report) {
  auto t0 = Clock::now();
  try {
    Fitted f;
    f.model = make(name);
    recommend::FitOptions fo;
    fo.seed = o.seed;
    fo.threads = o.threads;
    fo.progress = o.progress;
    fo.validation = validation;
    spdlog::info("{}: fitting {}", report.protocol, name);
    f.model->fit(train, fo);
    f.fit_seconds = seconds_since(t0);
    return f;
  } catch (const std::exception& e) {
    if (!o.keep_going) throw;
    report.notes.push_back(fmt::format("{}: skipped, fit failed: {}", name, e.what()));
    spdlog::warn("{}: {} skipped: {}", report.protocol, name, e.what());
    return std::nullopt;
  }
}

std::vector<std::vector<ItemIndex>> truth_by_user(std::size_t num_users,
                                                  const std::vector<Interaction>& test) {
  std::vector<std::vector<ItemIndex>> truth(num_users);
  for (const auto& x : test) truth[x.user].push_back(x.item);
  for (auto& t : truth) {
    std::sort(t.begin(), t.end());
    t.erase(std::unique(t.begin(), t.end()), t.end());
  }
  return truth;
}

std::vector<UserIndex> all_rated_users(const data::Dataset& ds) {
  std::set<UserIndex> users;
  for (const auto& x : ds.interactions()) {
    if (x.has_rating()) users.insert(x.user);
  }
  return {users.begin(), users.end()};
}

float clip(float v, std::pair<float, float> range) {
  if (range.first < range.second) return std::clamp(v, range.first, range.second);
  return v;
}

// Predicts every test rating with the model (clipped), returning {RMSE, MAE}.
std::pair<double, double> rating_errors(const std::vector<Interaction>& test,
                                        std::pair<float, float> range,
                                        const std::function<float(const Interaction&)>& predict) {
  std::vector<double> predicted, actual;
  for (const auto& x : test) {
    if (!x.has_rating()) continue;
    float p = predict(x);
    if (std::isnan(p)) p = (range.first + range.second) / 2;
    predicted.push_back(clip(p, range));
    actual.push_back(x.rating);
  }
  return {rmse(predicted, actual), mae(predicted, actual)};
}

}  // namespace

std::vector<std::string> models_for_protocol(const std::string& protocol) {
  std::vector<std::string> out;
  for (const auto& name : recommend::recommender_names()) {
    bool fits = protocol == "games-seq"     ? true
                : protocol == "ml100k-topk" ? !recommend::is_sequential_model(name)
                                            : recommend::is_rating_model(name);
    if (fits) out.push_back(name);
  }
  return out;
}

std::vector<Interaction> carve_validation(const std::vector<Interaction>& train, std::uint64_t seed,
                                          double fraction,
                                          const std::function<bool(const Interaction&)>& eligible) {
  std::vector<Interaction> valid;
  if (fraction <= 0) return valid;
  std::map<UserIndex, std::vector<std::size_t>> rows;
  for (std::size_t k = 0; k < train.size(); ++k) {
    if (!eligible || eligible(train[k])) rows[train[k].user].push_back(k);
  }
  std::vector<std::size_t> chosen;
  for (auto& [u, row] : rows) {
    auto n =
        static_cast<std::size_t>(std::floor(fraction * static_cast<double>(row.size()) + 1e-9));
    if (n == 0) continue;
    Rng rng(stream_seed(seed, kSaltValidation, u));
    rng.shuffle(row);
    chosen.insert(chosen.end(), row.begin(), row.begin() + static_cast<std::ptrdiff_t>(n));
  }
  std::sort(chosen.begin(), chosen.end());
  for (auto k : chosen) valid.push_back(train[k]);
  return valid;
}

std::vector<recommend::ScoredItem> rank_unseen(const recommend::Recommender& model, UserIndex user,
                                               const InteractionMatrix& train, std::size_t k,
                                               std::vector<float>& scratch) {
  const std::size_t num_items = model.num_items() ? model.num_items() : train.num_items();
  scratch.assign(num_items, 0.0f);
  model.score(user, scratch);
  auto seen = train.items_of(user);  // sorted
  std::vector<recommend::ScoredItem> items;
  items.reserve(num_items);
  std::size_t next_seen = 0;
  for (ItemIndex i = 0; i < num_items; ++i) {
    while (next_seen < seen.size() && seen[next_seen] < i) ++next_seen;
    if (next_seen < seen.size() && seen[next_seen] == i) continue;
    float s = scratch[i];
    items.push_back({i, std::isnan(s) ? -std::numeric_limits<float>::infinity() : s});
  }
  auto better = [](const recommend::ScoredItem& a, const recommend::ScoredItem& b) {
    return a.score != b.score ? a.score > b.score : a.item < b.item;
  };
  std::size_t n = std::min(k, items.size());
  std::partial_sort(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(n), items.end(),
                    better);
  items.resize(n);
  return items;
}

std::vector<SeqCase> make_seq_cases(const std::vector<Interaction>& targets,
                                    const InteractionMatrix& all,
                                    const std::vector<UserIndex>& users, std::size_t negatives,
                                    std::uint64_t seed) {
  std::map<UserIndex, ItemIndex> target_of;
  for (const auto& x : targets) target_of[x.user] = x.item;
  std::vector<SeqCase> cases;
  const auto num_items = all.num_items();
  for (UserIndex u : users) {
    auto t = target_of.find(u);
    if (t == target_of.end()) continue;
    if (negatives == kAllNegatives) {
      cases.push_back({u, t->second, {}});
      continue;
    }
    auto seen = all.items_of(u);
    std::size_t unseen = num_items - seen.size();
    if (all.contains(u, t->second) == false) --unseen;  // the target counts as interacted with
    if (unseen < negatives) continue;
    SeqCase c;
    c.user = u;
    c.target = t->second;
    c.candidates.push_back(t->second);
    Rng rng(stream_seed(seed, kSaltNegatives, u));
    std::set<ItemIndex> picked;
    while (picked.size() < negatives) {
      auto i = static_cast<ItemIndex>(rng.below(num_items));
      if (i == c.target || all.contains(u, i) || !picked.insert(i).second) continue;
      c.candidates.push_back(i);
    }
    Rng order(stream_seed(seed, kSaltOrder, u));
    order.shuffle(c.candidates);
    cases.push_back(std::move(c));
  }
  return cases;
}

std::size_t full_rank(const SeqCase& c, const InteractionMatrix& all,
                      const std::vector<float>& scores) {
  if (c.target >= scores.size())
    throw std::invalid_argument("full_rank: the scores do not cover the case's target");
  auto key = [](float s) { return std::isnan(s) ? -std::numeric_limits<float>::infinity() : s; };
  const float t = key(scores[c.target]);
  std::size_t rank = 0;
  for (std::size_t j = 0; j < scores.size(); ++j) {
    const float s = key(scores[j]);
    if (s > t || (s == t && j < c.target)) ++rank;
  }
  // Interacted items are not candidates: take back those counted (the target is never one).
  for (ItemIndex j : all.items_of(c.user)) {
    if (j == c.target || j >= scores.size()) continue;
    const float s = key(scores[j]);
    if (s > t || (s == t && j < c.target)) --rank;
  }
  return rank;
}

std::size_t target_rank(const SeqCase& c, const std::vector<float>& scores) {
  auto key = [](float s) { return std::isnan(s) ? -std::numeric_limits<float>::infinity() : s; };
  std::size_t pos = static_cast<std::size_t>(
      std::find(c.candidates.begin(), c.candidates.end(), c.target) - c.candidates.begin());
  if (pos == c.candidates.size() || scores.size() != c.candidates.size()) {
    throw std::invalid_argument("target_rank: scores do not match the case's candidates");
  }
  float t = key(scores[pos]);
  std::size_t rank = 0;
  for (std::size_t j = 0; j < scores.size(); ++j) {
    float s = key(scores[j]);
    if (s > t || (s == t && j < pos)) ++rank;
  }
  return rank;
}

// ---------------------------------------------------------------------------------------------------------
// Protocol A

Report run_topk(const data::Dataset& ds, const std::vector<std::string>& models,
                const RecommenderFactory& make, const ProtocolOptions& o,
                const StageFactory<TopkReranker>& reranker) {
  auto t0 = Clock::now();
  auto report = start_report("ml100k-topk", ds, o);

  auto split = data::split_topk_holdout(ds, o.seed);
  InteractionMatrix train(ds.num_users(), ds.num_items(), split.train);
  auto valid =
      carve_validation(split.train, o.seed, o.validation_fraction,
                       [](const Interaction& x) { return x.has_rating() && x.rating >= 4.0f; });
  auto truth = truth_by_user(ds.num_users(), split.test);
  std::size_t n_users = o.users ? o.users : (reranker ? 200 : 0);
  auto users = n_users ? data::sample_users(split.eval_users, n_users, o.seed) : split.eval_users;
  report.users = users.size();
  report.config = {
      {"liked_threshold", 4.0},
      {"holdout", "ceil(20%) of liked per user"},
      {"candidates", kCandidates},
      {"final", kFinal},
      {"evaluable_users", split.eval_users.size()},
      {"sampled", users.size() != split.eval_users.size()},
      {"train_interactions", split.train.size()},
      {"test_interactions", split.test.size()},
      {"validation", fmt::format("{} liked training interactions ({}% per user, kept in train)",
                                 valid.size(), o.validation_fraction * 100)}};

  const std::vector<std::string> names = {"P@5", "R@5", "NDCG@5", "HR@5", "CandRecall@20"};
  auto metrics_of = [&](std::span<const ItemIndex> final_list,
                        std::span<const ItemIndex> candidates, const std::vector<ItemIndex>& gt) {
    return std::vector<double>{
        precision_at_k(final_list, gt, kFinal), recall_at_k(final_list, gt, kFinal),
        ndcg_at_k(final_list, gt, kFinal), hit_rate_at_k(final_list, gt, kFinal),
        candidate_recall(candidates, gt, kCandidates)};
  };

  for (const auto& name : models) {
    auto fitted = fit_model(name, make, train, &valid, o, report);
    if (!fitted) continue;
    auto& model = *fitted->model;
    auto te = Clock::now();
    std::vector<std::vector<recommend::ScoredItem>> top(users.size());
    auto classic_row = [&](std::size_t k, std::vector<float>& scratch) {
      UserIndex u = users[k];
      top[k] = rank_unseen(model, u, train, kCandidates, scratch);
      std::vector<ItemIndex> cand;
      for (const auto& s : top[k]) cand.push_back(s.item);
      return metrics_of(cand, cand, truth[u]);
    };
    ModelResult r;
    r.model = name;
    r.params = model.params();
    r.metrics = average_rows(fmt::format("{} {}", report.protocol, name), "users", users.size(),
                             names, o.threads, classic_row);
    r.users = users.size();
    r.fit_seconds = fitted->fit_seconds;
    r.eval_seconds = seconds_since(te);
    report.results.push_back(r);

    if (!reranker) continue;
    auto ts = Clock::now();
    auto stage = reranker(ds, train, model);
    stage->prepare(ds, train, model);
    auto stage_row = [&](std::size_t k, std::vector<float>&) {
      UserIndex u = users[k];
      std::vector<ItemIndex> cand;
      for (const auto& s : top[k]) cand.push_back(s.item);
      auto reranked = stage->rerank(u, top[k], kFinal);
      // Duplicates would count a hit twice; the list is evaluated as returned otherwise.
      std::vector<ItemIndex> final_list;
      for (ItemIndex i : reranked) {
        if (std::find(final_list.begin(), final_list.end(), i) == final_list.end())
          final_list.push_back(i);
      }
      return metrics_of(final_list, cand, truth[u]);
    };
    ModelResult s;
    s.model = name + "+" + stage->name();
    s.params = model.params();
    s.stage = o.stage_name;
    s.metrics = average_rows(fmt::format("{} {}", report.protocol, s.model), "users", users.size(),
                             names, std::nullopt, stage_row);
    s.users = users.size();
    s.fit_seconds = fitted->fit_seconds;
    s.eval_seconds = seconds_since(ts);
    s.stage_stats = stage->stats();
    report.results.push_back(s);
  }
  report.wall_seconds = seconds_since(t0);
  return report;
}

// ---------------------------------------------------------------------------------------------------------
// Protocol B1

Report run_rating(const data::Dataset& ds, const std::vector<std::string>& models,
                  const RecommenderFactory& make, const ProtocolOptions& o,
                  const StageFactory<RatingPredictor>& predictor) {
  auto t0 = Clock::now();
  auto report = start_report("ml100k-rating", ds, o);
  auto range = ds.rating_range();

  auto users = data::sample_users(all_rated_users(ds), o.users ? o.users : 200, o.seed);
  auto split = data::split_rating_holdout(ds, users, o.seed);
  InteractionMatrix train(ds.num_users(), ds.num_items(), split.train);
  auto valid = carve_validation(split.train, o.seed, o.validation_fraction,
                                [](const Interaction& x) { return x.has_rating(); });
  report.users = split.eval_users.size();
  report.config = {{"holdout", "ceil(20%) of each sampled user's ratings"},
                   {"sampled_users", users.size()},
                   {"test_ratings", split.test.size()},
                   {"clip", {range.first, range.second}},
                   {"validation", fmt::format("{} training ratings ({}% per user, kept in train)",
                                              valid.size(), o.validation_fraction * 100)}};

  const recommend::Recommender* base = nullptr;
  std::vector<Fitted> kept;
  for (const auto& name : models) {
    auto fitted = fit_model(name, make, train, &valid, o, report);
    if (!fitted) continue;
    auto& model = *fitted->model;
    if (!model.predicts_ratings()) {
      report.notes.push_back(name + ": does not predict ratings; not evaluated");
      continue;
    }
    auto te = Clock::now();
    auto [e_rmse, e_mae] = rating_errors(
        split.test, range, [&](const Interaction& x) { return model.predict(x.user, x.item); });
    ModelResult r;
    r.model = name;
    r.params = model.params();
    r.metrics = {
        {"RMSE", e_rmse}, {"MAE", e_mae}, {"ratings", static_cast<double>(split.test.size())}};
    r.users = split.eval_users.size();
    r.fit_seconds = fitted->fit_seconds;
    r.eval_seconds = seconds_since(te);
    report.results.push_back(r);
    kept.push_back(std::move(*fitted));
    if (!base) base = kept.back().model.get();
  }

  if (predictor) {
    if (!base)
      throw std::runtime_error(
          "ml100k-rating: the LLM rating stage needs a rating model as its base");
    auto ts = Clock::now();
    auto stage = predictor(ds, train, *base);
    Progress bar(fmt::format("{} {}", report.protocol, stage->name()), split.test.size(),
                 "ratings");
    auto [e_rmse, e_mae] = rating_errors(split.test, range, [&](const Interaction& x) {
      float p = stage->predict(x.user, x.item);
      bar.advance();
      return p;
    });
    bar.finish();
    ModelResult s;
    s.model = base->name() + "+" + stage->name();
    s.params = base->params();
    s.stage = o.stage_name;
    s.metrics = {
        {"RMSE", e_rmse}, {"MAE", e_mae}, {"ratings", static_cast<double>(split.test.size())}};
    s.users = split.eval_users.size();
    s.eval_seconds = seconds_since(ts);
    s.stage_stats = stage->stats();
    report.results.push_back(s);
  }
  report.wall_seconds = seconds_since(t0);
  return report;
}

// ---------------------------------------------------------------------------------------------------------
// Protocol B2

Report run_folds(const data::Dataset& ds, const std::vector<std::string>& models,
                 const RecommenderFactory& make, const ProtocolOptions& o) {
  auto t0 = Clock::now();
  auto report = start_report("ml100k-folds", ds, o);
  auto range = ds.rating_range();
  report.config = {{"folds", "official u1..u5 base/test"},
                   {"clip", {range.first, range.second}},
                   {"validation", fmt::format("{}% of each user's uN.base ratings, kept in train",
                                              o.validation_fraction * 100)}};

  struct Acc {
    double rmse = 0, mae = 0, fit = 0, eval = 0;
    int folds = 0;
    recommend::Params params;
  };
  std::map<std::string, Acc> acc;
  std::size_t test_users = 0;
  for (int fold = 1; fold <= 5; ++fold) {
    auto split = data::split_official_fold(ds, o.folds_dir, fold);
    InteractionMatrix train(ds.num_users(), ds.num_items(), split.train);
    auto valid = carve_validation(split.train, o.seed, o.validation_fraction,
                                  [](const Interaction& x) { return x.has_rating(); });
    test_users = std::max(test_users, split.eval_users.size());
    for (const auto& name : models) {
      auto fitted = fit_model(name, make, train, &valid, o, report);
      if (!fitted) continue;
      auto& model = *fitted->model;
      if (!model.predicts_ratings()) {
        if (fold == 1) report.notes.push_back(name + ": does not predict ratings; not evaluated");
        continue;
      }
      auto te = Clock::now();
      auto [e_rmse, e_mae] = rating_errors(
          split.test, range, [&](const Interaction& x) { return model.predict(x.user, x.item); });
      ModelResult r;
      r.model = name;
      r.params = model.params();
      r.fold = fmt::format("u{}", fold);
      r.metrics = {{"RMSE", e_rmse}, {"MAE", e_mae}};
      r.users = split.eval_users.size();
      r.fit_seconds = fitted->fit_seconds;
      r.eval_seconds = seconds_since(te);
      report.results.push_back(r);
      auto& a = acc[name];
      a.rmse += e_rmse, a.mae += e_mae, a.fit += r.fit_seconds, a.eval += r.eval_seconds, ++a.folds;
      a.params = r.params;
      spdlog::info("ml100k-folds u{} {}: RMSE {:.4f} MAE {:.4f}", fold, name, e_rmse, e_mae);
    }
  }
  for (const auto& name : models) {
    auto it = acc.find(name);
    if (it == acc.end() || it->second.folds == 0) continue;
    const auto& a = it->second;
    ModelResult r;
    r.model = name;
    r.params = a.params;
    r.fold = a.folds == 5 ? "mean" : fmt::format("mean{}", a.folds);
    r.metrics = {{"RMSE", a.rmse / a.folds}, {"MAE", a.mae / a.folds}};
    r.users = test_users;
    r.fit_seconds = a.fit / a.folds;
    r.eval_seconds = a.eval / a.folds;
    report.results.push_back(r);
  }
  report.users = test_users;
  report.wall_seconds = seconds_since(t0);
  return report;
}

// ---------------------------------------------------------------------------------------------------------
// Protocol C

Report run_games_seq(const data::Dataset& ds, const std::vector<std::string>& models,
                     const RecommenderFactory& make, const ProtocolOptions& o,
                     const StageFactory<CandidateRanker>& ranker) {
  auto t0 = Clock::now();
  auto report = start_report("games-seq", ds, o);

  auto split = data::split_leave_last_out(ds);
  InteractionMatrix train(ds.num_users(), ds.num_items(), split.train);
  InteractionMatrix all(ds.num_users(), ds.num_items(), ds.interactions());
  std::size_t n_users = o.users ? o.users : (ranker ? 500 : 0);
  auto users = n_users ? data::sample_users(split.eval_users, n_users, o.seed) : split.eval_users;
  const bool full = o.negatives == kAllNegatives;
  if (full && ranker)
    throw std::invalid_argument(
        "games-seq: an LLM stage ranks a candidate list; with --negatives all there are "
        "thousands of candidates per case (use 9 or 99)");
  auto cases = make_seq_cases(split.test, all, users, o.negatives, o.seed);
  report.users = cases.size();
  report.config = {
      {"negatives", full ? nlohmann::json("all") : nlohmann::json(o.negatives)},
      {"candidates_per_case", full ? nlohmann::json("every item the user never interacted with")
                                   : nlohmann::json(o.negatives + 1)},
      {"evaluable_users", split.eval_users.size()},
      {"sampled", users.size() != split.eval_users.size()},
      {"validation",
       fmt::format("{} second-to-last targets (games.valid.inter)", split.valid.size())}};

  // Full ranking reads further down the list: HR@10, NDCG@10 and MRR are what it is reported with.
  const std::vector<std::string> names =
      full ? std::vector<std::string>{"HR@1", "HR@5", "HR@10", "NDCG@10", "MRR"}
           : std::vector<std::string>{"HR@1", "HR@3", "HR@5", "NDCG@3", "NDCG@5"};
  auto metrics_of = [full](std::size_t rank) {
    if (full)
      return std::vector<double>{hit_at_k(rank, 1), hit_at_k(rank, 5), hit_at_k(rank, 10),
                                 ndcg_single_at_k(rank, 10), 1.0 / static_cast<double>(rank + 1)};
    return std::vector<double>{hit_at_k(rank, 1), hit_at_k(rank, 3), hit_at_k(rank, 5),
                               ndcg_single_at_k(rank, 3), ndcg_single_at_k(rank, 5)};
  };

  std::unique_ptr<recommend::Recommender> base;
  double base_fit = 0;
  for (const auto& name : models) {
    auto fitted = fit_model(name, make, train, &split.valid, o, report);
    if (!fitted) continue;
    auto& model = *fitted->model;
    auto te = Clock::now();
    auto classic_row = [&](std::size_t k, std::vector<float>& scratch) {
      const auto& c = cases[k];
      scratch.assign(model.num_items() ? model.num_items() : ds.num_items(), 0.0f);
      model.score(c.user, scratch);
      if (full) return metrics_of(full_rank(c, all, scratch));
      std::vector<float> s;
      for (ItemIndex i : c.candidates) s.push_back(i < scratch.size() ? scratch[i] : std::nanf(""));
      return metrics_of(target_rank(c, s));
    };
    ModelResult r;
    r.model = name;
    r.params = model.params();
    r.metrics = average_rows(fmt::format("{} {}", report.protocol, name), "cases", cases.size(),
                             names, o.threads, classic_row);
    r.users = cases.size();
    r.fit_seconds = fitted->fit_seconds;
    r.eval_seconds = seconds_since(te);
    report.results.push_back(r);
    if (!base) {
      base = std::move(fitted->model);
      base_fit = fitted->fit_seconds;
    }
  }

  if (ranker) {
    if (!base)
      throw std::runtime_error("games-seq: the LLM ranking stage needs a base model (--model)");
    auto ts = Clock::now();
    auto stage = ranker(ds, train, *base);
    auto stage_row = [&](std::size_t k, std::vector<float>&) {
      const auto& c = cases[k];
      const auto& history = train.sequence(c.user);
      return metrics_of(target_rank(c, stage->score(c.user, history, c.candidates)));
    };
    ModelResult s;
    s.model = stage->name();
    s.params = {{"base", base->name()}};
    s.stage = o.stage_name;
    s.metrics = average_rows(fmt::format("{} {}", report.protocol, s.model), "cases", cases.size(),
                             names, std::nullopt, stage_row);
    s.users = cases.size();
    s.fit_seconds = base_fit;
    s.eval_seconds = seconds_since(ts);
    s.stage_stats = stage->stats();
    report.results.push_back(s);
  }
  report.wall_seconds = seconds_since(t0);
  return report;
}

}  // namespace chatrec::protocols
