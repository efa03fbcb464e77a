#pragma once
// Where the tests find shared datasets and model files. Every path can be overridden by the
// environment, so that CI and developers can point the suite at their own copies.
#include <filesystem>
#include <optional>
#include <string>

namespace chatrec::testing {

// $CHATREC_DATA_DIR (default ../shared/data relative to the source tree).
std::filesystem::path data_dir();
// data_dir()/ml-100k, or $CHATREC_ML100K.
std::filesystem::path ml100k_dir();
// data_dir()/amazon-games, or $CHATREC_GAMES.
std::filesystem::path games_dir();
// The real SmolLM2 GGUF if present: $CHATREC_MODEL, else models/SmolLM2-135M-Instruct.Q4_1.gguf
// under $CHATREC_MODEL_DIR or ~/.cache/chatrec/models. std::nullopt when no file exists.
std::optional<std::filesystem::path> real_model_path();
// A fresh temporary directory, removed by the caller's TempDir guard.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace chatrec::testing
