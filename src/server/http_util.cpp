#include "server/http_util.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace chatrec::server {

using nlohmann::json;

ApiError bad_request(const std::string& message) {
  return ApiError(400, "bad_request", message);
}
ApiError not_found(const std::string& what) {
  return ApiError(404, "not_found", what + " not found");
}

json error_body(const std::string& code, const std::string& message) {
  return json{{"error", {{"code", code}, {"message", message}}}};
}

std::string code_for_status(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 414:
      return "uri_too_long";
    case 416:
      return "range_not_satisfiable";
    case 429:
      return "rate_limited";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "error";
  }
}

void check_object(const json& value, const std::vector<std::string>& allowed,
                  const std::string& where) {
  if (!value.is_object()) throw bad_request(where + " must be a JSON object");
  for (const auto& [key, v] : value.items()) {
    (void)v;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      throw bad_request("unknown field '" + key + "' in " + where);
    }
  }
}

json parse_object(const std::string& body, const std::vector<std::string>& allowed) {
  if (body.empty()) throw bad_request("request body must be a JSON object");
  json value;
  try {
    // Depth is bounded by the payload limit; nlohmann's parser is recursive but the limit keeps it
    // shallow enough (256 KiB of '[' would recurse too deep), so reject pathological nesting first.
    int depth = 0, max_depth = 0;
    bool in_string = false, escaped = false;
    for (char c : body) {
      if (in_string) {
        if (escaped)
          escaped = false;
        else if (c == '\\')
          escaped = true;
        else if (c == '"')
          in_string = false;
        continue;
      }
      if (c == '"')
        in_string = true;
      else if (c == '{' || c == '[')
        max_depth = std::max(max_depth, ++depth);
      else if (c == '}' || c == ']')
        --depth;
    }
    if (max_depth > 32) throw bad_request("request body nests too deeply");
    value = json::parse(body);
  } catch (const json::exception& e) {
    // Not only parse_error: a number too large for a double ("1e400") is an out_of_range.
    throw bad_request(std::string("request body is not valid JSON: ") + e.what());
  }
  check_object(value, allowed, "request body");
  return value;
}

void check_text(const std::string& value, const std::string& field) {
  // Well-formed UTF-8 as the JSON serialiser checks it (no overlong forms, surrogates or code
  // points past U+10FFFF): query text never went through the JSON parser, and it is echoed in JSON
  // answers, whose serialisation must not throw.
  std::size_t i = 0;
  const auto* s = reinterpret_cast<const unsigned char*>(value.data());
  auto invalid = [&] { return bad_request("field '" + field + "' is not valid UTF-8"); };
  while (i < value.size()) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f) {
        throw bad_request("field '" + field + "' contains a control character");
      }
      ++i;
      continue;
    }
    int extra = 0;
    // The range of the first continuation byte excludes overlong forms, surrogates and > U+10FFFF.
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      extra = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      throw invalid();
    }
    if (i + static_cast<std::size_t>(extra) >= value.size()) throw invalid();
    if (s[i + 1] < lo || s[i + 1] > hi) throw invalid();
    for (int k = 2; k <= extra; ++k) {
      if ((s[i + static_cast<std::size_t>(k)] & 0xc0) != 0x80) throw invalid();
    }
    i += 1 + static_cast<std::size_t>(extra);
  }
}

void check_id(const std::string& value, const std::string& field) {
  if (value.empty() || value.size() > 128)
    throw bad_request("field '" + field + "' must have 1..128 characters");
  for (char c : value) {
    if (c <= 0x20 || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '%') {
      throw bad_request("field '" + field +
                        "' may only contain printable ASCII without spaces, '/', '?', '#', '%'");
    }
  }
}

void check_domain(const std::string& value, const std::string& field) {
  if (value.empty() || value.size() > 32)
    throw bad_request("field '" + field + "' must have 1..32 characters");
  for (char c : value) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
      throw bad_request("field '" + field + "' may only contain a-z, 0-9, '_' and '-'");
    }
  }
}

std::optional<std::string> optional_string(const json& object, const std::string& field,
                                           std::size_t max_length) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) throw bad_request("field '" + field + "' must be a string");
  std::string value = it->get<std::string>();
  if (value.size() > max_length) {
    throw bad_request("field '" + field + "' is longer than " + std::to_string(max_length) +
                      " bytes");
  }
  check_text(value, field);
  return value;
}

std::string required_string(const json& object, const std::string& field, std::size_t max_length) {
  auto value = optional_string(object, field, max_length);
  if (!value) throw bad_request("field '" + field + "' is required");
  if (value->empty()) throw bad_request("field '" + field + "' must not be empty");
  return *value;
}

std::optional<double> optional_number(const json& object, const std::string& field, double min,
                                      double max) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) throw bad_request("field '" + field + "' must be a number");
  double value = it->get<double>();
  if (!std::isfinite(value) || value < min || value > max) {
    throw bad_request("field '" + field + "' must be between " + json(min).dump() + " and " +
                      json(max).dump());
  }
  return value;
}

std::optional<std::int64_t> optional_integer(const json& object, const std::string& field,
                                             std::int64_t min, std::int64_t max) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) throw bad_request("field '" + field + "' must be an integer");
  if (it->is_number_unsigned() &&
      it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
    throw bad_request("field '" + field + "' is out of range");
  }
  std::int64_t value = it->get<std::int64_t>();
  if (value < min || value > max) {
    throw bad_request("field '" + field + "' must be between " + std::to_string(min) + " and " +
                      std::to_string(max));
  }
  return value;
}

std::optional<bool> optional_bool(const json& object, const std::string& field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) throw bad_request("field '" + field + "' must be a boolean");
  return it->get<bool>();
}

std::vector<std::string> string_list(const json& object, const std::string& field,
                                     std::size_t max_items, std::size_t max_length) {
  std::vector<std::string> out;
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return out;
  if (!it->is_array()) throw bad_request("field '" + field + "' must be an array of strings");
  if (it->size() > max_items) {
    throw bad_request("field '" + field + "' has more than " + std::to_string(max_items) +
                      " entries");
  }
  for (const auto& v : *it) {
    if (!v.is_string()) throw bad_request("field '" + field + "' must be an array of strings");
    std::string s = v.get<std::string>();
    if (s.empty() || s.size() > max_length) {
      throw bad_request("entries of '" + field + "' must have 1.." + std::to_string(max_length) +
                        " bytes");
    }
    check_text(s, field);
    out.push_back(std::move(s));
  }
  return out;
}

std::map<std::string, std::string> string_map(const json& object, const std::string& field,
                                              std::size_t max_entries, std::size_t max_key,
                                              std::size_t max_value) {
  std::map<std::string, std::string> out;
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return out;
  if (!it->is_object()) throw bad_request("field '" + field + "' must be an object of strings");
  if (it->size() > max_entries) {
    throw bad_request("field '" + field + "' has more than " + std::to_string(max_entries) +
                      " entries");
  }
  for (const auto& [key, v] : it->items()) {
    if (key.empty() || key.size() > max_key) {
      throw bad_request("keys of '" + field + "' must have 1.." + std::to_string(max_key) +
                        " bytes");
    }
    check_text(key, field);
    if (!v.is_string()) throw bad_request("values of '" + field + "' must be strings");
    std::string s = v.get<std::string>();
    if (s.size() > max_value) {
      throw bad_request("values of '" + field + "' must have at most " + std::to_string(max_value) +
                        " bytes");
    }
    check_text(s, field);
    out[key] = std::move(s);
  }
  return out;
}

std::optional<std::int64_t> query_integer(const std::string& value, const std::string& name,
                                          std::int64_t min, std::int64_t max) {
  if (value.empty()) return std::nullopt;
  std::int64_t parsed = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  if (ec != std::errc() || end != value.data() + value.size()) {
    throw bad_request("query parameter '" + name + "' must be an integer");
  }
  if (parsed < min || parsed > max) {
    throw bad_request("query parameter '" + name + "' must be between " + std::to_string(min) +
                      " and " + std::to_string(max));
  }
  return parsed;
}

std::string sse_event(const std::string& name, const json& data) {
  // dump() escapes newlines, so the payload stays on one "data:" line.
  return "event: " + name + "\ndata: " + data.dump(-1, ' ', false, json::error_handler_t::replace) +
         "\n\n";
}

}  // namespace chatrec::server
