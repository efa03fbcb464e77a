#pragma once
// Picking the next token from logits (greedy, temperature, top-k, top-p with a seeded RNG) and the
// token trie that restricts generation to a fixed set of strings.
#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace chatrec::llm::runtime {

struct SamplingParams {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // <= 0: no cut
  float top_p = 1.0f;        // >= 1: no cut
  std::uint64_t seed = 2023;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}
  // Picks a token; when `allowed` is non-empty only those tokens are candidates.
  int sample(std::span<const float> logits, std::span<const int> allowed = {});

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

// log-softmax of one logit vector at `token`.
double log_softmax_at(std::span<const float> logits, int token);

// The log-probability of `token` and the `top_k` most likely tokens with theirs, most likely first.
struct TokenDistribution {
  double logprob = 0.0;
  std::vector<std::pair<int, double>> top;
};
TokenDistribution token_distribution(std::span<const float> logits, int token, int top_k);

// A trie over the token sequences of the allowed choices. Generation walks it: at each node only
// the children's tokens may follow; a node where a choice ends can also be left by an
// end-of-generation token.
class ChoiceTrie {
 public:
  explicit ChoiceTrie(const std::vector<std::vector<int>>& choices);
  static constexpr int kRoot = 0;
  // Tokens that may follow at `node`.
  std::vector<int> allowed(int node) const;
  // The node after `token`, or -1 when the token does not continue any choice.
  int next(int node, int token) const;
  // The choice that ends exactly at `node`, or -1.
  int choice_at(int node) const { return nodes_[static_cast<std::size_t>(node)].choice; }
  bool is_leaf(int node) const { return nodes_[static_cast<std::size_t>(node)].children.empty(); }

 private:
  struct Node {
    std::map<int, int> children;
    int choice = -1;
  };
  std::vector<Node> nodes_;
};

}  // namespace chatrec::llm::runtime
