#pragma once
// Builds InstructRec training instructions from a dataset: for each training user, a few targets
// taken from the end of their history (never the protocol C test target), a seeded choice of
// fillable templates, and the fields each template needs. Users of the evaluation sample are left
// out entirely, so the tuned model never sees a test user; deterministic for a seed (byte-identical
// output).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "instruct/templates.h"
#include "llm/language_model.h"

namespace chatrec::instruct {

enum class OutputFormat { kOpenAIChat, kAlpaca };
OutputFormat parse_output_format(const std::string& name);  // "openai-chat" | "alpaca"

struct GenerateOptions {
  std::uint64_t seed = 2023;
  std::size_t per_user = 4;   // instructions per training user (distinct targets where possible)
  std::size_t max_users = 0;  // 0 = every training user; else a seeded sample of them
  std::size_t history_length = 20;
  std::size_t negatives = 9;  // T3 lists the target and this many sampled negatives
  // The protocol C evaluation sample that must stay out of training: sample_users(users, n, seed).
  std::size_t eval_users = 500;
  std::uint64_t eval_seed = 2023;
  bool variants = true;  // also use the reverse / relatedness / chain-of-thought variants
  // For the LLM-written fields (P2 explicit preference, I1 vague intention); null = those cells are
  // skipped.
  llm::LanguageModel* llm = nullptr;
  std::filesystem::path cache_dir;  // where LLM-written fields are cached; empty = no cache
  bool progress = true;
};

struct Instruction {
  std::string template_id;
  Cell cell;
  data::UserIndex user = 0;
  data::ItemIndex target = 0;
  std::vector<data::ItemIndex>
      items;  // every item the instruction mentions (history, candidates, target)
  Rendered text;
};

struct GenerateSummary {
  std::size_t users_total = 0;
  std::size_t users_used = 0;
  std::size_t eval_users_excluded = 0;
  std::size_t instructions = 0;
  std::size_t duplicates_skipped = 0;
  std::size_t unfillable_skipped =
      0;  // a chosen template whose fields this user/target cannot fill
  std::map<std::string, std::size_t> per_template;
  std::map<std::string, std::size_t> per_cell;          // Cell::str()
  std::map<std::string, std::string> unfillable_cells;  // cell -> why the data cannot fill it
  std::vector<std::string> notes;
  std::size_t llm_calls = 0;
  std::size_t llm_cache_hits = 0;
  std::size_t llm_failures = 0;
  double seconds = 0.0;
  std::string to_text() const;
  std::string to_json() const;
};

// The evaluation users of protocol C for these options (sorted), and their test targets.
std::vector<data::UserIndex> evaluation_users(const data::Dataset& ds,
                                              const GenerateOptions& options);

// Calls `sink` for each instruction in a deterministic order.
GenerateSummary generate_instructions(const data::Dataset& ds, const TemplateSet& templates,
                                      const GenerateOptions& options,
                                      const std::function<void(const Instruction&)>& sink);

// One JSONL line (without the newline):
//   openai-chat: {"messages":[{"role":"system",...},{"role":"user",...},{"role":"assistant",...}]}
//   alpaca:      {"instruction":..., "input":..., "output":...}
std::string to_jsonl(const Instruction& instruction, OutputFormat format);

}  // namespace chatrec::instruct
