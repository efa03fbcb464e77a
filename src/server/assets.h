#pragma once
// The web page's files, compiled into the binary at build time (embed_assets.cmake).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatrec::server {

struct EmbeddedAsset {
  std::string_view name;  // file name under src/server/assets, e.g. "app.js"
  std::string_view bytes;
};

const std::vector<EmbeddedAsset>& embedded_assets();

}  // namespace chatrec::server
