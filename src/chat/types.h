#pragma once
// Value types shared by the chat engine's parts and its callers (HTTP server, terminal chat, eval
// hooks).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace chatrec::chat {

// An item of one domain of the catalogue, by external id.
struct ItemRef {
  std::string domain;
  std::string item_id;
  bool operator==(const ItemRef&) const = default;
  auto operator<=>(const ItemRef&) const = default;
};

enum class Intent { kRecommend, kExplain, kFeedback, kItemQuestion, kOther };
const char* to_string(Intent intent);
// Accepts the names to_string produces ("recommend", "explain", "feedback", "item_question",
// "other").
bool parse_intent(const std::string& name, Intent* out);

// What the user asked for, accumulated over the conversation and applied to candidate generation.
struct Constraints {
  std::string domain;                        // "" = the conversation's current domain
  std::vector<std::string> genres_wanted;    // category labels of the target domain (any of them)
  std::vector<std::string> genres_unwanted;  // none of these
  int year_min = 0;                          // 0 = open
  int year_max = 0;                          // 0 = open
  std::vector<ItemRef> like;                 // "like X" anchors
  std::vector<ItemRef> exclude;              // "not Y" / disliked: never recommended
  bool empty() const {
    return domain.empty() && genres_wanted.empty() && genres_unwanted.empty() && year_min == 0 &&
           year_max == 0 && like.empty() && exclude.empty();
  }
};

// Where a recommended item came from.
enum class Source { kCollaborative, kColdStart, kLlm };
const char* to_string(Source source);  // "collaborative", "cold-start", "llm"

struct Recommendation {
  std::string item_id;
  std::string title;
  std::string domain;
  int year = 0;
  std::vector<std::string> categories;
  double score = 0.0;  // final ranking score (higher is better); comparable within one list only
  Source source = Source::kCollaborative;
  std::string reason;  // one line, grounded in metadata / the user's history
};

// Counters of one turn or one engine (tokens, latency, failures by kind and how each was resolved).
// Failure kinds: unparseable, wrong_count, out_of_candidates, not_in_catalogue, duplicate,
// id_mismatch, timeout, llm_error.
struct Stats {
  std::int64_t llm_calls = 0;
  std::int64_t tokens_in = 0;
  std::int64_t tokens_out = 0;
  double latency_ms = 0.0;
  std::map<std::string, std::int64_t> failures;
  std::map<std::string, std::int64_t> resolutions;
  void fail(const std::string& kind, const std::string& resolution, std::int64_t n = 1) {
    failures[kind] += n;
    resolutions[kind + ":" + resolution] += n;
  }
  void merge(const Stats& other);
};

void to_json(nlohmann::json& j, const ItemRef& r);
void from_json(const nlohmann::json& j, ItemRef& r);
void to_json(nlohmann::json& j, const Constraints& c);
void from_json(const nlohmann::json& j, Constraints& c);
void to_json(nlohmann::json& j, const Recommendation& r);
void from_json(const nlohmann::json& j, Recommendation& r);
void to_json(nlohmann::json& j, const Stats& s);

}  // namespace chatrec::chat
