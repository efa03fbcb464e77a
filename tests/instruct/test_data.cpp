#include "test_data.h"

#include <fmt/format.h>

#include "common/random.h"

namespace chatrec::instruct::testdata {

data::Dataset synthetic(std::size_t users, std::size_t items, bool with_categories) {
  static const char* kGenres[] = {"Action", "Puzzle", "Racing", "Sports"};
  data::Dataset ds("synthetic");
  for (std::size_t i = 0; i < items; ++i) {
    data::Item item;
    item.id = fmt::format("i{}", i);
    item.title =
        fmt::format("Game {{{}}} Title {:03}", kGenres[i % 4], i);  // braces must survive rendering
    item.domain = "games";
    if (with_categories) item.categories = {kGenres[i % 4], i % 3 == 0 ? "Classic" : "Modern"};
    ds.add_item(item);
  }
  Rng rng(7);
  for (std::size_t u = 0; u < users; ++u) {
    const auto user = ds.add_user(data::User{fmt::format("u{}", u), {}});
    const std::size_t n = 6 + u % 8;
    std::vector<data::ItemIndex> pool;
    for (std::size_t i = 0; i < items; ++i) pool.push_back(static_cast<data::ItemIndex>(i));
    rng.shuffle(pool);
    for (std::size_t k = 0; k < n; ++k) {
      ds.add_interaction({user, pool[k], data::kNoRating, static_cast<std::int64_t>(k)});
    }
  }
  return ds;
}

}  // namespace chatrec::instruct::testdata
