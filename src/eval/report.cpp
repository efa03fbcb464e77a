#include "eval/report.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/error.h"

namespace chatrec::eval {

nlohmann::json to_json(const StageStats& s) {
  return {{"prompts", s.prompts}, {"tokens_in", s.tokens_in}, {"tokens_out", s.tokens_out},
          {"seconds", s.seconds}, {"failures", s.failures},   {"resolutions", s.resolutions}};
}

nlohmann::json to_json(const Report& r) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& m : r.results) {
    nlohmann::json metrics = nlohmann::json::object();
    for (const auto& [name, value] : m.metrics) metrics[name] = value;
    nlohmann::json row = {{"model", m.model},
                          {"params", m.params},
                          {"stage", m.stage},
                          {"metrics", metrics},
                          {"users", m.users},
                          {"fit_seconds", m.fit_seconds},
                          {"eval_seconds", m.eval_seconds}};
    if (!m.fold.empty()) row["fold"] = m.fold;
    if (m.stage_stats) row["stage_stats"] = to_json(*m.stage_stats);
    results.push_back(std::move(row));
  }
  nlohmann::json llm = nullptr;
  if (!r.llm_backend.empty()) llm = {{"backend", r.llm_backend}, {"model_file", r.llm_model_file}};
  return {{"protocol", r.protocol},
          {"seed", r.seed},
          {"model", r.model},
          {"dataset",
           {{"name", r.dataset},
            {"checksum", r.dataset_checksum},
            {"users", r.dataset_users},
            {"items", r.dataset_items},
            {"interactions", r.dataset_interactions}}},
          {"llm", llm},
          {"users", r.users},
          {"wall_seconds", r.wall_seconds},
          {"config", r.config},
          {"results", results},
          {"notes", r.notes}};
}

std::string format_table(const Report& r) {
  std::vector<std::string> metric_names;
  std::set<std::string> seen;
  for (const auto& m : r.results) {
    for (const auto& [name, value] : m.metrics) {
      if (seen.insert(name).second) metric_names.push_back(name);
    }
  }
  std::size_t model_width = 5;
  for (const auto& m : r.results) model_width = std::max(model_width, m.model.size());
  bool has_fold = false;
  for (const auto& m : r.results) has_fold = has_fold || !m.fold.empty();

  std::string out = fmt::format("{} seed {} on {} ({} users/cases, {:.1f} s)\n", r.protocol, r.seed,
                                r.dataset, r.users, r.wall_seconds);
  std::string header = fmt::format("{:<{}}", "model", model_width);
  if (has_fold) header += fmt::format("  {:<4}", "fold");
  header += fmt::format("  {:<9}", "stage");
  for (const auto& n : metric_names) header += fmt::format("  {:>9}", n);
  header += fmt::format("  {:>6}  {:>8}  {:>8}", "users", "fit s", "eval s");
  out += header + "\n" + std::string(header.size(), '-') + "\n";
  for (const auto& m : r.results) {
    std::string line = fmt::format("{:<{}}", m.model, model_width);
    if (has_fold) line += fmt::format("  {:<4}", m.fold);
    line += fmt::format("  {:<9}", m.stage);
    for (const auto& n : metric_names) {
      auto it = std::find_if(m.metrics.begin(), m.metrics.end(),
                             [&](const auto& p) { return p.first == n; });
      line += it == m.metrics.end() ? fmt::format("  {:>9}", "-")
                                    : fmt::format("  {:>9.4f}", it->second);
    }
    line += fmt::format("  {:>6}  {:>8.2f}  {:>8.2f}", m.users, m.fit_seconds, m.eval_seconds);
    out += line + "\n";
  }
  for (const auto& m : r.results) {
    if (!m.stage_stats) continue;
    const auto& s = *m.stage_stats;
    out += fmt::format("{} [{}]: {} prompts, {} tokens in, {} tokens out, {:.1f} s", m.model,
                       m.stage, s.prompts, s.tokens_in, s.tokens_out, s.seconds);
    for (const auto& [kind, n] : s.failures) out += fmt::format("; failure {} x{}", kind, n);
    for (const auto& [how, n] : s.resolutions) out += fmt::format("; resolved by {} x{}", how, n);
    out += "\n";
  }
  for (const auto& note : r.notes) out += "note: " + note + "\n";
  return out;
}

std::string default_report_path(const Report& r) {
  return fmt::format("reports/{}-{}-seed{}.json", r.protocol, r.model, r.seed);
}

void write_report(const Report& r, const std::string& path) {
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p);
  if (!out) throw InputError(path, 0, "--out", "cannot write the report file");
  out << to_json(r).dump(2) << "\n";
  if (!out) throw InputError(path, 0, "--out", "failed writing the report file");
}

std::pair<std::string, std::string> describe_llm_spec(const std::string& spec,
                                                      const std::string& default_model_file) {
  auto colon = spec.find(':');
  std::string backend = spec.substr(0, colon);
  std::string rest = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (backend == "builtin") return {backend, rest.empty() ? default_model_file : rest};
  if (backend == "openai") return {fmt::format("openai ({})", rest), ""};
  return {backend, rest};
}

}  // namespace chatrec::eval
