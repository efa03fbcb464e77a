#include "llm/openai/plain_prompt.h"

#include <array>

namespace chatrec::llm::openai {
namespace {

struct Header {
  std::string_view role;
  std::string_view text;
};
constexpr std::array<Header, 3> kHeaders{
    {{"system", "System:"}, {"user", "User:"}, {"assistant", "Assistant:"}}};
constexpr std::string_view kSeparator = "\n\n";

std::string_view header_for(std::string_view role) {
  for (const auto& h : kHeaders) {
    if (h.role == role) return h.text;
  }
  return {};
}

// The header starting at `pos`, if any, and whether it is followed by a space (all but the open
// assistant turn are).
const Header* header_at(std::string_view text, std::size_t pos) {
  for (const auto& h : kHeaders) {
    if (text.substr(pos, h.text.size()) == h.text) return &h;
  }
  return nullptr;
}

}  // namespace

std::string render_plain_prompt(const std::vector<Message>& messages) {
  std::string out;
  for (const auto& m : messages) {
    std::string_view header = header_for(m.role);
    if (header.empty()) {
      out += m.role;
      out += ':';
    } else {
      out += header;
    }
    out += ' ';
    out += m.content;
    out += kSeparator;
  }
  out += "Assistant:";
  return out;
}

std::optional<PlainPrompt> parse_plain_prompt(std::string_view text) {
  constexpr std::string_view kOpen = "Assistant:";
  // The open assistant turn is the last "Assistant:" at the start of the text or after a separator.
  std::size_t open = std::string_view::npos;
  for (std::size_t pos = text.rfind(kOpen); pos != std::string_view::npos;
       pos = pos == 0 ? std::string_view::npos : text.rfind(kOpen, pos - 1)) {
    if (pos == 0 || (pos >= 2 && text.substr(pos - 2, 2) == kSeparator)) {
      open = pos;
      break;
    }
  }
  if (open == std::string_view::npos) return std::nullopt;

  PlainPrompt out;
  out.prefix_bytes = open + kOpen.size();
  std::string_view rest = text.substr(out.prefix_bytes);
  if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  out.continuation = std::string(rest);

  std::string_view body = text.substr(0, open);
  if (body.empty()) return out;
  if (body.size() < kSeparator.size() || body.substr(body.size() - 2) != kSeparator)
    return std::nullopt;
  body.remove_suffix(kSeparator.size());
  std::size_t pos = 0;
  const Header* current = header_at(body, 0);
  if (!current) return std::nullopt;
  while (current) {
    std::size_t start = pos + current->text.size();
    if (start < body.size() && body[start] == ' ') ++start;
    // The next header starts after a separator; anything else is part of this message's content.
    std::size_t next = std::string_view::npos;
    const Header* next_header = nullptr;
    for (std::size_t sep = body.find(kSeparator, start); sep != std::string_view::npos;
         sep = body.find(kSeparator, sep + 1)) {
      if ((next_header = header_at(body, sep + kSeparator.size()))) {
        next = sep;
        break;
      }
    }
    std::size_t end = next == std::string_view::npos ? body.size() : next;
    out.messages.push_back({std::string(current->role),
                            std::string(body.substr(start, end > start ? end - start : 0))});
    if (next == std::string_view::npos) break;
    pos = next + kSeparator.size();
    current = next_header;
  }
  return out;
}

std::size_t utf8_length(std::string_view text) {
  std::size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::size_t utf8_complete_prefix(std::string_view text) {
  // Walk back over at most three continuation bytes to the lead byte of the last sequence.
  std::size_t i = text.size();
  std::size_t back = 0;
  while (i > 0 && back < 4 && (static_cast<unsigned char>(text[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++back;
  }
  if (i == 0)
    return back == 0 ? 0 : text.size();  // only continuation bytes: invalid anyway, pass on
  auto lead = static_cast<unsigned char>(text[i - 1]);
  std::size_t need = lead < 0x80           ? 1
                     : (lead >> 5) == 0x6  ? 2
                     : (lead >> 4) == 0xE  ? 3
                     : (lead >> 3) == 0x1E ? 4
                                           : 1;
  return back + 1 >= need ? text.size() : i - 1;
}

}  // namespace chatrec::llm::openai
