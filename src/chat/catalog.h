#pragma once
// A multi-domain catalogue: per domain (movies = ml-100k, games = amazon-games) the dataset, the
// interaction matrix its recommender was trained on, the trained recommender and a title index.
// Items added later without interactions (cold start) are appended to the dataset; the recommender
// never scores them.
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "chat/domains.h"
#include "chat/state.h"
#include "chat/title_match.h"
#include "data/dataset.h"
#include "data/matrix.h"
#include "recommend/recommender.h"

namespace chatrec::chat {

struct DomainCatalog {
  std::string name;
  std::shared_ptr<data::Dataset> dataset;
  std::shared_ptr<const data::InteractionMatrix> matrix;  // what `model` was trained on
  std::shared_ptr<const recommend::Recommender> model;
  TitleIndex titles;
  std::vector<std::string> categories;
  std::vector<data::ItemIndex> by_popularity;  // most interactions first (trained items only)
  std::size_t model_items = 0;                 // items the model scores; later ones are cold
  bool link_users =
      true;  // the dataset's user ids are this deployment's users (false for anonymous logs)
  // For anonymous logs: deployment user id -> the dataset's user id (chat/domains.h).
  std::map<std::string, std::string> linked_users;
  int latest_year = 0;

  // The dataset's user a deployment user is: the same id when the ids are the deployment's, else
  // the linked one, if any.
  std::optional<data::UserIndex> dataset_user(const std::string& user_id) const;

  bool is_cold(data::ItemIndex i) const { return i >= model_items || matrix->users_of(i).empty(); }
  std::optional<data::ItemIndex> find_item(const std::string& id) const {
    return dataset->find_item(id);
  }
  // Item-item similarity (cosine of co-occurrence) of every item to the anchors, summed; size
  // num_items of the dataset (0 for cold items).
  std::vector<float> similarity_to(std::span<const data::ItemIndex> anchors) const;
};

class Catalog {
 public:
  // Trains `model` on every interaction of `dataset`.
  DomainCatalog& add_domain(const std::string& name, data::Dataset dataset,
                            std::unique_ptr<recommend::Recommender> model,
                            const recommend::FitOptions& fit, bool link_users);
  // Uses an already trained model and its training matrix (not owned when wrapped by the caller).
  DomainCatalog& add_trained_domain(const std::string& name, data::Dataset dataset,
                                    std::shared_ptr<const data::InteractionMatrix> matrix,
                                    std::shared_ptr<const recommend::Recommender> model,
                                    bool link_users);

  const DomainCatalog* find(const std::string& domain) const;
  DomainCatalog* find(const std::string& domain);
  std::vector<std::string> domains() const;

  // Appends an item without interactions (or updates the metadata of an existing id); returns its
  // index.
  data::ItemIndex add_cold_item(const std::string& domain, data::Item item);

  // Links deployment users to users of the anonymous domains; throws InputError for a domain that
  // is not loaded or a dataset user that does not exist.
  void link_users(const UserLinks& links);

  // The user's items per linked domain (chronological, with ratings) and profile attributes.
  std::map<std::string, std::vector<RatedItem>> history_of(const std::string& user_id) const;
  std::map<std::string, std::string> profile_of(const std::string& user_id) const;

  // Readers take it shared, add_cold_item takes it exclusively.
  std::shared_mutex& mutex() const { return mutex_; }

 private:
  DomainCatalog& finish(std::unique_ptr<DomainCatalog> d);
  std::map<std::string, std::unique_ptr<DomainCatalog>> domains_;
  mutable std::shared_mutex mutex_;
};

// How load_catalog gets each domain's recommender.
struct CatalogModels {
  std::map<std::string, std::string> names;  // domain -> recommender to train (default: the spec's)
  // domain -> a saved model trained on the whole dataset (`chatrec train`), loaded instead of
  // training; a model of another shape is an InputError naming the file.
  std::map<std::string, std::string> files;
  bool progress = true;
  std::function<void(const std::string&)> log;  // one line per domain; may be empty
};

// Loads the named domains (chat/domains.h) from data_dir with their recommenders.
std::shared_ptr<Catalog> load_catalog(const std::filesystem::path& data_dir,
                                      const std::vector<std::string>& domains,
                                      const CatalogModels& models);

}  // namespace chatrec::chat
