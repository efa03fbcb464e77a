#pragma once
// LoRA training of a runtime Model on the CPU: a forward pass over one token sequence that keeps
// its activations, the backward pass of every op (RMSNorm, RoPE, grouped-query causal attention,
// SwiGLU, the tied or untied output head, cross-entropy), and AdamW on the adapter.
//
// The base weights stay frozen in their quantized form (QLoRA style): for each product a projection
// is dequantized into one scratch matrix, multiplied (Eigen GEMM), and the gradient flows back to
// the activations only, so no f32 copy of the model is held. Activations of one sequence are kept
// (about 24 MB per layer at 512 tokens for SmolLM2-135M). The scalar type is a template parameter:
// float for training, double for the reference the tests compare against.
//
// Deterministic for a given seed, data order and thread count (GEMMs split output blocks across
// threads, never a reduction).
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "llm/runtime/lora.h"
#include "llm/runtime/model.h"

namespace chatrec::llm::runtime {

// One loss term: weight * -log softmax(logits at `position`)[target], where the softmax runs over
// `classes` (the label tokens of a verbalizer, or Yes/No) or over the whole vocabulary when
// `classes` is empty (language-model loss). `target` is a token id (it must be among `classes`).
struct LossTerm {
  int position = 0;
  int target = 0;
  std::vector<int> classes;
  float weight = 1.0f;
};

struct TrainingSequence {
  std::vector<int> tokens;
  std::vector<LossTerm> terms;
};

struct TrainerOptions {
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double clip_norm = 1.0;  // global gradient norm bound; 0 = no clipping
  int threads = 0;         // 0 = all cores
};

template <typename S>
class LoraTrainer {
 public:
  // Trains a copy of `initial` (its targets and rank) on top of `base`, which must outlive the
  // trainer.
  LoraTrainer(const Model& base, const LoraAdapter& initial, TrainerOptions options = {});
  ~LoraTrainer();
  LoraTrainer(const LoraTrainer&) = delete;
  LoraTrainer& operator=(const LoraTrainer&) = delete;

  // Forward and backward of one sequence; the gradient is added to the accumulated one. Returns
  // the loss (sum of its weighted terms).
  double accumulate(const TrainingSequence& seq);
  // Forward only.
  double loss(const TrainingSequence& seq);
  // The logits of each term (over its classes, or the whole vocabulary), forward only.
  std::vector<std::vector<double>> term_logits(const TrainingSequence& seq);

  // One AdamW step with learning rate `lr` on the accumulated gradient times `grad_scale` (e.g.
  // 1 / examples accumulated), clipped to clip_norm; then the gradient is zeroed. Returns the
  // gradient norm before clipping.
  double step(double lr, double grad_scale = 1.0);
  void zero_grad();

  // Flat views: per adapted projection (layer-major, then q, k, v, o, gate, up, down) A then B.
  std::span<S> parameters();
  std::span<const S> gradients() const;
  LoraAdapter adapter() const;  // the current parameters as an adapter (with `initial`'s info)

  // Optimizer state, for checkpoints.
  std::int64_t steps_taken() const;
  std::span<const S> first_moment() const;
  std::span<const S> second_moment() const;
  void restore(std::span<const S> params, std::span<const S> m, std::span<const S> v,
               std::int64_t steps);

  // Tokens processed by accumulate() (forward + backward) since construction.
  std::int64_t tokens_trained() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

extern template class LoraTrainer<float>;
extern template class LoraTrainer<double>;

}  // namespace chatrec::llm::runtime
