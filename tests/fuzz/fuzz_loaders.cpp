// The dataset loaders (MovieLens-100K, RecBole atomic files, delimited CSV) on arbitrary files.
// An input is text: a mode line, then the files separated by lines "%%":
//   movielens [skip]          u.genre %% u.item %% u.data %% u.user (an empty u.user is absent)
//   recbole [skip]            fz.inter %% fz.item %% fz.user (empty .item/.user are absent)
//   games [skip]              games.test.inter %% games.item
//   csv [skip] [tab] [noheader]  the file; columns user,item,rating,ts (or indices 0..3)
//
// Properties: bad input is an InputError (anything else escaping is a bug); a loaded dataset is
// consistent (every interaction points at a user and an item that exist, ids map back to their
// index, ratings are NaN or finite); skipping bad lines never skips more lines than it read; and a
// file that loads strictly loads identically when bad lines may be skipped, with none skipped.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "data/loaders.h"
#include "fuzz_util.h"

namespace {

using namespace chatrec::data;
namespace fs = std::filesystem;

bool has_word(std::string_view line, std::string_view word) {
  std::size_t pos = 0;
  while ((pos = line.find(word, pos)) != std::string_view::npos) {
    const bool start = pos == 0 || line[pos - 1] == ' ';
    const bool end = pos + word.size() == line.size() || line[pos + word.size()] == ' ';
    if (start && end) return true;
    pos += word.size();
  }
  return false;
}

void check_consistent(const Dataset& ds) {
  for (const Interaction& i : ds.interactions()) {
    FUZZ_CHECK(i.user < ds.num_users());
    FUZZ_CHECK(i.item < ds.num_items());
    FUZZ_CHECK(std::isnan(i.rating) || std::isfinite(i.rating));
  }
  for (std::size_t u = 0; u < ds.num_users(); ++u) FUZZ_CHECK(ds.find_user(ds.users()[u].id) == u);
  for (std::size_t i = 0; i < ds.num_items(); ++i) FUZZ_CHECK(ds.find_item(ds.items()[i].id) == i);
}

// Writes the sections to `names` (an empty optional section stays absent).
void write_files(const std::vector<std::string>& parts, const std::vector<const char*>& names,
                 std::size_t required) {
  for (std::size_t k = 0; k < names.size(); ++k) {
    const std::string content = k < parts.size() ? parts[k] : std::string();
    if (k >= required && content.empty()) continue;
    chatrec::fuzz::write_file(chatrec::fuzz::ScratchDir::path() / names[k], content);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [mode, rest] = chatrec::fuzz::first_line(chatrec::fuzz::text_of(data, size));
  const std::vector<std::string> parts = chatrec::fuzz::sections(rest);
  const fs::path dir = chatrec::fuzz::ScratchDir::path();
  chatrec::fuzz::ScratchDir::clear();

  std::function<Dataset(const LoadOptions&, LoadReport*)> load;
  bool movielens = false;
  if (mode.starts_with("movielens")) {
    movielens = true;
    write_files(parts, {"u.genre", "u.item", "u.data", "u.user"}, 3);
    load = [&](const LoadOptions& o, LoadReport* r) { return load_movielens_100k(dir, o, r); };
  } else if (mode.starts_with("recbole")) {
    write_files(parts, {"fz.inter", "fz.item", "fz.user"}, 1);
    load = [&](const LoadOptions& o, LoadReport* r) { return load_recbole(dir, "fz", "x", o, r); };
  } else if (mode.starts_with("games")) {
    write_files(parts, {"games.test.inter", "games.item"}, 1);
    load = [&](const LoadOptions& o, LoadReport* r) { return load_amazon_games(dir, o, r); };
  } else if (mode.starts_with("csv")) {
    write_files(parts, {"fz.csv"}, 1);
    CsvSpec spec;
    spec.delimiter = has_word(mode, "tab") ? '\t' : ',';
    spec.has_header = !has_word(mode, "noheader");
    spec.columns = spec.has_header ? std::map<std::string, std::string>{{"user", "user"},
                                                                        {"item", "item"},
                                                                        {"rating", "rating"},
                                                                        {"timestamp", "ts"}}
                                   : std::map<std::string, std::string>{
                                         {"user", "0"}, {"item", "1"}, {"rating", "2"}};
    load = [&, spec](const LoadOptions& o, LoadReport* r) {
      return load_csv_interactions(dir / "fz.csv", spec, o, r);
    };
  } else {
    return 0;
  }

  const bool skip = has_word(mode, "skip");
  std::optional<Dataset> strict;
  try {
    LoadReport report;
    strict = load(LoadOptions{.skip_bad_lines = false}, &report);
    FUZZ_CHECK(report.bad_lines_skipped == 0);
  } catch (const chatrec::InputError&) {
  }
  if (strict) {
    check_consistent(*strict);
    if (movielens) {
      for (const Interaction& i : strict->interactions())
        FUZZ_CHECK(i.rating >= 1.0f && i.rating <= 5.0f);
    }
  }
  if (!skip) return 0;

  LoadReport report;
  std::optional<Dataset> lenient;
  try {
    lenient = load(LoadOptions{.skip_bad_lines = true}, &report);
  } catch (const chatrec::InputError&) {
    // Only a file that cannot be read at all (a header, a missing file) fails here, and then it
    // fails strictly too.
    FUZZ_CHECK(!strict);
    return 0;
  }
  check_consistent(*lenient);
  FUZZ_CHECK(report.bad_lines_skipped <= report.lines_read);
  if (strict) {
    FUZZ_CHECK(report.bad_lines_skipped == 0);
    FUZZ_CHECK(lenient->checksum() == strict->checksum());
  }
  return 0;
}
