#include "chat/types.h"

#include <cmath>

namespace chatrec::chat {

const char* to_string(Intent intent) {
  switch (intent) {
    case Intent::kRecommend:
      return "recommend";
    case Intent::kExplain:
      return "explain";
    case Intent::kFeedback:
      return "feedback";
    case Intent::kItemQuestion:
      return "item_question";
    case Intent::kOther:
      return "other";
  }
  return "other";
}

bool parse_intent(const std::string& name, Intent* out) {
  for (Intent i : {Intent::kRecommend, Intent::kExplain, Intent::kFeedback, Intent::kItemQuestion,
                   Intent::kOther}) {
    if (name == to_string(i)) {
      *out = i;
      return true;
    }
  }
  return false;
}

const char* to_string(Source source) {
  switch (source) {
    case Source::kCollaborative:
      return "collaborative";
    case Source::kColdStart:
      return "cold-start";
    case Source::kLlm:
      return "llm";
  }
  return "collaborative";
}

void Stats::merge(const Stats& other) {
  llm_calls += other.llm_calls;
  tokens_in += other.tokens_in;
  tokens_out += other.tokens_out;
  latency_ms += other.latency_ms;
  for (const auto& [k, v] : other.failures) failures[k] += v;
  for (const auto& [k, v] : other.resolutions) resolutions[k] += v;
}

void to_json(nlohmann::json& j, const ItemRef& r) {
  j = {{"domain", r.domain}, {"item_id", r.item_id}};
}
void from_json(const nlohmann::json& j, ItemRef& r) {
  j.at("domain").get_to(r.domain);
  j.at("item_id").get_to(r.item_id);
}

void to_json(nlohmann::json& j, const Constraints& c) {
  j = {{"domain", c.domain},
       {"genres_wanted", c.genres_wanted},
       {"genres_unwanted", c.genres_unwanted},
       {"year_min", c.year_min},
       {"year_max", c.year_max},
       {"like", c.like},
       {"exclude", c.exclude}};
}
void from_json(const nlohmann::json& j, Constraints& c) {
  c = Constraints{};
  c.domain = j.value("domain", "");
  c.genres_wanted = j.value("genres_wanted", std::vector<std::string>{});
  c.genres_unwanted = j.value("genres_unwanted", std::vector<std::string>{});
  c.year_min = j.value("year_min", 0);
  c.year_max = j.value("year_max", 0);
  if (j.contains("like")) j.at("like").get_to(c.like);
  if (j.contains("exclude")) j.at("exclude").get_to(c.exclude);
}

void to_json(nlohmann::json& j, const Recommendation& r) {
  j = {{"item_id", r.item_id},
       {"title", r.title},
       {"domain", r.domain},
       {"year", r.year},
       {"categories", r.categories},
       {"score", std::isfinite(r.score) ? r.score : 0.0},
       {"source", to_string(r.source)},
       {"reason", r.reason}};
}
void from_json(const nlohmann::json& j, Recommendation& r) {
  r = Recommendation{};
  j.at("item_id").get_to(r.item_id);
  r.title = j.value("title", "");
  r.domain = j.value("domain", "");
  r.year = j.value("year", 0);
  r.categories = j.value("categories", std::vector<std::string>{});
  r.score = j.value("score", 0.0);
  const std::string source = j.value("source", "collaborative");
  r.source = source == "cold-start" ? Source::kColdStart
             : source == "llm"      ? Source::kLlm
                                    : Source::kCollaborative;
  r.reason = j.value("reason", "");
}

void to_json(nlohmann::json& j, const Stats& s) {
  j = {{"llm_calls", s.llm_calls},   {"tokens_in", s.tokens_in}, {"tokens_out", s.tokens_out},
       {"latency_ms", s.latency_ms}, {"failures", s.failures},   {"resolutions", s.resolutions}};
}

}  // namespace chatrec::chat
