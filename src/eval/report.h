#pragma once
// What every evaluation run leaves behind (docs/protocols.md "What a report contains"): a JSON
// document for machines and a table for humans.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <map>

namespace chatrec::eval {

// Counters an LLM stage reports (prompts, tokens, failures by kind and how each was resolved).
struct StageStats {
  std::int64_t prompts = 0;
  std::int64_t tokens_in = 0;
  std::int64_t tokens_out = 0;
  double seconds = 0.0;
  std::map<std::string, std::int64_t> failures;     // kind -> count
  std::map<std::string, std::int64_t> resolutions;  // how failures were resolved -> count
};

// One row: a model (or a model plus an LLM stage) on one set of users/cases.
struct ModelResult {
  std::string model;  // recommender name, or "<base>+<stage>" for an LLM stage on top of a base
  std::map<std::string, std::string> params;
  std::string stage = "classic";  // "classic", or the LLM stage's name ("chatrec", "instruct", ...)
  std::string fold;               // "u1".."u5" or "mean" for ml100k-folds; empty otherwise
  std::vector<std::pair<std::string, double>> metrics;
  std::size_t users = 0;  // users (or cases) averaged over
  double fit_seconds = 0.0;
  double eval_seconds = 0.0;
  std::optional<StageStats> stage_stats;  // LLM stages only
};

struct Report {
  std::string protocol;
  std::uint64_t seed = 0;
  std::string model;  // as requested (a name, or "all")
  std::string dataset;
  std::string dataset_checksum;
  std::size_t dataset_users = 0, dataset_items = 0, dataset_interactions = 0;
  std::string llm_backend;     // empty when no LLM stage ran
  std::string llm_model_file;  // empty when the backend has no local file
  std::size_t users = 0;       // users (or cases) evaluated
  double wall_seconds = 0.0;
  nlohmann::json config =
      nlohmann::json::object();  // protocol options (negatives, validation, ...)
  std::vector<ModelResult> results;
  std::vector<std::string> notes;  // e.g. models skipped and why
};

nlohmann::json to_json(const StageStats& stats);
nlohmann::json to_json(const Report& report);
// Human table (models as rows, metrics as columns), plus LLM stage counters when present.
std::string format_table(const Report& report);
// "reports/<protocol>-<model>-seed<N>.json"
std::string default_report_path(const Report& report);
// Writes the JSON (creating parent directories).
void write_report(const Report& report, const std::string& path);

// Splits an LLM spec ("builtin:/path/m.gguf", "openai:http://...", "mock") into backend and model
// file.
std::pair<std::string, std::string> describe_llm_spec(const std::string& spec,
                                                      const std::string& default_model_file);

}  // namespace chatrec::eval
