#include "chat/candidates.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "chat/constraints.h"
#include "common/text.h"

namespace chatrec::chat {

namespace {

void zscore(std::vector<float>& v, const std::vector<char>& keep) {
  double sum = 0, sq = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!keep[i]) continue;
    sum += v[i];
    sq += static_cast<double>(v[i]) * v[i];
    ++n;
  }
  if (n == 0) return;
  const double mean = sum / n;
  const double sd = std::sqrt(std::max(1e-12, sq / n - mean * mean));
  for (float& x : v) x = static_cast<float>((x - mean) / sd);
}

std::set<std::string> content_words(std::string_view s) {
  static const std::set<std::string> stop = {
      "that",        "this",  "with",  "from",  "have",   "some",      "something",  "about",
      "like",        "want",  "would", "could", "please", "recommend", "movie",      "movies",
      "film",        "films", "game",  "games", "video",  "title",     "categories", "year",
      "description", "more",  "what",  "which", "they",   "them",      "their",      "there",
      "were",        "when",  "your",  "into",  "only"};
  std::set<std::string> out;
  std::string cur;
  auto flush = [&]() {
    if (cur.size() >= 4 && !stop.count(cur)) out.insert(cur);
    cur.clear();
  };
  for (unsigned char c : s) {
    if (std::isalnum(c)) {
      cur += static_cast<char>(std::tolower(c));
    } else {
      flush();
    }
  }
  flush();
  return out;
}

}  // namespace

std::size_t shared_content_words(std::string_view a, std::string_view b) {
  const auto wa = content_words(a), wb = content_words(b);
  std::size_t n = 0;
  for (const auto& w : wa) n += wb.count(w);
  return n;
}

std::vector<Candidate> collaborative_candidates(const DomainCatalog& d, const CandidateRequest& q) {
  const auto& model = *d.model;
  const std::size_t n = std::min(d.model_items, model.num_items());
  std::vector<data::ItemIndex> exclude = q.excluded;
  for (data::ItemIndex a : q.anchors) exclude.push_back(a);
  for (data::ItemIndex h : q.history) exclude.push_back(h);
  std::sort(exclude.begin(), exclude.end());
  exclude.erase(std::unique(exclude.begin(), exclude.end()), exclude.end());
  const auto& items = d.dataset->items();
  const Constraints c = q.constraints;
  auto filter = [&items, c, n](data::ItemIndex i) { return i < n && satisfies(items[i], c); };

  recommend::RankOptions options;
  options.k = q.k;
  options.exclude_seen = true;
  options.filter = filter;
  options.exclude = exclude;

  std::vector<recommend::ScoredItem> ranked;
  const bool trained_user = q.user && *q.user < model.num_users();
  if (q.anchors.empty()) {
    if (trained_user) {
      ranked = model.recommend(*q.user, options);
    } else if (!q.history.empty() && model.supports_fold_in()) {
      ranked = model.recommend_for_history(q.history, options);
    }
  } else if (model.supports_fold_in()) {
    std::vector<data::ItemIndex> h = q.history;
    h.insert(h.end(), q.anchors.begin(), q.anchors.end());
    ranked = model.recommend_for_history(h, options);
  } else {
    // No fold-in: the user's scores plus similarity to the anchors, both standardised over the
    // allowed items.
    std::vector<float> scores(model.num_items(), 0.0f);
    if (trained_user) model.score(*q.user, scores);
    std::vector<float> sim = d.similarity_to(q.anchors);
    sim.resize(scores.size());
    std::vector<char> keep(scores.size(), 0);
    for (data::ItemIndex i = 0; i < scores.size(); ++i) {
      keep[i] = filter(i) && !std::binary_search(exclude.begin(), exclude.end(), i) &&
                !(trained_user && d.matrix->contains(*q.user, i));
    }
    zscore(scores, keep);
    zscore(sim, keep);
    std::vector<data::ItemIndex> order;
    for (data::ItemIndex i = 0; i < scores.size(); ++i) {
      if (keep[i]) order.push_back(i);
    }
    for (data::ItemIndex i : order) scores[i] += sim[i];
    const std::size_t top = std::min(q.k, order.size());
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](data::ItemIndex a, data::ItemIndex b) { return scores[a] > scores[b]; });
    for (std::size_t j = 0; j < top; ++j) ranked.push_back({order[j], scores[order[j]]});
  }
  if (ranked.empty()) {
    // A user the model cannot score: the most popular allowed items.
    for (data::ItemIndex i : d.by_popularity) {
      if (ranked.size() >= q.k) break;
      if (filter(i) && !std::binary_search(exclude.begin(), exclude.end(), i)) {
        ranked.push_back({i, static_cast<float>(d.matrix->users_of(i).size())});
      }
    }
  }
  std::vector<Candidate> out;
  for (const auto& r : ranked) {
    // Defence in depth: the filter and exclusions hold whatever the model implementation did.
    if (!filter(r.item) || std::binary_search(exclude.begin(), exclude.end(), r.item)) continue;
    out.push_back({r.item, r.score, Source::kCollaborative});
  }
  return out;
}

}  // namespace chatrec::chat
