#pragma once
// Maps an LLM-written ranked list back onto the candidate set. Handles the ways LLM lists go wrong
// (Chat-Rec lists them): moved articles, years, case and punctuation, fuzzy titles (restricted to
// the candidates),
// "[id]: [title]" with ids lost or invented (the title is trusted when they disagree), duplicates,
// too few or too many items, items outside the candidates or outside the catalogue. Every failure
// is counted by kind with how it was resolved; missing slots are filled from the base ranking.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/types.h"

namespace chatrec::chat {

struct ListCandidate {
  std::string id;     // external item id
  std::string title;  // catalogue title
};

struct ParsedList {
  std::vector<std::size_t> picks;  // indices into the candidates, in the LLM's order, unique
  std::size_t lines = 0;           // list entries found in the text
  std::vector<std::string> notes;
};

// Does a title (not among the candidates) name some item of the catalogue?
using CatalogueLookup = std::function<bool(std::string_view title)>;

// Failure kinds recorded in `stats`: unparseable (no list in the text), wrong_count (more or fewer
// than k entries), out_of_candidates, not_in_catalogue, duplicate, id_mismatch. `preselected` (a
// candidate index given to the model as the first pick) is skipped when the list repeats it.
ParsedList parse_ranked_list(std::string_view text, const std::vector<ListCandidate>& candidates,
                             std::size_t k, const CatalogueLookup& in_catalogue, Stats* stats,
                             std::optional<std::size_t> preselected = std::nullopt);

// The final k: the parsed picks, then the base order (candidate indices 0..n-1) for the missing
// slots. Records how many slots were filled ("wrong_count:filled_from_base" is counted by the
// parser; this counts resolutions "filled_from_base").
std::vector<std::size_t> complete_from_base(const std::vector<std::size_t>& picks,
                                            std::size_t num_candidates, std::size_t k);

}  // namespace chatrec::chat
