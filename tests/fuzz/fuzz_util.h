#pragma once
// Shared by the fuzz harnesses (tests/fuzz/fuzz_*.cpp): property checks that abort with a message,
// so that libFuzzer keeps the input and the replay test fails; text inputs that carry several
// files; a private scratch directory for the loaders that only read paths.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

// A violated property is a bug of the code under test, as much as a crash is.
#define FUZZ_CHECK(cond)                                           \
  do {                                                             \
    if (!(cond)) ::chatrec::fuzz::fail(#cond, __FILE__, __LINE__); \
  } while (false)

namespace chatrec::fuzz {

[[noreturn]] inline void fail(const char* what, const char* file, int line) {
  std::fprintf(stderr, "fuzz property violated: %s (%s:%d)\n", what, file, line);
  std::abort();
}

inline std::string_view text_of(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The first line (the harness's mode) and the rest.
inline std::pair<std::string_view, std::string_view> first_line(std::string_view text) {
  const std::size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return {text, {}};
  return {text.substr(0, nl), text.substr(nl + 1)};
}

// Splits at lines that are exactly "%%", so that one readable input holds several files.
inline std::vector<std::string> sections(std::string_view text) {
  std::vector<std::string> out(1);
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    const std::size_t end = nl == std::string_view::npos ? text.size() : nl;
    const std::string_view line = text.substr(pos, end - pos);
    if (line == "%%") {
      out.emplace_back();
    } else {
      out.back().append(line);
      if (nl != std::string_view::npos) out.back().push_back('\n');
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return out;
}

// One directory per process (libFuzzer's -jobs run several), emptied between inputs by the
// harnesses that need it and removed at exit.
class ScratchDir {
 public:
  static const std::filesystem::path& path() {
    static ScratchDir dir;
    return dir.path_;
  }
  // Removes everything inside, so that files of the previous input do not leak into this one.
  static void clear() {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(path(), ec))
      std::filesystem::remove_all(entry.path(), ec);
  }

 private:
  ScratchDir()
      : path_(std::filesystem::temp_directory_path() /
              ("chatrec-fuzz-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& file, std::string_view bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) fail("writing a scratch file", __FILE__, __LINE__);
}

}  // namespace chatrec::fuzz
