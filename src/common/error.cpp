#include "common/error.h"

#include <fmt/format.h>

namespace chatrec {

static std::string describe(const std::string& file, std::size_t line, const std::string& field,
                            const std::string& problem) {
  std::string where = file;
  if (line > 0) where += fmt::format(":{}", line);
  if (!field.empty()) where += fmt::format(" (field '{}')", field);
  return fmt::format("{}: {}", where, problem);
}

InputError::InputError(std::string file, std::size_t line, std::string field,
                       const std::string& problem)
    : std::runtime_error(describe(file, line, field, problem)),
      file_(std::move(file)),
      line_(line),
      field_(std::move(field)) {}

}  // namespace chatrec
