#include "chat/title_match.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

#include "common/text.h"

namespace chatrec::chat {

namespace {

constexpr std::array<std::string_view, 12> kArticles = {"the", "a",  "an",  "les", "la",  "le",
                                                        "il",  "el", "das", "der", "die", "l'"};

bool is_article(std::string_view w) {
  return std::find(kArticles.begin(), kArticles.end(), w) != kArticles.end();
}

// Removes every "( ... )" group; ml-100k keeps alternative titles and years in them. A group
// separates the words around it ("Star(1977)Wars" is "Star Wars"), as its display form writes it.
std::string strip_parentheticals(std::string_view s) {
  std::string out;
  int depth = 0;
  for (char c : s) {
    if (c == '(' || c == '[') {
      if (depth == 0) out += ' ';
      ++depth;
    } else if ((c == ')' || c == ']') && depth > 0) {
      --depth;
    } else if (depth == 0) {
      out += c;
    }
  }
  return out;
}

// "Usual Suspects, The" -> {"Usual Suspects", "The"}; returns false when there is no trailing
// article.
bool split_trailing_article(std::string_view s, std::string* body, std::string* article) {
  const auto comma = s.rfind(',');
  if (comma == std::string_view::npos) return false;
  const std::string tail = text::to_lower(text::trim(s.substr(comma + 1)));
  if (!is_article(tail)) return false;
  *body = std::string(text::trim(s.substr(0, comma)));
  *article = std::string(text::trim(s.substr(comma + 1)));
  return true;
}

std::vector<std::string> words(std::string_view key) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : key) {
    if (c == ' ') {
      if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace

std::string title_key(std::string_view title) {
  std::string s = strip_parentheticals(title);
  std::string body, article;
  if (split_trailing_article(s, &body, &article)) s = body;
  std::string folded;
  for (unsigned char c : s) {
    if (c == '&') {
      folded += " and ";
    } else if (c == '\'') {
      // "Schindler's" and "Schindlers" match.
    } else if (std::isalnum(c) || c >= 0x80) {
      folded += static_cast<char>(std::tolower(c));
    } else {
      folded += ' ';
    }
  }
  std::vector<std::string> w = words(folded);
  if (w.size() > 1 && is_article(w.front())) w.erase(w.begin());
  return text::join(w, " ");
}

std::string display_title(std::string_view title) {
  std::string_view t = text::trim(title);
  std::string suffix;
  // Keep a trailing "(year)" after the moved article: only a group that closes at the end, not
  // "(a) b)" whose last '(' is closed earlier.
  if (t.size() >= 6 && t.back() == ')') {
    const auto open = t.rfind('(');
    if (open != std::string_view::npos && open > 0 && t.find(')', open) == t.size() - 1) {
      suffix = " " + std::string(t.substr(open));
      t = text::trim(t.substr(0, open));
    }
  }
  std::string body, article;
  if (split_trailing_article(t, &body, &article)) return article + " " + body + suffix;
  return std::string(t) + suffix;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: adjacent transpositions ("Stroy") cost one edit, as typos do.
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

double title_similarity(std::string_view a, std::string_view b) {
  if (a.empty() || b.empty()) return 0.0;
  if (a == b) return 1.0;
  const double longest = static_cast<double>(std::max(a.size(), b.size()));
  const double edit = 1.0 - static_cast<double>(edit_distance(a, b)) / longest;
  const auto wa = words(a), wb = words(b);
  std::set<std::string> sa(wa.begin(), wa.end()), sb(wb.begin(), wb.end());
  std::size_t common = 0;
  for (const auto& w : sa) common += sb.count(w);
  const double jaccard =
      static_cast<double>(common) / static_cast<double>(sa.size() + sb.size() - common);
  return std::max(edit, jaccard);
}

bool contains_words(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return false;
  std::size_t pos = 0;
  while ((pos = haystack.find(needle, pos)) != std::string_view::npos) {
    const bool left = pos == 0 || haystack[pos - 1] == ' ';
    const std::size_t end = pos + needle.size();
    const bool right = end == haystack.size() || haystack[end] == ' ';
    if (left && right) return true;
    ++pos;
  }
  return false;
}

TitleIndex::TitleIndex(const data::Dataset& ds) {
  keys_.reserve(ds.num_items());
  for (data::ItemIndex i = 0; i < ds.num_items(); ++i)
    keys_.emplace_back(title_key(ds.item(i).title), i);
  std::sort(keys_.begin(), keys_.end());
}

void TitleIndex::add(data::ItemIndex item, std::string_view title) {
  std::pair<std::string, data::ItemIndex> entry{title_key(title), item};
  keys_.insert(std::upper_bound(keys_.begin(), keys_.end(), entry), std::move(entry));
}

std::vector<data::ItemIndex> TitleIndex::exact(std::string_view title) const {
  const std::string key = title_key(title);
  std::vector<data::ItemIndex> out;
  auto it = std::lower_bound(keys_.begin(), keys_.end(), std::make_pair(key, data::ItemIndex{0}));
  for (; it != keys_.end() && it->first == key; ++it) out.push_back(it->second);
  return out;
}

long long TitleIndex::best(std::string_view title, double threshold) const {
  const auto ex = exact(title);
  if (!ex.empty()) return ex.front();
  const std::string key = title_key(title);
  if (key.empty()) return -1;
  double best_sim = threshold;
  long long best_item = -1;
  for (const auto& [k, item] : keys_) {
    // Cheap length filter before the quadratic edit distance.
    const double la = static_cast<double>(k.size()), lb = static_cast<double>(key.size());
    if (std::min(la, lb) / std::max(la, lb) < 0.5 && !contains_words(k, key)) continue;
    const double sim = title_similarity(k, key);
    if (sim > best_sim || (sim >= best_sim && best_item < 0)) {
      best_sim = sim;
      best_item = item;
    }
  }
  return best_item;
}

std::vector<data::ItemIndex> TitleIndex::mentioned_in(std::string_view text,
                                                      std::size_t min_key_chars) const {
  const std::string hay = title_key(std::string(text));
  struct Hit {
    std::size_t pos, len;
    data::ItemIndex item;
  };
  std::vector<Hit> hits;
  for (const auto& [k, item] : keys_) {
    if (k.size() < min_key_chars) continue;
    std::size_t pos = 0;
    while ((pos = hay.find(k, pos)) != std::string::npos) {
      const std::size_t end = pos + k.size();
      if ((pos == 0 || hay[pos - 1] == ' ') && (end == hay.size() || hay[end] == ' ')) {
        hits.push_back({pos, k.size(), item});
        break;
      }
      ++pos;
    }
  }
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
    return a.len > b.len || (a.len == b.len && a.pos < b.pos);
  });
  std::vector<Hit> kept;
  for (const Hit& h : hits) {
    bool inside = false;
    for (const Hit& k : kept) {
      if (h.pos >= k.pos && h.pos + h.len <= k.pos + k.len && h.len < k.len) inside = true;
    }
    if (!inside) kept.push_back(h);
  }
  std::vector<data::ItemIndex> out;
  for (const Hit& h : kept) out.push_back(h.item);
  return out;
}

}  // namespace chatrec::chat
