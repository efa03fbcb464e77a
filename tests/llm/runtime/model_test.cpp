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
  EXPECT_EQ(m.config().rope_neox, GetParam().arch == "qwen2" || GetParam().arch == "gemma3");
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

INSTANTIATE_TEST_SUITE_P(
    Variants, ModelTest,
    ::testing::Values(
        Variant{"llama", GgmlType::F32, true}, Variant{"llama", GgmlType::F16, false},
        Variant{"llama", GgmlType::Q4_0, true}, Variant{"llama", GgmlType::Q4_1, true},
        Variant{"llama", GgmlType::Q8_0, false}, Variant{"llama", GgmlType::Q4_K, true},
        Variant{"llama", GgmlType::Q5_K, true}, Variant{"llama", GgmlType::Q6_K, false},
        Variant{"gemma3", GgmlType::Q5_0, true}, Variant{"gemma3", GgmlType::Q4_K, true},
        Variant{"qwen2", GgmlType::F32, true}, Variant{"qwen2", GgmlType::Q8_0, false},
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

// Gemma 3's local layers: with every layer local and a window of 4, two layers see 7 positions
// back at most, so a change at position 0 reaches the logits of position 6 but not of position 7
// and later; with the window wide it reaches every position. The batched (tiled) and token-by-
// token paths apply the same window.
TEST(Gemma3, SlidingWindowBoundsWhatAPositionSees) {
  auto model = [](int window) {
    testing::TinyModelSpec spec;
    spec.arch = "gemma3";
    spec.weight_type = GgmlType::Q8_0;
    spec.sliding_window = window;
    spec.swa_pattern = 0;
    return Model(GgufFile::parse(testing::make_tiny_model(spec), "tiny"));
  };
  std::vector<int> a(70), b(70);
  for (int t = 0; t < 70; ++t) a[static_cast<std::size_t>(t)] = 20 + (t * 37) % 200;
  b = a;
  b[0] = 5;
  auto logits_at = [](Model& m, const std::vector<int>& tokens, int n, bool batched) {
    m.init_cache(128);
    std::vector<float> out;
    if (batched) {
      m.forward(std::span(tokens).first(static_cast<std::size_t>(n)), 0, ForwardOutput::kLastLogits,
                out, 2);
    } else {
      for (int t = 0; t < n; ++t)
        m.forward(std::span(tokens).subspan(static_cast<std::size_t>(t), 1), t,
                  ForwardOutput::kLastLogits, out, 1);
    }
    return out;
  };
  auto max_diff = [](const std::vector<float>& x, const std::vector<float>& y) {
    float d = 0.0f;
    for (std::size_t i = 0; i < x.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i]));
    return d;
  };
  Model local = model(4);
  for (bool batched : {false, true}) {
    const int n = batched ? 70 : 12;  // 70 tokens take the tiled attention kernel
    EXPECT_EQ(max_diff(logits_at(local, a, n, batched), logits_at(local, b, n, batched)), 0.0f)
        << "batched " << batched;
    EXPECT_GT(max_diff(logits_at(local, a, 7, batched), logits_at(local, b, 7, batched)), 1e-3f);
  }
  // The tiled path keeps queries in f32 where the token path rounds them to fp16 (as llama.cpp's
  // two paths do), so the two agree to a fraction of the logits' range, not bit for bit.
  auto range = [](const std::vector<float>& x) {
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    return *hi - *lo;
  };
  const auto tiled = logits_at(local, a, 70, true);
  expect_close(tiled, logits_at(local, a, 70, false), 0.01f * range(tiled));
  Model wide = model(128);
  EXPECT_GT(max_diff(logits_at(wide, a, 70, true), logits_at(wide, b, 70, true)), 1e-3f);
}

TEST(Gemma3, LoadsItsHyperParameters) {
  testing::TinyModelSpec spec;
  spec.arch = "gemma3";
  spec.sliding_window = 16;
  spec.swa_pattern = 3;
  const Model m(GgufFile::parse(testing::make_tiny_model(spec), "tiny"));
  const ModelConfig& c = m.config();
  EXPECT_TRUE(c.qk_norm && c.post_norms && c.geglu && c.rope_neox);
  EXPECT_FLOAT_EQ(c.embd_scale, std::sqrt(64.0f));
  EXPECT_EQ(c.sliding_window, 16);
  EXPECT_TRUE(c.is_local(0));
  EXPECT_TRUE(c.is_local(1));
  EXPECT_FALSE(c.is_local(2));  // every third layer is global
  EXPECT_FLOAT_EQ(c.rope_base_of(0), 10000.0f);
  EXPECT_FLOAT_EQ(c.rope_base_of(2), 1e6f);
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
