#pragma once
// Shared by the train/recommend/bench commands: "--param key=value" parsing.
#include <string>
#include <vector>

#include "common/error.h"
#include "recommend/recommender.h"

namespace chatrec::cli {

// "key=value" pairs; "model.key=value" applies only to that model (for commands that run several).
inline recommend::Params parse_model_params(const std::string& model,
                                            const std::vector<std::string>& raw) {
  recommend::Params out;
  for (const auto& kv : raw) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError("--param", 0, kv, "expected key=value");
    std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    auto dot = key.find('.');
    if (dot != std::string::npos) {
      if (key.substr(0, dot) != model) continue;
      key = key.substr(dot + 1);
    }
    out[key] = value;
  }
  return out;
}

}  // namespace chatrec::cli
