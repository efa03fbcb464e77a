#include "chat/turn_context.h"

#include <algorithm>
#include <array>
#include <regex>

#include "chat/explain.h"
#include "chat/llm_call.h"
#include "chat/title_match.h"
#include "common/text.h"
#include "llm/language_model.h"

namespace chatrec::chat {

namespace {

std::string ordinal_words(std::size_t i) {
  static const char* w[] = {"first", "second",  "third",  "fourth", "fifth",
                            "sixth", "seventh", "eighth", "ninth",  "tenth"};
  return i < 10 ? w[i] : std::to_string(i + 1) + "th";
}

}  // namespace

PromptItem prompt_item(const data::Item& item, float rating) {
  PromptItem p;
  p.title = display_title(item.title);
  for (const auto& c : item.categories) {
    if (!text::iequals(c, "unknown")) p.categories.push_back(c);
  }
  p.rating = rating;
  if (auto it = item.text.find("description"); it != item.text.end())
    p.description = it->second.substr(0, 300);
  return p;
}

Recommendation make_recommendation(const data::Item& item, const std::string& domain, double score,
                                   Source source) {
  Recommendation r;
  r.item_id = item.id;
  r.title = display_title(item.title);
  r.domain = domain;
  r.year = item.year;
  for (const auto& c : item.categories) {
    if (!text::iequals(c, "unknown")) r.categories.push_back(c);
  }
  r.score = score;
  r.source = source;
  return r;
}

void add_rated_item(PromptContext& ctx, const data::Item& item, float rating, std::size_t max_liked,
                    std::size_t max_disliked) {
  if ((rating >= 4.0f || rating == 0.0f) && ctx.liked.size() < max_liked) {
    ctx.liked.push_back(prompt_item(item, rating));
  } else if (rating > 0 && rating <= 2.0f && ctx.disliked.size() < max_disliked) {
    ctx.disliked.push_back(prompt_item(item, rating));
  }
}

void TurnContext::emit(const std::string& s) {
  result.reply += s;
  if (on_text) on_text(s);
}

const DomainCatalog& TurnContext::domain(const std::string& name) const {
  const DomainCatalog* d = catalog.find(name);
  if (!d) throw ChatError(ChatError::Kind::kBadRequest, "unknown domain '" + name + "'");
  return *d;
}

data::ItemIndex TurnContext::item_index(const ItemRef& ref) const {
  const auto i = domain(ref.domain).find_item(ref.item_id);
  if (!i) throw ChatError(ChatError::Kind::kNotFound, "unknown item '" + ref.item_id + "'");
  return *i;
}

std::vector<data::ItemIndex> TurnContext::history_items(const DomainCatalog& d,
                                                        float min_rating) const {
  std::vector<data::ItemIndex> out;
  auto it = state.history.find(d.name);
  if (it == state.history.end()) return out;
  for (const auto& r : it->second) {
    if (r.rating > 0 && r.rating < min_rating) continue;
    if (auto i = d.find_item(r.item_id)) out.push_back(*i);
  }
  return out;
}

std::vector<data::ItemIndex> TurnContext::refs_in(const DomainCatalog& d,
                                                  const std::vector<ItemRef>& refs) const {
  std::vector<data::ItemIndex> out;
  for (const auto& r : refs) {
    if (r.domain != d.name) continue;
    if (auto i = d.find_item(r.item_id)) out.push_back(*i);
  }
  return out;
}

PromptContext TurnContext::prompt_context(const std::string& domain_name, const std::string& query,
                                          std::size_t max_liked, std::size_t max_disliked) const {
  PromptContext ctx;
  ctx.domain = domain_name;
  ctx.profile = state.profile;
  ctx.query = query;
  ctx.dialogue = state.dialogue;
  ctx.constraints = describe(state.constraints);
  // Liked: the conversation's anchors, then history rated >= 4 (latest first), from the target
  // domain first.
  std::vector<std::string> order = {domain_name};
  for (const auto& [name, list] : state.history) {
    if (name != domain_name) order.push_back(name);
  }
  for (const auto& ref : state.liked) {
    if (const DomainCatalog* d = catalog.find(ref.domain)) {
      if (auto i = d->find_item(ref.item_id))
        ctx.liked.push_back(prompt_item(d->dataset->item(*i), 5.0f));
    }
  }
  for (const auto& name : order) {
    const DomainCatalog* d = catalog.find(name);
    auto it = state.history.find(name);
    if (!d || it == state.history.end()) continue;
    for (auto r = it->second.rbegin(); r != it->second.rend(); ++r) {
      auto i = d->find_item(r->item_id);
      if (!i) continue;
      add_rated_item(ctx, d->dataset->item(*i), r->rating, max_liked, max_disliked);
    }
  }
  for (const auto& ref : state.disliked) {
    if (const DomainCatalog* d = catalog.find(ref.domain)) {
      if (auto i = d->find_item(ref.item_id))
        ctx.disliked.insert(ctx.disliked.begin(), prompt_item(d->dataset->item(*i), 1.0f));
    }
  }
  return ctx;
}

std::optional<data::ItemIndex> TurnContext::resolve_title(const DomainCatalog& d,
                                                          const std::string& snippet) const {
  const auto mentioned = d.titles.mentioned_in(snippet);
  if (!mentioned.empty()) return mentioned.front();
  const long long best = d.titles.best(snippet, 0.85);
  if (best >= 0) return static_cast<data::ItemIndex>(best);
  return std::nullopt;
}

std::optional<ItemRef> TurnContext::referenced_item(const std::string& text,
                                                    bool default_first) const {
  for (const auto& r : state.last_recommendations) {
    if (mentions_title(text, r.title)) return ItemRef{r.domain, r.item_id};
  }
  const std::string lower = text::to_lower(text);
  for (std::size_t i = 0; i < state.last_recommendations.size(); ++i) {
    const std::string ord = ordinal_words(i);
    if (std::regex_search(lower, std::regex("\\b(" + ord + "|#" + std::to_string(i + 1) +
                                            "|number " + std::to_string(i + 1) + ")\\b"))) {
      return ItemRef{state.last_recommendations[i].domain, state.last_recommendations[i].item_id};
    }
  }
  for (const auto& r : state.shown) {
    const DomainCatalog* d = catalog.find(r.domain);
    if (!d) continue;
    if (auto i = d->find_item(r.item_id); i && mentions_title(text, d->dataset->item(*i).title))
      return r;
  }
  std::vector<std::string> order = {state.domain};
  for (const auto& n : catalog.domains()) {
    if (n != state.domain) order.push_back(n);
  }
  for (const auto& name : order) {
    const DomainCatalog& d = domain(name);
    const auto mentioned = d.titles.mentioned_in(text, 5);
    if (!mentioned.empty()) return ItemRef{name, d.dataset->item(mentioned.front()).id};
  }
  if (default_first && !state.last_recommendations.empty()) {
    return ItemRef{state.last_recommendations.front().domain,
                   state.last_recommendations.front().item_id};
  }
  return std::nullopt;
}

void TurnContext::apply_titles(const ConstraintUpdate& u) {
  const std::string target = u.domain.value_or(state.domain);
  for (const auto& snippet : u.like_titles) {
    for (const auto& name : catalog.domains()) {
      const DomainCatalog& d = domain(name);
      if (name != target && name != state.domain) continue;
      if (auto i = resolve_title(d, snippet)) {
        const ItemRef ref{name, d.dataset->item(*i).id};
        state.add_liked(ref);
        if (std::find(state.constraints.like.begin(), state.constraints.like.end(), ref) ==
            state.constraints.like.end()) {
          state.constraints.like.push_back(ref);
        }
        break;
      }
    }
  }
  for (const auto& snippet : u.not_titles) {
    const DomainCatalog& d = domain(target);
    if (auto i = resolve_title(d, snippet)) state.add_disliked({target, d.dataset->item(*i).id});
  }
}

std::string TurnContext::reason_for(const DomainCatalog& d, data::ItemIndex item,
                                    Source source) const {
  const data::Item& it = d.dataset->item(item);
  std::string genres;
  std::vector<std::string> cats;
  for (const auto& c : it.categories) {
    if (!text::iequals(c, "unknown")) cats.push_back(c);
  }
  if (!cats.empty()) genres = text::join(cats, "/");
  if (source == Source::kColdStart) {
    return "New in the catalogue; its description matches your request" +
           (genres.empty() ? "" : " (" + genres + ")");
  }
  const auto liked = history_items(d, 4.0f);
  if (!liked.empty() && !d.is_cold(item)) {
    const std::array<data::ItemIndex, 1> one = {item};
    const auto sim = d.similarity_to(one);
    data::ItemIndex best = liked.front();
    float best_sim = -1.0f;
    for (data::ItemIndex h : liked) {
      if (h < sim.size() && sim[h] > best_sim) best_sim = sim[h], best = h;
    }
    if (best_sim > 0) {
      return "Because you liked " + display_title(d.dataset->item(best).title) +
             (genres.empty() ? "" : "; " + genres);
    }
  }
  if (source == Source::kLlm)
    return "Matches the tastes in your history" + (genres.empty() ? "" : " (" + genres + ")");
  return genres.empty() ? "Popular with people like you"
                        : "Popular with people like you; " + genres;
}

std::string TurnContext::llm_answer(const PromptContext& ctx, const PromptItem* item,
                                    const char* resolution) {
  if (!lm) return {};
  const auto prompt = answer_prompt(*lm, ctx, item, options.max_reply_tokens + 8);
  llm::GenerationOptions go;
  go.max_tokens = options.max_reply_tokens;
  go.stop = {"\n\n"};
  go.on_text = [this](std::string_view p) {
    if (on_text) on_text(p);
    return true;
  };
  LlmCallResult r = call_chat(*lm, prompt.messages, go, options.llm_timeout_seconds, &result.stats);
  if (!r.completion) {
    result.stats.fail(r.failure, resolution);
    result.degraded = true;
    result.notes.push_back(r.message);
    return {};
  }
  result.reply += r.completion->text;
  return r.completion->text;
}

}  // namespace chatrec::chat
