#pragma once
// Constraints stated in a message: genres wanted / unwanted, era, domain, "like X" anchors and "not
// Y". The LLM answers JSON, validated against a schema (types, known domains, the domain's own
// category names, plausible years) and against the message itself (a genre or year the user never
// mentioned is dropped); the catalogue-metadata matcher (category names and synonyms, era phrases,
// domain keywords) fills what the LLM missed and decides alone when the LLM fails.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/types.h"
#include "data/dataset.h"
#include "llm/language_model.h"

namespace chatrec::chat {

struct ConstraintUpdate {
  std::optional<std::string> domain;
  std::vector<std::string> genres_wanted;  // canonical category names
  std::vector<std::string> genres_unwanted;
  std::optional<int> year_min, year_max;
  bool clear_years = false;              // "any year"
  std::vector<std::string> like_titles;  // raw text, resolved against the catalogue by the caller
  std::vector<std::string> not_titles;
  std::string decided_by;  // "llm", "rules" or "llm+rules"
  bool empty() const {
    return !domain && genres_wanted.empty() && genres_unwanted.empty() && !year_min && !year_max &&
           !clear_years && like_titles.empty() && not_titles.empty();
  }
};

// What the matcher knows about the catalogue.
struct ConstraintVocabulary {
  std::vector<std::string> domains;  // e.g. {"movies", "games"}
  // Category names of a domain (Dataset::categories()).
  std::function<std::vector<std::string>(const std::string& domain)> categories;
  // Latest release year of a domain (for "recent"), 0 when unknown.
  std::function<int(const std::string& domain)> latest_year;
};

// The domain a message targets by keywords ("game(s)", "play", "movie(s)", "film(s)", ...), if any.
std::optional<std::string> detect_domain(std::string_view text,
                                         const std::vector<std::string>& domains);

ConstraintUpdate extract_constraints_rules(std::string_view text, const std::string& current_domain,
                                           const ConstraintVocabulary& vocab);

// Parses and validates the LLM's JSON answer; std::nullopt when it is not a JSON object of the
// schema. Invalid or ungrounded fields are dropped and counted in `stats` ("invalid_constraint").
std::optional<ConstraintUpdate> parse_constraints_json(std::string_view llm_text,
                                                       std::string_view user_text,
                                                       const std::string& current_domain,
                                                       const ConstraintVocabulary& vocab,
                                                       Stats* stats);

// How the LLM states constraints. kJson: it writes the whole schema as JSON (capable endpoints).
// kChoice: constrained decoding picks the wanted genre among the domain's category names or "none"
// (small built-in models cannot write the JSON schema: SmolLM2-135M produced nested junk for 5 of 5
// messages), so its answer is valid by construction; era, titles and domain come from the matcher.
enum class ConstraintStyle { kJson, kChoice };

// LLM first (when `lm` is set), rules for what it missed or when it failed.
ConstraintUpdate extract_constraints(llm::LanguageModel* lm, std::string_view text,
                                     const std::string& current_domain,
                                     const ConstraintVocabulary& vocab, double timeout_seconds,
                                     Stats* stats, std::vector<std::string>* notes,
                                     ConstraintStyle style = ConstraintStyle::kJson);

// Applies an update to the conversation's constraints. A domain switch resets the genre and era
// constraints (they belong to the old domain's vocabulary); newly wanted genres replace the wanted
// list.
void apply_update(const ConstraintUpdate& update, Constraints& c);

// Does the item satisfy the genre and era constraints? (Domain and exclusions are checked by the
// caller.)
bool satisfies(const data::Item& item, const Constraints& c);
// "comedies only, from 1990 to 1999, not horror" (empty when there are no constraints on content).
std::string describe(const Constraints& c);

}  // namespace chatrec::chat
