#include "data/dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "common/hash.h"
#include "common/text.h"

namespace chatrec::data {

void decode_item_text(Item& item) {
  item.title = text::decode_html_entities(item.title);
  for (auto& c : item.categories) c = text::decode_html_entities(c);
  for (auto& [key, value] : item.text) value = text::decode_html_entities(value);
}

UserIndex Dataset::add_user(User user) {
  auto it = user_index_.find(user.id);
  if (it != user_index_.end()) {
    users_[it->second] = std::move(user);
    return it->second;
  }
  auto idx = static_cast<UserIndex>(users_.size());
  user_index_.emplace(user.id, idx);
  users_.push_back(std::move(user));
  return idx;
}

ItemIndex Dataset::add_item(Item item) {
  auto it = item_index_.find(item.id);
  if (it != item_index_.end()) {
    items_[it->second] = std::move(item);
    return it->second;
  }
  auto idx = static_cast<ItemIndex>(items_.size());
  item_index_.emplace(item.id, idx);
  items_.push_back(std::move(item));
  return idx;
}

UserIndex Dataset::intern_user(const std::string& id) {
  if (auto f = find_user(id)) return *f;
  return add_user(User{id, {}});
}

ItemIndex Dataset::intern_item(const std::string& id) {
  if (auto f = find_item(id)) return *f;
  Item item;
  item.id = id;
  return add_item(std::move(item));
}

std::optional<UserIndex> Dataset::find_user(const std::string& id) const {
  auto it = user_index_.find(id);
  if (it == user_index_.end()) return std::nullopt;
  return it->second;
}

std::optional<ItemIndex> Dataset::find_item(const std::string& id) const {
  auto it = item_index_.find(id);
  if (it == item_index_.end()) return std::nullopt;
  return it->second;
}

std::pair<float, float> Dataset::rating_range() const {
  float lo = 0, hi = 0;
  bool any = false;
  for (const auto& i : interactions_) {
    if (!i.has_rating()) continue;
    if (!any) {
      lo = hi = i.rating;
      any = true;
    }
    lo = std::min(lo, i.rating);
    hi = std::max(hi, i.rating);
  }
  return {lo, hi};
}

std::string Dataset::checksum() const {
  std::string buf;
  buf.reserve(interactions_.size() * 24);
  for (const auto& u : users_) buf += u.id + '\n';
  for (const auto& i : items_) buf += i.id + '\t' + i.title + '\n';
  for (const auto& x : interactions_) {
    buf += fmt::format("{} {} {} {}\n", users_[x.user].id, items_[x.item].id,
                       x.has_rating() ? fmt::format("{}", x.rating) : "-", x.timestamp);
  }
  return hash::sha256_hex(buf);
}

std::vector<std::string> Dataset::categories() const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& item : items_) {
    for (const auto& c : item.categories) {
      if (seen.insert(c).second) out.push_back(c);
    }
  }
  return out;
}

}  // namespace chatrec::data
