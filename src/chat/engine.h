#pragma once
// ChatEngine: the Chat-Rec loop behind the HTTP API and the terminal chat. Each turn the engine
// decides what the user wants (LLM constrained choice, rules as fallback), updates the
// conversation's preferences, asks the classic recommender for candidates under them (plus
// cold-start items found by embedding similarity), lets the LLM rerank them to a top-k and answers.
// Whenever the LLM fails or answers nonsense the engine falls back to the classic ranking and says
// so (degraded + notes); it never returns an item outside the catalogue, a disliked item, or an
// error for bad LLM output.
//
// Thread safety: all methods may be called concurrently; turns of one conversation are serialised
// by a per-conversation mutex, different conversations run in parallel (the LLM backend serialises
// itself).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/constraints.h"
#include "chat/state.h"
#include "chat/types.h"
#include "data/dataset.h"
#include "llm/factory.h"
#include "llm/language_model.h"

namespace chatrec::llm {
class LanguageModel;
}
namespace chatrec::store {
class Store;
}

namespace chatrec::chat {

class Catalog;
class ColdStartIndex;
class Sessions;
struct Session;
struct TurnContext;

// Bad requests (unknown conversation, user input the engine cannot act on) as opposed to internal
// faults.
class ChatError : public std::runtime_error {
 public:
  // kUnavailable: the service's own fault (its store failed), not the request's.
  enum class Kind { kNotFound, kBadRequest, kUnavailable };
  ChatError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// How the LLM turns the candidates into the final list.
//   kNone:     the recommender's own order (no LLM in the ranking).
//   kGenerate: the LLM writes a numbered list; the parser maps it back onto the candidates.
//   kScore:    each candidate is scored by its length-normalised log-likelihood; cannot leave the
//   set.
enum class RerankMode { kNone, kGenerate, kScore };
const char* to_string(RerankMode mode);
bool parse_rerank_mode(const std::string& name, RerankMode* out);

struct EngineOptions {
  RerankMode rerank = RerankMode::kScore;
  bool hint_top1 = true;  // "The first film to be selected is 'X'. Please select the remaining 4"
  double fusion_weight =
      1.0;  // final = w * LLM rank score + (1 - w) * base rank score; 1 = LLM order
  std::size_t num_candidates = 20;
  std::size_t top_k = 5;
  // Conversations kept in memory in front of a store; past it the least recently used ones not in
  // a turn leave (they load again from the store when asked for). Without a store every
  // conversation stays, since memory is all there is of it.
  std::size_t session_cache = 1024;
  std::size_t cold_start_candidates = 3;  // cold-start items joining the candidates per request
  // Items the LLM could not embed when they were added (e.g. it was down at start-up) are tried
  // again by a turn at most this often.
  double cold_start_retry_seconds = 30.0;
  std::size_t cross_domain_pool =
      300;                    // most popular items of a domain indexed for cross-domain retrieval
  int max_reply_tokens = 96;  // free-text answers (explanations, chit-chat)
  int max_list_tokens = 160;  // generate-mode lists
  double llm_timeout_seconds = 60.0;  // per LLM call; on expiry the classic answer is used
  bool llm_intent = true;             // false: rules only
  bool llm_constraints = true;        // false: catalogue matcher only
  // Unset: constrained genre choice for the built-in runtime, JSON for other backends.
  std::optional<ConstraintStyle> constraint_style;
  std::string default_domain = "movies";
  std::size_t max_dialogue_turns =
      20;  // kept in the state (prompts trim further to the context budget)
};

// Everything ChatEngine::open needs to build a deployment from files.
struct EngineConfig {
  std::string data_dir;  // holds ml-100k/ and amazon-games/
  std::string llm =
      "builtin";  // llm::open_language_model spec: builtin, builtin:FILE, openai:URL, mock
  llm::OpenOptions llm_open;  // --lora for the built-in runtime
  std::string store;          // store::open_store URL; "" = conversations in memory only
  // An already opened store (e.g. one `serve` imported the datasets into), used instead of `store`.
  std::shared_ptr<store::Store> opened_store;
  std::vector<std::string> domains = {"movies", "games"};
  std::map<std::string, std::string> models;  // domain -> recommender (default: the domain's)
  // domain -> a saved model trained on the whole dataset, loaded instead of training one.
  std::map<std::string, std::string> model_files;
  // "DOMAIN DATASET_USER_ID USER_ID" lines linking deployment users to anonymous datasets' users
  // (chat/domains.h); empty: none linked.
  std::string user_links;
  bool progress = true;
  // Start-up lines (models trained or loaded, the LLM opened, cold-start items); may be empty.
  std::function<void(const std::string&)> log;
  EngineOptions options;
};

struct TurnResult {
  std::string conversation_id;
  std::string reply;
  std::vector<Recommendation> recommendations;
  Intent intent = Intent::kOther;
  std::string intent_decided_by;   // "llm" or "rules"
  std::string domain;              // the domain the answer draws from
  Constraints constraints;         // in force for this turn
  bool degraded = false;           // the LLM failed somewhere and a classic fallback answered
  std::vector<std::string> notes;  // human-readable: what failed and what was used instead
  Stats stats;
  nlohmann::json to_json() const;
};

struct ConversationInfo {
  std::string id;
  std::string user_id;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

// Receives the reply as it is produced (streamed LLM text, or the composed reply in pieces).
using TextCallback = std::function<void(std::string_view)>;

class ChatEngine {
 public:
  // `store` may be null (conversations live in memory). `catalog` must hold at least one domain.
  ChatEngine(std::shared_ptr<Catalog> catalog, std::shared_ptr<llm::LanguageModel> llm,
             std::shared_ptr<store::Store> store, EngineOptions options = {});
  ~ChatEngine();
  ChatEngine(const ChatEngine&) = delete;
  ChatEngine& operator=(const ChatEngine&) = delete;

  // The one start-up path of `serve` and `chat`: loads the datasets of config.domains from
  // data_dir, trains (or loads) their recommenders, links users, opens the LLM and the store, and
  // indexes items stored without interactions (cold start).
  static std::unique_ptr<ChatEngine> open(const EngineConfig& config);

  // Conversations. A user unknown to the catalogue gets an empty history (cold user).
  std::string create_conversation(const std::string& user_id);
  // Throws ChatError kNotFound for an unknown id.
  ConversationState conversation(const std::string& conversation_id);
  std::vector<ConversationInfo> conversations_of(const std::string& user_id);
  std::vector<DialogueTurn> messages(const std::string& conversation_id);

  // One user turn. `on_text` receives the reply text as it is produced.
  TurnResult turn(const std::string& conversation_id, const std::string& user_text,
                  const TextCallback& on_text = {});

  // Classic top-k for a user under constraints, without the LLM (fast path, e.g. for page loads).
  std::vector<Recommendation> recommend_fast(const std::string& user_id, const std::string& domain,
                                             std::size_t k, const Constraints& constraints = {});

  // Explains why `item` suits the conversation's user (grounded in metadata and the user's
  // history).
  TurnResult explain(const std::string& conversation_id, const ItemRef& item,
                     const TextCallback& on_text = {});
  // Records a like / dislike: disliked items never reappear; liked ones become anchors.
  TurnResult feedback(const std::string& conversation_id, const ItemRef& item, bool liked);

  // Adds items without interactions (cold start): stored, embedded and retrievable by text
  // similarity. Returns how many were added.
  std::size_t add_items(const std::string& domain, const std::vector<data::Item>& items);

  // The LLM's predicted rating (1..5) of an item for a user; the base model's prediction on
  // failure.
  float predict_rating(const std::string& user_id, const ItemRef& item, Stats* stats = nullptr);

  Stats stats() const;  // totals since construction
  const Catalog& catalog() const { return *catalog_; }
  const EngineOptions& options() const { return options_; }
  std::string llm_name() const;
  const llm::LanguageModel* llm() const { return llm_.get(); }
  // For health checks: whether the last turn that called the LLM got its answers (empty before
  // the first), and how many new items wait for the LLM to embed them.
  struct LlmHealth {
    std::optional<bool> answered;
    std::size_t cold_start_pending = 0;
  };
  LlmHealth llm_health() const;

 private:
  ConstraintStyle constraint_style() const;
  TurnResult structured_turn(
      const std::string& conversation_id, Intent intent, const ItemRef& item,
      const TextCallback& on_text,
      const std::function<std::string(TurnContext&, const std::string& title)>& act);
  // Sets the turn's constraints and latency, counts its stats and saves it with its messages (and
  // the shown list in the dialogue). When the store refuses it, the session goes back to `before`
  // (its state when the turn began).
  void finish_turn(Session& session, const ConversationState& before,
                   const std::vector<DialogueTurn>& new_turns, TurnResult& result,
                   std::chrono::steady_clock::time_point start, const std::string& listing = {});

  std::shared_ptr<Catalog> catalog_;
  std::shared_ptr<llm::LanguageModel> llm_;
  std::shared_ptr<store::Store> store_;
  EngineOptions options_;
  std::unique_ptr<ColdStartIndex> cold_start_;

  std::unique_ptr<Sessions> sessions_;
  mutable std::mutex stats_mutex_;
  Stats stats_;
  std::optional<bool> llm_answered_;  // how the last turn that called the LLM fared
};

}  // namespace chatrec::chat
