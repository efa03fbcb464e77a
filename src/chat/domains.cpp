#include "chat/domains.h"

#include <fmt/format.h>

#include <fstream>

#include "chat/engine.h"
#include "common/error.h"
#include "common/text.h"
#include "data/loaders.h"

namespace chatrec::chat {

const std::vector<DomainSpec>& known_domains() {
  static const std::vector<DomainSpec> domains = {
      {"movies", "ml-100k", "u.data", "ease", true,
       [](const std::filesystem::path& dir) { return data::load_movielens_100k(dir); }},
      {"games", "amazon-games", "games.item", "itemknn", false,
       [](const std::filesystem::path& dir) { return data::load_amazon_games(dir); }},
  };
  return domains;
}

const DomainSpec& domain_spec(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& d : known_domains()) {
    if (d.name == name) return d;
    names.push_back(d.name);
  }
  throw ChatError(ChatError::Kind::kBadRequest,
                  fmt::format("unknown domain '{}' ({})", name, text::join(names, ", ")));
}

std::vector<std::string> present_domains(const std::filesystem::path& data_dir) {
  std::vector<std::string> out;
  for (const auto& d : known_domains())
    if (d.present(data_dir)) out.push_back(d.name);
  if (out.empty()) out.push_back(known_domains().front().name);
  return out;
}

void require_present(const std::vector<std::string>& domains,
                     const std::filesystem::path& data_dir) {
  for (const auto& name : domains) {
    const DomainSpec& d = domain_spec(name);
    if (!d.present(data_dir))
      throw InputError(data_dir.string(), 0, "--data-dir",
                       "has no " + d.dataset + "/" + d.marker + " for the " + name +
                           " domain (run scripts/fetch-data.sh)");
  }
}

std::string namespaced_user_id(const std::string& domain, const std::string& dataset_user_id) {
  return domain + ":" + dataset_user_id;
}

UserLinks load_user_links(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw InputError(file.string(), 0, "", "cannot open the user links file");
  UserLinks links;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    const std::string_view t = text::trim(line);
    if (t.empty() || t.front() == '#') continue;
    std::vector<std::string> f;
    for (auto& part : text::split(t, ' '))
      if (!part.empty()) f.push_back(part);
    if (f.size() != 3)
      throw InputError(
          file.string(), n, "line",
          "expected 'DOMAIN DATASET_USER_ID USER_ID', got " + std::to_string(f.size()) + " fields");
    const DomainSpec* spec = nullptr;
    for (const auto& d : known_domains())
      if (d.name == f[0]) spec = &d;
    if (!spec) throw InputError(file.string(), n, "domain", "unknown domain '" + f[0] + "'");
    if (spec->deployment_users)
      throw InputError(file.string(), n, "domain",
                       "the " + f[0] + " dataset's user ids already are this deployment's users");
    if (!links[f[0]].emplace(f[2], f[1]).second)
      throw InputError(file.string(), n, "user", "user '" + f[2] + "' is linked twice in " + f[0]);
  }
  return links;
}

}  // namespace chatrec::chat
