#include "llm/runtime/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "gguf_writer.h"

namespace chatrec::llm::runtime {
namespace {

struct Variant {
  std::string arch;
  GgmlType type;
  bool tied;
};

std::string variant_name(const Variant& v) {
  return v.arch + "_" + type_name(static_cast<std::uint32_t>(v.type)) +
         (v.tied ? "_tied" : "_untied");
}

Model tiny_model(const Variant& v) {
  testing::TinyModelSpec spec;
  spec.arch = v.arch;
  spec.weight_type = v.type;
  spec.tied_embeddings = v.tied;
  const bool k_quant =
      v.type == GgmlType::Q4_K || v.type == GgmlType::Q5_K || v.type == GgmlType::Q6_K;
  spec.n_embd = k_quant ? 256 : 64;
  spec.n_ff = k_quant ? 256 : 96;
  return Model(GgufFile::parse(testing::make_tiny_model(spec), "tiny"));
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  float max_diff = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, std::fabs(a[i] - b[i]));
  EXPECT_LE(max_diff, tol);
}

const std::vector<int> kTokens = {1, 40, 70, 75, 200, 260, 3, 90, 91, 92, 100, 150};

class ModelTest : public ::testing::TestWithParam<Variant> {};

TEST_P(ModelTest, LoadsHyperParameters) {
  const Model m = tiny_model(GetParam());
  EXPECT_EQ(m.config().arch, GetParam().arch);
  EXPECT_EQ(m.config().n_layer, 2);
  EXPECT_EQ(m.config().n_head, 4);
  EXPECT_EQ(m.config().n_head_kv, 2);
  EXPECT_EQ(m.config().n_vocab, static_cast<int>(testing::tiny_vocab().size()));
  EXPECT_EQ(m.config().rope_neox, GetParam().arch == "qwen2");
}

TEST_P(ModelTest, IncrementalDecodeEqualsFullRecompute) {
  Model m = tiny_model(GetParam());
  m.init_cache(64);
  const int n = static_cast<int>(kTokens.size());
  // Full recompute: all tokens in one pass, logits of every position.
  std::vector<float> all;
  m.forward(kTokens, 0, ForwardOutput::kAllLogits, all, 1);
  const std::size_t V = static_cast<std::size_t>(m.config().n_vocab);
  ASSERT_EQ(all.size(), V * static_cast<std::size_t>(n));
  // Incremental: a prefill of 5, then one token at a time through the KV cache.
  Model m2 = tiny_model(GetParam());
  m2.init_cache(64);
  std::vector<float> logits;
  m2.forward(std::span(kTokens).first(5), 0, ForwardOutput::kLastLogits, logits, 2);
  expect_close(logits,
               std::vector<float>(all.begin() + 4 * static_cast<std::ptrdiff_t>(V),
                                  all.begin() + 5 * static_cast<std::ptrdiff_t>(V)),
               1e-3f);
  for (int t = 5; t < n; ++t) {
    m2.forward(std::span(kTokens).subspan(static_cast<std::size_t>(t), 1), t,
               ForwardOutput::kLastLogits, logits, 2);
    expect_close(logits,
                 std::vector<float>(all.begin() + t * static_cast<std::ptrdiff_t>(V),
                                    all.begin() + (t + 1) * static_cast<std::ptrdiff_t>(V)),
                 1e-3f);
  }
}

TEST_P(ModelTest, BatchedPrefillEqualsTokenByToken) {
  Model a = tiny_model(GetParam());
  Model b = tiny_model(GetParam());
  a.init_cache(32);
  b.init_cache(32);
  std::vector<float> batched, single;
  a.forward(kTokens, 0, ForwardOutput::kLastLogits, batched, 2);
  for (std::size_t t = 0; t < kTokens.size(); ++t)
    b.forward(std::span(kTokens).subspan(t, 1), static_cast<int>(t), ForwardOutput::kLastLogits,
              single, 1);
  expect_close(batched, single, 1e-3f);
  // Logits depend on the input (no degenerate model).
  float spread = 0.0f;
  for (float l : batched) spread = std::max(spread, std::fabs(l - batched[0]));
  EXPECT_GT(spread, 0.1f);
}

TEST_P(ModelTest, RollingBackTheCacheOverwritesLaterPositions) {
  Model m = tiny_model(GetParam());
  m.init_cache(32);
  std::vector<float> first, again, fresh;
  m.forward(kTokens, 0, ForwardOutput::kLastLogits, first, 1);
  // Replace the last 4 tokens with different ones, then go back to the originals.
  std::vector<int> other(kTokens.end() - 4, kTokens.end());
  for (int& t : other) t = (t + 17) % 280;
  m.forward(other, static_cast<int>(kTokens.size()) - 4, ForwardOutput::kLastLogits, fresh, 1);
  m.forward(std::span(kTokens).last(4), static_cast<int>(kTokens.size()) - 4,
            ForwardOutput::kLastLogits, again, 1);
  expect_close(first, again, 1e-5f);
}

TEST_P(ModelTest, HiddenOutputHasOneNormalisedStatePerToken) {
  Model m = tiny_model(GetParam());
  m.init_cache(32);
  std::vector<float> h;
  m.forward(std::span(kTokens).first(3), 0, ForwardOutput::kHidden, h, 1);
  EXPECT_EQ(h.size(), 3u * static_cast<std::size_t>(m.config().n_embd));
  EXPECT_THROW(m.forward(kTokens, 30, ForwardOutput::kLastLogits, h, 1), std::out_of_range);
  const std::vector<int> bad = {100000};
  EXPECT_THROW(m.forward(bad, 0, ForwardOutput::kLastLogits, h, 1), std::out_of_range);
}

INSTANTIATE_TEST_SUITE_P(Variants, ModelTest,
                         ::testing::Values(Variant{"llama", GgmlType::F32, true},
                                           Variant{"llama", GgmlType::F16, false},
                                           Variant{"llama", GgmlType::Q4_0, true},
                                           Variant{"llama", GgmlType::Q4_1, true},
                                           Variant{"llama", GgmlType::Q8_0, false},
                                           Variant{"llama", GgmlType::Q4_K, true},
                                           Variant{"llama", GgmlType::Q5_K, true},
                                           Variant{"llama", GgmlType::Q6_K, false},
                                           Variant{"qwen2", GgmlType::F32, true},
                                           Variant{"qwen2", GgmlType::Q8_0, false},
                                           Variant{"qwen2", GgmlType::Q4_K, true}),
                         [](const auto& info) { return variant_name(info.param); });

TEST(Model, RejectsMissingTensorsAndUnknownArchitectures) {
  testing::GgufWriter w;
  w.add_string("general.architecture", "mamba");
  EXPECT_THROW(Model(GgufFile::parse(w.bytes())), GgufError);
  testing::GgufWriter w2;
  w2.add_string("general.architecture", "llama");
  w2.add_u32("llama.block_count", 1);
  w2.add_u32("llama.embedding_length", 32);
  w2.add_u32("llama.feed_forward_length", 32);
  w2.add_u32("llama.attention.head_count", 4);
  EXPECT_THROW(Model(GgufFile::parse(w2.bytes())), GgufError);
}

// A batch of branches equals running each branch by itself after the shared prompt; one branch of
// 64+ tokens equals the plain causal pass (both take the tiled attention kernel), bit for bit.
TEST(ModelBranches, EachBranchEqualsRunningItAlone) {
  Model m(GgufFile::parse(
      testing::make_tiny_model(testing::TinyModelSpec{.weight_type = GgmlType::Q8_0}), "tiny"));
  m.init_cache(256);
  std::vector<int> prompt, a, b;
  for (int i = 0; i < 20; ++i) prompt.push_back(3 + (i * 7) % 40);
  for (int i = 0; i < 70; ++i) a.push_back(5 + (i * 11) % 40);
  for (int i = 0; i < 5; ++i) b.push_back(9 + (i * 13) % 40);
  const int P = static_cast<int>(prompt.size());
  const std::size_t V = static_cast<std::size_t>(m.config().n_vocab);
  std::vector<float> scratch, alone_a, alone_b, plain_a, both;
  m.forward(prompt, 0, ForwardOutput::kNone, scratch, 2);
  auto branch = [&](const std::vector<int>& toks, int start) {
    Model::Branches br;
    br.shared = P;
    for (std::size_t i = 0; i < toks.size(); ++i) {
      br.positions.push_back(P + static_cast<int>(i));
      br.branch_start.push_back(start);
    }
    return br;
  };
  m.forward(a, P, ForwardOutput::kAllLogits, plain_a, 2);
  m.forward_branches(a, P, branch(a, P), ForwardOutput::kAllLogits, alone_a, 2);
  ASSERT_EQ(plain_a.size(), alone_a.size());
  EXPECT_EQ(0, std::memcmp(plain_a.data(), alone_a.data(), plain_a.size() * sizeof(float)));
  // Branch b alone, at the cache entries it takes in the joint batch (the keys in between hidden):
  // the same tiles, so the same sums. (At other entries the 64-key tiles group its keys
  // differently; the rounding difference can flip an 8-bit activation rounding downstream.)
  const int b_at = P + static_cast<int>(a.size());
  m.forward_branches(b, b_at, branch(b, b_at), ForwardOutput::kAllLogits, alone_b, 2);
  std::vector<int> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  Model::Branches br = branch(a, P);
  const Model::Branches rb = branch(b, P + static_cast<int>(a.size()));
  br.positions.insert(br.positions.end(), rb.positions.begin(), rb.positions.end());
  br.branch_start.insert(br.branch_start.end(), rb.branch_start.begin(), rb.branch_start.end());
  m.forward_branches(ab, P, br, ForwardOutput::kAllLogits, both, 2);
  ASSERT_EQ(both.size(), (a.size() + b.size()) * V);
  EXPECT_EQ(0, std::memcmp(both.data(), alone_a.data(), alone_a.size() * sizeof(float)));
  EXPECT_EQ(
      0, std::memcmp(both.data() + a.size() * V, alone_b.data(), alone_b.size() * sizeof(float)));
  // A branch may not start before the shared prompt ends.
  Model::Branches bad = branch(b, P - 1);
  bad.shared = P;
  EXPECT_THROW(m.forward_branches(b, P, bad, ForwardOutput::kNone, scratch, 1),
               std::invalid_argument);
}

}  // namespace
}  // namespace chatrec::llm::runtime
