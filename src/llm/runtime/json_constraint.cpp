#include "llm/runtime/json_constraint.h"

namespace chatrec::llm::runtime {
namespace {

bool is_whitespace(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

bool JsonObjectPrefix::feed(std::string_view bytes) {
  for (char c : bytes) {
    if (!step(c)) return false;
  }
  return true;
}

bool JsonObjectPrefix::start_value(char c) {
  switch (c) {
    case '"':
      in_key_ = false;
      state_ = State::kString;
      return true;
    case '{':
    case '[':
      if (stack_.size() >= kMaxDepth) return false;
      stack_.push_back(c);
      state_ = c == '{' ? State::kKeyOrClose : State::kValueOrClose;
      return true;
    case '-':
      state_ = State::kNumberSign;
      return true;
    case '0':
      state_ = State::kNumberZero;
      return true;
    case 't':
      literal_rest_ = "rue";
      state_ = State::kLiteral;
      return true;
    case 'f':
      literal_rest_ = "alse";
      state_ = State::kLiteral;
      return true;
    case 'n':
      literal_rest_ = "ull";
      state_ = State::kLiteral;
      return true;
    default:
      if (is_digit(c)) {
        state_ = State::kNumberInt;
        return true;
      }
      return false;
  }
}

bool JsonObjectPrefix::close(char c) {
  if (stack_.empty() || (c == '}' ? '{' : '[') != stack_.back()) return false;
  stack_.pop_back();
  state_ = stack_.empty() ? State::kDone : State::kAfterValue;
  return true;
}

bool JsonObjectPrefix::end_value(char c) {
  state_ = State::kAfterValue;
  return step(c);
}

bool JsonObjectPrefix::step(char c) {
  const bool ws = is_whitespace(c);
  const bool between_tokens = state_ == State::kKeyOrClose || state_ == State::kKey ||
                              state_ == State::kColon || state_ == State::kValue ||
                              state_ == State::kValueOrClose || state_ == State::kAfterValue;
  if (between_tokens) {
    if (ws) return ++whitespace_run_ <= kMaxWhitespaceRun;
    whitespace_run_ = 0;
  }
  switch (state_) {
    case State::kStart:
      if (c != '{') return false;
      stack_.push_back(c);
      state_ = State::kKeyOrClose;
      return true;
    case State::kKeyOrClose:
      if (c == '}') return close(c);
      [[fallthrough]];
    case State::kKey:
      if (c != '"') return false;
      in_key_ = true;
      state_ = State::kString;
      return true;
    case State::kColon:
      if (c != ':') return false;
      state_ = State::kValue;
      return true;
    case State::kValueOrClose:
      if (c == ']') return close(c);
      [[fallthrough]];
    case State::kValue:
      return start_value(c);
    case State::kAfterValue:
      if (c == '}' || c == ']') return close(c);
      if (c != ',') return false;
      state_ = stack_.back() == '{' ? State::kKey : State::kValue;
      return true;
    case State::kString:
      if (c == '"') {
        state_ = in_key_ ? State::kColon : State::kAfterValue;
        return true;
      }
      if (c == '\\') {
        state_ = State::kEscape;
        return true;
      }
      return static_cast<unsigned char>(c) >= 0x20;
    case State::kEscape:
      if (c == 'u') {
        hex_left_ = 4;
        state_ = State::kUnicode;
        return true;
      }
      state_ = State::kString;
      return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
             c == 't';
    case State::kUnicode:
      if (!is_hex(c)) return false;
      if (--hex_left_ == 0) state_ = State::kString;
      return true;
    case State::kNumberSign:
      if (c == '0') {
        state_ = State::kNumberZero;
        return true;
      }
      if (!is_digit(c)) return false;
      state_ = State::kNumberInt;
      return true;
    case State::kNumberInt:
      if (is_digit(c)) return true;
      [[fallthrough]];
    case State::kNumberZero:
      if (c == '.') {
        state_ = State::kNumberDot;
        return true;
      }
      if (c == 'e' || c == 'E') {
        state_ = State::kNumberExp;
        return true;
      }
      return end_value(c);
    case State::kNumberDot:
      if (!is_digit(c)) return false;
      state_ = State::kNumberFrac;
      return true;
    case State::kNumberFrac:
      if (is_digit(c)) return true;
      if (c == 'e' || c == 'E') {
        state_ = State::kNumberExp;
        return true;
      }
      return end_value(c);
    case State::kNumberExp:
      if (c == '+' || c == '-') {
        state_ = State::kNumberExpSign;
        return true;
      }
      [[fallthrough]];
    case State::kNumberExpSign:
      if (!is_digit(c)) return false;
      state_ = State::kNumberExpInt;
      return true;
    case State::kNumberExpInt:
      if (is_digit(c)) return true;
      return end_value(c);
    case State::kLiteral:
      if (literal_rest_.empty() || c != literal_rest_.front()) return false;
      literal_rest_.remove_prefix(1);
      if (literal_rest_.empty()) state_ = State::kAfterValue;
      return true;
    case State::kDone:
      return false;
  }
  return false;
}

}  // namespace chatrec::llm::runtime
