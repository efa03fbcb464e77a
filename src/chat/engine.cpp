#include "chat/engine.h"

#include <algorithm>
#include <chrono>
#include <shared_mutex>

#include <spdlog/spdlog.h>

#include "chat/candidates.h"
#include "chat/catalog.h"
#include "chat/cold_start.h"
#include "chat/constraints.h"
#include "chat/explain.h"
#include "chat/handlers.h"
#include "chat/intent.h"
#include "chat/sessions.h"
#include "chat/title_match.h"
#include "chat/turn_context.h"
#include "common/clock.h"
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

namespace {

using Clock = std::chrono::steady_clock;

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
  sessions_ = std::make_unique<Sessions>(catalog_, store_, options_);
}

ChatEngine::~ChatEngine() = default;

std::unique_ptr<ChatEngine> ChatEngine::open(const EngineConfig& config) {
  const auto log = [&](const std::string& line) {
    if (config.log) config.log(line);
  };
  CatalogModels models{config.models, config.model_files, config.progress, config.log};
  auto catalog = load_catalog(config.data_dir, config.domains, models);
  if (!config.user_links.empty()) catalog->link_users(load_user_links(config.user_links));
  std::shared_ptr<llm::LanguageModel> lm;
  if (!config.llm.empty() && config.llm != "none") {
    log("opening LLM " + config.llm);
    lm = llm::open_language_model(config.llm, config.llm_open);
  }
  std::shared_ptr<store::Store> st = config.opened_store;
  if (!st && !config.store.empty()) st = store::open_store(config.store);
  auto engine = std::make_unique<ChatEngine>(catalog, lm, st, config.options);
  if (st) {
    // Items stored without interactions (added through the API or `chatrec items add`) are
    // cold-start items.
    for (const auto& domain : catalog->domains()) {
      std::vector<data::Item> cold;
      const DomainCatalog* d = catalog->find(domain);
      for (auto& item : st->list_items(domain)) {
        if (!d->find_item(item.id)) cold.push_back(std::move(item));
      }
      if (cold.empty()) continue;
      log(domain + ": " + std::to_string(cold.size()) + " cold-start items from the store");
      engine->add_items(domain, cold);
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

ChatEngine::LlmHealth ChatEngine::llm_health() const {
  LlmHealth h;
  {
    std::lock_guard lock(stats_mutex_);
    h.answered = llm_answered_;
  }
  if (cold_start_) h.cold_start_pending = cold_start_->pending();
  return h;
}

Stats ChatEngine::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

std::string ChatEngine::create_conversation(const std::string& user_id) {
  return sessions_->create(user_id)->state.conversation_id;
}

ConversationState ChatEngine::conversation(const std::string& id) {
  auto s = sessions_->get(id);
  std::lock_guard lock(s->mutex);
  return s->state;
}

std::vector<ConversationInfo> ChatEngine::conversations_of(const std::string& user_id) {
  return sessions_->of_user(user_id);
}

std::vector<DialogueTurn> ChatEngine::messages(const std::string& id) {
  return sessions_->messages(id);
}

void ChatEngine::finish_turn(Session& s, const ConversationState& before,
                             const std::vector<DialogueTurn>& new_turns, TurnResult& result,
                             Clock::time_point start, const std::string& listing) {
  result.constraints = s.state.constraints;
  result.stats.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  {
    std::lock_guard lock(stats_mutex_);
    stats_.merge(result.stats);
    if (result.stats.failures.count("llm_error") || result.stats.failures.count("timeout")) {
      llm_answered_ = false;
    } else if (result.stats.llm_calls > 0) {
      llm_answered_ = true;
    }
  }
  try {
    sessions_->save_turn(s, new_turns, result, listing);
  } catch (const ChatError& e) {
    // The store refused the turn: the session goes back to what is stored, so the next turn (on
    // this replica or another) starts from the same state.
    if (e.kind() == ChatError::Kind::kUnavailable) s.state = before;
    throw;
  }
}

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
    if (!cold_start_->add(domain, indexed, true, &s)) {
      spdlog::warn(
          "{}: the LLM cannot embed {} new items now; they are indexed for cold-start "
          "retrieval when it answers",
          domain, indexed.size());
    }
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
  ConversationState st;
  st.user_id = user_id;
  st.history = catalog_->history_of(user_id);
  st.profile = catalog_->profile_of(user_id);
  TurnResult tr;
  TextCallback none;
  TurnContext tc{*catalog_, options_, llm_.get(), cold_start_.get(), st, tr, none};
  const DomainCatalog& d = tc.domain(ref.domain);
  const data::ItemIndex item = tc.item_index(ref);
  const auto user = d.dataset_user(user_id);
  float fallback = static_cast<float>(d.matrix->global_mean());
  if (user && d.model->predicts_ratings() && item < d.model_items)
    fallback = d.model->predict(*user, item);
  PromptContext ctx = tc.prompt_context(ref.domain, "", 8, 4);
  bool used = false;
  Stats local;
  const float r = predict_rating_llm(llm_.get(), ctx, prompt_item(d.dataset->item(item)), fallback,
                                     options_.llm_timeout_seconds, stats ? stats : &local, &used);
  return std::clamp(r, 1.0f, 5.0f);
}

TurnResult ChatEngine::turn(const std::string& conversation_id, const std::string& user_text,
                            const TextCallback& on_text) {
  const auto start = Clock::now();
  auto s = sessions_->get(conversation_id);
  std::lock_guard session_lock(s->mutex);
  std::shared_lock catalog_lock(catalog_->mutex());
  const ConversationState before = s->state;
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
  // Feedback and a new request in one message are both served, the feedback first.
  std::optional<FeedbackAndRequest> both;
  if (result.intent == Intent::kFeedback || result.intent == Intent::kRecommend)
    both = split_feedback_and_request(text);
  if (both) result.intent = Intent::kFeedback;

  if (result.intent == Intent::kRecommend || result.intent == Intent::kFeedback ||
      result.intent == Intent::kOther) {
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
    const ConstraintUpdate update =
        result.intent == Intent::kRecommend || both
            ? extract_constraints(options_.llm_constraints ? llm_.get() : nullptr,
                                  both ? both->request : text, state.domain, vocab,
                                  options_.llm_timeout_seconds, &result.stats, &result.notes,
                                  constraint_style())
            : extract_constraints_rules(text, state.domain, vocab);
    if (state.constraints.domain.empty()) state.constraints.domain = state.domain;
    apply_update(update, state.constraints);
    if (update.domain) state.domain = *update.domain;
    tc.apply_titles(update);
  }

  switch (result.intent) {
    case Intent::kRecommend:
      handle_recommend(tc, text);
      break;
    case Intent::kExplain:
    case Intent::kItemQuestion: {
      const bool explain = result.intent == Intent::kExplain;
      if (const auto ref = tc.referenced_item(text, explain)) {
        if (explain)
          handle_explain(tc, *ref, text);
        else
          handle_item_question(tc, *ref, text);
        break;
      }
      result.domain = state.domain;
      tc.emit(explain ? "I have not recommended anything yet. Ask me for recommendations first."
                      : "Which title do you mean? I could not find it in the catalogue.");
      break;
    }
    case Intent::kFeedback: {
      result.domain = state.domain;
      const std::string& said = both ? both->feedback : text;
      const bool negative = negative_feedback(said);
      if (const auto ref = tc.referenced_item(said, true)) {
        handle_feedback(tc, *ref, !negative);
      } else {
        tc.emit(negative
                    ? "Noted. Tell me which title you did not like, or ask for new recommendations."
                    : "Glad to hear it! Ask me for more recommendations any time.");
      }
      if (both) {
        tc.emit("\n\n");
        handle_recommend(tc, both->request);
      }
      break;
    }
    case Intent::kOther:
      handle_other(tc, text);
      break;
  }
  finish_turn(*s, before, {{"user", text}, {"assistant", result.reply}}, result, start, tc.listing);
  return result;
}

// The structured actions call their handler with the item: nothing goes back through intent
// classification. `act` runs the handler and returns the user's side of the dialogue.
TurnResult ChatEngine::structured_turn(
    const std::string& conversation_id, Intent intent, const ItemRef& item,
    const TextCallback& on_text,
    const std::function<std::string(TurnContext&, const std::string& title)>& act) {
  const auto start = Clock::now();
  auto s = sessions_->get(conversation_id);
  std::lock_guard session_lock(s->mutex);
  std::shared_lock catalog_lock(catalog_->mutex());
  const ConversationState before = s->state;
  TurnResult result;
  result.conversation_id = conversation_id;
  result.intent = intent;
  result.intent_decided_by = "api";
  result.domain = item.domain;
  TurnContext tc{*catalog_, options_, llm_.get(), cold_start_.get(), s->state, result, on_text};
  const std::string title =
      display_title(tc.domain(item.domain).dataset->item(tc.item_index(item)).title);
  const std::string said = act(tc, title);
  finish_turn(*s, before, {{"user", said}, {"assistant", result.reply}}, result, start);
  return result;
}

TurnResult ChatEngine::explain(const std::string& conversation_id, const ItemRef& item,
                               const TextCallback& on_text) {
  return structured_turn(conversation_id, Intent::kExplain, item, on_text,
                         [&](TurnContext& tc, const std::string& title) {
                           const std::string question = "Why did you recommend " + title + "?";
                           handle_explain(tc, item, question);
                           return question;
                         });
}

TurnResult ChatEngine::feedback(const std::string& conversation_id, const ItemRef& item,
                                bool liked) {
  return structured_turn(conversation_id, Intent::kFeedback, item, {},
                         [&](TurnContext& tc, const std::string& title) {
                           handle_feedback(tc, item, liked);
                           if (store_) {
                             store::StoredInteraction si;
                             si.user_id = tc.state.user_id;
                             si.item_id = item.item_id;
                             si.domain = item.domain;
                             si.kind = liked ? "like" : "dislike";
                             si.timestamp = clock::unix_seconds();
                             store_->add_interactions({si});
                           }
                           return std::string(liked ? "I liked " : "I didn't like ") + title;
                         });
}

}  // namespace chatrec::chat
