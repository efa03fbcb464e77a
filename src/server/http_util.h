#pragma once
// Internal to the server: JSON errors and strict request validation.
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace chatrec::server {

// An error answered to the client as {"error":{"code","message"}} with `status`.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string code_;
};

ApiError bad_request(const std::string& message);
ApiError not_found(const std::string& what);

nlohmann::json error_body(const std::string& code, const std::string& message);
// The conventional code for a status ("bad_request", "not_found", ...).
std::string code_for_status(int status);

// Parses a request body that must be a JSON object whose keys are all in `allowed`.
nlohmann::json parse_object(const std::string& body, const std::vector<std::string>& allowed);
// Checks an already parsed value is an object with only `allowed` keys; `where` names it in errors.
void check_object(const nlohmann::json& value, const std::vector<std::string>& allowed,
                  const std::string& where);

// Field readers: throw bad_request naming the field when the type, length or range is wrong.
std::string required_string(const nlohmann::json& object, const std::string& field,
                            std::size_t max_length);
std::optional<std::string> optional_string(const nlohmann::json& object, const std::string& field,
                                           std::size_t max_length);
std::optional<double> optional_number(const nlohmann::json& object, const std::string& field,
                                      double min, double max);
std::optional<std::int64_t> optional_integer(const nlohmann::json& object, const std::string& field,
                                             std::int64_t min, std::int64_t max);
std::optional<bool> optional_bool(const nlohmann::json& object, const std::string& field);
std::vector<std::string> string_list(const nlohmann::json& object, const std::string& field,
                                     std::size_t max_items, std::size_t max_length);
std::map<std::string, std::string> string_map(const nlohmann::json& object,
                                              const std::string& field, std::size_t max_entries,
                                              std::size_t max_key, std::size_t max_value);

// Identifiers (user, item, conversation ids): 1..128 printable ASCII characters without '/' or
// spaces.
void check_id(const std::string& value, const std::string& field);
// Domain names: 1..32 of [a-z0-9_-].
void check_domain(const std::string& value, const std::string& field);
// Free text: valid UTF-8 without control characters other than \n, \r, \t.
void check_text(const std::string& value, const std::string& field);

// Query parameters.
std::optional<std::int64_t> query_integer(const std::string& value, const std::string& name,
                                          std::int64_t min, std::int64_t max);

// Server-sent event framing: "event: NAME\ndata: JSON\n\n".
std::string sse_event(const std::string& name, const nlohmann::json& data);

}  // namespace chatrec::server
