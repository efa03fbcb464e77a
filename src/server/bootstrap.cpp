#include "server/bootstrap.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <unordered_set>

#include "data/loaders.h"
#include "store/store.h"

namespace chatrec::server {

ImportSummary import_dataset(store::Store& store, const data::Dataset& dataset,
                             const std::string& domain, bool with_users) {
  ImportSummary summary;
  summary.domain = domain;

  // Interactions are written in one transaction, last: when some are there, the import completed.
  if (!store.all_interactions(domain).empty()) {
    summary.already_present = true;
    return summary;
  }

  if (with_users) {
    for (const auto& user : dataset.users()) {
      if (store.get_user(user.id)) continue;
      store.upsert_user(user);
      ++summary.users;
    }
  }
  std::vector<data::Item> items;
  std::unordered_set<std::string> present;
  for (const auto& item : store.list_items(domain)) present.insert(item.id);
  for (data::Item item : dataset.items()) {
    if (present.count(item.id)) continue;
    item.domain = domain;
    items.push_back(std::move(item));
  }
  if (!items.empty()) store.upsert_items(items);
  summary.items = items.size();

  std::vector<store::StoredInteraction> batch;
  batch.reserve(dataset.interactions().size());
  for (const auto& x : dataset.interactions()) {
    store::StoredInteraction s;
    s.user_id = dataset.user(x.user).id;
    s.item_id = dataset.item(x.item).id;
    s.domain = domain;
    if (x.has_rating()) s.rating = x.rating;
    s.kind = x.has_rating() ? "rating" : "view";
    s.timestamp = std::max<std::int64_t>(0, x.timestamp);
    batch.push_back(std::move(s));
  }
  store.add_interactions(batch);
  summary.interactions = batch.size();
  return summary;
}

std::vector<ImportSummary> import_shared_datasets(store::Store& store,
                                                  const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::vector<ImportSummary> out;
  fs::path ml = fs::path(data_dir) / "ml-100k";
  if (fs::exists(ml / "u.data")) {
    out.push_back(import_dataset(store, data::load_movielens_100k(ml), "movies"));
  } else {
    spdlog::warn("no MovieLens-100K under {}: the movies catalogue stays empty", data_dir);
  }
  fs::path games = fs::path(data_dir) / "amazon-games";
  if (fs::exists(games / "games.item")) {
    out.push_back(
        import_dataset(store, data::load_amazon_games(games), "games", /*with_users=*/false));
  }
  return out;
}

}  // namespace chatrec::server
