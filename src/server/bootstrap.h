#pragma once
// First start of a server: the shared datasets go into the store once, so that users, items and
// ratings are served (and extended through the API) from one place.
#include <string>
#include <vector>

#include "data/dataset.h"

namespace chatrec::store {
class Store;
}

namespace chatrec::server {

struct ImportSummary {
  std::string domain;
  std::size_t users = 0;
  std::size_t items = 0;
  std::size_t interactions = 0;
  bool already_present = false;  // nothing written: an earlier start imported it
};

// Imports `dataset` into `store` under `domain` unless it is there already (idempotent: a repeated
// call, or a call after a crash between the steps, writes only what is missing). Users without
// attributes are not imported when `with_users` is false: an anonymous log's users, whose
// interactions are stored under their namespaced ids ("games:196", chat/domains.h) so they never
// merge with this deployment's user of the same id.
ImportSummary import_dataset(store::Store& store, const data::Dataset& dataset,
                             const std::string& domain, bool with_users = true);

// MovieLens-100K ("movies") and, when present under data_dir, Amazon Games ("games").
std::vector<ImportSummary> import_shared_datasets(store::Store& store, const std::string& data_dir);

}  // namespace chatrec::server
