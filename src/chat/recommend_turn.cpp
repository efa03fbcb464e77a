#include "chat/handlers.h"

#include <algorithm>
#include <optional>

#include "chat/candidates.h"
#include "chat/cold_start.h"
#include "chat/rerank.h"
#include "chat/title_match.h"
#include "common/text.h"

namespace chatrec::chat {

void handle_recommend(TurnContext& tc, const std::string& text) {
  const DomainCatalog& d = tc.domain(tc.state.domain);
  tc.result.domain = d.name;
  const auto history = tc.history_items(d);
  const auto excluded = tc.refs_in(d, tc.state.disliked);
  const auto anchors = tc.refs_in(d, tc.state.liked);
  std::vector<Candidate> candidates;
  bool cross_domain = false;
  const auto keep = [&](data::ItemIndex i) {
    return satisfies(d.dataset->item(i), tc.state.constraints) &&
           std::find(excluded.begin(), excluded.end(), i) == excluded.end() &&
           std::find(history.begin(), history.end(), i) == history.end();
  };
  bool other_history = false;
  for (const auto& [name, list] : tc.state.history)
    other_history = other_history || (name != d.name && !list.empty());
  if (history.empty() && anchors.empty() && other_history && tc.cold) {
    // Cross-domain: no history here, so retrieve by embedding similarity to the user's tastes
    // elsewhere.
    cross_domain = true;
    try {
      std::vector<std::pair<data::ItemIndex, data::Item>> pool;
      for (std::size_t j = 0; j < std::min(tc.options.cross_domain_pool, d.by_popularity.size());
           ++j) {
        pool.emplace_back(d.by_popularity[j], d.dataset->item(d.by_popularity[j]));
      }
      tc.cold->add(d.name, pool, false, &tc.result.stats);
      PromptContext pc = tc.prompt_context(d.name, text, 8, 0);
      std::string query = text;
      for (const auto& l : pc.liked)
        query +=
            " | " + l.title + (l.categories.empty() ? "" : " " + text::join(l.categories, " "));
      const auto qv = tc.cold->embed_query(query, &tc.result.stats);
      for (const auto& hit : tc.cold->search(d.name, qv, tc.options.num_candidates, false, keep)) {
        candidates.push_back(
            {hit.item, hit.similarity, hit.cold ? Source::kColdStart : Source::kLlm});
      }
    } catch (const std::exception& e) {
      tc.result.stats.fail("llm_error", "collaborative_candidates");
      tc.result.degraded = true;
      tc.result.notes.push_back(std::string("cross-domain retrieval failed (") + e.what() +
                                "); showing popular items");
    }
  }
  if (candidates.empty()) {
    CandidateRequest q;
    q.user = d.dataset_user(tc.state.user_id);
    q.history = history;
    q.constraints = tc.state.constraints;
    q.anchors = anchors;
    q.excluded = excluded;
    q.k = tc.options.num_candidates;
    candidates = collaborative_candidates(d, q);
    cross_domain = false;
  }
  // Cold-start items similar to the request join the candidates.
  std::optional<std::size_t> reserved_cold;
  if (tc.cold && !tc.cold->index_pending(&tc.result.stats, tc.options.cold_start_retry_seconds)) {
    tc.result.notes.push_back("some cold-start items wait for the LLM to embed them");
  }
  if (tc.cold && tc.options.cold_start_candidates > 0 && tc.cold->size(d.name, true) > 0) {
    try {
      std::string query = text;
      const std::string c = describe(tc.state.constraints);
      if (!c.empty()) query += " | " + c;
      const auto qv = tc.cold->embed_query(query, &tc.result.stats);
      std::size_t best_overlap = 0;
      for (const auto& hit :
           tc.cold->search(d.name, qv, tc.options.cold_start_candidates, true, keep)) {
        if (std::any_of(candidates.begin(), candidates.end(),
                        [&](const Candidate& x) { return x.item == hit.item; }))
          continue;
        candidates.push_back({hit.item, hit.similarity, Source::kColdStart});
        const std::size_t overlap =
            shared_content_words(text, item_text(d.dataset->item(hit.item)));
        if (overlap > best_overlap) best_overlap = overlap, reserved_cold = candidates.size() - 1;
      }
    } catch (const std::exception& e) {
      tc.result.stats.fail("llm_error", "no_cold_start");
      tc.result.notes.push_back(std::string("cold-start retrieval failed: ") + e.what());
    }
  }
  const auto no_results = [&]() {
    tc.emit("I found nothing in the " + d.name + " catalogue matching " +
            (describe(tc.state.constraints).empty() ? std::string("that")
                                                    : describe(tc.state.constraints)) +
            ". Try relaxing a constraint.");
  };
  if (candidates.empty()) {
    no_results();
    return;
  }
  // The list's heading is known before the LLM ranks: streaming it now shows the user the
  // request was understood while the rerank runs.
  const std::size_t shown = std::min(tc.options.top_k, candidates.size());
  std::string intro = "Here are " + std::to_string(shown) + " " + domain_noun(d.name, true);
  const std::string cdesc = describe(tc.state.constraints);
  if (!cdesc.empty()) intro += " (" + cdesc + ")";
  intro += cross_domain
               ? ", from the " + d.name + " catalogue. You have no " + d.name +
                     " history yet, so I matched them to your favourites in other domains:\n"
               : " from the " + d.name + " catalogue for you:\n";
  tc.emit(intro);
  RerankRequest rq;
  rq.context = tc.prompt_context(d.name, text);
  for (const auto& c : candidates)
    rq.candidates.push_back({d.dataset->item(c.item).id, prompt_item(d.dataset->item(c.item))});
  rq.k = std::min(tc.options.top_k, candidates.size());
  rq.mode = tc.options.rerank;
  rq.hint_top1 = tc.options.hint_top1 && !cross_domain;
  rq.fusion_weight = tc.options.fusion_weight;
  rq.max_list_tokens = tc.options.max_list_tokens;
  rq.timeout_seconds = tc.options.llm_timeout_seconds;
  rq.in_catalogue = [&d](std::string_view title) { return d.titles.best(title, 0.9) >= 0; };
  RerankResult rr = rerank(tc.lm, rq, &tc.result.stats);
  for (const auto& n : rr.notes) tc.result.notes.push_back(n);
  tc.result.degraded = tc.result.degraded || rr.degraded;
  std::vector<std::size_t> top = rr.top;
  if (reserved_cold && std::find(top.begin(), top.end(), *reserved_cold) == top.end() &&
      !top.empty()) {
    // The cold-start item that matches the request's words keeps a place (the last one).
    top.back() = *reserved_cold;
    tc.result.stats.resolutions["cold_start_slot"] += 1;
  }
  if (top.empty()) {
    no_results();
    return;
  }
  tc.state.last_recommendations.clear();
  for (std::size_t rank = 0; rank < top.size(); ++rank) {
    const Candidate& c = candidates[top[rank]];
    Source src = c.source;
    if (src == Source::kCollaborative && rr.llm_used && top[rank] != rank) src = Source::kLlm;
    Recommendation rec = make_recommendation(d.dataset->item(c.item), d.name,
                                             static_cast<double>(top.size() - rank), src);
    rec.reason = tc.reason_for(d, c.item, src);
    tc.state.last_recommendations.push_back(rec);
    const ItemRef ref{d.name, rec.item_id};
    if (std::find(tc.state.shown.begin(), tc.state.shown.end(), ref) == tc.state.shown.end())
      tc.state.shown.push_back(ref);
  }
  tc.result.recommendations = tc.state.last_recommendations;
  tc.listing.clear();
  for (std::size_t i = 0; i < tc.result.recommendations.size(); ++i) {
    const auto& r = tc.result.recommendations[i];
    tc.listing += std::to_string(i + 1) + ". " + r.title + " — " + r.reason + "\n";
  }
  if (rr.degraded)
    tc.emit("(The language model could not rank these, so this is the recommender's own order.)\n");
}

}  // namespace chatrec::chat
