#pragma once
// Content hashes: sha256 for dataset checksums and downloaded files, a fast 64-bit hash for cache
// keys.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace chatrec::hash {

std::string sha256_hex(std::string_view data);
std::string sha256_file_hex(const std::filesystem::path& file);
// FNV-1a 64-bit: stable across platforms and runs, used for embedding cache keys.
std::uint64_t fnv1a64(std::string_view data);
std::string hex64(std::uint64_t v);

}  // namespace chatrec::hash
