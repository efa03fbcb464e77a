#pragma once
// Constrained decoding to one JSON object (OpenAI's response_format json_object): a pushdown
// automaton over bytes that accepts exactly the prefixes of a JSON object. Generation copies it per
// candidate token and keeps the tokens whose bytes it accepts. Written here rather than taken from
// a JSON library because those parse whole documents; decoding needs "can these bytes still become
// JSON" for every vocabulary entry at every step, from a cheaply copied state.
#include <cstdint>
#include <string>
#include <string_view>

namespace chatrec::llm::runtime {

class JsonObjectPrefix {
 public:
  // Whitespace runs longer than this are refused, so a small model cannot loop on newlines.
  static constexpr int kMaxWhitespaceRun = 8;
  static constexpr std::size_t kMaxDepth = 64;

  // Consumes the bytes; false (and the state is then undefined) when they cannot continue a JSON
  // object.
  bool feed(std::string_view bytes);
  // One whole object has been read; nothing may follow.
  bool complete() const { return state_ == State::kDone; }

 private:
  enum class State : std::uint8_t {
    kStart,          // nothing yet: only '{'
    kKeyOrClose,     // after '{'
    kKey,            // after ',' in an object
    kColon,          // after a key
    kValue,          // after ':' or ',' in an array
    kValueOrClose,   // after '['
    kAfterValue,     // after a value inside a container
    kString,         // inside a string (key or value)
    kEscape,         // after a backslash
    kUnicode,        // inside \uXXXX
    kNumberSign,     // after '-'
    kNumberZero,     // a leading 0
    kNumberInt,      // integer digits
    kNumberDot,      // after '.'
    kNumberFrac,     // fraction digits
    kNumberExp,      // after 'e'
    kNumberExpSign,  // after the exponent's sign
    kNumberExpInt,   // exponent digits
    kLiteral,        // inside true / false / null
    kDone,
  };
  bool step(char c);
  bool start_value(char c);
  bool end_value(char c);  // a delimiter after a number
  bool close(char c);

  State state_ = State::kStart;
  bool in_key_ = false;
  int hex_left_ = 0;
  int whitespace_run_ = 0;
  std::string_view literal_rest_;  // what a literal still needs (points into static storage)
  std::string stack_;              // '{' and '[' of the open containers
};

}  // namespace chatrec::llm::runtime
