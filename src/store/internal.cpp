#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/text.h"
#include "store/internal.h"

namespace chatrec::store::detail {

static_assert(std::endian::native == std::endian::little,
              "embedding encoding assumes a little-endian host");
static_assert(sizeof(float) == 4);

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

void require_text(const std::string& value, const std::string& what) {
  // PostgreSQL rejects invalid UTF-8 and cuts text parameters at NUL while SQLite stores any bytes;
  // refusing both up front keeps the engines interchangeable.
  if (!text::is_valid_utf8(value)) throw StoreError(what + " is not valid UTF-8");
  if (value.find('\0') != std::string::npos) throw StoreError(what + " contains a NUL byte");
}

static void require_id(const std::string& value, const char* what) {
  if (value.empty()) throw StoreError(std::string(what) + " must not be empty");
  require_text(value, what);
}

static void require_text_map(const std::map<std::string, std::string>& map,
                             const std::string& what) {
  for (const auto& [key, value] : map) {
    require_text(key, what + " key");
    require_text(value, what + " '" + key + "'");
  }
}

void validate(const data::User& user) {
  require_id(user.id, "user id");
  require_text_map(user.attributes, "user '" + user.id + "' attribute");
}

void validate(const data::Item& item) {
  require_id(item.domain, "item domain");
  require_id(item.id, "item id");
  const std::string where = "item " + item.domain + "/" + item.id;
  require_text(item.title, where + " title");
  for (const auto& category : item.categories) require_text(category, where + " category");
  require_text_map(item.text, where + " text");
}

void validate(const StoredInteraction& interaction) {
  require_id(interaction.user_id, "interaction user_id");
  require_id(interaction.item_id, "interaction item_id");
  require_id(interaction.domain, "interaction domain");
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
  require_text(message.content, "message content");
  if (!message.payload_json.empty()) require_json(message.payload_json, "message payload_json");
}

void validate(const ModelRecord& record) {
  require_id(record.name, "model name");
  require_text(record.path, "model path");
  require_text(record.dataset_checksum, "model dataset_checksum");
  require_json(record.params_json.empty() ? "{}" : record.params_json, "model params_json");
}

void validate_embeddings(const std::string& model,
                         const std::vector<std::pair<std::string, std::vector<float>>>& by_hash) {
  require_id(model, "embedding model name");
  for (const auto& entry : by_hash) require_id(entry.first, "embedding text hash");
}

std::string payload_or_empty_object(const std::string& payload_json) {
  return payload_json.empty() ? "{}" : payload_json;
}

}  // namespace chatrec::store::detail
