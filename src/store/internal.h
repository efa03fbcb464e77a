#pragma once
// Pieces shared by the engines: the migration list, value encodings and input validation. Keeping
// them here is what makes both engines store exactly the same thing.
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "store/store.h"

namespace chatrec::store::detail {

// One schema change. Steps are applied in order, each in its own transaction together with its
// schema_migrations row, so a crash leaves the database at a whole version.
struct Migration {
  int version;
  const char* description;
  const char* sqlite_sql;
  const char* postgres_sql;
};
const std::vector<Migration>& migrations();

std::string encode_attributes(const std::map<std::string, std::string>& attributes);
std::map<std::string, std::string> decode_attributes(const std::string& json, const char* what);
std::string encode_categories(const std::vector<std::string>& categories);
std::vector<std::string> decode_categories(const std::string& json);

// Embeddings are stored as little-endian IEEE-754 floats: bit-exact and readable by any engine.
std::string encode_vector(const std::vector<float>& vector);
std::vector<float> decode_vector(const void* bytes, std::size_t size, int dim,
                                 const std::string& where);

// Validation throws StoreError before anything is written.
void require_json(const std::string& json, const char* what);
void require_text(const std::string& value, const std::string& what);  // UTF-8, no NUL
void validate(const data::User& user);
void validate(const data::Item& item);
void validate(const StoredInteraction& interaction);
void validate(const StoredMessage& message);
void validate(const ModelRecord& record);
void validate_embeddings(const std::string& model,
                         const std::vector<std::pair<std::string, std::vector<float>>>& by_hash);
// Empty payload means "no structured part".
std::string payload_or_empty_object(const std::string& payload_json);

}  // namespace chatrec::store::detail
