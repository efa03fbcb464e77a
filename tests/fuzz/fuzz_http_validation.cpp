// The HTTP API's request validation (server/http_util.h) as the routes of server/handlers.cpp apply
// it. An input is a mode line and a payload: "body ROUTE" and a request body, validated as ROUTE
// validates its fields (users, user_put, items, interactions, conversations, messages, explain,
// feedback), or "query" and a raw query-parameter value (after URL decoding: any bytes), checked
// as the routes check limit/offset/k, q, genre and domain; "event" and a streamed token's text.
//
// Properties: a bad request is an ApiError with status 400, never another exception (which would
// answer 500); an accepted body is an object with only the route's keys that serialises back to
// itself; every accepted field honours its type, length and range; text accepted by check_text is
// valid UTF-8 (it is echoed in JSON later, which must not throw); an SSE event is three lines.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "server/http_util.h"

namespace {

using namespace chatrec::server;
using nlohmann::json;

// The limits of server/handlers.cpp.
constexpr std::size_t kMaxText = 4000;
constexpr std::size_t kMaxTitle = 512;
constexpr std::size_t kMaxBatch = 500;

bool serialises(const std::string& s) {
  try {
    (void)json(s).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

std::string text_field(const json& o, const std::string& field, std::size_t max, bool required) {
  std::string s;
  if (required) {
    s = required_string(o, field, max);
    FUZZ_CHECK(!s.empty());
  } else if (auto v = optional_string(o, field, max)) {
    s = *v;
  }
  FUZZ_CHECK(s.size() <= max);
  FUZZ_CHECK(serialises(s));
  return s;
}

void id_field(const json& o, const std::string& field) {
  const std::string id = text_field(o, field, 128, true);
  check_id(id, field);
  for (char c : id) FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '/' && c != '?' && c != '#');
}

void domain_field(const json& o, const std::string& field) {
  const std::string d = text_field(o, field, 32, true);
  check_domain(d, field);
  for (char c : d)
    FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
}

void map_field(const json& o, const std::string& field, std::size_t entries, std::size_t key,
               std::size_t value) {
  const auto m = string_map(o, field, entries, key, value);
  FUZZ_CHECK(m.size() <= entries);
  for (const auto& [k, v] : m) {
    FUZZ_CHECK(!k.empty() && k.size() <= key && v.size() <= value);
    FUZZ_CHECK(serialises(k) && serialises(v));
  }
}

void integer_field(const json& o, const std::string& field, std::int64_t min, std::int64_t max) {
  if (auto v = optional_integer(o, field, min, max)) FUZZ_CHECK(*v >= min && *v <= max);
}

// A batch route: one entry, or {"LIST": [1..kMaxBatch entries]} alone.
std::vector<json> entries_of(const json& body, const std::string& list) {
  if (!body.contains(list)) return {body};
  if (body.size() != 1) throw bad_request("either one entry or a list");
  if (!body[list].is_array() || body[list].empty() || body[list].size() > kMaxBatch)
    throw bad_request("bad list");
  return body[list].get<std::vector<json>>();
}

void validate_body(std::string_view route, const std::string& body) {
  auto parse = [&](const std::vector<std::string>& allowed) {
    const json value = parse_object(body, allowed);
    FUZZ_CHECK(value.is_object());
    for (const auto& [key, v] : value.items()) {
      (void)v;
      FUZZ_CHECK(std::find(allowed.begin(), allowed.end(), key) != allowed.end());
    }
    FUZZ_CHECK(json::parse(value.dump()) == value);
    return value;
  };
  if (route == "users") {
    const json b = parse({"id", "attributes"});
    id_field(b, "id");
    map_field(b, "attributes", 32, 64, 256);
  } else if (route == "user_put") {
    map_field(parse({"attributes"}), "attributes", 32, 64, 256);
  } else if (route == "items") {
    const json b = parse({"items", "domain", "id", "title", "year", "categories", "text"});
    for (const json& e : entries_of(b, "items")) {
      check_object(e, {"domain", "id", "title", "year", "categories", "text"}, "items[]");
      domain_field(e, "domain");
      id_field(e, "id");
      text_field(e, "title", kMaxTitle, true);
      integer_field(e, "year", 0, 3000);
      const auto categories = string_list(e, "categories", 32, 64);
      FUZZ_CHECK(categories.size() <= 32);
      for (const auto& c : categories) FUZZ_CHECK(!c.empty() && c.size() <= 64 && serialises(c));
      map_field(e, "text", 16, 64, kMaxText);
    }
  } else if (route == "interactions") {
    const std::vector<std::string> fields = {"user_id", "domain",    "item_id",        "kind",
                                             "rating",  "timestamp", "conversation_id"};
    std::vector<std::string> top = fields;
    top.push_back("interactions");
    for (const json& e : entries_of(parse(top), "interactions")) {
      check_object(e, fields, "interactions[]");
      id_field(e, "user_id");
      domain_field(e, "domain");
      id_field(e, "item_id");
      text_field(e, "kind", 16, false);
      if (auto r = optional_number(e, "rating", 0.0, 5.0))
        FUZZ_CHECK(std::isfinite(*r) && *r >= 0.0 && *r <= 5.0);
      integer_field(e, "timestamp", 0, 32503680000);
      text_field(e, "conversation_id", 64, false);
    }
  } else if (route == "conversations") {
    id_field(parse({"user_id"}), "user_id");
  } else if (route == "messages") {
    text_field(parse({"text"}), "text", kMaxText, true);
  } else if (route == "explain" || route == "feedback") {
    const json b =
        route == "explain" ? parse({"domain", "item_id"}) : parse({"domain", "item_id", "liked"});
    domain_field(b, "domain");
    id_field(b, "item_id");
    if (route == "feedback") optional_bool(b, "liked");
  }
}

void validate_query(const std::string& value) {
  for (auto [min, max] :
       {std::pair<std::int64_t, std::int64_t>{1, 1000}, {0, 100000000}, {1, 100}}) {
    try {
      if (auto v = query_integer(value, "limit", min, max)) FUZZ_CHECK(*v >= min && *v <= max);
    } catch (const ApiError& e) {
      FUZZ_CHECK(e.status() == 400);
    }
  }
  try {
    check_domain(value, "domain");
    FUZZ_CHECK(!value.empty() && value.size() <= 32);
  } catch (const ApiError& e) {
    FUZZ_CHECK(e.status() == 400);
  }
  try {
    check_id(value, "id");
    FUZZ_CHECK(!value.empty() && value.size() <= 128);
  } catch (const ApiError& e) {
    FUZZ_CHECK(e.status() == 400);
  }
  check_text(value, "q");
  FUZZ_CHECK(serialises(value));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [mode, rest] = chatrec::fuzz::first_line(chatrec::fuzz::text_of(data, size));
  const std::string payload(rest);
  try {
    if (mode.starts_with("body ")) {
      validate_body(mode.substr(5), payload);
    } else if (mode == "query") {
      validate_query(payload);
    } else if (mode == "event") {
      const std::string event = sse_event("token", json{{"text", payload}});
      FUZZ_CHECK(std::count(event.begin(), event.end(), '\n') == 3);
      FUZZ_CHECK(event.starts_with("event: token\ndata: {") && event.ends_with("}\n\n"));
    }
  } catch (const ApiError& e) {
    FUZZ_CHECK(e.status() == 400);
    FUZZ_CHECK(e.code() == "bad_request");
  }
  return 0;
}
