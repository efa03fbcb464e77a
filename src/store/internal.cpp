#include <bit>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "store/internal.h"

namespace chatrec::store::detail {

static_assert(std::endian::native == std::endian::little,
              "embedding encoding assumes a little-endian host");
static_assert(sizeof(float) == 4);

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string encode_attributes(const std::map<std::string, std::string>& attributes) {
  return nlohmann::json(attributes).dump();
}

std::map<std::string, std::string> decode_attributes(const std::string& json, const char* what) {
  try {
    return nlohmann::json::parse(json).get<std::map<std::string, std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw StoreError(std::string("stored ") + what +
                     " is not a JSON object of strings: " + e.what());
  }
}

std::string encode_categories(const std::vector<std::string>& categories) {
  return nlohmann::json(categories).dump();
}

std::vector<std::string> decode_categories(const std::string& json) {
  try {
    return nlohmann::json::parse(json).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw StoreError(std::string("stored item categories are not a JSON array of strings: ") +
                     e.what());
  }
}

std::string encode_vector(const std::vector<float>& vector) {
  std::string bytes(vector.size() * sizeof(float), '\0');
  if (!vector.empty()) std::memcpy(bytes.data(), vector.data(), bytes.size());
  return bytes;
}

std::vector<float> decode_vector(const void* bytes, std::size_t size, int dim,
                                 const std::string& where) {
  if (dim < 0 || size != static_cast<std::size_t>(dim) * sizeof(float)) {
    throw StoreError("embedding " + where + " is corrupt: " + std::to_string(size) +
                     " bytes for dim " + std::to_string(dim));
  }
  std::vector<float> vector(static_cast<std::size_t>(dim));
  if (size > 0) std::memcpy(vector.data(), bytes, size);
  return vector;
}

void require_json(const std::string& json, const char* what) {
  if (!nlohmann::json::accept(json)) {
    throw StoreError(std::string(what) + " is not valid JSON: '" + json.substr(0, 80) + "'");
  }
}

static void require_non_empty(const std::string& value, const char* what) {
  if (value.empty()) throw StoreError(std::string(what) + " must not be empty");
}

void validate(const data::User& user) {
  require_non_empty(user.id, "user id");
}

void validate(const data::Item& item) {
  require_non_empty(item.domain, "item domain");
  require_non_empty(item.id, "item id");
}

void validate(const StoredInteraction& interaction) {
  require_non_empty(interaction.user_id, "interaction user_id");
  require_non_empty(interaction.item_id, "interaction item_id");
  require_non_empty(interaction.domain, "interaction domain");
  const auto& k = interaction.kind;
  if (k != "rating" && k != "like" && k != "dislike" && k != "view") {
    throw StoreError("interaction kind '" + k + "' is not one of rating, like, dislike, view");
  }
  if (interaction.rating && std::isnan(*interaction.rating)) {
    throw StoreError(
        "interaction rating is NaN; use no rating (std::nullopt) for implicit feedback");
  }
}

void validate(const StoredMessage& message) {
  if (message.role != "user" && message.role != "assistant" && message.role != "system") {
    throw StoreError("message role '" + message.role + "' is not one of user, assistant, system");
  }
  if (!message.payload_json.empty()) require_json(message.payload_json, "message payload_json");
}

void validate(const ModelRecord& record) {
  require_non_empty(record.name, "model name");
  require_json(record.params_json.empty() ? "{}" : record.params_json, "model params_json");
}

std::string payload_or_empty_object(const std::string& payload_json) {
  return payload_json.empty() ? "{}" : payload_json;
}

}  // namespace chatrec::store::detail
