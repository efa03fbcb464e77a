#include "recommend/registry.h"

#include <fmt/format.h>

#include <functional>
#include <stdexcept>

#include "recommend/als.h"
#include "recommend/blend.h"
#include "recommend/bpr.h"
#include "recommend/ease.h"
#include "recommend/itemknn.h"
#include "recommend/lightgcn.h"
#include "recommend/mf.h"
#include "recommend/popularity.h"
#include "recommend/sequence_transformer.h"
#include "recommend/sknn.h"
#include "recommend/svdpp.h"
#include "recommend/transition.h"
#include "recommend/userknn.h"

namespace chatrec::recommend {

namespace {

struct Entry {
  const char* name;
  bool rating;
  bool sequential;
  std::function<std::unique_ptr<Recommender>(const Params&)> make;
};

template <typename T>
std::function<std::unique_ptr<Recommender>(const Params&)> factory() {
  return [](const Params& p) { return std::make_unique<T>(p); };
}

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = {
      {"popularity", false, false, factory<PopularityRecommender>()},
      {"itemknn", true, false, factory<ItemKnnRecommender>()},
      {"userknn", true, false, factory<UserKnnRecommender>()},
      {"mf", true, false, factory<MfRecommender>()},
      {"svdpp", true, false, factory<SvdppRecommender>()},
      {"blend", true, false, factory<BlendRecommender>()},
      {"bpr", false, false, factory<BprRecommender>()},
      {"als", false, false, factory<AlsRecommender>()},
      {"ease", false, false, factory<EaseRecommender>()},
      {"lightgcn", false, false, factory<LightGcnRecommender>()},
      {"transition", false, true, factory<TransitionRecommender>()},
      {"sknn", false, true, factory<SknnRecommender>()},
      {"sasrec", false, true, factory<SasRecRecommender>()},
      {"bert4rec", false, true, factory<Bert4RecRecommender>()},
  };
  return entries;
}

const Entry* find_entry(const std::string& name) {
  for (const auto& e : registry()) {
    if (name == e.name) return &e;
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<Recommender> make_recommender(const std::string& name, const Params& params) {
  const Entry* e = find_entry(name);
  if (!e) {
    throw std::invalid_argument(fmt::format("unknown recommender '{}' (known: {})", name,
                                            fmt::join(recommender_names(), ", ")));
  }
  return e->make(params);
}

std::vector<std::string> recommender_names() {
  std::vector<std::string> names;
  for (const auto& e : registry()) names.emplace_back(e.name);
  return names;
}

bool is_rating_model(const std::string& name) {
  const Entry* e = find_entry(name);
  return e && e->rating;
}

bool is_sequential_model(const std::string& name) {
  const Entry* e = find_entry(name);
  return e && e->sequential;
}

bool is_known_recommender(const std::string& name) {
  return find_entry(name) != nullptr;
}

}  // namespace chatrec::recommend
