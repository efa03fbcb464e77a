#include "testing/test_env.h"

#include <cstdlib>
#include <random>

namespace chatrec::testing {
namespace fs = std::filesystem;

static std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

fs::path data_dir() {
  if (auto v = env("CHATREC_DATA_DIR")) return *v;
  return fs::path(CHATREC_SOURCE_DIR) / ".." / "shared" / "data";
}

fs::path ml100k_dir() {
  if (auto v = env("CHATREC_ML100K")) return *v;
  return data_dir() / "ml-100k";
}

fs::path games_dir() {
  if (auto v = env("CHATREC_GAMES")) return *v;
  return data_dir() / "amazon-games";
}

std::optional<fs::path> real_model_path() {
  if (auto v = env("CHATREC_MODEL")) {
    if (fs::exists(*v)) return fs::path(*v);
    return std::nullopt;
  }
  const char* file = "SmolLM2-135M-Instruct.Q4_1.gguf";
  std::vector<fs::path> dirs;
  if (auto v = env("CHATREC_MODEL_DIR")) dirs.emplace_back(*v);
  if (auto home = env("HOME")) dirs.push_back(fs::path(*home) / ".cache" / "chatrec" / "models");
  dirs.push_back(fs::path(CHATREC_SOURCE_DIR) / "models");
  for (const auto& d : dirs) {
    if (fs::exists(d / file)) return d / file;
  }
  return std::nullopt;
}

TempDir::TempDir() {
  std::random_device rd;
  path_ =
      fs::temp_directory_path() / ("chatrec-test-" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace chatrec::testing
