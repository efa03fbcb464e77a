#include "data/loaders.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>

#include "common/error.h"
#include "common/text.h"

namespace chatrec::data {
namespace fs = std::filesystem;

namespace {

// Reads a file line by line, routing each line's InputError either to the caller or to the report.
class LineReader {
 public:
  LineReader(const fs::path& file, const LoadOptions& options, LoadReport* report)
      : file_(file), options_(options), report_(report), in_(file, std::ios::binary) {
    if (!in_) throw InputError(file.string(), 0, "", "cannot open file");
  }

  // The first `header_lines` non-blank lines are a header: their errors are never skipped, since
  // nothing after them could be read without it.
  void for_each(const std::function<void(std::string_view line, std::size_t number)>& fn,
                std::size_t header_lines = 0) {
    std::string line;
    std::size_t number = 0, non_blank = 0;
    while (std::getline(in_, line)) {
      ++number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (text::trim(line).empty()) continue;
      ++non_blank;
      if (report_) ++report_->lines_read;
      try {
        fn(line, number);
      } catch (const InputError& e) {
        if (!options_.skip_bad_lines || non_blank <= header_lines) throw;
        if (report_) {
          if (report_->bad_lines_skipped == 0) report_->first_error = e.what();
          ++report_->bad_lines_skipped;
        }
      }
    }
  }
  std::string name() const { return file_.string(); }

 private:
  fs::path file_;
  LoadOptions options_;
  LoadReport* report_;
  std::ifstream in_;
};

template <typename T>
T parse_number(std::string_view s, const std::string& file, std::size_t line,
               const std::string& field) {
  s = text::trim(s);
  T value{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    throw InputError(file, line, field, fmt::format("expected a number, got '{}'", s));
  }
  return value;
}

float parse_rating(std::string_view s, const std::string& file, std::size_t line) {
  auto r = parse_number<float>(s, file, line, "rating");
  if (!std::isfinite(r)) throw InputError(file, line, "rating", "rating is not finite");
  return r;
}

// RecBole writes timestamps as floats ("881250949.0"); one outside int64 (or NaN) has no integer
// value, and converting it would be undefined.
std::int64_t parse_float_timestamp(std::string_view s, const std::string& file, std::size_t line) {
  const double t = parse_number<double>(s, file, line, "timestamp");
  constexpr double kLimit = 9223372036854775808.0;  // 2^63
  if (!(t >= -kLimit && t < kLimit))
    throw InputError(file, line, "timestamp", fmt::format("timestamp {} is out of range", s));
  return static_cast<std::int64_t>(t);
}

std::vector<std::string> fields_of(std::string_view line, char sep, std::size_t expected,
                                   const std::string& file, std::size_t number,
                                   bool at_least = false) {
  auto f = text::split(line, sep);
  if (f.size() != expected && !(at_least && f.size() > expected)) {
    throw InputError(file, number, "",
                     fmt::format("expected {} fields separated by '{}', found {}", expected,
                                 sep == '\t' ? std::string("\\t") : std::string(1, sep), f.size()));
  }
  return f;
}

// "Toy Story (1995)" -> 1995; 0 when the title does not end with a parenthesised year.
int year_from_title(const std::string& title) {
  std::string_view t = text::trim(title);
  if (t.size() < 6 || t.back() != ')' || t[t.size() - 6] != '(') return 0;
  int year = 0;
  auto digits = t.substr(t.size() - 5, 4);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), year);
  return ec == std::errc() && p == digits.data() + digits.size() ? year : 0;
}

}  // namespace

Dataset load_movielens_100k(const fs::path& dir, const LoadOptions& options, LoadReport* report) {
  Dataset ds("ml-100k");
  // Genres.
  std::vector<std::string> genres;
  {
    LineReader r(dir / "u.genre", options, report);
    r.for_each([&](std::string_view line, std::size_t n) {
      auto f = fields_of(line, '|', 2, r.name(), n);
      auto idx = parse_number<int>(f[1], r.name(), n, "genre id");
      if (idx < 0 || idx > 100) throw InputError(r.name(), n, "genre id", "out of range");
      if (genres.size() <= static_cast<std::size_t>(idx))
        genres.resize(static_cast<std::size_t>(idx) + 1);
      genres[static_cast<std::size_t>(idx)] = f[0];
    });
  }
  // Users (profile).
  if (fs::exists(dir / "u.user")) {
    LineReader r(dir / "u.user", options, report);
    r.for_each([&](std::string_view line, std::size_t n) {
      auto f = fields_of(line, '|', 5, r.name(), n);
      parse_number<int>(f[0], r.name(), n, "user id");
      auto age = parse_number<int>(f[1], r.name(), n, "age");
      if (f[2] != "M" && f[2] != "F")
        throw InputError(r.name(), n, "gender", "expected M or F, got '" + f[2] + "'");
      User u;
      u.id = f[0];
      u.attributes = {
          {"age", std::to_string(age)}, {"gender", f[2]}, {"occupation", f[3]}, {"zip", f[4]}};
      ds.add_user(std::move(u));
    });
  }
  // Items: Latin-1.
  {
    LineReader r(dir / "u.item", options, report);
    r.for_each([&](std::string_view raw, std::size_t n) {
      std::string line = text::is_valid_utf8(raw) ? std::string(raw) : text::latin1_to_utf8(raw);
      auto f = fields_of(line, '|', 5 + genres.size(), r.name(), n);
      parse_number<int>(f[0], r.name(), n, "movie id");
      if (text::trim(f[1]).empty()) throw InputError(r.name(), n, "title", "empty title");
      Item item;
      item.id = f[0];
      item.title = std::string(text::trim(f[1]));
      item.domain = "movies";
      item.year = year_from_title(item.title);
      if (item.year == 0 && f[2].size() >= 4) {
        auto y = f[2].substr(f[2].size() - 4);
        int v = 0;
        auto [p, ec] = std::from_chars(y.data(), y.data() + 4, v);
        if (ec == std::errc() && p == y.data() + 4) item.year = v;
      }
      if (!f[2].empty()) item.text["release_date"] = f[2];
      if (!f[4].empty()) item.text["url"] = f[4];
      for (std::size_t g = 0; g < genres.size(); ++g) {
        const auto& flag = f[5 + g];
        if (flag != "0" && flag != "1") {
          throw InputError(r.name(), n, "genre " + genres[g],
                           "expected 0 or 1, got '" + flag + "'");
        }
        if (flag == "1" && genres[g] != "unknown") item.categories.push_back(genres[g]);
      }
      decode_item_text(item);
      ds.add_item(std::move(item));
    });
  }
  // Ratings.
  {
    LineReader r(dir / "u.data", options, report);
    r.for_each([&](std::string_view line, std::size_t n) {
      auto f = fields_of(line, '\t', 4, r.name(), n);
      parse_number<int>(f[0], r.name(), n, "user id");
      parse_number<int>(f[1], r.name(), n, "item id");
      auto item = ds.find_item(f[1]);
      if (!item) throw InputError(r.name(), n, "item id", "unknown item '" + f[1] + "'");
      float rating = parse_rating(f[2], r.name(), n);
      if (rating < 1 || rating > 5) throw InputError(r.name(), n, "rating", "rating outside 1..5");
      auto ts = parse_number<std::int64_t>(f[3], r.name(), n, "timestamp");
      ds.add_interaction({ds.intern_user(f[0]), *item, rating, ts});
    });
  }
  return ds;
}

namespace {
struct AtomicHeader {
  std::vector<std::string> names;  // without the ":type" suffix
  std::vector<std::string> types;
  int index_of(const std::string& name) const {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return static_cast<int>(i);
    }
    return -1;
  }
};

AtomicHeader parse_atomic_header(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw InputError(file.string(), 0, "", "cannot open file");
  std::string line;
  if (!std::getline(in, line))
    throw InputError(file.string(), 1, "", "empty file: expected a header line");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  AtomicHeader h;
  for (const auto& col : text::split(line, '\t')) {
    auto colon = col.find(':');
    if (colon == std::string::npos) {
      throw InputError(file.string(), 1, col,
                       "header column must be 'name:type' (RecBole atomic format)");
    }
    h.names.push_back(col.substr(0, colon));
    h.types.push_back(col.substr(colon + 1));
  }
  return h;
}
}  // namespace

Dataset load_recbole(const fs::path& dir, const std::string& name, const std::string& domain,
                     const LoadOptions& options, LoadReport* report) {
  Dataset ds(name);
  // Items file: "<base>.item" where base drops a ".test"/".train"/".valid" suffix of the name.
  std::string base = name;
  for (const char* suffix : {".test", ".train", ".valid"}) {
    if (base.size() > std::strlen(suffix) && base.ends_with(suffix))
      base.resize(base.size() - std::strlen(suffix));
  }
  fs::path item_file = dir / (base + ".item");
  if (fs::exists(item_file)) {
    auto h = parse_atomic_header(item_file);
    int id_col = h.index_of("item_id");
    if (id_col < 0) throw InputError(item_file.string(), 1, "item_id", "missing item_id column");
    int title_col = h.index_of("title");
    if (title_col < 0) title_col = h.index_of("movie_title");
    int cat_col = h.index_of("categories");
    if (cat_col < 0) cat_col = h.index_of("genre");
    int year_col = h.index_of("release_year");
    LineReader r(item_file, options, report);
    bool first = true;
    r.for_each([&](std::string_view line, std::size_t n) {
      if (first) {
        first = false;
        return;
      }
      auto f = fields_of(line, '\t', h.names.size(), r.name(), n, true);
      Item item;
      item.id = f[static_cast<std::size_t>(id_col)];
      if (item.id.empty()) throw InputError(r.name(), n, "item_id", "empty id");
      if (title_col >= 0)
        item.title = std::string(text::trim(f[static_cast<std::size_t>(title_col)]));
      if (item.title.empty()) item.title = "item " + item.id;
      if (cat_col >= 0) {
        for (auto& c : text::split(f[static_cast<std::size_t>(cat_col)], ' ')) {
          if (!c.empty()) item.categories.push_back(c);
        }
      }
      if (year_col >= 0 && !f[static_cast<std::size_t>(year_col)].empty()) {
        item.year =
            parse_number<int>(f[static_cast<std::size_t>(year_col)], r.name(), n, "release_year");
      }
      item.domain = domain;
      decode_item_text(item);
      ds.add_item(std::move(item));
    });
  }
  fs::path user_file = dir / (base + ".user");
  if (fs::exists(user_file)) {
    auto h = parse_atomic_header(user_file);
    int id_col = h.index_of("user_id");
    if (id_col < 0) throw InputError(user_file.string(), 1, "user_id", "missing user_id column");
    LineReader r(user_file, options, report);
    bool first = true;
    r.for_each([&](std::string_view line, std::size_t n) {
      if (first) {
        first = false;
        return;
      }
      auto f = fields_of(line, '\t', h.names.size(), r.name(), n, true);
      User u;
      u.id = f[static_cast<std::size_t>(id_col)];
      for (std::size_t c = 0; c < h.names.size(); ++c) {
        if (static_cast<int>(c) != id_col) u.attributes[h.names[c]] = f[c];
      }
      ds.add_user(std::move(u));
    });
  }
  fs::path inter_file = dir / (name + ".inter");
  auto h = parse_atomic_header(inter_file);
  int user_col = h.index_of("user_id");
  int item_col = h.index_of("item_id");
  int list_col = h.index_of("item_id_list");
  int rating_col = h.index_of("rating");
  int ts_col = h.index_of("timestamp");
  if (user_col < 0) throw InputError(inter_file.string(), 1, "user_id", "missing user_id column");
  if (item_col < 0) throw InputError(inter_file.string(), 1, "item_id", "missing item_id column");
  // With an item file, interactions may only name its items; without one, they define the items.
  // (Asking ds.items() here instead would close the catalogue after the first interaction.)
  const bool closed_catalogue = fs::exists(item_file);
  LineReader r(inter_file, options, report);
  bool first = true;
  r.for_each([&](std::string_view line, std::size_t n) {
    if (first) {
      first = false;
      return;
    }
    auto f = fields_of(line, '\t', h.names.size(), r.name(), n);
    const std::string& uid = f[static_cast<std::size_t>(user_col)];
    if (uid.empty()) throw InputError(r.name(), n, "user_id", "empty id");
    auto item_of = [&](const std::string& id, const char* field) {
      if (id.empty()) throw InputError(r.name(), n, field, "empty item id");
      if (closed_catalogue) {
        auto found = ds.find_item(id);
        if (!found) throw InputError(r.name(), n, field, "unknown item '" + id + "'");
        return *found;
      }
      return ds.intern_item(id);
    };
    std::vector<ItemIndex> seq;
    if (list_col >= 0) {
      for (const auto& id : text::split(f[static_cast<std::size_t>(list_col)], ' ')) {
        if (!id.empty()) seq.push_back(item_of(id, "item_id_list"));
      }
    }
    ItemIndex target = item_of(f[static_cast<std::size_t>(item_col)], "item_id");
    // Validate the whole line before touching the dataset, so that a skipped line leaves no trace.
    float rating = rating_col >= 0
                       ? parse_rating(f[static_cast<std::size_t>(rating_col)], r.name(), n)
                       : kNoRating;
    std::int64_t ts =
        ts_col >= 0 ? parse_float_timestamp(f[static_cast<std::size_t>(ts_col)], r.name(), n) : -1;
    UserIndex u = ds.intern_user(uid);
    if (list_col >= 0) {
      std::int64_t pos = 0;
      for (ItemIndex it : seq) ds.add_interaction({u, it, kNoRating, pos++});
      ds.add_interaction({u, target, rating, pos});
    } else {
      ds.add_interaction({u, target, rating, ts});
    }
  });
  return ds;
}

Dataset load_amazon_games(const fs::path& dir, const LoadOptions& options, LoadReport* report) {
  Dataset ds = load_recbole(dir, "games.test", "games", options, report);
  ds.set_name("amazon-games");
  return ds;
}

Dataset load_csv_interactions(const fs::path& file, const CsvSpec& spec, const LoadOptions& options,
                              LoadReport* report) {
  Dataset ds(file.stem().string());
  std::map<std::string, int> col;
  LineReader r(file, options, report);
  bool header_pending = spec.has_header;
  auto required = [&](const char* key) {
    if (!spec.columns.count(key))
      throw InputError(file.string(), 0, key, "column mapping has no '" + std::string(key) + "'");
  };
  required("user");
  required("item");
  if (!spec.has_header) {
    for (const auto& [k, v] : spec.columns) col[k] = parse_number<int>(v, file.string(), 0, k);
  }
  r.for_each(
      [&](std::string_view line, std::size_t n) {
        auto f = text::split(line, spec.delimiter);
        if (header_pending) {
          header_pending = false;
          for (const auto& [k, v] : spec.columns) {
            auto it = std::find(f.begin(), f.end(), v);
            if (it == f.end()) throw InputError(r.name(), n, v, "column '" + v + "' not in header");
            col[k] = static_cast<int>(it - f.begin());
          }
          return;
        }
        auto get = [&](const std::string& key) -> std::optional<std::string> {
          auto it = col.find(key);
          if (it == col.end()) return std::nullopt;
          if (static_cast<std::size_t>(it->second) >= f.size()) {
            throw InputError(r.name(), n, spec.columns.at(key),
                             "line has only " + std::to_string(f.size()) + " fields");
          }
          return std::string(text::trim(f[static_cast<std::size_t>(it->second)]));
        };
        auto uid = *get("user");
        auto iid = *get("item");
        if (uid.empty()) throw InputError(r.name(), n, spec.columns.at("user"), "empty user id");
        if (iid.empty()) throw InputError(r.name(), n, spec.columns.at("item"), "empty item id");
        float rating = kNoRating;
        if (auto v = get("rating")) rating = parse_rating(*v, r.name(), n);
        std::int64_t ts = -1;
        if (auto v = get("timestamp"))
          ts = parse_number<std::int64_t>(*v, r.name(), n, spec.columns.at("timestamp"));
        auto u = ds.intern_user(uid);
        auto i = ds.intern_item(iid);
        if (ds.item(i).domain.empty()) {
          ds.mutable_items()[i].domain = spec.domain;
          ds.mutable_items()[i].title = "item " + iid;
        }
        ds.add_interaction({u, i, rating, ts});
      },
      spec.has_header ? 1 : 0);
  return ds;
}

Dataset load_named(const std::string& name, const fs::path& data_dir, const LoadOptions& options,
                   LoadReport* report) {
  if (name == "ml-100k" || name == "ml100k" || name == "movielens") {
    return load_movielens_100k(data_dir / "ml-100k", options, report);
  }
  if (name == "games" || name == "amazon-games")
    return load_amazon_games(data_dir / "amazon-games", options, report);
  fs::path p(name);
  if (fs::is_directory(p) && fs::exists(p / "u.data"))
    return load_movielens_100k(p, options, report);
  if (fs::is_regular_file(p)) {
    CsvSpec spec;
    spec.columns = {{"user", "user"}, {"item", "item"}, {"rating", "rating"}};
    return load_csv_interactions(p, spec, options, report);
  }
  throw InputError(name, 0, "",
                   "unknown dataset (use ml-100k, games, a MovieLens directory or a CSV file)");
}

}  // namespace chatrec::data
