#pragma once
// The dataset model every component shares: users, items and interactions with dense internal
// indices.
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace chatrec::data {

using UserIndex = std::uint32_t;
using ItemIndex = std::uint32_t;

struct User {
  std::string id;                                 // external id, as in the source files
  std::map<std::string, std::string> attributes;  // profile: age, gender, occupation, zip, ...
};

struct Item {
  std::string id;  // external id
  std::string title;
  std::string domain;                       // "movies", "games", ...
  int year = 0;                             // 0 = unknown
  std::vector<std::string> categories;      // genres or category labels
  std::map<std::string, std::string> text;  // description, url, ... (free text fields)
};

constexpr float kNoRating = std::numeric_limits<float>::quiet_NaN();

struct Interaction {
  UserIndex user = 0;
  ItemIndex item = 0;
  float rating = kNoRating;     // NaN when implicit
  std::int64_t timestamp = -1;  // -1 when unknown; sequences use positions
  bool has_rating() const { return !std::isnan(rating); }
};

// Decodes HTML character references in an item's title, categories and text fields
// ("Pok&eacute;mon"
// -> "Pokémon"): every place item text enters (loaders, the items API, `items import`) calls it
// once, so what is stored and shown is plain UTF-8.
void decode_item_text(Item& item);

class Dataset {
 public:
  explicit Dataset(std::string name = "") : name_(std::move(name)) {}

  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }

  // Adds or returns the existing index for an external id.
  UserIndex add_user(User user);
  ItemIndex add_item(Item item);
  UserIndex intern_user(const std::string& id);
  ItemIndex intern_item(const std::string& id);
  void add_interaction(const Interaction& i) { interactions_.push_back(i); }

  std::optional<UserIndex> find_user(const std::string& id) const;
  std::optional<ItemIndex> find_item(const std::string& id) const;

  std::size_t num_users() const { return users_.size(); }
  std::size_t num_items() const { return items_.size(); }
  const std::vector<User>& users() const { return users_; }
  const std::vector<Item>& items() const { return items_; }
  std::vector<Item>& mutable_items() { return items_; }
  std::vector<User>& mutable_users() { return users_; }
  const User& user(UserIndex u) const { return users_.at(u); }
  const Item& item(ItemIndex i) const { return items_.at(i); }
  const std::vector<Interaction>& interactions() const { return interactions_; }
  std::vector<Interaction>& mutable_interactions() { return interactions_; }

  // Rating scale seen in the data ({1,5} for MovieLens); {0,0} when implicit.
  std::pair<float, float> rating_range() const;
  // sha256 over a canonical serialisation of the content (ids, titles, interactions), for reports.
  std::string checksum() const;
  // All category labels in first-seen order (genres for MovieLens).
  std::vector<std::string> categories() const;

 private:
  std::string name_;
  std::vector<User> users_;
  std::vector<Item> items_;
  std::vector<Interaction> interactions_;
  std::unordered_map<std::string, UserIndex> user_index_;
  std::unordered_map<std::string, ItemIndex> item_index_;
};

}  // namespace chatrec::data
