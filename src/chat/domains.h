#pragma once
// The domains chatrec ships loaders for, in one table that `serve`, `chat` and the store import
// share: where the data lives, how it loads, the default recommender, and whose users its user ids
// are.
//
// User namespaces: MovieLens user "196" and Amazon Games user "196" are different people. A
// dataset whose ids are this deployment's users (MovieLens, with profiles) is read under those
// ids; an anonymous log (Amazon Games) keeps its ids in a namespace of its own ("games:196" in the
// store) and reaches a deployment user only through an explicit link (load_user_links), so
// cross-domain recommendations work from linked history only.
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace chatrec::chat {

struct DomainSpec {
  std::string name;              // "movies"
  std::string dataset;           // directory under the data dir: "ml-100k"
  std::string marker;            // a file in it that is present when the data is: "u.data"
  std::string default_model;     // recommender when none is configured
  bool deployment_users = true;  // false: anonymous logs (own user namespace)
  std::function<data::Dataset(const std::filesystem::path& dir)> load;

  std::filesystem::path dir(const std::filesystem::path& data_dir) const {
    return data_dir / dataset;
  }
  bool present(const std::filesystem::path& data_dir) const {
    return std::filesystem::exists(dir(data_dir) / marker);
  }
};

const std::vector<DomainSpec>& known_domains();
// The spec of `name`; throws ChatError (bad request) naming the known ones.
const DomainSpec& domain_spec(const std::string& name);

// The known domains whose data is under data_dir; when none is, the first known one (so that the
// start-up check names what is missing).
std::vector<std::string> present_domains(const std::filesystem::path& data_dir);
// Throws InputError naming the missing file (and the fetch script) for a domain whose data is not
// under data_dir.
void require_present(const std::vector<std::string>& domains,
                     const std::filesystem::path& data_dir);

// An anonymous dataset's user id in its namespace: "games:196".
std::string namespaced_user_id(const std::string& domain, const std::string& dataset_user_id);

// Deployment users linked to users of anonymous datasets: domain -> deployment user id -> the
// dataset's user id.
using UserLinks = std::map<std::string, std::map<std::string, std::string>>;
// Reads lines "DOMAIN DATASET_USER_ID USER_ID" (blank lines and # comments skipped). A domain that
// is not known or whose ids already are deployment users, a malformed line, or a user linked twice
// in one domain is an InputError naming the file and line.
UserLinks load_user_links(const std::filesystem::path& file);

}  // namespace chatrec::chat
