#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <vector>

#include "cli/command.h"
#include "common/blas.h"

namespace chatrec::cli {
namespace {
std::vector<std::pair<int, Setup>>& registry() {
  static std::vector<std::pair<int, Setup>> r;
  return r;
}
}  // namespace

Registration::Registration(int order, Setup setup) {
  registry().emplace_back(order, std::move(setup));
}

CLI::App& group(CLI::App& parent, const std::string& name, const std::string& description) {
  for (CLI::App* sub : parent.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->get_name() == name) return *sub;
  }
  CLI::App* sub = parent.add_subcommand(name, description);
  sub->require_subcommand(1);
  return *sub;
}

std::string default_data_dir() {
  if (const char* v = std::getenv("CHATREC_DATA_DIR"); v && *v) return v;
  namespace fs = std::filesystem;
  if (fs::exists("../shared/data/ml-100k")) return "../shared/data";
  if (const char* home = std::getenv("HOME")) return std::string(home) + "/.cache/chatrec/data";
  return "data";
}

std::string default_model_dir() {
  if (const char* v = std::getenv("CHATREC_MODEL_DIR"); v && *v) return v;
  if (const char* home = std::getenv("HOME")) return std::string(home) + "/.cache/chatrec/models";
  return "models";
}

}  // namespace chatrec::cli

int main(int argc, char** argv) {
  chatrec::common::prefer_fast_blas_core(argv);
  CLI::App app{"chatrec: an LLM in the loop of a recommender system (Chat-Rec, InstructRec)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "chatrec 0.1.0");
  app.add_flag_callback(
      "-v,--verbose", [] { spdlog::set_level(spdlog::level::debug); }, "Debug logging");
  auto& reg = chatrec::cli::registry();
  std::stable_sort(reg.begin(), reg.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, setup] : reg) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
