#pragma once
// Loaders for the dataset formats chatrec reads. A malformed line is an InputError naming file,
// line and field, unless the caller asks to skip bad lines, in which case LoadReport counts them.
#include <filesystem>
#include <map>
#include <string>

#include "data/dataset.h"

namespace chatrec::data {

struct LoadOptions {
  bool skip_bad_lines = false;
};

struct LoadReport {
  std::size_t lines_read = 0;
  std::size_t bad_lines_skipped = 0;
  std::string first_error;  // the first skipped line's error, for the summary
};

// MovieLens-100K original files: u.data, u.item (Latin-1, converted to UTF-8), u.genre, u.user.
// Items get domain "movies", year from the title "(1995)" or the release date, genres as
// categories.
Dataset load_movielens_100k(const std::filesystem::path& dir, const LoadOptions& options = {},
                            LoadReport* report = nullptr);

// RecBole atomic files: `<dir>/<name>.inter`, optional `.item` and `.user`, with typed header lines
// ("user_id:token"). Sequence files (`item_id_list:token_seq` + `item_id`) become ordered
// interactions whose timestamps are positions. For the Amazon Games layout (games.test.inter) pass
// name "games.test". `domain` is assigned to every item.
Dataset load_recbole(const std::filesystem::path& dir, const std::string& name,
                     const std::string& domain, const LoadOptions& options = {},
                     LoadReport* report = nullptr);

// The shared Amazon Games data: games.item titles + games.test.inter sequences (history then
// target).
Dataset load_amazon_games(const std::filesystem::path& dir, const LoadOptions& options = {},
                          LoadReport* report = nullptr);

// Generic delimited interactions file with a column mapping, e.g.
// {"user":"userId","item":"movieId", "rating":"rating","timestamp":"ts"} (names refer to the header
// line; or 0-based indices "0","1",... when has_header is false).
struct CsvSpec {
  char delimiter = ',';
  bool has_header = true;
  std::map<std::string, std::string> columns;
  std::string domain = "items";
};
Dataset load_csv_interactions(const std::filesystem::path& file, const CsvSpec& spec,
                              const LoadOptions& options = {}, LoadReport* report = nullptr);

// Opens a dataset by name: "ml-100k" or "games" (under data_dir), or a path to a directory/CSV.
Dataset load_named(const std::string& name, const std::filesystem::path& data_dir,
                   const LoadOptions& options = {}, LoadReport* report = nullptr);

}  // namespace chatrec::data
