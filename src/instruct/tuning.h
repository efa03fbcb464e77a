#pragma once
// InstructRec's central method in chatrec: LoRA instruction tuning of the built-in model on
// recommendation instructions built from the interaction data, on the CPU (llm/runtime/trainer.h).
//
// Training data (games-seq): one instruction per sampled user, whose target is the user's
// second-to-last item (the games.valid.inter target) and whose history is the items before it;
// candidates are the target and `negatives` items the user never interacted with, drawn as the
// protocol draws them, in a seeded shuffle. The user's last item (their test target) is never a
// target, candidate or history item of any instruction, so any user sample can be evaluated.
// Validation users are held out of training entirely.
//
// Training data (ml100k-topk): the protocol's training split for the seed, minus the liked items
// that data::split_liked_validation holds out of the validation users (the same carve-out Chat-Rec
// chooses its fusion weight on). Each user's liked (>= 4) remaining items in time order are cut
// into windows of history + 1 from the latest back; a window's last item is the target. With
// window_order "random" each user's likes are shuffled (seeded) before they are cut, because the
// protocol holds out random likes, not the latest ones: a window is then a random subset of the
// user's likes in a random order, so every line is trained as "another like of this user" rather
// than "the next like in time". Negatives
// are items the user never rated (in any split). A validation case per validation user: the latest
// liked remaining items as history, one held-out like as the target.
//
// Hard candidates (ml100k-topk, `candidates` a recommender's name, e.g. "ease"): the instruction
// lists what the LLM will rerank at inference, that recommender's top negatives + 1 in its own
// order, instead of a target among random items. Each round holds out 20% of every user's likes
// (data::split_liked_validation with the round's seed on the training data above), fits the
// recommender on the rest, and gives one instruction per user whose held-out likes reach the
// top: every held-out like among the candidates is a target (the loss is their mean). The history
// is the user's latest likes of the round's kept data. Validation cases are built exactly as
// `chatrec eval --fusion` builds its own: the validation users' top candidates from the
// recommender fitted without their held-out likes; the validation score is then NDCG@5 of the
// LLM's order against those likes, next to the recommender's own.
//
// Losses (docs/instruct.md has the measurements):
//   seq   — the history and the target as the start of the reply, one title per line
//           (sequence_prompt); every line is a next-item target given the lines before it, so one
//           forward pass trains on every step of the user's sequence; inference scores each
//           candidate as the next line;
//   label — candidates are listed with letters (A, B, ...); one forward pass per instruction and a
//           softmax over the letters' tokens at the answer position (a LlamaRec-style verbalizer);
//           inference scores the letters the same way;
//   lm    — the plain language-model loss on the target's title as the answer; inference ranks by
//           length-normalised title likelihood;
//   yesno — pointwise: one instruction per candidate, softmax over Yes/No, inference by P(Yes).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/matrix.h"
#include "llm/runtime/trainer.h"

namespace chatrec::llm::runtime {
class GgufFile;
}

namespace chatrec::instruct {

struct TuneOptions {
  std::filesystem::path model_path;  // base GGUF
  std::filesystem::path out;         // adapter GGUF
  // Whose training data: "games-seq" (Amazon Games) or "ml100k-topk" (MovieLens-100K, the
  // protocol's training split for `seed`).
  std::string protocol = "games-seq";
  std::string loss = "seq";
  // The defaults are the measured games recipe (docs/instruct.md): about 80 minutes on 2 cores.
  std::size_t examples = 5400;  // training instructions (sequences for seq)
  // Continue tuning: start from this adapter's weights (its rank, alpha and targets; a fresh
  // optimizer and schedule) instead of B = 0.
  std::filesystem::path init;
  // Skip the first this many training instructions of the seeded order, e.g. the ones the --init
  // adapter was tuned on, so a continuation sees new users.
  std::size_t skip_examples = 0;
  int epochs = 1;
  int rank = 8;
  float alpha = 16.0f;
  double lr = 1e-3;
  double weight_decay = 0.0;
  int batch = 8;         // instructions per optimizer step (gradient accumulation)
  double warmup = 0.05;  // fraction of the steps
  std::string targets = "q,k,v,o,gate,up,down";
  int layers = 0;  // adapt the last this many layers only (0: all); the backward stops below them
  std::size_t history = 20;
  std::size_t negatives = 9;
  // ml100k-topk: how each user's likes are ordered before they are cut into windows, "time" or
  // "random" (see above). games-seq windows are always in time order.
  std::string window_order = "time";
  // "random" (target plus uniform negatives, shuffled) or, for ml100k-topk, a registered
  // recommender whose top negatives + 1 are the candidates (see above).
  std::string candidates = "random";
  // Hard candidates: the order the options are listed in, "source" (the recommender's ranking, as
  // lettered) or "shuffled" (a seeded permutation per user, the same at tuning, validation and
  // rerank), so a letter's position carries none of the recommender's ranking and the LLM's scores
  // are its own view of the options, for fusion with the recommender's.
  std::string option_order = "source";
  std::uint64_t seed = 2023;
  int threads = 0;
  bool resume = false;
  std::size_t validation_users = 200;
  int eval_every = 225;  // optimizer steps between validations (0: at the end of each epoch)
  double checkpoint_minutes = 5.0;
  std::string template_id;  // empty: by loss (label P07, lm P05, yesno P02)
  // Stop (after writing a checkpoint) once this many examples are done in total, for time-boxed
  // sessions and tests; 0 = run to the end. --resume continues.
  std::int64_t stop_after = 0;
};

// One ranking instruction: a user's history (oldest first), the candidates (shuffled) and the
// target among them.
struct TuneCase {
  data::UserIndex user = 0;
  std::vector<data::ItemIndex> history;
  std::vector<data::ItemIndex> candidates;
  data::ItemIndex target = 0;
  // Hard candidates: every held-out like of the user (the targets are those among the
  // candidates; the rest count in NDCG's ideal). Empty: `target` alone.
  std::vector<data::ItemIndex> held;
};

struct TuneData {
  std::vector<TuneCase> train;
  std::vector<TuneCase> validation;
};

// The training and validation cases of games-seq as described above (deterministic for a seed).
TuneData tuning_cases(const data::Dataset& ds, const TuneOptions& options);

struct TuneSummary {
  std::size_t examples = 0;
  std::int64_t steps = 0;
  std::int64_t tokens = 0;
  double wall_seconds = 0.0;
  double peak_rss_mib = 0.0;
  // The validation score: HR@1 among random candidates, or NDCG@5 over hard candidates (then
  // `candidate_source_validation` is the candidate source's own NDCG@5 on the same cases).
  std::string validation_metric = "HR@1";
  double base_validation_hr1 = 0.0;
  double best_validation_hr1 = 0.0;
  double candidate_source_validation = -1.0;
  std::int64_t best_step = 0;
  double pmi_weight = 1.0;  // of the kept adapter (instruct.pmi_weight)
  double final_loss = 0.0;
  std::string to_text() const;
};

// The tokens and loss terms tune_adapter trains on for one case, with the tokenizer and chat
// format of `model_file` (for tests and inspection).
llm::runtime::TrainingSequence training_sequence(const data::Dataset& ds,
                                                 const llm::runtime::GgufFile& model_file,
                                                 const TuneOptions& options, const TuneCase& c);

// The user's latest likes (>= 4) in `m`, oldest first, at most `n`: the history of a hard-candidate
// instruction, and what the rerank shows an adapter tuned on them.
std::vector<data::ItemIndex> latest_likes(const data::InteractionMatrix& m, data::UserIndex u,
                                          std::size_t n);

// The order in which a shuffled-option instruction lists `n` options to user `u`: entry j is the
// index (in the recommender's order) of the option lettered j.
std::vector<std::size_t> listed_order(std::uint64_t seed, data::UserIndex u, std::size_t n);

// The template a loss trains with when none is given.
std::string default_template(const std::string& loss);

// Trains an adapter and writes the best one by validation HR@1 to options.out (plus a checkpoint
// beside it, OUT.ckpt, every checkpoint_minutes, from which --resume continues).
TuneSummary tune_adapter(const data::Dataset& ds, const TuneOptions& options);

}  // namespace chatrec::instruct
