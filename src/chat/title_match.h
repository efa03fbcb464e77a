#pragma once
// Matching item titles as people and LLMs write them to catalogue items: articles moved ("Fish
// Called Wanda, A" vs "A Fish Called Wanda"), years "(1988)", case and punctuation, small typos and
// partial titles.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.h"

namespace chatrec::chat {

// The comparison key of a title: lower case, year and other parentheticals removed, leading or
// trailing article dropped, punctuation folded to single spaces. "Fish Called Wanda, A (1988)" ->
// "fish called wanda".
std::string title_key(std::string_view title);
// The title as people write it: "Fish Called Wanda, A (1988)" -> "A Fish Called Wanda (1988)".
std::string display_title(std::string_view title);

std::size_t edit_distance(std::string_view a, std::string_view b);
// Similarity in [0, 1] of two title keys: the larger of normalised edit similarity and token
// overlap (Jaccard), so both typos and dropped words score high.
double title_similarity(std::string_view key_a, std::string_view key_b);
// Whole-word containment of `needle` in `haystack` (both keys).
bool contains_words(std::string_view haystack, std::string_view needle);

inline constexpr double kFuzzyTitleThreshold = 0.8;

// Title lookup over one domain's items.
class TitleIndex {
 public:
  TitleIndex() = default;
  explicit TitleIndex(const data::Dataset& ds);
  void add(data::ItemIndex item, std::string_view title);

  // Items whose key equals the title's key.
  std::vector<data::ItemIndex> exact(std::string_view title) const;
  // Exact, else the most similar item at or above the threshold; -1 when none.
  long long best(std::string_view title, double threshold = kFuzzyTitleThreshold) const;
  // Items whose title occurs (whole words, key form) in free text, longest titles first, without
  // items whose title is part of a longer one found at the same place. Titles with keys shorter
  // than `min_key_chars` are ignored (too ambiguous).
  std::vector<data::ItemIndex> mentioned_in(std::string_view text,
                                            std::size_t min_key_chars = 4) const;

 private:
  std::vector<std::pair<std::string, data::ItemIndex>> keys_;  // sorted by key
};

}  // namespace chatrec::chat
