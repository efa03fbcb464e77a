#pragma once
// A small synthetic movie catalogue for engine tests: 30 films (Comedy, Drama, Horror in turn,
// 1980-2009), 20 users with 4-star likes, a popularity model; user "1" has seen few films.
#include <memory>
#include <string>

#include "chat/catalog.h"
#include "recommend/recommender.h"
#include "recommend/registry.h"

namespace chatrec::chat::fixtures {

inline std::shared_ptr<Catalog> tiny_catalog() {
  data::Dataset ds("tiny");
  const char* genres[] = {"Comedy", "Drama", "Horror"};
  for (int i = 0; i < 30; ++i) {
    data::Item item;
    item.id = std::to_string(i + 1);
    item.title = "Film Number " + std::to_string(i + 1) + " (" + std::to_string(1980 + i) + ")";
    item.domain = "movies";
    item.year = 1980 + i;
    item.categories = {genres[i % 3]};
    ds.add_item(item);
  }
  for (int u = 0; u < 20; ++u) {
    data::User user;
    user.id = std::to_string(u + 1);
    user.attributes = {{"age", "30"}};
    ds.add_user(user);
    for (int i = 0; i < 30; ++i) {
      if ((i * 7 + u * 3) % 5 < 2 && !(u == 0 && i < 25)) {
        ds.add_interaction(
            {static_cast<data::UserIndex>(u), static_cast<data::ItemIndex>(i), 4.0f, i});
      }
    }
  }
  auto catalog = std::make_shared<Catalog>();
  recommend::FitOptions fit;
  fit.progress = false;
  catalog->add_domain("movies", std::move(ds), recommend::make_recommender("popularity"), fit,
                      true);
  return catalog;
}

}  // namespace chatrec::chat::fixtures
