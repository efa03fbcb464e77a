#include "chat/state.h"

#include <algorithm>
#include <stdexcept>

namespace chatrec::chat {

namespace {

void remove_item(std::vector<ItemRef>& list, const ItemRef& item) {
  list.erase(std::remove(list.begin(), list.end(), item), list.end());
}

void add_unique(std::vector<ItemRef>& list, const ItemRef& item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

template <typename T>
T field(const nlohmann::json& j, const char* name) {
  try {
    return j.at(name).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("conversation state: field '") + name +
                                "': " + e.what());
  }
}

}  // namespace

bool ConversationState::is_disliked(const ItemRef& item) const {
  return std::find(disliked.begin(), disliked.end(), item) != disliked.end();
}

void ConversationState::add_liked(const ItemRef& item) {
  remove_item(disliked, item);
  remove_item(constraints.exclude, item);
  add_unique(liked, item);
}

void ConversationState::add_disliked(const ItemRef& item) {
  remove_item(liked, item);
  remove_item(constraints.like, item);
  add_unique(disliked, item);
  add_unique(constraints.exclude, item);
}

nlohmann::json ConversationState::to_json(HistoryMode mode) const {
  nlohmann::json j;
  j["version"] = kVersion;
  j["conversation_id"] = conversation_id;
  j["user_id"] = user_id;
  j["profile"] = profile;
  if (mode == kWithHistory) {
    nlohmann::json hist = nlohmann::json::object();
    for (const auto& [domain, items] : history) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& it : items) arr.push_back({it.item_id, it.rating});
      hist[domain] = std::move(arr);
    }
    j["history"] = std::move(hist);
  }
  j["domain"] = domain;
  j["constraints"] = constraints;
  j["liked"] = liked;
  j["disliked"] = disliked;
  j["shown"] = shown;
  j["last_recommendations"] = last_recommendations;
  nlohmann::json dia = nlohmann::json::array();
  for (const auto& t : dialogue) dia.push_back({{"role", t.role}, {"content", t.content}});
  j["dialogue"] = std::move(dia);
  j["turns"] = turns;
  return j;
}

ConversationState ConversationState::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("conversation state: not a JSON object");
  const int version = field<int>(j, "version");
  if (version != kVersion) {
    throw std::invalid_argument("conversation state: unsupported version " +
                                std::to_string(version));
  }
  ConversationState s;
  s.conversation_id = field<std::string>(j, "conversation_id");
  s.user_id = field<std::string>(j, "user_id");
  s.profile = field<std::map<std::string, std::string>>(j, "profile");
  const auto history_json =
      j.contains("history") ? field<nlohmann::json>(j, "history") : nlohmann::json::object();
  for (const auto& [domain, arr] : history_json.items()) {
    auto& out = s.history[domain];
    for (const auto& e : arr) {
      if (!e.is_array() || e.size() != 2)
        throw std::invalid_argument("conversation state: field 'history' entry");
      out.push_back({e[0].get<std::string>(), e[1].get<float>()});
    }
  }
  s.domain = field<std::string>(j, "domain");
  s.constraints = field<Constraints>(j, "constraints");
  s.liked = field<std::vector<ItemRef>>(j, "liked");
  s.disliked = field<std::vector<ItemRef>>(j, "disliked");
  s.shown = field<std::vector<ItemRef>>(j, "shown");
  s.last_recommendations = field<std::vector<Recommendation>>(j, "last_recommendations");
  for (const auto& t : field<nlohmann::json>(j, "dialogue")) {
    s.dialogue.push_back({t.at("role").get<std::string>(), t.at("content").get<std::string>()});
  }
  s.turns = field<int>(j, "turns");
  return s;
}

}  // namespace chatrec::chat
