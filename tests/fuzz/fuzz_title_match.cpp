// Title matching (chat/title_match.h) on arbitrary titles. An input is text: catalogue titles one
// per line, "%%", then a free text (a user message or an LLM answer) that is also looked up as a
// title.
//
// Properties: keys are lower case, single-spaced and trimmed; edit distance is a metric's worth of
// symmetric and bounded by the lengths; similarity is symmetric, in [0, 1] and 1 for equal keys;
// the index's exact matches are exactly the items with the text's key, its best match is the exact
// one when there is one and otherwise clears the threshold; mentioned titles occur in the text as
// whole words; a title and its display form ("A Fish Called Wanda (1988)") have the same key
// (for titles shaped as catalogue titles are).
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "chat/title_match.h"
#include "common/text.h"
#include "fuzz_util.h"

namespace {

using namespace chatrec::chat;

// Keeps the quadratic edit distance cheap enough for many executions per second.
constexpr std::size_t kMaxKey = 160;

void check_key(const std::string& key) {
  FUZZ_CHECK(key.empty() || (key.front() != ' ' && key.back() != ' '));
  FUZZ_CHECK(key.find("  ") == std::string::npos);
  for (unsigned char c : key)
    FUZZ_CHECK(c == ' ' || c >= 0x80 || std::islower(c) || std::isdigit(c));
}

// Titles whose brackets pair up without nesting, the shape catalogue titles have ("Heat (1995)",
// "City of Lost Children, The (Cité des enfants perdus, La) (1995)"); for stray or nested brackets
// the display form is not defined to keep the key.
// Nor for a title that starts with an article and moves another one to the end ("Il x, The"), or
// moves two ("x, The, The"): the key drops one article only.
bool catalogue_shaped(const std::string& title) {
  static const std::set<std::string> articles = {"the", "a",  "an",  "les", "la",  "le",
                                                 "il",  "el", "das", "der", "die", "l'"};
  // The first word as the key sees it: punctuation is a space there.
  std::string first;
  for (unsigned char c : title) {
    if (std::isalnum(c) || c >= 0x80 || c == '\'') {
      first += static_cast<char>(std::tolower(c));
    } else if (!first.empty()) {
      break;
    }
  }
  if (articles.count(first) || articles.count(first + "'") ||
      std::count(title.begin(), title.end(), ',') > 1)
    return false;
  char open = 0;
  for (char c : title) {
    if (c == '(' || c == '[') {
      if (open) return false;
      open = c;
    } else if (c == ')' || c == ']') {
      if (open != (c == ')' ? '(' : '[')) return false;
      open = 0;
    }
  }
  return open == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> parts =
      chatrec::fuzz::sections(chatrec::fuzz::text_of(data, size));
  std::vector<std::string> titles = chatrec::text::split(parts[0], '\n');
  if (titles.size() > 24) titles.resize(24);
  const std::string text = parts.size() > 1 ? parts[1] : std::string();

  TitleIndex index;
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < titles.size(); ++i) {
    keys.push_back(title_key(titles[i]));
    check_key(keys.back());
    if (catalogue_shaped(titles[i])) FUZZ_CHECK(title_key(display_title(titles[i])) == keys.back());
    index.add(static_cast<chatrec::data::ItemIndex>(i), titles[i]);
  }
  const std::string text_key = title_key(text);
  check_key(text_key);

  for (const std::string& key : keys) {
    if (key.size() > kMaxKey || text_key.size() > kMaxKey) continue;
    const std::size_t d = edit_distance(key, text_key);
    FUZZ_CHECK(d == edit_distance(text_key, key));
    FUZZ_CHECK(d <= std::max(key.size(), text_key.size()));
    FUZZ_CHECK(d >= std::max(key.size(), text_key.size()) - std::min(key.size(), text_key.size()));
    FUZZ_CHECK((d == 0) == (key == text_key));
    const double sim = title_similarity(key, text_key);
    FUZZ_CHECK(sim >= 0.0 && sim <= 1.0);
    FUZZ_CHECK(sim == title_similarity(text_key, key));
    if (!key.empty()) {
      FUZZ_CHECK(title_similarity(key, key) == 1.0);
      FUZZ_CHECK(contains_words(key, key));
    }
  }

  const auto exact = index.exact(text);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const bool listed = std::find(exact.begin(), exact.end(), i) != exact.end();
    FUZZ_CHECK(listed == (keys[i] == text_key));
  }
  if (text_key.size() <= kMaxKey) {
    const long long best = index.best(text);
    if (!exact.empty()) {
      FUZZ_CHECK(best == static_cast<long long>(exact.front()));
    } else if (best >= 0) {
      FUZZ_CHECK(static_cast<std::size_t>(best) < keys.size());
      FUZZ_CHECK(title_similarity(keys[static_cast<std::size_t>(best)], text_key) >=
                 kFuzzyTitleThreshold);
    }
  }

  const auto mentioned = index.mentioned_in(text);
  FUZZ_CHECK(std::set(mentioned.begin(), mentioned.end()).size() == mentioned.size());
  for (auto item : mentioned) {
    FUZZ_CHECK(item < keys.size());
    FUZZ_CHECK(keys[item].size() >= 4 && contains_words(text_key, keys[item]));
  }
  return 0;
}
