#include "chat/catalog.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <stdexcept>

#include "chat/engine.h"
#include "common/error.h"
#include "data/loaders.h"
#include "recommend/registry.h"

namespace chatrec::chat {

std::vector<float> DomainCatalog::similarity_to(std::span<const data::ItemIndex> anchors) const {
  std::vector<float> sim(dataset->num_items(), 0.0f);
  std::vector<float> co(matrix->num_items(), 0.0f);
  for (data::ItemIndex a : anchors) {
    if (a >= matrix->num_items()) continue;
    const auto users = matrix->users_of(a);
    if (users.empty()) continue;
    std::fill(co.begin(), co.end(), 0.0f);
    for (data::UserIndex u : users) {
      for (data::ItemIndex i : matrix->items_of(u)) co[i] += 1.0f;
    }
    const float na = std::sqrt(static_cast<float>(users.size()));
    for (data::ItemIndex i = 0; i < co.size(); ++i) {
      if (co[i] == 0.0f || i == a) continue;
      sim[i] += co[i] / (na * std::sqrt(static_cast<float>(matrix->users_of(i).size())));
    }
  }
  return sim;
}

DomainCatalog& Catalog::add_domain(const std::string& name, data::Dataset dataset,
                                   std::unique_ptr<recommend::Recommender> model,
                                   const recommend::FitOptions& fit, bool link_users) {
  auto matrix = std::make_shared<data::InteractionMatrix>(dataset.num_users(), dataset.num_items(),
                                                          dataset.interactions());
  model->fit(*matrix, fit);
  return add_trained_domain(name, std::move(dataset), matrix,
                            std::shared_ptr<const recommend::Recommender>(std::move(model)),
                            link_users);
}

DomainCatalog& Catalog::add_trained_domain(const std::string& name, data::Dataset dataset,
                                           std::shared_ptr<const data::InteractionMatrix> matrix,
                                           std::shared_ptr<const recommend::Recommender> model,
                                           bool link_users) {
  auto d = std::make_unique<DomainCatalog>();
  d->name = name;
  d->dataset = std::make_shared<data::Dataset>(std::move(dataset));
  d->matrix = std::move(matrix);
  d->model = std::move(model);
  d->link_users = link_users;
  d->model_items = std::min(d->matrix->num_items(), d->dataset->num_items());
  return finish(std::move(d));
}

DomainCatalog& Catalog::finish(std::unique_ptr<DomainCatalog> d) {
  d->titles = TitleIndex(*d->dataset);
  d->categories = d->dataset->categories();
  d->by_popularity.resize(d->model_items);
  std::iota(d->by_popularity.begin(), d->by_popularity.end(), 0);
  const auto& m = *d->matrix;
  std::stable_sort(d->by_popularity.begin(), d->by_popularity.end(),
                   [&](data::ItemIndex a, data::ItemIndex b) {
                     return m.users_of(a).size() > m.users_of(b).size();
                   });
  for (const auto& item : d->dataset->items()) d->latest_year = std::max(d->latest_year, item.year);
  std::unique_lock lock(mutex_);
  auto& slot = domains_[d->name];
  slot = std::move(d);
  return *slot;
}

const DomainCatalog* Catalog::find(const std::string& domain) const {
  auto it = domains_.find(domain);
  return it == domains_.end() ? nullptr : it->second.get();
}

DomainCatalog* Catalog::find(const std::string& domain) {
  auto it = domains_.find(domain);
  return it == domains_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Catalog::domains() const {
  std::vector<std::string> out;
  for (const auto& [name, d] : domains_) out.push_back(name);
  // The first domain is the default one: movies when present.
  std::stable_partition(out.begin(), out.end(), [](const std::string& s) { return s == "movies"; });
  return out;
}

data::ItemIndex Catalog::add_cold_item(const std::string& domain, data::Item item) {
  std::unique_lock lock(mutex_);
  DomainCatalog* d = find(domain);
  if (!d) throw ChatError(ChatError::Kind::kNotFound, "unknown domain '" + domain + "'");
  item.domain = domain;
  if (auto existing = d->dataset->find_item(item.id)) {
    d->dataset->mutable_items()[*existing] = item;
    return *existing;
  }
  const data::ItemIndex index = d->dataset->add_item(item);
  d->titles.add(index, item.title);
  for (const auto& c : item.categories) {
    if (std::find(d->categories.begin(), d->categories.end(), c) == d->categories.end())
      d->categories.push_back(c);
  }
  d->latest_year = std::max(d->latest_year, item.year);
  return index;
}

std::optional<data::UserIndex> DomainCatalog::dataset_user(const std::string& user_id) const {
  if (link_users) return dataset->find_user(user_id);
  const auto it = linked_users.find(user_id);
  if (it == linked_users.end()) return std::nullopt;
  return dataset->find_user(it->second);
}

void Catalog::link_users(const UserLinks& links) {
  std::unique_lock lock(mutex_);
  for (const auto& [domain, users] : links) {
    DomainCatalog* d = find(domain);
    if (!d) throw InputError("user links", 0, "domain", "domain '" + domain + "' is not loaded");
    for (const auto& [user, dataset_user] : users) {
      if (!d->dataset->find_user(dataset_user))
        throw InputError("user links", 0, "user",
                         "the " + domain + " dataset has no user '" + dataset_user + "'");
    }
    d->linked_users = users;
  }
}

std::map<std::string, std::vector<RatedItem>> Catalog::history_of(
    const std::string& user_id) const {
  std::map<std::string, std::vector<RatedItem>> out;
  for (const auto& [name, d] : domains_) {
    const auto u = d->dataset_user(user_id);
    if (!u || *u >= d->matrix->num_users()) continue;
    const auto items = d->matrix->items_of(*u);
    const auto ratings = d->matrix->ratings_of(*u);
    auto& list = out[name];
    for (data::ItemIndex i : d->matrix->sequence(*u)) {
      const auto pos = std::lower_bound(items.begin(), items.end(), i) - items.begin();
      const float r = pos < static_cast<long>(ratings.size()) && !std::isnan(ratings[pos])
                          ? ratings[pos]
                          : 0.0f;
      list.push_back({d->dataset->item(i).id, r});
    }
  }
  return out;
}

std::map<std::string, std::string> Catalog::profile_of(const std::string& user_id) const {
  // Profiles come from the deployment's own users (an anonymous log has none).
  for (const auto& [name, d] : domains_) {
    if (!d->link_users) continue;
    if (const auto u = d->dataset->find_user(user_id)) return d->dataset->user(*u).attributes;
  }
  return {};
}

std::shared_ptr<Catalog> load_catalog(const std::filesystem::path& data_dir,
                                      const std::vector<std::string>& domains,
                                      const CatalogModels& models) {
  auto catalog = std::make_shared<Catalog>();
  recommend::FitOptions fit;
  fit.progress = models.progress;
  const auto log = [&](const std::string& line) {
    if (models.log) models.log(line);
  };
  for (const auto& domain : domains) {
    const DomainSpec& spec = domain_spec(domain);
    data::Dataset ds = spec.load(spec.dir(data_dir));
    if (auto file = models.files.find(domain); file != models.files.end()) {
      std::shared_ptr<const recommend::Recommender> model =
          recommend::Recommender::load(file->second);
      if (model->num_items() != ds.num_items() || model->num_users() != ds.num_users()) {
        throw InputError(file->second, 0, "model",
                         fmt::format("was trained on {} users x {} items, but {} has {} x {}",
                                     model->num_users(), model->num_items(), spec.dataset,
                                     ds.num_users(), ds.num_items()));
      }
      auto matrix = std::make_shared<data::InteractionMatrix>(ds.num_users(), ds.num_items(),
                                                              ds.interactions());
      log(fmt::format("{}: model {} from {}", domain, model->name(), file->second));
      catalog->add_trained_domain(domain, std::move(ds), matrix, model, spec.deployment_users);
      continue;
    }
    auto it = models.names.find(domain);
    const std::string model = it != models.names.end() ? it->second : spec.default_model;
    log(fmt::format("{}: training {} on {}", domain, model, spec.dataset));
    catalog->add_domain(domain, std::move(ds), recommend::make_recommender(model), fit,
                        spec.deployment_users);
  }
  return catalog;
}

}  // namespace chatrec::chat
