#include "llm/runtime/builtin_model.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <thread>

#include "gguf_writer.h"
#include "llm/runtime/chat_template.h"
#include "llm/runtime/json_constraint.h"
#include "llm/runtime/model.h"
#include "llm/runtime/sampler.h"
#include "llm/runtime/tokenizer.h"
#include "testing/test_env.h"

namespace chatrec::llm::runtime {
namespace {

class BuiltinModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() / "tiny.gguf";
    const auto bytes =
        testing::make_tiny_model(testing::TinyModelSpec{.weight_type = GgmlType::Q8_0});
    std::ofstream(path_, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    model_ = open_builtin_model(path_, BuiltinOptions{.threads = 2, .context = 128});
  }
  chatrec::testing::TempDir dir_;
  std::filesystem::path path_;
  std::unique_ptr<LanguageModel> model_;
  const std::vector<Message> messages_ = {{"system", "answer"}, {"user", "the and of in"}};
};

TEST_F(BuiltinModelTest, DescribesItself) {
  EXPECT_EQ(model_->name(), "builtin:tiny.gguf");
  EXPECT_EQ(model_->context_size(), 128);
  EXPECT_EQ(model_->embedding_size(), 64);
  EXPECT_EQ(model_->count_tokens(" the"), 1);
  EXPECT_EQ(model_->count_tokens("<|im_start|>"), 12);  // plain text, not the control token
}

TEST_F(BuiltinModelTest, SamplingIsDeterministicForAFixedSeed) {
  GenerationOptions o;
  o.max_tokens = 20;
  o.temperature = 1.0f;
  o.top_k = 50;
  o.top_p = 0.95f;
  o.seed = 11;
  const Completion a = model_->chat(messages_, o);
  const Completion b = model_->chat(messages_, o);
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.usage.completion_tokens, b.usage.completion_tokens);
  std::set<std::string> texts;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    o.seed = seed;
    texts.insert(model_->chat(messages_, o).text);
  }
  EXPECT_GT(texts.size(), 1u);  // the seed matters
  o.temperature = 0.0f;
  EXPECT_EQ(model_->chat(messages_, o).text, model_->chat(messages_, o).text);
}

TEST_F(BuiltinModelTest, CacheSlotsKeepPrefixesOfDifferentRequestsApart) {
  // Two request shapes alternate; with one slot each evicts the other, with two slots each finds
  // its own prefix again. The answers must not depend on which slot served them.
  const std::vector<Message> a = {{"system", "answer"}, {"user", "the and of in the and of in"}};
  const std::vector<Message> b = {{"system", "rank"}, {"user", "in of and the in of and the"}};
  GenerationOptions o;
  o.max_tokens = 6;
  auto run = [&](LanguageModel& m) {
    std::vector<std::string> out;
    for (int round = 0; round < 3; ++round) {
      out.push_back(m.chat(a, o).text);
      const auto l = m.loglikelihood(b, {" the and", " of"});
      out.push_back(std::to_string(l[0].logprob) + "/" + std::to_string(l[1].logprob));
      m.embed({"in the"});  // embeddings have their own slot
    }
    return out;
  };
  auto one =
      open_builtin_model(path_, BuiltinOptions{.threads = 2, .context = 128, .cache_slots = 1});
  auto two =
      open_builtin_model(path_, BuiltinOptions{.threads = 2, .context = 128, .cache_slots = 2});
  EXPECT_EQ(run(*one), run(*two));
  const Usage u1 = one->total_usage(), u2 = two->total_usage();
  EXPECT_EQ(u1.prompt_tokens, u2.prompt_tokens);
  // Rounds 2 and 3 find their whole prompts cached in their own slots (less the last token, which
  // runs again for its logits); with one slot only the shared chat-template opening survives.
  EXPECT_GT(u2.cached_prompt_tokens, u1.cached_prompt_tokens + 20);
}

TEST_F(BuiltinModelTest, LoglikelihoodEqualsSumOfPerTokenLogProbs) {
  const std::vector<std::string> continuations = {" the and", "of", " in the of and", ""};
  const auto got = model_->loglikelihood(messages_, continuations);
  ASSERT_EQ(got.size(), continuations.size());
  // Manual computation with a separate model instance: one pass over prompt + continuation.
  Model m(GgufFile::open(path_));
  Tokenizer tok(m.file());
  const ChatTemplate tpl = ChatTemplate::detect(m.file(), tok);
  const std::vector<int> prompt = tpl.render(tok, messages_, true);
  m.init_cache(128);
  const std::size_t V = static_cast<std::size_t>(m.config().n_vocab);
  for (std::size_t c = 0; c < continuations.size(); ++c) {
    const std::vector<int> ids = tok.encode(continuations[c], false);
    EXPECT_EQ(got[c].tokens, static_cast<int>(ids.size()));
    if (ids.empty()) {
      EXPECT_EQ(got[c].logprob, 0.0);
      continue;
    }
    // The prompt alone, then this continuation alone as a one-branch batch (the runtime scores all
    // continuations in one batch of branches: each must come out as if scored by itself).
    std::vector<float> logits;
    m.forward(prompt, 0, ForwardOutput::kLastLogits, logits, 1);
    double expected = log_softmax_at(logits, ids[0]);
    if (ids.size() > 1) {
      const int P = static_cast<int>(prompt.size());
      Model::Branches one;
      one.shared = P;
      for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
        one.positions.push_back(P + static_cast<int>(i));
        one.branch_start.push_back(P);
      }
      m.forward_branches(std::span<const int>(ids.data(), ids.size() - 1), P, one,
                         ForwardOutput::kAllLogits, logits, 1);
      for (std::size_t i = 1; i < ids.size(); ++i)
        expected += log_softmax_at(std::span<const float>(logits).subspan((i - 1) * V, V), ids[i]);
    }
    EXPECT_NEAR(got[c].logprob, expected, 1e-4) << continuations[c];
    EXPECT_LT(got[c].logprob, 0.0);
  }
  // Reusing the prompt's cache across calls and in any order gives the same numbers.
  const auto reversed = model_->loglikelihood(messages_, {continuations[2], continuations[0]});
  EXPECT_NEAR(reversed[0].logprob, got[2].logprob, 1e-4);
  EXPECT_NEAR(reversed[1].logprob, got[0].logprob, 1e-4);
}

TEST_F(BuiltinModelTest, CompleteContinuesThePlainTextWithoutTheChatTemplate) {
  GenerationOptions o;
  o.max_tokens = 8;
  o.logprobs = 0;
  const std::string text = "the and of in";
  const Completion got = model_->complete(text, o);
  // Greedy decoding of the text's own tokens (no BOS: the tiny model asks for none), by hand.
  Model m(GgufFile::open(path_));
  Tokenizer tok(m.file());
  m.init_cache(128);
  std::vector<int> tokens = tok.encode(text, false);
  ASSERT_FALSE(tok.add_bos());
  std::vector<float> logits;
  m.forward(tokens, 0, ForwardOutput::kLastLogits, logits, 1);
  std::vector<int> generated;
  for (int step = 0; step < o.max_tokens; ++step) {
    const int next =
        static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (next == tok.eos()) break;
    generated.push_back(next);
    const int pos = static_cast<int>(tokens.size());
    tokens.push_back(next);
    m.forward(std::span<const int>(&tokens.back(), 1), pos, ForwardOutput::kLastLogits, logits, 1);
  }
  EXPECT_EQ(got.text, tok.decode(generated));
  EXPECT_EQ(got.usage.prompt_tokens, static_cast<std::int64_t>(tok.encode(text, false).size()));
  std::string from_logprobs;
  for (const TokenLogprob& t : got.logprobs) from_logprobs += t.token;
  EXPECT_EQ(from_logprobs, got.text);
  // The chat path wraps the same text in the template, so it sees another prompt.
  const Completion chat = model_->chat({{"user", text}}, o);
  EXPECT_GT(chat.usage.prompt_tokens, got.usage.prompt_tokens);
  // Template markup in a plain prompt is text, not control tokens.
  const Completion markup = model_->complete("<|im_start|>user", o);
  EXPECT_EQ(markup.usage.prompt_tokens,
            static_cast<std::int64_t>(tok.encode("<|im_start|>user", false).size()));
}

TEST_F(BuiltinModelTest, ConstrainedDecodingOnlyEmitsAChoice) {
  const std::vector<std::string> choices = {"yes", "no", "the and", "the of", "maybe so"};
  GenerationOptions o;
  o.choices = choices;
  o.temperature = 1.5f;
  std::set<std::string> seen;
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    o.seed = seed;
    std::string streamed;
    o.on_text = [&](std::string_view s) {
      streamed += s;
      return true;
    };
    const Completion c = model_->chat(messages_, o);
    EXPECT_EQ(c.finish_reason, "choice");
    EXPECT_NE(std::find(choices.begin(), choices.end(), c.text), choices.end()) << c.text;
    EXPECT_EQ(streamed, c.text);
    seen.insert(c.text);
  }
  EXPECT_GT(seen.size(), 1u);
}

TEST_F(BuiltinModelTest, StopSequencesCutTheTextAndStreamingMatches) {
  GenerationOptions o;
  o.max_tokens = 40;
  const Completion free = model_->chat(messages_, o);
  EXPECT_EQ(free.finish_reason == "length" || free.finish_reason == "stop", true);
  ASSERT_GE(free.text.size(), 12u) << free.text;
  const std::string stop = free.text.substr(8, 3);
  o.stop = {stop};
  std::string streamed;
  o.on_text = [&](std::string_view s) {
    streamed += s;
    return true;
  };
  const Completion cut = model_->chat(messages_, o);
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_EQ(cut.text, free.text.substr(0, free.text.find(stop)));
  EXPECT_EQ(streamed, cut.text);
  // The callback can end generation.
  int calls = 0;
  o.stop.clear();
  o.on_text = [&](std::string_view) { return ++calls < 3; };
  const Completion early = model_->chat(messages_, o);
  EXPECT_EQ(calls, 3);
  EXPECT_LT(early.usage.completion_tokens, 40);
}

TEST_F(BuiltinModelTest, LogprobsDescribeEachGeneratedTokenAndItsBestAlternatives) {
  GenerationOptions o;
  o.max_tokens = 24;
  o.logprobs = 3;
  std::vector<TokenLogprob> streamed;
  o.on_logprob = [&](const TokenLogprob& t) { streamed.push_back(t); };
  const Completion greedy = model_->chat(messages_, o);
  ASSERT_EQ(greedy.logprobs.size(), static_cast<std::size_t>(greedy.usage.completion_tokens));
  ASSERT_FALSE(greedy.logprobs.empty());
  std::string joined;
  for (const TokenLogprob& t : greedy.logprobs) {
    joined += t.token;
    EXPECT_LE(t.logprob, 0.0);
    ASSERT_EQ(t.top.size(), 3u);
    double mass = 0.0;
    for (std::size_t i = 0; i < t.top.size(); ++i) {
      mass += std::exp(t.top[i].second);
      if (i > 0) {
        EXPECT_GE(t.top[i - 1].second, t.top[i].second);
      }
    }
    EXPECT_LE(mass, 1.0 + 1e-9);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(t.top[0].first, t.token);
    EXPECT_DOUBLE_EQ(t.top[0].second, t.logprob);
  }
  EXPECT_EQ(joined, greedy.text);
  ASSERT_EQ(streamed.size(), greedy.logprobs.size());
  for (std::size_t i = 0; i < streamed.size(); ++i) {
    EXPECT_EQ(streamed[i].token, greedy.logprobs[i].token);
    EXPECT_EQ(streamed[i].logprob, greedy.logprobs[i].logprob);
  }

  // The first token's log-probability is what scoring the prompt says.
  const std::vector<Likelihood> first =
      model_->loglikelihood(messages_, {greedy.logprobs[0].token});
  ASSERT_EQ(first[0].tokens, 1);
  EXPECT_NEAR(first[0].logprob, greedy.logprobs[0].logprob, 1e-4);

  // A stop sequence drops the tokens that start after it; no logprobs unless asked.
  o.on_logprob = nullptr;
  ASSERT_GE(greedy.text.size(), 12u);
  o.stop = {greedy.text.substr(8, 3)};
  const Completion cut = model_->chat(messages_, o);
  std::string cut_joined;
  for (const TokenLogprob& t : cut.logprobs) cut_joined += t.token;
  EXPECT_LT(cut.logprobs.size(), greedy.logprobs.size());
  EXPECT_EQ(cut_joined.substr(0, cut.text.size()), cut.text);
  EXPECT_LT(cut_joined.size() - cut.text.size(), cut.logprobs.back().token.size() + 1);
  o.logprobs = -1;
  EXPECT_TRUE(model_->chat(messages_, o).logprobs.empty());
}

TEST_F(BuiltinModelTest, JsonObjectModeOnlyEmitsPrefixesOfOneJsonObject) {
  GenerationOptions o;
  o.max_tokens = 48;
  o.temperature = 1.2f;
  o.json_object = true;
  int finished = 0;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    o.seed = seed;
    const Completion c = model_->chat(messages_, o);
    ASSERT_FALSE(c.text.empty());
    EXPECT_EQ(c.text.front(), '{');
    JsonObjectPrefix check;
    EXPECT_TRUE(check.feed(c.text)) << c.text;
    if (c.finish_reason == "stop") {
      ++finished;
      EXPECT_TRUE(check.complete()) << c.text;
      const nlohmann::json parsed = nlohmann::json::parse(c.text, nullptr, false);
      EXPECT_TRUE(parsed.is_object()) << c.text;
    } else {
      EXPECT_EQ(c.finish_reason, "length");
    }
  }
  // Tiny random weights rarely close what they open; the real model is tested through llm-serve.
  RecordProperty("finished", finished);
}

TEST_F(BuiltinModelTest, ContextOverflowIsReported) {
  const std::string long_text(2000, 'x');
  try {
    model_->chat({{"user", long_text}}, GenerationOptions{});
    FAIL();
  } catch (const LlmError& e) {
    EXPECT_EQ(e.kind(), LlmError::Kind::kContextOverflow);
  }
  EXPECT_THROW(model_->loglikelihood({{"user", long_text}}, {"a"}), LlmError);
}

TEST_F(BuiltinModelTest, EmbeddingsAreNormalisedAndDeterministic) {
  const auto a = model_->embed({"the and of", "in the", "the and of"});
  ASSERT_EQ(a.size(), 3u);
  for (const auto& v : a) {
    ASSERT_EQ(v.size(), 64u);
    double norm = 0.0;
    for (float x : v) norm += static_cast<double>(x) * x;
    EXPECT_NEAR(norm, 1.0, 1e-4);
  }
  for (std::size_t i = 0; i < 64; ++i) EXPECT_FLOAT_EQ(a[0][i], a[2][i]);
  double dot = 0.0;
  for (std::size_t i = 0; i < 64; ++i) dot += static_cast<double>(a[0][i]) * a[1][i];
  EXPECT_LT(dot, 0.9999);
}

TEST_F(BuiltinModelTest, CountsUsageAndSerialisesConcurrentRequests) {
  const Usage before = model_->total_usage();
  GenerationOptions o;
  o.max_tokens = 8;
  const Completion expected = model_->chat(messages_, o);
  EXPECT_GT(expected.usage.prompt_tokens, 0);
  const Usage after = model_->total_usage();
  EXPECT_EQ(after.prompt_tokens - before.prompt_tokens, expected.usage.prompt_tokens);
  EXPECT_EQ(after.completion_tokens - before.completion_tokens, expected.usage.completion_tokens);
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] =
          model_->chat(i % 2 ? messages_ : std::vector<Message>{{"user", "of in"}}, o).text;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(results[1], expected.text);
  EXPECT_EQ(results[3], expected.text);
  EXPECT_EQ(results[0], results[2]);
}

TEST(BuiltinModel, MissingOrBrokenFilesRaiseLlmError) {
  chatrec::testing::TempDir dir;
  try {
    open_builtin_model(dir.path() / "none.gguf", {});
    FAIL();
  } catch (const LlmError& e) {
    EXPECT_EQ(e.kind(), LlmError::Kind::kModel);
  }
}

TEST(BuiltinModel, DefaultPathFollowsEnvironment) {
  setenv("CHATREC_MODEL", "/x/y.gguf", 1);
  EXPECT_EQ(default_model_path(), "/x/y.gguf");
  unsetenv("CHATREC_MODEL");
  setenv("CHATREC_MODEL_DIR", "/models", 1);
  EXPECT_EQ(default_model_path(), "/models/SmolLM2-135M-Instruct.Q4_1.gguf");
  unsetenv("CHATREC_MODEL_DIR");
}

}  // namespace
}  // namespace chatrec::llm::runtime
