#pragma once
// The recommenders by name: what `--model NAME` and a model file's header resolve to. Apart from
// the Recommender base class so that the interface does not depend on every implementation.
#include <memory>
#include <string>
#include <vector>

#include "recommend/recommender.h"

namespace chatrec::recommend {

// Names: popularity, itemknn, userknn, mf, svdpp, blend, bpr, als, ease, lightgcn, and the
// sequential models transition and sknn. Throws std::invalid_argument naming the known ones.
std::unique_ptr<Recommender> make_recommender(const std::string& name, const Params& params = {});
std::vector<std::string> recommender_names();
bool is_rating_model(const std::string& name);
bool is_sequential_model(const std::string& name);
bool is_known_recommender(const std::string& name);

}  // namespace chatrec::recommend
