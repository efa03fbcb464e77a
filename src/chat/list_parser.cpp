#include "chat/list_parser.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <regex>

#include "chat/title_match.h"
#include "common/text.h"

namespace chatrec::chat {

namespace {

struct Entry {
  std::string id;  // as written, may be empty
  std::string title;
};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Strips list markers: "1.", "1)", "#1", "-", "*", "•" and markdown emphasis.
std::string strip_marker(std::string_view line) {
  std::string s(text::trim(line));
  static const std::regex marker(R"(^\s*(?:#?\d{1,2}\s*[.):]\s+|[-*+]\s+|\xE2\x80\xA2\s*))");
  s = std::regex_replace(s, marker, "", std::regex_constants::format_first_only);
  s.erase(std::remove(s.begin(), s.end(), '*'), s.end());
  s.erase(std::remove(s.begin(), s.end(), '"'), s.end());
  return std::string(text::trim(s));
}

// Splits "[12]: Title", "12: Title", "(12) Title", "Title [12]" into id and title.
Entry split_id(const std::string& s) {
  static const std::regex leading(R"(^\[?\(?\s*([A-Za-z0-9_]{1,20})\s*\]?\)?\s*[:\-]\s+(.+)$)");
  static const std::regex bracket_leading(R"(^\[\s*([A-Za-z0-9_]{1,20})\s*\]\s*(.+)$)");
  static const std::regex trailing(R"(^(.+?)\s*\[\s*(?:id\s*[:=]?\s*)?([A-Za-z0-9_]{1,20})\s*\]$)");
  std::smatch m;
  if (std::regex_match(s, m, bracket_leading)) return {m[1], std::string(text::trim(m[2].str()))};
  if (std::regex_match(s, m, leading)) {
    const std::string id = m[1];
    // "Star Wars: Episode" has a word before the colon, not an id; ids contain a digit.
    if (std::any_of(id.begin(), id.end(), is_digit))
      return {id, std::string(text::trim(m[2].str()))};
  }
  if (std::regex_match(s, m, trailing)) {
    const std::string id = m[2];
    if (std::any_of(id.begin(), id.end(), is_digit))
      return {id, std::string(text::trim(m[1].str()))};
  }
  return {"", s};
}

std::vector<std::string> list_lines(std::string_view text) {
  std::string t(text);
  // One-line lists: "1. A 2. B 3. C" or "A, B, C" after a colon are split into entries.
  static const std::regex inline_numbers(R"(\s+(?=\d{1,2}[.)]\s))");
  std::vector<std::string> raw;
  for (auto& line : text::split(t, '\n')) {
    std::string l = std::regex_replace(line, inline_numbers, "\n");
    for (auto& piece : text::split(l, '\n')) raw.push_back(piece);
  }
  std::vector<std::string> out;
  static const std::regex numbered(R"(^\s*(?:#?\d{1,2}\s*[.):]\s+|[-*+]\s+|\xE2\x80\xA2))");
  bool any_numbered = false;
  for (const auto& l : raw) any_numbered = any_numbered || std::regex_search(l, numbered);
  for (const auto& l : raw) {
    if (text::trim(l).empty()) continue;
    // With a numbered list present, prose lines around it ("Here are...") are not entries.
    if (any_numbered && !std::regex_search(l, numbered)) continue;
    out.push_back(strip_marker(l));
  }
  if (!any_numbered && out.size() == 1 && out[0].find(',') != std::string::npos) {
    // A comma-separated single line; titles with a moved article ("Usual Suspects, The") are
    // rejoined below.
    std::vector<std::string> parts = text::split(out[0], ',');
    std::vector<std::string> merged;
    for (auto& p : parts) {
      std::string w = text::to_lower(text::trim(p));
      std::string first = w.substr(0, w.find(' '));
      if (!merged.empty() && (first == "the" || first == "a" || first == "an") &&
          w.find(' ') != std::string::npos && w.size() < 12) {
        merged.back() += "," + p;
      } else {
        merged.push_back(std::string(text::trim(p)));
      }
    }
    out = merged;
  }
  return out;
}

}  // namespace

ParsedList parse_ranked_list(std::string_view text, const std::vector<ListCandidate>& candidates,
                             std::size_t k, const CatalogueLookup& in_catalogue, Stats* stats,
                             std::optional<std::size_t> preselected) {
  Stats local;
  Stats& st = stats ? *stats : local;
  ParsedList out;
  std::vector<std::string> keys;
  keys.reserve(candidates.size());
  for (const auto& c : candidates) keys.push_back(title_key(c.title));

  const auto find_by_id = [&](const std::string& id) -> std::optional<std::size_t> {
    if (id.empty()) return std::nullopt;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i].id == id) return i;
    }
    // Numbered lists are often echoed as "[3]" meaning the third candidate: only positions, never
    // trusted over a title.
    return std::nullopt;
  };
  const auto find_by_title = [&](const std::string& title,
                                 bool* fuzzy) -> std::optional<std::size_t> {
    const std::string key = title_key(title);
    *fuzzy = false;
    if (key.empty()) return std::nullopt;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == key) return i;
    }
    double best = kFuzzyTitleThreshold;
    std::optional<std::size_t> best_i;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      double sim = title_similarity(keys[i], key);
      // A partial title ("Wallace and Gromit") or an extended one ("Star Wars Episode IV") names
      // the candidate it contains or is contained in; the longer shared title wins.
      if (sim < best && key.size() >= 5 && keys[i].size() >= 5 &&
          (contains_words(keys[i], key) || contains_words(key, keys[i]))) {
        const double shorter = static_cast<double>(std::min(key.size(), keys[i].size()));
        const double longer = static_cast<double>(std::max(key.size(), keys[i].size()));
        sim = std::max(sim, 0.8 + 0.1 * shorter / longer);
      }
      if (sim >= best && (!best_i || sim > best)) {
        best = sim;
        best_i = i;
      }
    }
    if (best_i) *fuzzy = true;
    return best_i;
  };

  const std::vector<std::string> lines = list_lines(text);
  out.lines = lines.size();
  if (lines.empty()) {
    st.fail("unparseable", "classic_ranking");
    out.notes.push_back("the LLM answer contained no list");
    return out;
  }
  std::size_t entries = 0;
  for (const auto& line : lines) {
    // A title that itself starts with digits and a colon ("2001: A Space Odyssey") is not an "[id]:
    // title".
    Entry e = split_id(line);
    if (!e.id.empty() && line.front() != '[' && line.front() != '(') {
      bool whole_fuzzy = false;
      const auto whole = find_by_title(line, &whole_fuzzy);
      if (whole && !whole_fuzzy) e = Entry{"", line};
    }
    if (e.title.empty() && e.id.empty()) continue;
    bool fuzzy = false;
    const auto by_title = find_by_title(e.title, &fuzzy);
    const auto by_id = find_by_id(e.id);
    if (preselected && ((by_title && *by_title == *preselected) ||
                        (!by_title && by_id && *by_id == *preselected))) {
      continue;
    }
    ++entries;
    std::optional<std::size_t> pick;
    if (by_title) {
      pick = by_title;
      if (fuzzy) st.resolutions["fuzzy_title"] += 1;
      if (!e.id.empty() && (!by_id || *by_id != *by_title)) {
        st.fail("id_mismatch", "trusted_title");
        out.notes.push_back("id " + e.id + " does not belong to '" + e.title + "'");
      }
    } else if (by_id && title_key(e.title).empty()) {
      pick = by_id;  // only an id was written
    } else if (by_id) {
      // The id is a candidate but the title names something else: trust the title, which is not a
      // candidate.
      st.fail("id_mismatch", "trusted_title");
      const bool known = in_catalogue && in_catalogue(e.title);
      st.fail(known ? "out_of_candidates" : "not_in_catalogue", "dropped");
      out.notes.push_back("'" + e.title + "' is not among the candidates");
      continue;
    } else {
      const bool known = in_catalogue && in_catalogue(e.title);
      st.fail(known ? "out_of_candidates" : "not_in_catalogue", "dropped");
      out.notes.push_back("'" + e.title +
                          (known ? "' is not among the candidates" : "' is not in the catalogue"));
      continue;
    }
    if (std::find(out.picks.begin(), out.picks.end(), *pick) != out.picks.end()) {
      st.fail("duplicate", "dropped");
      continue;
    }
    out.picks.push_back(*pick);
  }
  if (entries == 0) {
    st.fail("unparseable", "classic_ranking");
    out.notes.push_back("the LLM answer contained no list");
    return out;
  }
  if (entries != k) st.fail("wrong_count", entries > k ? "truncated" : "filled_from_base");
  if (out.picks.size() > k) out.picks.resize(k);
  return out;
}

std::vector<std::size_t> complete_from_base(const std::vector<std::size_t>& picks,
                                            std::size_t num_candidates, std::size_t k) {
  std::vector<std::size_t> out;
  for (std::size_t p : picks) {
    if (out.size() == k) break;
    if (p < num_candidates && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  for (std::size_t i = 0; i < num_candidates && out.size() < k; ++i) {
    if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
  }
  return out;
}

}  // namespace chatrec::chat
