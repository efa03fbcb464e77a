#include "chat/handlers.h"

#include <algorithm>
#include <array>
#include <regex>

#include "chat/explain.h"
#include "chat/title_match.h"

namespace chatrec::chat {

bool negative_feedback(const std::string& text) {
  static const std::regex neg(
      R"(\b(didn'?t|did not|don'?t|do not|never) (like|enjoy|want|care)|\b(hated?|dislike[ds]?|not for me|boring|terrible|awful|bad|seen (it|that)|already (seen|watched|played)|no more|not interested|remove)\b)",
      std::regex::icase);
  return std::regex_search(text, neg);
}

void handle_item_question(TurnContext& tc, const ItemRef& ref, const std::string& text) {
  const DomainCatalog& d = tc.domain(ref.domain);
  tc.result.domain = d.name;
  const PromptItem pi = prompt_item(d.dataset->item(tc.item_index(ref)));
  PromptContext ctx = tc.prompt_context(d.name, text, 3, 0);
  const std::string answer = tc.llm_answer(ctx, &pi, "metadata_answer");
  if (answer.empty()) tc.emit(template_explanation(pi, {}, d.name));
}

void handle_explain(TurnContext& tc, const ItemRef& ref, const std::string& text) {
  const DomainCatalog& d = tc.domain(ref.domain);
  tc.result.domain = d.name;
  const data::ItemIndex item = tc.item_index(ref);
  const PromptItem pi = prompt_item(d.dataset->item(item));
  // Support: the liked history items most similar to the item.
  std::vector<PromptItem> support;
  const auto liked = tc.history_items(d, 4.0f);
  if (!liked.empty() && !d.is_cold(item)) {
    const std::array<data::ItemIndex, 1> one = {item};
    const auto sim = d.similarity_to(one);
    std::vector<data::ItemIndex> order = liked;
    std::stable_sort(order.begin(), order.end(),
                     [&](data::ItemIndex a, data::ItemIndex b) { return sim[a] > sim[b]; });
    const auto& hist = tc.state.history[d.name];
    for (std::size_t j = 0; j < std::min<std::size_t>(3, order.size()); ++j) {
      const auto& it = d.dataset->item(order[j]);
      float rating = 0;
      for (const auto& h : hist) {
        if (h.item_id == it.id) rating = h.rating;
      }
      support.push_back(prompt_item(it, rating));
    }
  } else {
    PromptContext pc = tc.prompt_context(d.name, "", 3, 0);
    support = pc.liked;
  }
  PromptContext ctx = tc.prompt_context(d.name, text, 0, 0);
  ctx.dialogue.clear();
  Explanation e = explain_item(tc.lm, ctx, pi, support, tc.options.max_reply_tokens,
                               tc.options.llm_timeout_seconds, tc.on_text, &tc.result.stats);
  tc.result.reply += e.text;
  tc.result.degraded = tc.result.degraded || e.degraded;
  for (const auto& n : e.notes) tc.result.notes.push_back(n);
  for (const auto& r : tc.state.last_recommendations) {
    if (r.domain == ref.domain && r.item_id == ref.item_id) {
      Recommendation rec = r;
      rec.reason = e.text;
      tc.result.recommendations.push_back(rec);
    }
  }
}

void handle_feedback(TurnContext& tc, const ItemRef& ref, bool liked) {
  const DomainCatalog& d = tc.domain(ref.domain);
  const auto item = d.find_item(ref.item_id);
  const std::string title = item ? display_title(d.dataset->item(*item).title) : ref.item_id;
  if (liked) {
    tc.state.add_liked(ref);
    tc.emit("Noted: you liked " + title + ". I will recommend more like it.");
    return;
  }
  tc.state.add_disliked(ref);
  auto& last = tc.state.last_recommendations;
  last.erase(std::remove_if(last.begin(), last.end(),
                            [&](const Recommendation& r) {
                              return r.domain == ref.domain && r.item_id == ref.item_id;
                            }),
             last.end());
  tc.emit("Noted: you did not like " + title + ". I will not recommend it again.");
}

void handle_other(TurnContext& tc, const std::string& text) {
  tc.result.domain = tc.state.domain;
  std::string answer;
  if (tc.lm)
    answer = tc.llm_answer(tc.prompt_context(tc.state.domain, text, 3, 0), nullptr, "canned_reply");
  if (answer.empty()) {
    tc.emit("I can recommend " + domain_noun(tc.state.domain, true) +
            " (tell me genres, eras or titles you like), explain my suggestions, and learn "
            "from your feedback.");
  }
}

}  // namespace chatrec::chat
