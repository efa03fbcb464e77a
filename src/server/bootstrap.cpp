#include "server/bootstrap.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <unordered_set>

#include "chat/domains.h"
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
    // An anonymous log's ids are not this deployment's users: they keep a namespace of their own.
    s.user_id = with_users ? dataset.user(x.user).id
                           : chat::namespaced_user_id(domain, dataset.user(x.user).id);
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
  std::vector<ImportSummary> out;
  for (const chat::DomainSpec& spec : chat::known_domains()) {
    if (spec.present(data_dir)) {
      out.push_back(
          import_dataset(store, spec.load(spec.dir(data_dir)), spec.name, spec.deployment_users));
    } else if (spec.deployment_users) {
      spdlog::warn("no {} under {}: the {} catalogue stays empty", spec.dataset, data_dir,
                   spec.name);
    }
  }
  return out;
}

}  // namespace chatrec::server
