#include "llm/runtime/trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "common/random.h"
#include "gguf_writer.h"

namespace chatrec::llm::runtime {
namespace {

struct Variant {
  std::string arch;
  GgmlType type;
  bool tied;
};

Model tiny(const Variant& v, int n_layer = 2) {
  testing::TinyModelSpec spec;
  spec.arch = v.arch;
  spec.weight_type = v.type;
  spec.tied_embeddings = v.tied;
  spec.n_layer = n_layer;
  spec.n_embd = 64;
  spec.n_ff = 96;
  return Model(GgufFile::parse(testing::make_tiny_model(spec), "tiny"));
}

// An adapter on every projection with B drawn too, so that every gradient is non-zero.
LoraAdapter random_adapter(const Model& m, std::uint64_t seed, double b_scale = 0.05) {
  LoraAdapter a = LoraAdapter::create(m.config(), parse_lora_targets("all"), 4, 8.0f, seed);
  Rng rng(seed + 1);
  for (auto& layer : a.layers)
    for (auto& lm : layer)
      for (float& v : lm.b) v = static_cast<float>(rng.normal(0.0, b_scale));
  return a;
}

TrainingSequence example_sequence() {
  TrainingSequence s;
  s.tokens = {1, 40, 70, 75, 200, 260, 3, 90, 91, 92, 100, 150, 44, 45};
  // A verbalizer term over four label tokens, a yes/no-like pair, and language-model terms.
  s.terms.push_back({13, 66, {65, 66, 67, 68}, 1.0f});
  s.terms.push_back({9, 80, {80, 81}, 0.5f});
  s.terms.push_back({5, 3, {}, 1.0f});
  s.terms.push_back({11, 44, {}, 1.0f});
  return s;
}

// d loss / d parameter i by central finite differences.
double central_difference(LoraTrainer<double>& t, const TrainingSequence& seq, std::size_t i,
                          double h) {
  auto params = t.parameters();
  const double keep = params[i];
  params[i] = keep + h;
  const double up = t.loss(seq);
  params[i] = keep - h;
  const double down = t.loss(seq);
  params[i] = keep;
  return (up - down) / (2 * h);
}

class TrainerGradients : public ::testing::TestWithParam<Variant> {};

// Central finite differences of the double-precision loss against the analytic gradient, for
// parameters of every projection of every layer: the gradient reaches them through every op's
// backward (cross-entropy, output head, final norm, SwiGLU, attention, RoPE, RMSNorm, residuals).
TEST_P(TrainerGradients, MatchFiniteDifferences) {
  const Model m = tiny(GetParam());
  const LoraAdapter a = random_adapter(m, 11);
  LoraTrainer<double> t(m, a, TrainerOptions{.threads = 2});
  const TrainingSequence seq = example_sequence();
  t.accumulate(seq);
  const std::vector<double> analytic(t.gradients().begin(), t.gradients().end());
  auto params = t.parameters();
  Rng pick(5);
  // h = 1e-4: gemma3's scaled embeddings make the loss large enough that rounding noise in the
  // difference of two losses dominates at smaller steps; the truncation error stays ~1e-8.
  const double h = 1e-4;
  double worst = 0.0;
  int checked = 0;
  for (int k = 0; k < 120; ++k) {
    const std::size_t i = static_cast<std::size_t>(pick.below(params.size()));
    const double numeric = central_difference(t, seq, i, h);
    const double err = std::fabs(numeric - analytic[i]) /
                       std::max(1e-6, std::fabs(numeric) + std::fabs(analytic[i]));
    worst = std::max(worst, err);
    ++checked;
  }
  EXPECT_EQ(checked, 120);
  // Relative error bound: central differences in double at this step are good to ~1e-7.
  EXPECT_LT(worst, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Archs, TrainerGradients,
                         ::testing::Values(Variant{"llama", GgmlType::F32, true},
                                           Variant{"qwen2", GgmlType::Q8_0, false},
                                           Variant{"llama", GgmlType::Q4_1, false},
                                           Variant{"gemma3", GgmlType::Q5_0, true}),
                         [](const auto& info) {
                           return info.param.arch + "_" +
                                  type_name(static_cast<std::uint32_t>(info.param.type));
                         });

// With only the top layer adapted the backward pass stops below it; the gradient still matches
// finite differences.
TEST(Trainer, TopLayersOnlyMatchFiniteDifferences) {
  const Model m = tiny({"llama", GgmlType::Q8_0, false});
  ASSERT_GE(m.config().n_layer, 2);
  LoraAdapter a = random_adapter(m, 17);
  for (int l = 0; l + 1 < m.config().n_layer; ++l) a.layers[static_cast<std::size_t>(l)] = {};
  LoraTrainer<double> t(m, a, TrainerOptions{.threads = 2});
  const TrainingSequence seq = example_sequence();
  t.accumulate(seq);
  const std::vector<double> analytic(t.gradients().begin(), t.gradients().end());
  auto params = t.parameters();
  double worst = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < params.size(); i += 7) {
    const double numeric = central_difference(t, seq, i, 1e-5);
    norm = std::max(norm, std::fabs(numeric));
    worst = std::max(worst, std::fabs(numeric - analytic[i]) /
                                std::max(1e-6, std::fabs(numeric) + std::fabs(analytic[i])));
  }
  EXPECT_GT(norm, 0.0);
  EXPECT_LT(worst, 1e-5);
}

// Full-vocabulary terms go through the head in blocks: a sequence with more terms than one block
// (every position a target, several twice) has the gradient of the same terms split over two
// accumulated sequences, since the gradient is linear in the terms.
TEST(Trainer, HeadBlocksGiveTheGradientOfTheTermsSeparately) {
  const Model m = tiny({"llama", GgmlType::Q8_0, false});
  const LoraAdapter a = random_adapter(m, 21);
  TrainingSequence all;
  Rng rng(4);
  for (int k = 0; k < 90; ++k) all.tokens.push_back(static_cast<int>(3 + rng.below(250)));
  for (int rep = 0; rep < 3; ++rep)
    for (int p = 0; p + 1 < 90; ++p)
      all.terms.push_back({p, all.tokens[static_cast<std::size_t>(p + 1)], {}, 0.01f * (rep + 1)});
  ASSERT_GT(all.terms.size(), 256u);
  TrainingSequence first = all, second = all;
  first.terms.assign(all.terms.begin(), all.terms.begin() + 100);
  second.terms.assign(all.terms.begin() + 100, all.terms.end());
  LoraTrainer<double> together(m, a, TrainerOptions{.threads = 2});
  LoraTrainer<double> apart(m, a, TrainerOptions{.threads = 2});
  const double loss = together.accumulate(all);
  EXPECT_NEAR(loss, apart.accumulate(first) + apart.accumulate(second), 1e-9 * std::fabs(loss));
  double worst = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < together.gradients().size(); ++i) {
    worst = std::max(worst, std::fabs(together.gradients()[i] - apart.gradients()[i]));
    norm = std::max(norm, std::fabs(together.gradients()[i]));
  }
  EXPECT_GT(norm, 0.0);
  EXPECT_LT(worst, 1e-9 * norm);
}

// The training forward computes what the inference runtime computes (with the adapter applied),
// up to the runtime's 8-bit activations and fp16 KV cache.
class TrainerForward : public ::testing::TestWithParam<std::string> {};

// The trainer's forward (its own f32/f64 code) and the runtime's (fp16 KV cache, GELU table)
// agree, with an adapter applied to both.
TEST_P(TrainerForward, AgreesWithRuntimeWithAdapter) {
  Model m = tiny({GetParam(), GgmlType::F32, true});
  const LoraAdapter a = random_adapter(m, 3, 0.1);
  m.set_lora(&a);
  m.init_cache(64);
  const TrainingSequence base_seq = example_sequence();
  std::vector<float> logits;
  m.forward(base_seq.tokens, 0, ForwardOutput::kLastLogits, logits, 1);
  TrainingSequence seq;
  seq.tokens = base_seq.tokens;
  seq.terms.push_back({static_cast<int>(seq.tokens.size()) - 1, 5, {}, 1.0f});
  LoraTrainer<double> t(m, a, TrainerOptions{.threads = 1});
  const auto z = t.term_logits(seq).at(0);
  ASSERT_EQ(z.size(), logits.size());
  double max_diff = 0.0, max_abs = 0.0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(z[i] - logits[i]));
    max_abs = std::max(max_abs, std::fabs(z[i]));
  }
  EXPECT_LT(max_diff, 0.02 * max_abs);
  // And the adapter changes the logits measurably (so the comparison is not of two base runs).
  m.set_lora(nullptr);
  std::vector<float> plain;
  m.forward(base_seq.tokens, 0, ForwardOutput::kLastLogits, plain, 1);
  double changed = 0.0;
  for (std::size_t i = 0; i < plain.size(); ++i)
    changed = std::max(changed, static_cast<double>(std::fabs(plain[i] - logits[i])));
  EXPECT_GT(changed, 5 * max_diff);
}

INSTANTIATE_TEST_SUITE_P(Archs, TrainerForward, ::testing::Values("llama", "gemma3"));

TEST(Trainer, RefusesSequencesLongerThanTheSlidingWindow) {
  testing::TinyModelSpec spec;
  spec.arch = "gemma3";
  spec.sliding_window = 8;
  const Model m(GgufFile::parse(testing::make_tiny_model(spec), "tiny"));
  const LoraAdapter a = random_adapter(m, 3);
  LoraTrainer<float> t(m, a, TrainerOptions{.threads = 1});
  TrainingSequence seq = example_sequence();  // 14 tokens
  EXPECT_THROW(t.accumulate(seq), std::invalid_argument);
  seq.tokens.resize(8);
  seq.terms = {{7, 5, {}, 1.0f}};
  EXPECT_NO_THROW(t.accumulate(seq));
}

// One AdamW step of the float trainer equals the double-precision reference step.
TEST(Trainer, FloatStepMatchesDoubleReference) {
  const Model m = tiny({"qwen2", GgmlType::F32, false});
  const LoraAdapter a = random_adapter(m, 21);
  LoraTrainer<float> tf(m, a, TrainerOptions{.weight_decay = 0.01, .threads = 2});
  LoraTrainer<double> td(m, a, TrainerOptions{.weight_decay = 0.01, .threads = 2});
  const TrainingSequence seq = example_sequence();
  const double lf = tf.accumulate(seq), ld = td.accumulate(seq);
  EXPECT_NEAR(lf, ld, 1e-4 * std::fabs(ld));
  auto gf = tf.gradients();
  auto gd = td.gradients();
  double gmax = 0.0, gdiff = 0.0;
  for (std::size_t i = 0; i < gd.size(); ++i) {
    gmax = std::max(gmax, std::fabs(gd[i]));
    gdiff = std::max(gdiff, std::fabs(static_cast<double>(gf[i]) - gd[i]));
  }
  EXPECT_LT(gdiff, 1e-3 * gmax);
  tf.step(1e-3);
  td.step(1e-3);
  auto pf = tf.parameters();
  auto pd = td.parameters();
  double pdiff = 0.0;
  for (std::size_t i = 0; i < pd.size(); ++i)
    pdiff = std::max(pdiff, std::fabs(static_cast<double>(pf[i]) - pd[i]));
  // Adam's first step moves every parameter by about lr; float and double agree far below that.
  EXPECT_LT(pdiff, 2e-5);
}

TEST(Trainer, FreshAdapterIsBitIdenticalToBase) {
  Model m = tiny({"llama", GgmlType::Q4_1, true});
  m.init_cache(64);
  const TrainingSequence seq = example_sequence();
  std::vector<float> plain, adapted;
  m.forward(seq.tokens, 0, ForwardOutput::kAllLogits, plain, 2);
  const LoraAdapter a = LoraAdapter::create(m.config(), parse_lora_targets("all"), 8, 16.0f, 1);
  m.set_lora(&a);
  m.forward(seq.tokens, 0, ForwardOutput::kAllLogits, adapted, 2);
  ASSERT_EQ(plain.size(), adapted.size());
  EXPECT_EQ(0, std::memcmp(plain.data(), adapted.data(), plain.size() * sizeof(float)));
}

TEST(Lora, SaveLoadRoundTripAndShapeChecks) {
  const Model m = tiny({"llama", GgmlType::F32, true});
  LoraAdapter a = random_adapter(m, 9);
  a.info["instruct.prompt"] = "label";
  const auto dir = std::filesystem::temp_directory_path() / "chatrec_lora_test";
  std::filesystem::create_directories(dir);
  const auto path = dir / "a.gguf";
  a.save(path);
  const LoraAdapter b = LoraAdapter::load(path, m);
  EXPECT_EQ(b.rank, 4);
  EXPECT_FLOAT_EQ(b.alpha, 8.0f);
  EXPECT_EQ(b.info.at("instruct.prompt"), "label");
  for (std::size_t l = 0; l < a.layers.size(); ++l)
    for (int t = 0; t < kLoraTargets; ++t) {
      EXPECT_EQ(a.layers[l][t].a, b.layers[l][t].a);
      EXPECT_EQ(a.layers[l][t].b, b.layers[l][t].b);
    }
  // The file carries llama.cpp's adapter keys and tensor layout.
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.get_string("general.type"), "adapter");
  EXPECT_EQ(f.get_string("adapter.type"), "lora");
  const GgufTensor* ta = f.tensor("blk.0.attn_q.weight.lora_a");
  const GgufTensor* tb = f.tensor("blk.0.attn_q.weight.lora_b");
  ASSERT_TRUE(ta && tb);
  EXPECT_EQ(ta->dims, (std::vector<std::int64_t>{64, 4}));
  EXPECT_EQ(tb->dims, (std::vector<std::int64_t>{4, 64}));
  // An adapter for another base is refused, naming the problem.
  const Model other = tiny({"qwen2", GgmlType::F32, true});
  try {
    LoraAdapter::load(path, other);
    FAIL() << "loaded an adapter for the wrong architecture";
  } catch (const GgufError& e) {
    EXPECT_NE(std::string(e.what()).find("architecture"), std::string::npos);
  }
  testing::TinyModelSpec wide;
  wide.n_embd = 128;
  const Model wider(GgufFile::parse(testing::make_tiny_model(wide), "wide"));
  try {
    LoraAdapter::load(path, wider);
    FAIL() << "loaded an adapter with the wrong shapes";
  } catch (const GgufError& e) {
    EXPECT_NE(std::string(e.what()).find("shape"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

// Two steps, a checkpoint of the optimizer state, a new trainer restored from it and two more
// steps give exactly the parameters of four uninterrupted steps.
TEST(Trainer, RestoredStateContinuesExactly) {
  const Model m = tiny({"llama", GgmlType::Q8_0, true});
  const LoraAdapter a = LoraAdapter::create(m.config(), parse_lora_targets("q,v,down"), 4, 8.f, 4);
  const TrainingSequence seq = example_sequence();
  LoraTrainer<float> straight(m, a, TrainerOptions{.threads = 2});
  for (int i = 0; i < 4; ++i) {
    straight.accumulate(seq);
    straight.step(1e-2);
  }
  LoraTrainer<float> first(m, a, TrainerOptions{.threads = 2});
  for (int i = 0; i < 2; ++i) {
    first.accumulate(seq);
    first.step(1e-2);
  }
  const std::vector<float> p(first.parameters().begin(), first.parameters().end());
  const std::vector<float> m1(first.first_moment().begin(), first.first_moment().end());
  const std::vector<float> m2(first.second_moment().begin(), first.second_moment().end());
  LoraTrainer<float> resumed(m, a, TrainerOptions{.threads = 2});
  resumed.restore(p, m1, m2, first.steps_taken());
  for (int i = 0; i < 2; ++i) {
    resumed.accumulate(seq);
    resumed.step(1e-2);
  }
  const auto x = straight.parameters();
  const auto y = resumed.parameters();
  ASSERT_EQ(x.size(), y.size());
  EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * sizeof(float)));
}

// A synthetic instruction: four candidate tokens, a separator, the query token (one of the
// candidates) and a separator; the answer, scored over the four candidates as a verbalizer, is the
// candidate that shares the query's token. The untuned model is at chance; LoRA training must reach
// > 90 % on held-out cases.
TEST(Trainer, LearnsToPickTheCandidateSharingTheQueryToken) {
  testing::TinyModelSpec spec;
  spec.n_layer = 2;
  spec.n_embd = 64;
  spec.n_ff = 128;
  spec.seed = 3;
  const Model m(GgufFile::parse(testing::make_tiny_model(spec), "tiny"));
  const int sep = 3 + ':';
  auto make = [&](Rng& rng) {
    TrainingSequence s;
    std::vector<int> candidates;
    while (candidates.size() < 4) {
      const int c = 3 + 'a' + static_cast<int>(rng.below(20));
      if (std::find(candidates.begin(), candidates.end(), c) == candidates.end())
        candidates.push_back(c);
    }
    s.tokens = candidates;
    const int answer = candidates[static_cast<std::size_t>(rng.below(candidates.size()))];
    s.tokens.push_back(sep);
    s.tokens.push_back(answer);
    s.tokens.push_back(sep);
    s.terms.push_back({static_cast<int>(s.tokens.size()) - 1, answer, candidates, 1.0f});
    return s;
  };
  auto accuracy = [&](LoraTrainer<float>& t) {
    Rng rng(999);
    int right = 0;
    const int n = 200;
    for (int i = 0; i < n; ++i) {
      const TrainingSequence s = make(rng);
      const auto z = t.term_logits(s).at(0);
      const auto best = std::max_element(z.begin(), z.end()) - z.begin();
      right += s.terms[0].classes[static_cast<std::size_t>(best)] == s.terms[0].target;
    }
    return static_cast<double>(right) / n;
  };
  const LoraAdapter a = LoraAdapter::create(m.config(), parse_lora_targets("all"), 8, 16.f, 2);
  LoraTrainer<float> t(m, a, TrainerOptions{.threads = 2});
  const double before = accuracy(t);
  EXPECT_LT(before, 0.45);
  Rng rng(1);
  const int steps = 300, batch = 8;
  for (int step = 0; step < steps; ++step) {
    for (int b = 0; b < batch; ++b) t.accumulate(make(rng));
    // Warm-up, then cosine decay.
    const double warm = std::min(1.0, (step + 1) / 20.0);
    const double decay = 0.5 * (1.0 + std::cos(3.141592653589793 * step / steps));
    t.step(5e-3 * warm * decay, 1.0 / batch);
  }
  const double after = accuracy(t);
  EXPECT_GT(after, 0.9) << "before " << before;
}

}  // namespace
}  // namespace chatrec::llm::runtime
