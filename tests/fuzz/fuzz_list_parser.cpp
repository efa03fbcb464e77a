// The Chat-Rec ranked-list parser (chat/list_parser.h) on arbitrary LLM answers against a fixed
// candidate set with the awkward titles of ml-100k (moved articles, a leading number and colon, an
// ampersand, digits inside a word). An input is text: a first line "K [PRESELECTED]" and the
// answer.
//
// Properties: picks are unique candidate indices, at most k and at most one per list entry; the
// parser only picks what the answer names — each pick's id is written in the answer or a good part
// of its title's letters are (so a fuzzy match never invents an item); completing from the base
// ranking keeps the picks first and yields min(k, n) unique indices.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chat/list_parser.h"
#include "chat/title_match.h"
#include "fuzz_util.h"

namespace {

using namespace chatrec::chat;

const std::vector<ListCandidate>& candidates() {
  static const std::vector<ListCandidate> c = {
      {"50", "Star Wars (1977)"},
      {"12", "Usual Suspects, The (1995)"},
      {"135", "2001: A Space Odyssey (1968)"},
      {"98", "Silence of the Lambs, The (1991)"},
      {"1", "Toy Story (1995)"},
      {"114", "Wallace & Gromit: The Best of Aardman Animation (1996)"},
      {"64", "Shawshank Redemption, The (1994)"},
      {"b7", "Se7en (1995)"},
      {"181", "Return of the Jedi (1983)"},
      {"42", "Clerks (1994)"},
  };
  return c;
}

std::optional<std::size_t> number(std::string_view s) {
  std::size_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Whether the answer could have named candidate `c`: its id appears (the parser drops '*' and '"'
// with list markup), or at least half of its key's characters (at most 4 are required: a partial
// title of five characters or more counts) occur in the answer.
bool named_in(const ListCandidate& c, const std::string& answer) {
  std::string plain;
  for (char ch : answer)
    if (ch != '*' && ch != '"') plain.push_back(ch);
  if (plain.find(c.id) != std::string::npos) return true;
  std::map<unsigned char, std::size_t> have;
  for (unsigned char ch : plain) {
    if (ch == '&') {
      for (unsigned char a : std::string("and")) ++have[a];
    }
    ++have[static_cast<unsigned char>(std::tolower(ch))];
  }
  std::size_t key_chars = 0, found = 0;
  for (unsigned char ch : title_key(c.title)) {
    if (ch == ' ') continue;
    ++key_chars;
    if (have[ch] > 0) {
      --have[ch];
      ++found;
    }
  }
  return found >= std::min<std::size_t>((key_chars + 1) / 2, 4);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [mode, rest] = chatrec::fuzz::first_line(chatrec::fuzz::text_of(data, size));
  const std::string answer(rest);
  std::size_t k = 5;
  std::optional<std::size_t> preselected;
  const std::size_t space = mode.find(' ');
  if (auto v = number(mode.substr(0, space)); v && *v <= 20) k = *v;
  if (space != std::string_view::npos) {
    if (auto v = number(mode.substr(space + 1)); v && *v < candidates().size()) preselected = v;
  }
  const CatalogueLookup in_catalogue = [](std::string_view title) {
    const std::string key = title_key(title);
    return key == "fargo" || key == "heat";
  };

  Stats stats;
  const ParsedList parsed =
      parse_ranked_list(answer, candidates(), k, in_catalogue, &stats, preselected);
  FUZZ_CHECK(parsed.picks.size() <= k);
  FUZZ_CHECK(parsed.picks.size() <= parsed.lines);
  FUZZ_CHECK(std::set(parsed.picks.begin(), parsed.picks.end()).size() == parsed.picks.size());
  for (std::size_t p : parsed.picks) {
    FUZZ_CHECK(p < candidates().size());
    FUZZ_CHECK(named_in(candidates()[p], answer));
  }
  for (const auto& [kind, n] : stats.failures) FUZZ_CHECK(!kind.empty() && n > 0);

  const auto full = complete_from_base(parsed.picks, candidates().size(), k);
  FUZZ_CHECK(full.size() == std::min(k, candidates().size()));
  FUZZ_CHECK(std::set(full.begin(), full.end()).size() == full.size());
  FUZZ_CHECK(std::equal(parsed.picks.begin(), parsed.picks.end(), full.begin()));
  return 0;
}
