#pragma once
// Errors that name what went wrong and where, so that a user can fix their input.
#include <cstddef>
#include <stdexcept>
#include <string>

namespace chatrec {

// Malformed input: a file, a line (1-based, 0 when not applicable), a field and the problem.
class InputError : public std::runtime_error {
 public:
  InputError(std::string file, std::size_t line, std::string field, const std::string& problem);
  const std::string& file() const { return file_; }
  std::size_t line() const { return line_; }
  const std::string& field() const { return field_; }

 private:
  std::string file_;
  std::size_t line_;
  std::string field_;
};

}  // namespace chatrec
