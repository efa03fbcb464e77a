#pragma once
// Each subcommand lives in its own cmd_*.cpp and registers itself here, so the CLI stays a thin
// layer: parse options, call a component, print.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace chatrec::cli {

using Setup = std::function<void(CLI::App& root)>;

struct Registration {
  // `order` sorts the subcommands in --help.
  Registration(int order, Setup setup);
};

// The subcommand `name` of `parent`, created on first use (for groups such as "bench" or "model").
CLI::App& group(CLI::App& parent, const std::string& name, const std::string& description);

// Common option: --data-dir (default $CHATREC_DATA_DIR or ../shared/data or ~/.cache/chatrec/data).
std::string default_data_dir();
std::string default_model_dir();

}  // namespace chatrec::cli
