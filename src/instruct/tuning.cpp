#include "instruct/tuning.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "common/error.h"
#include "common/memory.h"
#include "common/progress.h"
#include "common/random.h"
#include "data/matrix.h"
#include "data/splits.h"
#include "eval/metrics.h"
#include "instruct/candidate_ranker.h"
#include "instruct/templates.h"
#include "llm/runtime/builtin_model.h"
#include "llm/runtime/chat_template.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/gguf_writer.h"
#include "llm/runtime/lora.h"
#include "llm/runtime/model.h"
#include "llm/runtime/tokenizer.h"
#include "llm/runtime/trainer.h"
#include "recommend/registry.h"

namespace chatrec::instruct {
namespace {

namespace rt = llm::runtime;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::uint64_t user_seed(std::uint64_t seed, std::uint64_t salt, data::UserIndex u) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ (salt << 32) ^ (u + 0x632BE59BD9B4E019ull);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

// Everything that must match for a checkpoint to be resumed.
std::string fingerprint(const TuneOptions& o) {
  return fmt::format(
      "protocol={} loss={} examples={} epochs={} rank={} alpha={} lr={} batch={} targets={} "
      "layers={} history={} negatives={} seed={} template={} validation={}{}{}{}{}",
      o.protocol, o.loss, o.examples, o.epochs, o.rank, o.alpha, o.lr, o.batch, o.targets, o.layers,
      o.history, o.negatives, o.seed, o.template_id, o.validation_users,
      o.window_order == "time" ? std::string() : " windows=" + o.window_order,
      o.candidates == "random" ? std::string() : " candidates=" + o.candidates,
      o.option_order == "source" ? std::string() : " options=" + o.option_order,
      o.init.empty() ? std::string()
                     : fmt::format(" init={} skip={}", o.init.string(), o.skip_examples));
}

// Turns cases into token sequences with their loss terms.
class Encoder {
 public:
  Encoder(const data::Dataset& ds, const rt::GgufFile& file, const TuneOptions& o)
      : ds_(ds),
        tokenizer_(file),
        chat_(rt::ChatTemplate::detect(file, tokenizer_)),
        options_(o),
        templates_(builtin_templates()),
        template_(&templates_.at(o.template_id)) {
    const bool seq = o.loss == "seq";  // the sequence prompt is fixed (kSequenceInstruction)
    const bool t3 = template_->cell.t == 3 && template_->uses("candidates") && o.loss != "yesno";
    const bool t2 = template_->cell.t == 2 && o.loss == "lm";
    const bool t0 = template_->cell.t == 0 && o.loss == "yesno" && template_->uses("item");
    if (!template_->uses("history") || template_->cell.p != 1 || template_->cell.i != 0 ||
        !(t3 || t2 || t0 || seq))
      throw InputError(
          templates_.source, 0, o.template_id,
          "--loss " + o.loss +
              " needs a ⟨P1,I0,T3⟩ template with {history} and "
              "{candidates} (label, lm), ⟨P1,I0,T2⟩ (lm) or ⟨P1,I0,T0⟩ with {item} (yesno)");
    newline_ = tokenizer_.encode("\n", false);
    for (const char* word : {"Yes", "No"}) {
      const auto ids = tokenizer_.encode(word, false);
      if (ids.empty()) throw InputError(file.name(), 0, "tokenizer", "cannot encode Yes/No");
      yes_no_.push_back(ids[0]);
    }
    for (std::size_t k = 0; k <= o.negatives; ++k) {
      const auto ids = tokenizer_.encode(option_label(k), false);
      if (ids.size() != 1)
        throw InputError(file.name(), 0, "tokenizer",
                         "option letter " + option_label(k) + " is not a single token");
      labels_.push_back(ids[0]);
    }
  }

  rt::TrainingSequence encode(const TuneCase& c) const {
    std::vector<std::string> past, titles;
    for (auto i : c.history) past.push_back(display_title(ds_.item(i)));
    for (auto i : c.candidates) titles.push_back(display_title(ds_.item(i)));
    const bool letters = options_.loss == "label";
    rt::TrainingSequence s;
    if (options_.loss == "seq") {
      // The history and the target as the reply, one title per line: every line is a next-item
      // target given the lines before it (the causal mask does the rest). The loss is the mean
      // over lines of -log p(line | lines before), the sum over the line's tokens (title and
      // newline): the item's probability, as inference scores it.
      s.tokens = chat_.render(tokenizer_, sequence_prompt(templates_, {}), true);
      past.push_back(display_title(ds_.item(c.target)));
      const float weight = 1.0f / static_cast<float>(past.size());
      for (const std::string& title : past) {
        std::vector<int> line = tokenizer_.encode(title, false);
        line.insert(line.end(), newline_.begin(), newline_.end());
        for (int id : line) {
          s.terms.push_back({static_cast<int>(s.tokens.size()) - 1, id, {}, weight});
          s.tokens.push_back(id);
        }
      }
      return s;
    }
    if (options_.loss == "yesno") {
      // A seeded coin per user: the target (Yes) or one of the negatives (No).
      Rng coin(c.user * 0x9E3779B97F4A7C15ull + options_.seed);
      const bool positive = coin.below(2) == 0;
      std::size_t pick = 0;
      for (std::size_t k = 0; k < c.candidates.size(); ++k) {
        if ((c.candidates[k] == c.target) == positive) {
          pick = k;
          if (positive || coin.below(2) == 0) break;
        }
      }
      s.tokens = chat_.render(tokenizer_,
                              pointwise_prompt(templates_, *template_, past, titles[pick]), true);
      s.terms.push_back(
          {static_cast<int>(s.tokens.size()) - 1, yes_no_[positive ? 0 : 1], yes_no_, 1.0f});
      return s;
    }
    s.tokens = chat_.render(tokenizer_,
                            ranking_prompt(templates_, *template_, past, titles, letters), true);
    const std::size_t target = static_cast<std::size_t>(
        std::find(c.candidates.begin(), c.candidates.end(), c.target) - c.candidates.begin());
    const int last = static_cast<int>(s.tokens.size()) - 1;
    if (letters) {
      std::vector<int> classes(labels_.begin(),
                               labels_.begin() + static_cast<std::ptrdiff_t>(c.candidates.size()));
      // Hard candidates can hold several of the user's held-out likes: the loss is the mean of
      // their -log p (a soft label spread over them).
      std::vector<std::size_t> hits;
      for (std::size_t k = 0; k < c.candidates.size(); ++k)
        if (std::binary_search(c.held.begin(), c.held.end(), c.candidates[k])) hits.push_back(k);
      if (hits.empty()) hits.push_back(target);
      for (std::size_t k : hits)
        s.terms.push_back({last, labels_[k], classes, 1.0f / static_cast<float>(hits.size())});
    } else {
      const std::vector<int> answer = tokenizer_.encode(titles[target], false);
      for (std::size_t k = 0; k < answer.size(); ++k) {
        s.terms.push_back(
            {last + static_cast<int>(k), answer[k], {}, 1.0f / static_cast<float>(answer.size())});
        if (k + 1 < answer.size()) s.tokens.push_back(answer[k]);
      }
    }
    return s;
  }

 private:
  const data::Dataset& ds_;
  rt::Tokenizer tokenizer_;
  rt::ChatTemplate chat_;
  TuneOptions options_;
  const TemplateSet& templates_;
  const Template* template_;
  std::vector<int> labels_;
  std::vector<int> yes_no_;
  std::vector<int> newline_;
};

struct Checkpoint {
  std::vector<float> params, m, v;
  std::int64_t steps = 0, cursor = 0, best_step = 0;
  double best_hr1 = -1.0, base_hr1 = -1.0;
  double best_pmi_weight = 1.0;
  double train_seconds = 0.0;
};

void save_checkpoint(const std::filesystem::path& path, const TuneOptions& o, const Checkpoint& c) {
  rt::GgufWriter w;
  w.add_string("general.type", "chatrec.tune.checkpoint");
  w.add_string("chatrec.tune.fingerprint", fingerprint(o));
  w.add_u64("chatrec.tune.steps", static_cast<std::uint64_t>(c.steps));
  w.add_u64("chatrec.tune.cursor", static_cast<std::uint64_t>(c.cursor));
  w.add_u64("chatrec.tune.best_step", static_cast<std::uint64_t>(c.best_step));
  w.add_f64("chatrec.tune.best_hr1", c.best_hr1);
  w.add_f64("chatrec.tune.base_hr1", c.base_hr1);
  w.add_f64("chatrec.tune.best_pmi_weight", c.best_pmi_weight);
  w.add_f64("chatrec.tune.train_seconds", c.train_seconds);
  w.add_f32_tensor("params", {static_cast<std::int64_t>(c.params.size())}, c.params.data(),
                   c.params.size());
  w.add_f32_tensor("adam.m", {static_cast<std::int64_t>(c.m.size())}, c.m.data(), c.m.size());
  w.add_f32_tensor("adam.v", {static_cast<std::int64_t>(c.v.size())}, c.v.data(), c.v.size());
  const std::filesystem::path tmp = path.string() + ".tmp";
  w.write(tmp);
  std::filesystem::rename(tmp, path);
}

Checkpoint load_checkpoint(const std::filesystem::path& path, const TuneOptions& o) {
  const rt::GgufFile f = rt::GgufFile::open(path);
  if (f.get_string("general.type", "") != "chatrec.tune.checkpoint")
    throw InputError(path.string(), 0, "general.type", "not a chatrec tuning checkpoint");
  if (f.get_string("chatrec.tune.fingerprint", "") != fingerprint(o))
    throw InputError(path.string(), 0, "chatrec.tune.fingerprint",
                     "the checkpoint was written with other options (" +
                         f.get_string("chatrec.tune.fingerprint", "") +
                         "); rerun with those or without --resume");
  Checkpoint c;
  c.steps = f.get_int("chatrec.tune.steps");
  c.cursor = f.get_int("chatrec.tune.cursor");
  c.best_step = f.get_int("chatrec.tune.best_step");
  c.best_hr1 = f.get_float("chatrec.tune.best_hr1", -1.0);
  c.base_hr1 = f.get_float("chatrec.tune.base_hr1", -1.0);
  c.best_pmi_weight = f.get_float("chatrec.tune.best_pmi_weight", 1.0);
  c.train_seconds = f.get_float("chatrec.tune.train_seconds", 0.0);
  auto read = [&](const char* name, std::vector<float>& out) {
    const rt::GgufTensor* t = f.tensor(name);
    if (!t || t->type != rt::GgmlType::F32)
      throw InputError(path.string(), 0, name, "missing or not F32");
    out.resize(static_cast<std::size_t>(t->elements()));
    std::memcpy(out.data(), t->data, out.size() * sizeof(float));
  };
  read("params", c.params);
  read("adam.m", c.m);
  read("adam.v", c.v);
  return c;
}

// How the ranker scores candidates with an adapter trained with `loss`.
std::string scoring_of(const std::string& loss) {
  if (loss == "lm") return "title";
  if (loss == "seq") return "sequence";
  return loss;
}

// The likelihood calibration of that scoring (the ranker's measured default for it).
std::string calibration_of(const std::string& loss) {
  return loss == "seq" ? "pmi" : "none";
}

}  // namespace

rt::TrainingSequence training_sequence(const data::Dataset& ds, const rt::GgufFile& model_file,
                                       const TuneOptions& options, const TuneCase& c) {
  TuneOptions o = options;
  if (o.template_id.empty()) o.template_id = default_template(o.loss);
  return Encoder(ds, model_file, o).encode(c);
}

std::string default_template(const std::string& loss) {
  if (loss == "label") return "P07";
  if (loss == "yesno") return "P02";
  return "P05";
}

namespace {

float rating_in(const data::InteractionMatrix& m, data::UserIndex u, data::ItemIndex i) {
  const auto items = m.items_of(u);
  const auto at = std::lower_bound(items.begin(), items.end(), i);
  return at != items.end() && *at == i
             ? m.ratings_of(u)[static_cast<std::size_t>(at - items.begin())]
             : data::kNoRating;
}

// Above every per-case salt (6 + case index) so the shuffle's stream is its own.
constexpr std::uint64_t kWindowShuffleSalt = 1ull << 31;
// Between the window salt and the round salts.
constexpr std::uint64_t kOptionOrderSalt = (1ull << 31) + 1;

}  // namespace

std::vector<std::size_t> listed_order(std::uint64_t seed, data::UserIndex u, std::size_t n) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng(user_seed(seed, kOptionOrderSalt, u)).shuffle(order);
  return order;
}

std::vector<data::ItemIndex> latest_likes(const data::InteractionMatrix& m, data::UserIndex u,
                                          std::size_t n) {
  std::vector<data::ItemIndex> out;
  const auto& seq = m.sequence(u);
  for (auto it = seq.rbegin(); it != seq.rend() && out.size() < n; ++it)
    if (rating_in(m, u, *it) >= 4.0f) out.push_back(*it);
  std::reverse(out.begin(), out.end());
  return out;
}

namespace {

// One hard case per holdout user: the candidate source fitted on the holdout's kept data, the
// user's top negatives + 1 in its order. A user none of whose held-out likes reach the top is
// kept only when `keep_misses` (validation: NDCG counts them as 0 for every order).
// `exclude`: per user, items never listed (sorted).
std::vector<TuneCase> hard_cases(
    const data::Dataset& ds, const data::LikedHoldout& h, const TuneOptions& o, bool keep_misses,
    const std::map<data::UserIndex, std::vector<data::ItemIndex>>& exclude) {
  const data::InteractionMatrix kept(ds.num_users(), ds.num_items(), h.kept);
  std::unique_ptr<recommend::Recommender> model;
  try {
    model = recommend::make_recommender(o.candidates);
  } catch (const std::invalid_argument& e) {
    throw InputError("--candidates", 0, o.candidates, e.what());
  }
  recommend::FitOptions fit;
  fit.seed = o.seed;
  fit.threads = o.threads;
  fit.progress = false;
  model->fit(kept, fit);
  std::vector<TuneCase> out;
  for (data::UserIndex u : h.users) {
    recommend::RankOptions ro;
    ro.k = o.negatives + 1;
    const auto never = exclude.find(u);
    if (never != exclude.end()) ro.exclude = never->second;
    TuneCase c;
    c.user = u;
    c.held = h.held.at(u);
    for (const auto& s : model->recommend(u, ro)) c.candidates.push_back(s.item);
    const auto hit = std::find_if(c.candidates.begin(), c.candidates.end(), [&](auto i) {
      return std::binary_search(c.held.begin(), c.held.end(), i);
    });
    if (hit == c.candidates.end() && !keep_misses) continue;
    c.target = hit == c.candidates.end() ? c.held.front() : *hit;
    c.history = latest_likes(kept, u, o.history);
    out.push_back(std::move(c));
  }
  return out;
}

// Above every other salt: the seed of hard-candidate round r.
constexpr std::uint64_t kRoundSalt = 1ull << 32;

TuneData ml100k_hard_cases(const data::Dataset& ds, const TuneOptions& o) {
  const data::Split split = data::split_topk_holdout(ds, o.seed);
  const data::InteractionMatrix train(ds.num_users(), ds.num_items(), split.train);
  // The validation users' held-out likes, as `chatrec eval --fusion` holds them out.
  const data::LikedHoldout validation =
      data::split_liked_validation(train, o.seed, o.validation_users);
  TuneData d;
  if (o.validation_users > 0) d.validation = hard_cases(ds, validation, o, true, {});
  // Training instructions never list a user's test items or validation likes, not even as
  // negatives: the recommender would propose them, since its data does not have them.
  std::map<data::UserIndex, std::vector<data::ItemIndex>> never = validation.held;
  for (const auto& x : split.test) never[x.user].push_back(x.item);
  for (auto& [u, items] : never) std::sort(items.begin(), items.end());
  const data::InteractionMatrix kept(ds.num_users(), ds.num_items(), validation.kept);
  const std::size_t wanted = o.examples + o.skip_examples;
  constexpr int kMaxRounds = 64;
  std::vector<TuneCase> all;
  for (int round = 0; round < kMaxRounds && all.size() < wanted; ++round) {
    const data::LikedHoldout h = data::split_liked_validation(
        kept, user_seed(o.seed, kRoundSalt, static_cast<data::UserIndex>(round)), ds.num_users());
    std::vector<TuneCase> cases = hard_cases(ds, h, o, false, never);
    if (cases.empty()) break;
    if (o.option_order == "shuffled")
      for (TuneCase& c : cases) {
        const auto order =
            listed_order(user_seed(o.seed, kRoundSalt + 2, static_cast<data::UserIndex>(round)),
                         c.user, c.candidates.size());
        std::vector<data::ItemIndex> listed;
        for (std::size_t k : order) listed.push_back(c.candidates[k]);
        c.candidates = std::move(listed);
      }
    Rng(user_seed(o.seed, kRoundSalt + 1, static_cast<data::UserIndex>(round))).shuffle(cases);
    for (auto& c : cases) all.push_back(std::move(c));
  }
  all.erase(all.begin(),
            all.begin() + static_cast<std::ptrdiff_t>(std::min(o.skip_examples, all.size())));
  if (all.size() > o.examples) all.resize(o.examples);
  d.train = std::move(all);
  return d;
}

TuneData ml100k_cases(const data::Dataset& ds, const TuneOptions& o) {
  if (o.candidates != "random") return ml100k_hard_cases(ds, o);
  const data::Split split = data::split_topk_holdout(ds, o.seed);
  const data::InteractionMatrix all(ds.num_users(), ds.num_items(), ds.interactions());
  const data::InteractionMatrix train(ds.num_users(), ds.num_items(), split.train);
  const data::LikedHoldout holdout =
      data::split_liked_validation(train, o.seed, o.validation_users);
  const data::InteractionMatrix kept(ds.num_users(), ds.num_items(), holdout.kept);
  auto liked_sequence = [&](data::UserIndex u) {
    return latest_likes(kept, u, std::numeric_limits<std::size_t>::max());
  };
  auto add_negatives = [&](TuneCase& c, std::uint64_t salt) {
    c.candidates = {c.target};
    Rng r(user_seed(o.seed, salt, c.user));
    std::set<data::ItemIndex> picked;
    while (picked.size() < o.negatives) {
      const auto i = static_cast<data::ItemIndex>(r.below(ds.num_items()));
      if (all.contains(c.user, i) || !picked.insert(i).second) continue;
      c.candidates.push_back(i);
    }
    r.shuffle(c.candidates);
  };
  TuneData d;
  for (data::UserIndex u : holdout.users) {
    const auto& held = holdout.held.at(u);
    const std::vector<data::ItemIndex> liked = liked_sequence(u);
    if (held.empty() || all.items_of(u).size() + o.negatives + 1 > ds.num_items()) continue;
    TuneCase c;
    c.user = u;
    c.target = held[Rng(user_seed(o.seed, 4, u)).below(held.size())];
    const std::size_t start = liked.size() > o.history ? liked.size() - o.history : 0;
    c.history.assign(liked.begin() + static_cast<std::ptrdiff_t>(start), liked.end());
    add_negatives(c, 5);
    d.validation.push_back(std::move(c));
  }
  std::vector<TuneCase> windows;
  for (data::UserIndex u = 0; u < ds.num_users(); ++u) {
    if (all.items_of(u).size() + o.negatives + 1 > ds.num_items()) continue;
    std::vector<data::ItemIndex> liked = liked_sequence(u);
    if (o.window_order == "random") Rng(user_seed(o.seed, kWindowShuffleSalt, u)).shuffle(liked);
    for (std::size_t end = liked.size(); end >= 2;) {
      const std::size_t begin = end > o.history + 1 ? end - o.history - 1 : 0;
      TuneCase c;
      c.user = u;
      c.target = liked[end - 1];
      c.history.assign(liked.begin() + static_cast<std::ptrdiff_t>(begin),
                       liked.begin() + static_cast<std::ptrdiff_t>(end - 1));
      windows.push_back(std::move(c));
      end = begin;
    }
  }
  Rng rng(user_seed(o.seed, 1, 0));
  rng.shuffle(windows);
  windows.erase(windows.begin(), windows.begin() + static_cast<std::ptrdiff_t>(
                                                       std::min(o.skip_examples, windows.size())));
  if (windows.size() > o.examples) windows.resize(o.examples);
  for (std::size_t k = 0; k < windows.size(); ++k) add_negatives(windows[k], 6 + k);
  d.train = std::move(windows);
  return d;
}

}  // namespace

TuneData tuning_cases(const data::Dataset& ds, const TuneOptions& o) {
  if (o.window_order != "time" && o.window_order != "random")
    throw InputError("--window-order", 0, "window_order",
                     "'" + o.window_order + "' is neither 'time' nor 'random'");
  if (o.option_order != "source" && o.option_order != "shuffled")
    throw InputError("--option-order", 0, "option_order",
                     "'" + o.option_order + "' is neither 'source' nor 'shuffled'");
  if (o.option_order == "shuffled" && o.candidates == "random")
    throw InputError("--option-order", 0, "option_order",
                     "random candidates are always listed shuffled; the order is for --candidates");
  if (o.protocol == "ml100k-topk") return ml100k_cases(ds, o);
  if (o.protocol != "games-seq")
    throw InputError("--dataset", 0, "protocol",
                     "tuning data comes from games-seq or ml100k-topk, not '" + o.protocol + "'");
  if (o.candidates != "random")
    throw InputError("--candidates", 0, o.candidates,
                     "games-seq ranks the target among random items, so its instructions do too; "
                     "a recommender's candidates are for ml100k-topk, whose rerank reorders them");
  if (o.window_order != "time")
    throw InputError("--window-order", 0, "window_order",
                     "games-seq windows follow the sequence in time; '" + o.window_order +
                         "' is for ml-100k, whose protocol holds out random likes");
  const data::Split split = data::split_leave_last_out(ds);
  const data::InteractionMatrix all(ds.num_users(), ds.num_items(), ds.interactions());
  const data::InteractionMatrix train(ds.num_users(), ds.num_items(), split.train);
  std::vector<data::UserIndex> users;
  for (data::UserIndex u = 0; u < ds.num_users(); ++u)
    if (train.sequence(u).size() >= 2 && all.items_of(u).size() + o.negatives + 1 <= ds.num_items())
      users.push_back(u);
  Rng rng(user_seed(o.seed, 1, 0));
  rng.shuffle(users);
  auto make = [&](data::UserIndex u) {
    const auto& seq = train.sequence(u);  // every item but the user's last (the test target)
    TuneCase c;
    c.user = u;
    c.target = seq.back();
    const std::size_t end = seq.size() - 1;
    const std::size_t start = end > o.history ? end - o.history : 0;
    c.history.assign(seq.begin() + static_cast<std::ptrdiff_t>(start),
                     seq.begin() + static_cast<std::ptrdiff_t>(end));
    c.candidates.push_back(c.target);
    Rng r(user_seed(o.seed, 2, u));
    std::set<data::ItemIndex> picked;
    while (picked.size() < o.negatives) {
      const auto i = static_cast<data::ItemIndex>(r.below(ds.num_items()));
      if (all.contains(u, i) || !picked.insert(i).second) continue;
      c.candidates.push_back(i);
    }
    r.shuffle(c.candidates);
    return c;
  };
  TuneData d;
  const std::size_t n_val = std::min(o.validation_users, users.size());
  for (std::size_t k = 0; k < n_val; ++k) d.validation.push_back(make(users[k]));
  for (std::size_t k = n_val + o.skip_examples; k < users.size() && d.train.size() < o.examples;
       ++k)
    d.train.push_back(make(users[k]));
  return d;
}

std::string TuneSummary::to_text() const {
  const std::string validation =
      base_validation_hr1 < 0.0 ? std::string("no validation users")
      : validation_metric == "NDCG@5"
          ? fmt::format(
                "validation NDCG@5 of the candidates reranked: base model {:.4f}, best {:.4f} "
                "(step {}); the candidate source's own order {:.4f}",
                base_validation_hr1, best_validation_hr1, best_step, candidate_source_validation)
          : fmt::format(
                "validation HR@1: base {:.4f}, best {:.4f} (step {}, "
                "PMI weight {:.2f})",
                base_validation_hr1, best_validation_hr1, best_step, pmi_weight);
  return fmt::format(
      "examples {}, optimizer steps {}, tokens {}, wall {:.0f} s ({:.1f} tokens/s), peak RSS "
      "{:.0f} MiB\n{}; final training loss {:.4f}\n",
      examples, steps, tokens, wall_seconds, wall_seconds > 0 ? tokens / wall_seconds : 0.0,
      peak_rss_mib, validation, final_loss);
}

TuneSummary tune_adapter(const data::Dataset& ds, const TuneOptions& options) {
  TuneOptions o = options;
  if (o.template_id.empty()) o.template_id = default_template(o.loss);
  if (o.loss != "label" && o.loss != "lm" && o.loss != "yesno" && o.loss != "seq")
    throw InputError("--loss", 0, "loss",
                     "unknown loss '" + o.loss + "' (label, lm, yesno or seq)");
  const bool hard = o.candidates != "random";
  if (hard && o.loss != "label")
    throw InputError("--candidates", 0, o.candidates,
                     "a recommender's candidates are trained listwise: use --loss label");

  if (o.batch < 1 || o.epochs < 1 || o.examples < 1)
    throw InputError("--batch", 0, "options", "batch, epochs and examples must be positive");
  const auto t0 = Clock::now();
  rt::Model model(rt::GgufFile::open(o.model_path));
  const Encoder encoder(ds, model.file(), o);
  const TuneData data = tuning_cases(ds, o);
  if (data.train.empty()) throw InputError(ds.name(), 0, "users", "no user can give an example");
  const rt::LoraAdapter initial = [&] {
    rt::LoraAdapter a;
    if (!o.init.empty()) {
      a = rt::LoraAdapter::load(o.init, model);
      // The continuation must hold out the same users and train the same scoring, or its
      // validation would measure users the first run trained on.
      const std::pair<const char*, std::string> same[] = {
          {"instruct.scoring", scoring_of(o.loss)},
          {"instruct.protocol", o.protocol},
          {"instruct.seed", std::to_string(o.seed)},
          {"instruct.validation_users", std::to_string(o.validation_users)},
          {"instruct.history", std::to_string(o.history)}};
      for (const auto& [key, want] : same) {
        const auto it = a.info.find(key);
        const std::string have = it == a.info.end() ? "(none)" : it->second;
        if (have != want)
          throw InputError(o.init.string(), 0, std::string("chatrec.") + key,
                           fmt::format("the adapter has {}, this run {}: continue with the "
                                       "options it was tuned with",
                                       have, want));
      }
      a.info["instruct.init"] = o.init.filename().string() + " " + a.info["instruct.recipe"];
    } else {
      a = rt::LoraAdapter::create(model.config(), rt::parse_lora_targets(o.targets), o.rank,
                                  o.alpha, o.seed);
      const int n_layer = model.config().n_layer;
      if (o.layers < 0 || o.layers > n_layer)
        throw InputError(
            "--layers", 0, "layers",
            fmt::format("{} is not between 0 and the model's {} layers", o.layers, n_layer));
      if (o.layers > 0)
        for (int l = 0; l < n_layer - o.layers; ++l) a.layers[static_cast<std::size_t>(l)] = {};
    }
    a.info["instruct.scoring"] = scoring_of(o.loss);
    // The ranker's default for the scoring, written down so a later default change does not
    // change how this adapter ranks.
    a.info["instruct.calibration"] = calibration_of(o.loss);
    a.info["instruct.history"] = std::to_string(o.history);
    a.info["instruct.template"] = o.template_id;
    a.info["instruct.recipe"] = fingerprint(o);
    a.info["instruct.dataset"] = ds.name();
    // What an evaluation must match for the adapter's training data to stay out of its test and
    // validation data (the split's seed, the held-out validation users).
    a.info["instruct.protocol"] = o.protocol;
    a.info["instruct.seed"] = std::to_string(o.seed);
    a.info["instruct.validation_users"] = std::to_string(o.validation_users);
    // Hard candidates: the reranker lists that recommender's candidates, in its order, lettered.
    a.info["instruct.candidates"] = o.candidates;
    if (hard) a.info["instruct.option_order"] = o.option_order;
    if (o.loss == "label") a.info["instruct.options"] = std::to_string(o.negatives + 1);
    if (o.loss == "seq") {
      // The prompt, for callers that build it themselves (the Chat-Rec reranker).
      a.info["instruct.system"] = builtin_templates().system;
      a.info["instruct.instruction"] = kSequenceInstruction;
    }
    return a;
  }();
  rt::LoraTrainer<float> trainer(
      model, initial, rt::TrainerOptions{.weight_decay = o.weight_decay, .threads = o.threads});

  const std::filesystem::path ckpt_path = o.out.string() + ".ckpt";
  const std::filesystem::path val_path = o.out.string() + ".val.gguf";
  Checkpoint state;
  if (o.resume && std::filesystem::exists(ckpt_path)) {
    state = load_checkpoint(ckpt_path, o);
    trainer.restore(state.params, state.m, state.v, state.steps);
    std::cerr << fmt::format("resuming from {} at example {} (step {})\n", ckpt_path.string(),
                             state.cursor, state.steps);
  }

  CandidateRankerConfig rank_config;
  rank_config.scoring = scoring_of(o.loss);
  rank_config.calibration = calibration_of(o.loss);
  rank_config.history_length = o.history;
  rank_config.template_id = o.template_id;
  // HR@1 on the validation users through the inference runtime with the current adapter (null:
  // the base model), at the PMI weight that ranks them best (written into the adapter kept).
  auto validate = [&](const rt::LoraAdapter* adapter) -> PmiWeightChoice {
    rt::BuiltinOptions bo;
    bo.threads = o.threads;
    bo.cache_slots = 1;
    if (adapter) {
      adapter->save(val_path);
      bo.lora = val_path;
    }
    std::shared_ptr<llm::LanguageModel> lm = rt::open_builtin_model(o.model_path, bo);
    InstructCandidateRanker ranker(ds, lm, rank_config);
    std::vector<LikelihoodTerms> terms;
    std::vector<std::size_t> targets;
    std::size_t failed = 0;
    Progress bar("validate", data.validation.size(), "users");
    bar.set_postfix(adapter ? "adapter" : "base");
    if (hard) {
      // NDCG@5 of the LLM's order of the recommender's candidates against the held-out likes,
      // over every validation user (a user with none among the candidates scores 0 in any order).
      double ndcg = 0.0;
      for (const TuneCase& c : data.validation) {
        const bool any = std::any_of(c.candidates.begin(), c.candidates.end(), [&](auto i) {
          return std::binary_search(c.held.begin(), c.held.end(), i);
        });
        // Shuffled options are listed in the permutation the rerank uses; the scores are mapped
        // back to the recommender's order, whose order breaks ties.
        std::vector<std::size_t> listing(c.candidates.size());
        std::iota(listing.begin(), listing.end(), std::size_t{0});
        if (o.option_order == "shuffled") listing = listed_order(o.seed, c.user, listing.size());
        std::vector<data::ItemIndex> listed;
        for (std::size_t k : listing) listed.push_back(c.candidates[k]);
        auto t = any ? ranker.likelihood_terms(c.user, c.history, listed) : std::nullopt;
        bar.advance();
        std::vector<data::ItemIndex> ranked = c.candidates;  // a failure keeps the base order
        if (t) {
          std::vector<double> score(c.candidates.size());
          for (std::size_t j = 0; j < listing.size(); ++j) score[listing[j]] = t->conditional[j];
          std::vector<std::size_t> order(c.candidates.size());
          for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
          std::stable_sort(order.begin(), order.end(),
                           [&](std::size_t x, std::size_t y) { return score[x] > score[y]; });
          for (std::size_t k = 0; k < order.size(); ++k) ranked[k] = c.candidates[order[k]];
        }
        ndcg += eval::ndcg_at_k(ranked, c.held, 5);
      }
      bar.finish();
      if (adapter) std::filesystem::remove(val_path);
      PmiWeightChoice choice;
      choice.hr1 = ndcg / static_cast<double>(std::max<std::size_t>(1, data.validation.size()));
      return choice;
    }
    for (const TuneCase& c : data.validation) {
      auto t = ranker.likelihood_terms(c.user, c.history, c.candidates);
      bar.advance();
      if (!t) {
        ++failed;  // counts as a miss
        continue;
      }
      terms.push_back(std::move(*t));
      targets.push_back(static_cast<std::size_t>(
          std::find(c.candidates.begin(), c.candidates.end(), c.target) - c.candidates.begin()));
    }
    bar.finish();
    if (adapter) std::filesystem::remove(val_path);
    // Without pmi there is one term and every weight ranks alike (the choice stays at 1).
    PmiWeightChoice choice = choose_pmi_weight(terms, targets);
    const double kept = static_cast<double>(terms.size()) /
                        static_cast<double>(std::max<std::size_t>(1, terms.size() + failed));
    choice.hr1 *= kept;
    choice.hr1_full_pmi *= kept;
    return choice;
  };

  const std::int64_t total = static_cast<std::int64_t>(data.train.size()) * o.epochs;
  const std::int64_t total_steps = (total + o.batch - 1) / o.batch;
  const std::int64_t warm = std::max<std::int64_t>(1, std::llround(o.warmup * total_steps));
  auto lr_at = [&](std::int64_t s) {
    if (s < warm) return o.lr * static_cast<double>(s + 1) / static_cast<double>(warm);
    const double p = static_cast<double>(s - warm) / std::max<std::int64_t>(1, total_steps - warm);
    return o.lr * (0.1 + 0.9 * 0.5 * (1.0 + std::cos(3.141592653589793 * p)));
  };

  const std::string metric = hard ? "NDCG@5" : "HR@1";
  // The candidate source's own order of the validation cases: what the rerank must beat.
  double source_score = -1.0;
  if (hard && !data.validation.empty()) {
    source_score = 0.0;
    for (const TuneCase& c : data.validation)
      source_score += eval::ndcg_at_k(c.candidates, c.held, 5);
    source_score /= static_cast<double>(data.validation.size());
    std::cerr << fmt::format("validation NDCG@5 of {}'s own order: {:.4f} ({} users)\n",
                             o.candidates, source_score, data.validation.size());
  }
  const bool first_validation = state.base_hr1 < 0.0;
  if (first_validation && !data.validation.empty()) {
    state.base_hr1 = validate(nullptr).hr1;
    std::cerr << fmt::format("validation {} of the base model: {:.4f} ({} users)\n", metric,
                             state.base_hr1, data.validation.size());
  }
  auto orders = [&](std::int64_t epoch) {
    std::vector<std::size_t> order(data.train.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    Rng r(user_seed(o.seed, 3, static_cast<data::UserIndex>(epoch)));
    r.shuffle(order);
    return order;
  };

  TuneSummary summary;
  summary.examples = static_cast<std::size_t>(total);
  Progress bar("tune", static_cast<std::uint64_t>(total), "ex");
  bar.advance(static_cast<std::uint64_t>(state.cursor));
  auto last_ckpt = Clock::now();
  const auto train_start = Clock::now();
  const double seconds_before = state.train_seconds;
  std::int64_t tokens = 0;
  double loss_sum = 0.0, loss_ema = -1.0;
  int in_batch = 0;
  std::int64_t epoch_loaded = -1;
  std::vector<std::size_t> order;
  auto checkpoint = [&] {
    state.params.assign(trainer.parameters().begin(), trainer.parameters().end());
    state.m.assign(trainer.first_moment().begin(), trainer.first_moment().end());
    state.v.assign(trainer.second_moment().begin(), trainer.second_moment().end());
    state.steps = trainer.steps_taken();
    state.train_seconds = seconds_before + seconds_since(train_start);
    save_checkpoint(ckpt_path, o, state);
    last_ckpt = Clock::now();
  };
  auto run_validation = [&] {
    rt::LoraAdapter current = trainer.adapter();
    const PmiWeightChoice v = data.validation.empty() ? PmiWeightChoice{} : validate(&current);
    const std::string pmi =
        rank_config.calibration == "pmi"
            ? fmt::format(" at PMI weight {:.2f} (full PMI {:.4f})", v.weight, v.hr1_full_pmi)
            : std::string();
    std::cerr << fmt::format("step {}: validation {} {:.4f}{} (best so far {:.4f})\n",
                             trainer.steps_taken(), metric, v.hr1, pmi,
                             std::max(state.best_hr1, 0.0));
    if (v.hr1 > state.best_hr1) {
      state.best_hr1 = v.hr1;
      state.best_step = trainer.steps_taken();
      state.best_pmi_weight = v.weight;
      current.info["instruct.pmi_weight"] = fmt::format("{:.2f}", v.weight);
      current.save(o.out);
    }
  };
  // A continuation starts from its --init adapter's score: it is kept unless training beats it.
  if (first_validation && !o.init.empty() && !data.validation.empty()) run_validation();
  // Batches never straddle the resume point: checkpoints are written between optimizer steps.
  while (state.cursor < total) {
    const std::int64_t epoch = state.cursor / static_cast<std::int64_t>(data.train.size());
    if (epoch != epoch_loaded) {
      order = orders(epoch);
      epoch_loaded = epoch;
    }
    const std::size_t idx = order[static_cast<std::size_t>(
        state.cursor % static_cast<std::int64_t>(data.train.size()))];
    const rt::TrainingSequence seq = encoder.encode(data.train[idx]);
    const double loss = trainer.accumulate(seq);
    tokens += static_cast<std::int64_t>(seq.tokens.size());
    loss_sum += loss;
    ++in_batch;
    ++state.cursor;
    bar.advance();
    const bool epoch_end = state.cursor % static_cast<std::int64_t>(data.train.size()) == 0;
    if (in_batch == o.batch || state.cursor == total || epoch_end) {
      trainer.step(lr_at(trainer.steps_taken()), 1.0 / in_batch);
      const double mean = loss_sum / in_batch;
      loss_ema = loss_ema < 0 ? mean : 0.9 * loss_ema + 0.1 * mean;
      summary.final_loss = loss_ema;
      loss_sum = 0.0;
      in_batch = 0;
      bar.set_postfix(fmt::format("loss {:.3f} {:.0f} tok/s", loss_ema,
                                  tokens / std::max(1e-9, seconds_since(train_start))));
      const bool periodic = o.eval_every > 0 && trainer.steps_taken() % o.eval_every == 0;
      if (periodic || epoch_end || state.cursor == total) run_validation();
      const bool stopping = o.stop_after > 0 && state.cursor >= o.stop_after;
      if (seconds_since(last_ckpt) > o.checkpoint_minutes * 60.0 || state.cursor == total ||
          stopping)
        checkpoint();
      if (stopping && state.cursor < total) {
        std::cerr << fmt::format("stopped after {} examples; --resume continues\n", state.cursor);
        break;
      }
    }
  }
  bar.finish();
  if (state.best_hr1 < 0.0) trainer.adapter().save(o.out);
  summary.steps = trainer.steps_taken();
  summary.tokens = tokens;
  summary.wall_seconds = seconds_since(t0);
  summary.peak_rss_mib = memory::peak_rss_mib();
  summary.base_validation_hr1 = state.base_hr1;
  summary.best_validation_hr1 = state.best_hr1;
  summary.best_step = state.best_step;
  summary.pmi_weight = state.best_pmi_weight;
  summary.validation_metric = metric;
  summary.candidate_source_validation = source_score;
  return summary;
}

}  // namespace chatrec::instruct
