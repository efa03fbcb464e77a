#pragma once
// Text helpers shared by the loaders and the title matcher.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatrec::text {

// Latin-1 bytes to UTF-8 (MovieLens u.item is Latin-1).
std::string latin1_to_utf8(std::string_view in);
// Decodes HTML character references ("&amp;", "&eacute;", "&#39;", "&#x2019;") to UTF-8, as scraped
// catalogues (Amazon titles) carry them; a no-break space becomes a plain space, and anything that
// is not a known reference stays as written.
std::string decode_html_entities(std::string_view in);
// One code point as UTF-8.
std::string utf8_encode(char32_t code_point);
// True if the bytes are valid UTF-8.
bool is_valid_utf8(std::string_view in);
std::vector<std::string> split(std::string_view s, char sep);
std::string_view trim(std::string_view s);
std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool starts_with_icase(std::string_view s, std::string_view prefix);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
// Standard base64 (RFC 4648, with padding), by OpenSSL. decode returns std::nullopt on bad input.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace chatrec::text
