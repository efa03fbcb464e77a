#pragma once
// How LLM stages (chat/, instruct/) plug into `chatrec eval` without cmd_eval.cpp knowing them: a
// cmd_*.cpp file of theirs registers a factory from a static object, e.g.
//
//   static chatrec::cli::TopkRerankerHook reg("chatrec", [](const auto& ds, const auto& train,
//   const auto& base,
//                                                            const chatrec::cli::LlmEvalOptions& o)
//                                                            { ... });
//
// cmd_eval asks for "chatrec" (ml100k-topk / ml100k-rating with --llm) and for --ranker
// (games-seq). The registry is header-only (function-local statics), so registration order between
// files does not matter.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/matrix.h"
#include "llm/factory.h"
#include "llm/language_model.h"
#include "protocols/rankers.h"
#include "recommend/recommender.h"

namespace chatrec::cli {

struct LlmEvalOptions {
  std::string llm_spec;     // --llm: "builtin", "builtin:/path/m.gguf", "openai:http://...", "mock"
  std::string rerank_mode;  // --rerank: "generate" or "score"
  std::string ranker;       // --ranker: e.g. "instruct"
  bool hint_top1 = false;   // --hint-top1
  bool fusion = false;      // --fusion
  bool search = false;      // --search (personalised-search variant)
  std::uint64_t seed = 2023;
  std::string data_dir;
  llm::OpenOptions open;        // --lora / --lora-scale
  std::string template_id;      // --template: the instruct ranker's (default P07 or the adapter's)
  std::size_t history = 0;      // --history: items in the instruct prompt (0: 20 or the adapter's)
  std::string scoring;          // --scoring: title, label, yesno or sequence (default title or the
                                // adapter's)
  std::string calibration;      // --calibration: none or pmi (default: pmi for sequence scoring)
  double pmi_weight = -1.0;     // --pmi-weight in [0, 1] (negative: the adapter's, else 1)
  std::string validation_dump;  // --dump-validation: the fusion validation cases as JSONL
};

template <typename Stage>
using EvalHookFactory = std::function<std::unique_ptr<Stage>(
    const data::Dataset& ds, const data::InteractionMatrix& train,
    const recommend::Recommender& base, const LlmEvalOptions& options)>;

template <typename Stage>
std::map<std::string, EvalHookFactory<Stage>>& eval_hook_registry() {
  static std::map<std::string, EvalHookFactory<Stage>> registry;
  return registry;
}

template <typename Stage>
void register_eval_hook(const std::string& name, EvalHookFactory<Stage> factory) {
  eval_hook_registry<Stage>()[name] = std::move(factory);
}

inline void register_topk_reranker(const std::string& name,
                                   EvalHookFactory<protocols::TopkReranker> factory) {
  register_eval_hook<protocols::TopkReranker>(name, std::move(factory));
}
inline void register_rating_predictor(const std::string& name,
                                      EvalHookFactory<protocols::RatingPredictor> factory) {
  register_eval_hook<protocols::RatingPredictor>(name, std::move(factory));
}
inline void register_candidate_ranker(const std::string& name,
                                      EvalHookFactory<protocols::CandidateRanker> factory) {
  register_eval_hook<protocols::CandidateRanker>(name, std::move(factory));
}

template <typename Stage>
std::vector<std::string> eval_hook_names() {
  std::vector<std::string> out;
  for (const auto& [name, f] : eval_hook_registry<Stage>()) out.push_back(name);
  return out;
}

// The factory registered under `name`, or nullptr.
template <typename Stage>
const EvalHookFactory<Stage>* find_eval_hook(const std::string& name) {
  auto& r = eval_hook_registry<Stage>();
  auto it = r.find(name);
  return it == r.end() ? nullptr : &it->second;
}

// Static-object helpers for registration from a cmd_*.cpp file.
struct TopkRerankerHook {
  TopkRerankerHook(const std::string& name, EvalHookFactory<protocols::TopkReranker> f) {
    register_topk_reranker(name, std::move(f));
  }
};
struct RatingPredictorHook {
  RatingPredictorHook(const std::string& name, EvalHookFactory<protocols::RatingPredictor> f) {
    register_rating_predictor(name, std::move(f));
  }
};
struct CandidateRankerHook {
  CandidateRankerHook(const std::string& name, EvalHookFactory<protocols::CandidateRanker> f) {
    register_candidate_ranker(name, std::move(f));
  }
};

}  // namespace chatrec::cli
