#include "chat/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <regex>
#include <set>
#include <shared_mutex>

#include "chat/candidates.h"
#include "chat/catalog.h"
#include "chat/cold_start.h"
#include "chat/constraints.h"
#include "chat/explain.h"
#include "chat/intent.h"
#include "chat/llm_call.h"
#include "chat/prompts.h"
#include "chat/rerank.h"
#include "chat/title_match.h"
#include "common/text.h"
#include "llm/factory.h"
#include "llm/language_model.h"
#include "store/store.h"

namespace chatrec::chat {

const char* to_string(RerankMode mode) {
  switch (mode) {
    case RerankMode::kNone:
      return "none";
    case RerankMode::kGenerate:
      return "generate";
    case RerankMode::kScore:
      return "score";
  }
  return "none";
}

bool parse_rerank_mode(const std::string& name, RerankMode* out) {
  for (RerankMode m : {RerankMode::kNone, RerankMode::kGenerate, RerankMode::kScore}) {
    if (name == to_string(m)) {
      *out = m;
      return true;
    }
  }
  return false;
}

nlohmann::json TurnResult::to_json() const {
  return {{"conversation_id", conversation_id},
          {"reply", reply},
          {"recommendations", recommendations},
          {"intent", chat::to_string(intent)},
          {"intent_decided_by", intent_decided_by},
          {"domain", domain},
          {"constraints", constraints},
          {"degraded", degraded},
          {"notes", notes},
          {"stats", stats}};
}

struct ChatEngine::Session {
  std::mutex mutex;
  ConversationState state;
  std::int64_t created_at = 0;
};

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

PromptItem prompt_item(const data::Item& item, float rating = 0.0f) {
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

std::string ordinal_words(std::size_t i) {
  static const char* w[] = {"first", "second",  "third",  "fourth", "fifth",
                            "sixth", "seventh", "eighth", "ninth",  "tenth"};
  return i < 10 ? w[i] : std::to_string(i + 1) + "th";
}

bool negative_feedback(const std::string& text) {
  static const std::regex neg(
      R"(\b(didn'?t|did not|don'?t|do not|never) (like|enjoy|want|care)|\b(hated?|dislike[ds]?|not for me|boring|terrible|awful|bad|seen (it|that)|already (seen|watched|played)|no more|not interested|remove)\b)",
      std::regex::icase);
  return std::regex_search(text, neg);
}

}  // namespace

ChatEngine::ChatEngine(std::shared_ptr<Catalog> catalog, std::shared_ptr<llm::LanguageModel> llm,
                       std::shared_ptr<store::Store> store, EngineOptions options)
    : catalog_(std::move(catalog)),
      llm_(std::move(llm)),
      store_(std::move(store)),
      options_(std::move(options)) {
  if (!catalog_ || catalog_->domains().empty()) {
    throw ChatError(ChatError::Kind::kBadRequest,
                    "the chat engine needs a catalogue with at least one domain");
  }
  if (!catalog_->find(options_.default_domain))
    options_.default_domain = catalog_->domains().front();
  if (llm_) cold_start_ = std::make_unique<ColdStartIndex>(llm_, store_);
}

ChatEngine::~ChatEngine() = default;

std::unique_ptr<ChatEngine> ChatEngine::open(const EngineConfig& config) {
  auto catalog = load_catalog(config.data_dir, config.domains, config.models, config.progress);
  if (!config.user_links.empty()) catalog->link_users(load_user_links(config.user_links));
  std::shared_ptr<llm::LanguageModel> lm;
  if (!config.llm.empty() && config.llm != "none")
    lm = llm::open_language_model(config.llm, config.llm_open);
  std::shared_ptr<store::Store> st;
  if (!config.store.empty()) st = store::open_store(config.store);
  auto engine = std::make_unique<ChatEngine>(catalog, lm, st, config.options);
  if (st) {
    // Items stored without interactions (added by `chatrec items add`) are cold-start items.
    for (const auto& domain : catalog->domains()) {
      std::vector<data::Item> cold;
      const DomainCatalog* d = catalog->find(domain);
      for (auto& item : st->list_items(domain)) {
        if (!d->find_item(item.id)) cold.push_back(std::move(item));
      }
      if (!cold.empty()) engine->add_items(domain, cold);
    }
  }
  return engine;
}

ConstraintStyle ChatEngine::constraint_style() const {
  if (options_.constraint_style) return *options_.constraint_style;
  return llm_ && llm_->name().starts_with("builtin") ? ConstraintStyle::kChoice
                                                     : ConstraintStyle::kJson;
}

std::string ChatEngine::llm_name() const {
  return llm_ ? llm_->name() : "none";
}

Stats ChatEngine::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

std::string ChatEngine::create_conversation(const std::string& user_id) {
  if (user_id.empty())
    throw ChatError(ChatError::Kind::kBadRequest, "a conversation needs a user id");
  auto s = std::make_shared<Session>();
  s->created_at = now_seconds();
  if (store_) {
    const auto conv = store_->create_conversation(user_id);
    s->state.conversation_id = conv.id;
  } else {
    s->state.conversation_id = store::random_id();
  }
  s->state.user_id = user_id;
  s->state.domain = options_.default_domain;
  {
    std::shared_lock lock(catalog_->mutex());
    s->state.history = catalog_->history_of(user_id);
    s->state.profile = catalog_->profile_of(user_id);
  }
  if (store_) {
    // Interactions recorded in the store (outside the training data) extend the history.
    for (const auto& it : store_->interactions_of(user_id)) {
      auto& list = s->state.history[it.domain];
      const bool known = std::any_of(list.begin(), list.end(),
                                     [&](const RatedItem& r) { return r.item_id == it.item_id; });
      if (!known)
        list.push_back({it.item_id, it.rating.value_or(it.kind == "like"      ? 5.0f
                                                       : it.kind == "dislike" ? 1.0f
                                                                              : 0.0f)});
    }
    store_->append_turn(s->state.conversation_id, {}, s->state.to_json().dump());
  }
  std::lock_guard lock(sessions_mutex_);
  sessions_[s->state.conversation_id] = s;
  return s->state.conversation_id;
}

std::shared_ptr<ChatEngine::Session> ChatEngine::session(const std::string& id) {
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) return it->second;
  }
  if (!store_) throw ChatError(ChatError::Kind::kNotFound, "unknown conversation '" + id + "'");
  const auto conv = store_->get_conversation(id);
  if (!conv) throw ChatError(ChatError::Kind::kNotFound, "unknown conversation '" + id + "'");
  auto s = std::make_shared<Session>();
  s->created_at = conv->created_at;
  const auto j = nlohmann::json::parse(conv->state_json, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("version")) {
    s->state = ConversationState::from_json(j);
  } else {
    s->state.conversation_id = id;
    s->state.user_id = conv->user_id;
    s->state.domain = options_.default_domain;
    std::shared_lock lock(catalog_->mutex());
    s->state.history = catalog_->history_of(conv->user_id);
    s->state.profile = catalog_->profile_of(conv->user_id);
  }
  std::lock_guard lock(sessions_mutex_);
  auto [it, inserted] = sessions_.emplace(id, s);
  return it->second;
}

ConversationState ChatEngine::conversation(const std::string& id) {
  auto s = session(id);
  std::lock_guard lock(s->mutex);
  return s->state;
}

std::vector<ConversationInfo> ChatEngine::conversations_of(const std::string& user_id) {
  std::vector<ConversationInfo> out;
  if (store_) {
    for (const auto& c : store_->conversations_of(user_id))
      out.push_back({c.id, c.user_id, c.created_at, c.updated_at});
    return out;
  }
  std::lock_guard lock(sessions_mutex_);
  for (const auto& [id, s] : sessions_) {
    if (s->state.user_id == user_id) out.push_back({id, user_id, s->created_at, s->created_at});
  }
  return out;
}

std::vector<DialogueTurn> ChatEngine::messages(const std::string& id) {
  if (store_) {
    session(id);  // throws for an unknown id
    std::vector<DialogueTurn> out;
    for (const auto& m : store_->messages(id)) out.push_back({m.role, m.content});
    return out;
  }
  return conversation(id).dialogue;
}

void ChatEngine::persist(Session& s, const std::vector<DialogueTurn>& new_turns,
                         const TurnResult& result) {
  for (const auto& t : new_turns) s.state.dialogue.push_back(t);
  while (s.state.dialogue.size() > 2 * options_.max_dialogue_turns)
    s.state.dialogue.erase(s.state.dialogue.begin());
  s.state.turns += 1;
  {
    std::lock_guard lock(stats_mutex_);
    stats_.merge(result.stats);
  }
  if (!store_) return;
  std::vector<store::StoredMessage> msgs;
  for (std::size_t i = 0; i < new_turns.size(); ++i) {
    store::StoredMessage m;
    m.role = new_turns[i].role;
    m.content = new_turns[i].content;
    m.payload_json = (m.role == "assistant") ? result.to_json().dump() : "{}";
    m.created_at = now_seconds();
    msgs.push_back(std::move(m));
  }
  try {
    store_->append_turn(s.state.conversation_id, msgs, s.state.to_json().dump());
  } catch (const std::exception& e) {
    // The answer stands; the user is told that it was not saved.
    throw ChatError(ChatError::Kind::kUnavailable,
                    std::string("could not save the conversation: ") + e.what());
  }
}

namespace {

// Everything a turn computes over the catalogue, under the catalogue's shared lock.
struct TurnContext {
  const Catalog& catalog;
  const EngineOptions& options;
  llm::LanguageModel* lm;
  ColdStartIndex* cold;
  ConversationState& state;
  TurnResult& result;
  const TextCallback& on_text;

  void emit(const std::string& s) {
    result.reply += s;
    if (on_text) on_text(s);
  }

  const DomainCatalog& domain(const std::string& name) const {
    const DomainCatalog* d = catalog.find(name);
    if (!d) throw ChatError(ChatError::Kind::kBadRequest, "unknown domain '" + name + "'");
    return *d;
  }

  std::vector<data::ItemIndex> history_items(const DomainCatalog& d,
                                             float min_rating = 0.0f) const {
    std::vector<data::ItemIndex> out;
    auto it = state.history.find(d.name);
    if (it == state.history.end()) return out;
    for (const auto& r : it->second) {
      if (r.rating > 0 && r.rating < min_rating) continue;
      if (auto i = d.find_item(r.item_id)) out.push_back(*i);
    }
    return out;
  }

  std::vector<data::ItemIndex> refs_in(const DomainCatalog& d,
                                       const std::vector<ItemRef>& refs) const {
    std::vector<data::ItemIndex> out;
    for (const auto& r : refs) {
      if (r.domain != d.name) continue;
      if (auto i = d.find_item(r.item_id)) out.push_back(*i);
    }
    return out;
  }

  // The user's best-rated items (most recent first) and the worst, as prompt lines.
  PromptContext prompt_context(const std::string& domain_name, const std::string& query,
                               std::size_t max_liked = 10, std::size_t max_disliked = 5) const {
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
        if ((r->rating >= 4.0f || r->rating == 0.0f) && ctx.liked.size() < max_liked) {
          ctx.liked.push_back(prompt_item(d->dataset->item(*i), r->rating));
        } else if (r->rating > 0 && r->rating <= 2.0f && ctx.disliked.size() < max_disliked) {
          ctx.disliked.push_back(prompt_item(d->dataset->item(*i), r->rating));
        }
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

  // Titles typed by the user resolved against a domain: whole-title mentions first, then a close
  // fuzzy match.
  std::optional<data::ItemIndex> resolve_title(const DomainCatalog& d,
                                               const std::string& snippet) const {
    const auto mentioned = d.titles.mentioned_in(snippet);
    if (!mentioned.empty()) return mentioned.front();
    const long long best = d.titles.best(snippet, 0.85);
    if (best >= 0) return static_cast<data::ItemIndex>(best);
    return std::nullopt;
  }

  // An item the message refers to: a title among the last recommendations, an ordinal ("the second
  // one"), a title in the catalogue, else the first recommendation when `default_first`.
  std::optional<ItemRef> referenced_item(const std::string& text, bool default_first) const {
    const std::string key = title_key(text);
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
    (void)key;
    if (default_first && !state.last_recommendations.empty()) {
      return ItemRef{state.last_recommendations.front().domain,
                     state.last_recommendations.front().item_id};
    }
    return std::nullopt;
  }

  void apply_titles(const ConstraintUpdate& u) {
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

  // Reason for a recommendation: the liked history item most similar to it, and its categories.
  std::string reason_for(const DomainCatalog& d, data::ItemIndex item, Source source) const {
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
};

}  // namespace

std::size_t ChatEngine::add_items(const std::string& domain, const std::vector<data::Item>& items) {
  std::vector<std::pair<data::ItemIndex, data::Item>> indexed;
  for (auto item : items) {
    if (item.id.empty() || item.title.empty()) {
      throw ChatError(ChatError::Kind::kBadRequest, "an item needs an id and a title");
    }
    item.domain = domain;
    const data::ItemIndex i = catalog_->add_cold_item(domain, item);
    indexed.emplace_back(i, item);
  }
  if (store_) {
    std::vector<data::Item> stored;
    for (const auto& [i, item] : indexed) stored.push_back(item);
    store_->upsert_items(stored);
  }
  if (cold_start_) {
    Stats s;
    cold_start_->add(domain, indexed, true, &s);
    std::lock_guard lock(stats_mutex_);
    stats_.merge(s);
  }
  return indexed.size();
}

std::vector<Recommendation> ChatEngine::recommend_fast(const std::string& user_id,
                                                       const std::string& domain_name,
                                                       std::size_t k,
                                                       const Constraints& constraints) {
  std::shared_lock lock(catalog_->mutex());
  const DomainCatalog* d =
      catalog_->find(domain_name.empty() ? options_.default_domain : domain_name);
  if (!d) throw ChatError(ChatError::Kind::kBadRequest, "unknown domain '" + domain_name + "'");
  CandidateRequest q;
  q.user = d->dataset_user(user_id);
  q.constraints = constraints;
  q.k = k;
  for (const auto& r : constraints.exclude) {
    if (r.domain == d->name) {
      if (auto i = d->find_item(r.item_id)) q.excluded.push_back(*i);
    }
  }
  for (const auto& r : constraints.like) {
    if (r.domain == d->name) {
      if (auto i = d->find_item(r.item_id)) q.anchors.push_back(*i);
    }
  }
  std::vector<Recommendation> out;
  for (const auto& c : collaborative_candidates(*d, q)) {
    out.push_back(make_recommendation(d->dataset->item(c.item), d->name, c.score, c.source));
  }
  return out;
}

float ChatEngine::predict_rating(const std::string& user_id, const ItemRef& ref, Stats* stats) {
  std::shared_lock lock(catalog_->mutex());
  const DomainCatalog* d = catalog_->find(ref.domain);
  if (!d) throw ChatError(ChatError::Kind::kBadRequest, "unknown domain '" + ref.domain + "'");
  const auto item = d->find_item(ref.item_id);
  if (!item) throw ChatError(ChatError::Kind::kNotFound, "unknown item '" + ref.item_id + "'");
  const auto user = d->dataset_user(user_id);
  float fallback = static_cast<float>(d->matrix->global_mean());
  if (user && d->model->predicts_ratings() && *item < d->model_items)
    fallback = d->model->predict(*user, *item);
  ConversationState st;
  st.user_id = user_id;
  st.history = catalog_->history_of(user_id);
  st.profile = catalog_->profile_of(user_id);
  TurnResult tr;
  TextCallback none;
  TurnContext tc{*catalog_, options_, llm_.get(), cold_start_.get(), st, tr, none};
  PromptContext ctx = tc.prompt_context(ref.domain, "", 8, 4);
  bool used = false;
  Stats local;
  const float r =
      predict_rating_llm(llm_.get(), ctx, prompt_item(d->dataset->item(*item)), fallback,
                         options_.llm_timeout_seconds, stats ? stats : &local, &used);
  return std::clamp(r, 1.0f, 5.0f);
}

TurnResult ChatEngine::turn(const std::string& conversation_id, const std::string& user_text,
                            const TextCallback& on_text) {
  const auto start = Clock::now();
  auto s = session(conversation_id);
  std::lock_guard session_lock(s->mutex);
  std::shared_lock catalog_lock(catalog_->mutex());
  ConversationState& state = s->state;
  TurnResult result;
  result.conversation_id = conversation_id;
  TurnContext tc{*catalog_, options_, llm_.get(), cold_start_.get(), state, result, on_text};
  const std::string text(text::trim(user_text));
  if (text.empty()) throw ChatError(ChatError::Kind::kBadRequest, "empty message");

  std::vector<std::string> last_titles;
  for (const auto& r : state.last_recommendations) last_titles.push_back(r.title);
  const IntentDecision intent =
      classify_intent(options_.llm_intent ? llm_.get() : nullptr, text, last_titles,
                      options_.llm_timeout_seconds, &result.stats);
  result.intent = intent.intent;
  result.intent_decided_by = intent.decided_by;
  if (!intent.note.empty() && intent.decided_by == "rules" && llm_ && options_.llm_intent) {
    result.notes.push_back("intent: " + intent.note + "; decided by keywords");
  }

  ConstraintVocabulary vocab;
  vocab.domains = catalog_->domains();
  vocab.categories = [this](const std::string& dn) {
    const DomainCatalog* d = catalog_->find(dn);
    return d ? d->categories : std::vector<std::string>{};
  };
  vocab.latest_year = [this](const std::string& dn) {
    const DomainCatalog* d = catalog_->find(dn);
    return d ? d->latest_year : 0;
  };

  if (result.intent == Intent::kRecommend || result.intent == Intent::kFeedback ||
      result.intent == Intent::kOther) {
    const ConstraintUpdate update =
        result.intent == Intent::kRecommend
            ? extract_constraints(options_.llm_constraints ? llm_.get() : nullptr, text,
                                  state.domain, vocab, options_.llm_timeout_seconds, &result.stats,
                                  &result.notes, constraint_style())
            : extract_constraints_rules(text, state.domain, vocab);
    if (state.constraints.domain.empty()) state.constraints.domain = state.domain;
    apply_update(update, state.constraints);
    if (update.domain) state.domain = *update.domain;
    tc.apply_titles(update);
  }

  // A free-form LLM answer streamed into the reply; on failure the turn is marked degraded and ""
  // returned so the caller falls back to its `resolution` (a template or canned text).
  const auto llm_answer = [&](const PromptContext& ctx, const PromptItem* item,
                              const char* resolution) -> std::string {
    if (!llm_) return {};
    const auto prompt = answer_prompt(*llm_, ctx, item, options_.max_reply_tokens + 8);
    llm::GenerationOptions go;
    go.max_tokens = options_.max_reply_tokens;
    go.stop = {"\n\n"};
    go.on_text = [&](std::string_view p) {
      if (on_text) on_text(p);
      return true;
    };
    LlmCallResult r =
        call_chat(*llm_, prompt.messages, go, options_.llm_timeout_seconds, &result.stats);
    if (!r.completion) {
      result.stats.fail(r.failure, resolution);
      result.degraded = true;
      result.notes.push_back(r.message);
      return {};
    }
    result.reply += r.completion->text;
    return r.completion->text;
  };

  switch (result.intent) {
    case Intent::kRecommend: {
      const DomainCatalog& d = tc.domain(state.domain);
      result.domain = d.name;
      const auto history = tc.history_items(d);
      const auto excluded = tc.refs_in(d, state.disliked);
      const auto anchors = tc.refs_in(d, state.liked);
      std::vector<Candidate> candidates;
      bool cross_domain = false;
      const auto keep = [&](data::ItemIndex i) {
        return satisfies(d.dataset->item(i), state.constraints) &&
               std::find(excluded.begin(), excluded.end(), i) == excluded.end() &&
               std::find(history.begin(), history.end(), i) == history.end();
      };
      bool other_history = false;
      for (const auto& [name, list] : state.history)
        other_history = other_history || (name != d.name && !list.empty());
      if (history.empty() && anchors.empty() && other_history && cold_start_) {
        // Cross-domain: no history here, so retrieve by embedding similarity to the user's tastes
        // elsewhere.
        cross_domain = true;
        try {
          std::vector<std::pair<data::ItemIndex, data::Item>> pool;
          for (std::size_t j = 0; j < std::min(options_.cross_domain_pool, d.by_popularity.size());
               ++j) {
            pool.emplace_back(d.by_popularity[j], d.dataset->item(d.by_popularity[j]));
          }
          cold_start_->add(d.name, pool, false, &result.stats);
          PromptContext pc = tc.prompt_context(d.name, text, 8, 0);
          std::string query = text;
          for (const auto& l : pc.liked)
            query +=
                " | " + l.title + (l.categories.empty() ? "" : " " + text::join(l.categories, " "));
          const auto qv = cold_start_->embed_query(query, &result.stats);
          for (const auto& hit :
               cold_start_->search(d.name, qv, options_.num_candidates, false, keep)) {
            candidates.push_back(
                {hit.item, hit.similarity, hit.cold ? Source::kColdStart : Source::kLlm});
          }
        } catch (const std::exception& e) {
          result.stats.fail("llm_error", "collaborative_candidates");
          result.degraded = true;
          result.notes.push_back(std::string("cross-domain retrieval failed (") + e.what() +
                                 "); showing popular items");
        }
      }
      if (candidates.empty()) {
        CandidateRequest q;
        q.user = d.dataset_user(state.user_id);
        q.history = history;
        q.constraints = state.constraints;
        q.anchors = anchors;
        q.excluded = excluded;
        q.k = options_.num_candidates;
        candidates = collaborative_candidates(d, q);
        cross_domain = false;
      }
      // Cold-start items similar to the request join the candidates.
      std::optional<std::size_t> reserved_cold;
      if (cold_start_ && options_.cold_start_candidates > 0 &&
          cold_start_->size(d.name, true) > 0) {
        try {
          std::string query = text;
          const std::string c = describe(state.constraints);
          if (!c.empty()) query += " | " + c;
          const auto qv = cold_start_->embed_query(query, &result.stats);
          std::size_t best_overlap = 0;
          for (const auto& hit :
               cold_start_->search(d.name, qv, options_.cold_start_candidates, true, keep)) {
            if (std::any_of(candidates.begin(), candidates.end(),
                            [&](const Candidate& x) { return x.item == hit.item; }))
              continue;
            candidates.push_back({hit.item, hit.similarity, Source::kColdStart});
            const std::size_t overlap =
                shared_content_words(text, item_text(d.dataset->item(hit.item)));
            if (overlap > best_overlap)
              best_overlap = overlap, reserved_cold = candidates.size() - 1;
          }
        } catch (const std::exception& e) {
          result.stats.fail("llm_error", "no_cold_start");
          result.notes.push_back(std::string("cold-start retrieval failed: ") + e.what());
        }
      }
      const auto no_results = [&]() {
        tc.emit("I found nothing in the " + d.name + " catalogue matching " +
                (describe(state.constraints).empty() ? std::string("that")
                                                     : describe(state.constraints)) +
                ". Try relaxing a constraint.");
      };
      if (candidates.empty()) {
        no_results();
        break;
      }
      // The list's heading is known before the LLM ranks: streaming it now shows the user the
      // request was understood while the rerank runs.
      const std::size_t shown = std::min(options_.top_k, candidates.size());
      std::string intro = "Here are " + std::to_string(shown) + " " + domain_noun(d.name, true);
      const std::string cdesc = describe(state.constraints);
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
      rq.k = std::min(options_.top_k, candidates.size());
      rq.mode = options_.rerank;
      rq.hint_top1 = options_.hint_top1 && !cross_domain;
      rq.fusion_weight = options_.fusion_weight;
      rq.max_list_tokens = options_.max_list_tokens;
      rq.timeout_seconds = options_.llm_timeout_seconds;
      rq.in_catalogue = [&d](std::string_view title) { return d.titles.best(title, 0.9) >= 0; };
      RerankResult rr = rerank(llm_.get(), rq, &result.stats);
      for (const auto& n : rr.notes) result.notes.push_back(n);
      result.degraded = result.degraded || rr.degraded;
      std::vector<std::size_t> top = rr.top;
      if (reserved_cold && std::find(top.begin(), top.end(), *reserved_cold) == top.end() &&
          !top.empty()) {
        // The cold-start item that matches the request's words keeps a place (the last one).
        top.back() = *reserved_cold;
        result.stats.resolutions["cold_start_slot"] += 1;
      }
      if (top.empty()) {
        no_results();
        break;
      }
      state.last_recommendations.clear();
      for (std::size_t rank = 0; rank < top.size(); ++rank) {
        const Candidate& c = candidates[top[rank]];
        Source src = c.source;
        if (src == Source::kCollaborative && rr.llm_used && top[rank] != rank) src = Source::kLlm;
        Recommendation rec = make_recommendation(d.dataset->item(c.item), d.name,
                                                 static_cast<double>(top.size() - rank), src);
        rec.reason = tc.reason_for(d, c.item, src);
        state.last_recommendations.push_back(rec);
        const ItemRef ref{d.name, rec.item_id};
        if (std::find(state.shown.begin(), state.shown.end(), ref) == state.shown.end())
          state.shown.push_back(ref);
      }
      result.recommendations = state.last_recommendations;
      for (std::size_t i = 0; i < result.recommendations.size(); ++i) {
        const auto& r = result.recommendations[i];
        tc.emit(std::to_string(i + 1) + ". " + r.title + " — " + r.reason + "\n");
      }
      if (rr.degraded)
        tc.emit(
            "(The language model could not rank these, so this is the recommender's own order.)\n");
      break;
    }
    case Intent::kExplain:
    case Intent::kItemQuestion: {
      const auto ref = tc.referenced_item(text, result.intent == Intent::kExplain);
      if (!ref) {
        result.domain = state.domain;
        tc.emit(result.intent == Intent::kExplain
                    ? "I have not recommended anything yet. Ask me for recommendations first."
                    : "Which title do you mean? I could not find it in the catalogue.");
        break;
      }
      const DomainCatalog& d = tc.domain(ref->domain);
      result.domain = d.name;
      const auto item = d.find_item(ref->item_id);
      if (!item) throw ChatError(ChatError::Kind::kNotFound, "unknown item '" + ref->item_id + "'");
      const PromptItem pi = prompt_item(d.dataset->item(*item));
      if (result.intent == Intent::kItemQuestion) {
        PromptContext ctx = tc.prompt_context(d.name, text, 3, 0);
        const std::string answer = llm_answer(ctx, &pi, "metadata_answer");
        if (answer.empty()) tc.emit(template_explanation(pi, {}, d.name));
        break;
      }
      // Support: the liked history items most similar to the item.
      std::vector<PromptItem> support;
      const auto liked = tc.history_items(d, 4.0f);
      if (!liked.empty() && !d.is_cold(*item)) {
        const std::array<data::ItemIndex, 1> one = {*item};
        const auto sim = d.similarity_to(one);
        std::vector<data::ItemIndex> order = liked;
        std::stable_sort(order.begin(), order.end(),
                         [&](data::ItemIndex a, data::ItemIndex b) { return sim[a] > sim[b]; });
        const auto& hist = state.history[d.name];
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
      Explanation e = explain_item(llm_.get(), ctx, pi, support, options_.max_reply_tokens,
                                   options_.llm_timeout_seconds, on_text, &result.stats);
      result.reply += e.text;
      result.degraded = result.degraded || e.degraded;
      for (const auto& n : e.notes) result.notes.push_back(n);
      for (const auto& r : state.last_recommendations) {
        if (r.domain == ref->domain && r.item_id == ref->item_id) {
          Recommendation rec = r;
          rec.reason = e.text;
          result.recommendations.push_back(rec);
        }
      }
      break;
    }
    case Intent::kFeedback: {
      result.domain = state.domain;
      const auto ref = tc.referenced_item(text, true);
      const bool negative = negative_feedback(text);
      if (!ref) {
        tc.emit(negative
                    ? "Noted. Tell me which title you did not like, or ask for new recommendations."
                    : "Glad to hear it! Ask me for more recommendations any time.");
        break;
      }
      const DomainCatalog& d = tc.domain(ref->domain);
      const auto item = d.find_item(ref->item_id);
      const std::string title = item ? display_title(d.dataset->item(*item).title) : ref->item_id;
      if (negative) {
        state.add_disliked(*ref);
        state.last_recommendations.erase(
            std::remove_if(state.last_recommendations.begin(), state.last_recommendations.end(),
                           [&](const Recommendation& r) {
                             return r.domain == ref->domain && r.item_id == ref->item_id;
                           }),
            state.last_recommendations.end());
        tc.emit("Noted: you did not like " + title + ". I will not recommend it again.");
      } else {
        state.add_liked(*ref);
        tc.emit("Noted: you liked " + title + ". I will recommend more like it.");
      }
      break;
    }
    case Intent::kOther: {
      result.domain = state.domain;
      std::string answer;
      if (llm_)
        answer = llm_answer(tc.prompt_context(state.domain, text, 3, 0), nullptr, "canned_reply");
      if (answer.empty()) {
        tc.emit("I can recommend " + domain_noun(state.domain, true) +
                " (tell me genres, eras or titles you like), explain my suggestions, and learn "
                "from your feedback.");
      }
      break;
    }
  }
  result.constraints = state.constraints;
  result.stats.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  persist(*s, {{"user", text}, {"assistant", result.reply}}, result);
  return result;
}

TurnResult ChatEngine::explain(const std::string& conversation_id, const ItemRef& item,
                               const TextCallback& on_text) {
  std::string title;
  {
    std::shared_lock lock(catalog_->mutex());
    const DomainCatalog* d = catalog_->find(item.domain);
    if (!d) throw ChatError(ChatError::Kind::kBadRequest, "unknown domain '" + item.domain + "'");
    const auto i = d->find_item(item.item_id);
    if (!i) throw ChatError(ChatError::Kind::kNotFound, "unknown item '" + item.item_id + "'");
    title = display_title(d->dataset->item(*i).title);
  }
  return turn(conversation_id, "Why did you recommend " + title + "?", on_text);
}

TurnResult ChatEngine::feedback(const std::string& conversation_id, const ItemRef& item,
                                bool liked) {
  std::string title;
  {
    std::shared_lock lock(catalog_->mutex());
    const DomainCatalog* d = catalog_->find(item.domain);
    if (!d) throw ChatError(ChatError::Kind::kBadRequest, "unknown domain '" + item.domain + "'");
    const auto i = d->find_item(item.item_id);
    if (!i) throw ChatError(ChatError::Kind::kNotFound, "unknown item '" + item.item_id + "'");
    title = display_title(d->dataset->item(*i).title);
  }
  const auto start = Clock::now();
  auto s = session(conversation_id);
  std::lock_guard lock(s->mutex);
  TurnResult result;
  result.conversation_id = conversation_id;
  result.intent = Intent::kFeedback;
  result.intent_decided_by = "api";
  result.domain = item.domain;
  if (liked) {
    s->state.add_liked(item);
    result.reply = "Noted: you liked " + title + ". I will recommend more like it.";
  } else {
    s->state.add_disliked(item);
    auto& lr = s->state.last_recommendations;
    lr.erase(std::remove_if(lr.begin(), lr.end(),
                            [&](const Recommendation& r) {
                              return r.domain == item.domain && r.item_id == item.item_id;
                            }),
             lr.end());
    result.reply = "Noted: you did not like " + title + ". I will not recommend it again.";
  }
  if (store_) {
    store::StoredInteraction si;
    si.user_id = s->state.user_id;
    si.item_id = item.item_id;
    si.domain = item.domain;
    si.kind = liked ? "like" : "dislike";
    si.timestamp = now_seconds();
    store_->add_interactions({si});
  }
  result.constraints = s->state.constraints;
  result.stats.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  persist(*s,
          {{"user", std::string(liked ? "I liked " : "I didn't like ") + title},
           {"assistant", result.reply}},
          result);
  return result;
}

}  // namespace chatrec::chat
