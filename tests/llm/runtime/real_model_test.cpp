// Checks the built-in runtime against llama.cpp on the real SmolLM2-135M-Instruct Q4_1 file
// (skipped when the file is absent). The reference data was produced with llama.cpp's
// llama-tokenize and llama-simple by make_reference.py in this directory; docs/llm-runtime.md
// records the llama.cpp commit and commands.
#include <gtest/gtest.h>

#include <cstdio>
#include <optional>

#include "llm/runtime/builtin_model.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/model.h"
#include "llm/runtime/sampler.h"
#include "llm/runtime/tokenizer.h"
#include "testing/test_env.h"

namespace chatrec::llm::runtime {
namespace {

struct TokenReference {
  const char* text;
  std::vector<int> ids;
};

// llama-tokenize -m MODEL -f FILE --ids (special tokens parsed; SmolLM2 adds no BOS).
const TokenReference kTokenReferences[] = {
    {"Hello world", {19556, 905}},
    {"The capital of France is", {504, 3575, 282, 4649, 314}},
    {"café naïve 日本語 🙂",
     {83, 1939, 2756, 15486, 46494, 17097, 241, 115, 40993, 179, 120, 248, 47526}},
    {"1234567 3.14159 -42",
     {33, 34, 35, 36, 37, 38, 39, 216, 35, 30, 33, 36, 33, 37, 41, 731, 36, 34}},
    {"  leading   and   trailing  \n\n\ttabs\t\n",
     {216, 2899, 256, 284, 256, 35079, 256, 1116, 197, 100, 7366, 197, 198}},
    {"<|im_start|>user\nHi there!<|im_end|>\n", {1, 4093, 198, 26843, 665, 17, 2, 198}},
    {"I'm sure they'll say it's fine, won't they?",
     {57, 5248, 2090, 502, 3060, 1643, 357, 506, 4979, 28, 3763, 982, 502, 47}},
    {"def f(x):\n    return x**2  # square",
     {1604, 275, 24, 104, 727, 472, 1003, 1792, 828, 34, 216, 907, 5222}},
    {"Ünïcödé ÅÄÖ Привет мир", {142, 246, 94,  25972, 83,  7466,  84,    2756,  5549,  223,  142,
                                222, 142, 240, 5470,  249, 46879, 16464, 32547, 41337, 7872, 9175}},
    {"email: foo.bar@example.com, url: https://example.org/a?b=c",
     {10349, 42,   29856, 30, 6299, 48, 7434, 30, 824, 28, 8203, 42,
      5141,  1742, 7434,  30, 2295, 31, 81,   47, 82,  45, 83}},
};

struct ContinuationReference {
  const char* prompt;
  const char* text;  // prompt followed by 64 greedy tokens (fewer if EOS came first)
};

// llama-simple -m MODEL -n 64 PROMPT
const ContinuationReference kContinuations[] = {
    {"The capital of France is",
     "The capital of France is Paris.\n\nThe United States has a population of approximately 311 "
     "million people.\n\nThe United States has a population of approximately 311 million "
     "people.\n\nThe United States has a population of approximately 311 million people.\n\nThe "
     "United States has a population of approximately "},
    {"Once upon a time, there was a little",
     "Once upon a time, there was a little girl named Emma who loved to play in the sun. She had a "
     "big smile on her face and always had a ball and a bat and a ball. She loved to play with her "
     "friends, and she loved to play with her toys. She loved to play with her toys, and she loved "
     "to play with her toys"},
    {"The three primary colors are",
     "The three primary colors are the primary colors of the RGB color model, which are:\n\n* Red "
     "(R): The primary color that is produced when two primary colors are combined to create a "
     "secondary color.\n* Blue (B): The secondary color that is produced when two primary colors "
     "are combined to create a tertiary color.\n* Green"},
    {"def fibonacci(n):",
     "def fibonacci(n):\n    if n == 0:\n        return 1\n    return n * fibonacci(n - "
     "1)\n\nprint(fibonacci(10)) # 333.333.333.333.333.333.333.3"},
    {"Water boils at a temperature of",
     "Water boils at a temperature of around 1,000°C, making it a highly toxic and corrosive "
     "substance.\n\nThe most recent report by the International Organization of Nuclear and "
     "Particle Research (IONPR) confirmed the existence of a new isotope of hydrogen, which is a "
     "stable isotope of hydrogen, but it is not a naturally occurring element"},
    {"The largest planet in our solar system is",
     "The largest planet in our solar system is Jupiter, but it's not the only one. There are many "
     "other planets in our solar system, and they're all different.\n\nThe smallest planet in our "
     "solar system is Mercury, but it's not the only one. There are many other planets in our "
     "solar system, and they're all different.\n\n"},
    {"My favourite movie is",
     "My favourite movie is probably \"The Matrix\" – I'm a big fan of the sci-fi epic that has "
     "captivated audiences worldwide.\n\nI'm also a huge fan of the latest Marvel Cinematic "
     "Universe films, particularly \"Avengers: Endgame\" and \"The Dark Knight R.A.I.T.\" I've "
     "been"},
    {"To make a cup of tea, you first",
     "To make a cup of tea, you first need to brew it.\n\nThe story goes that the ancient "
     "Egyptians were masters of brewing, and they used a special tool called a \"tea-tape\" to "
     "brew their tea. The story goes that the ancient Egyptians used a special tool called a "
     "\"tea-tape\" to brew their tea,"},
    {"The quick brown fox",
     "The quick brown fox with a quick brown bear.\n\nThe original sentence is a classic example "
     "of a homophone fallacy, where two words with different spellings are used to convey the same "
     "meaning. In this case, \"quick\" and \"quick\" are two different words that have different "
     "meanings.\n\nThe corrected sentence would be: \""},
    {"In 1969, the first man to walk on the moon was",
     "In 1969, the first man to walk on the moon was Neil Armstrong.\n\nThe first woman to walk on "
     "the moon was Sally Ride.\n\nThe first person to walk on a planet was Captain James "
     "Bond.\n\nThe first person to walk on a planet was Captain James Bond.\n\nThe first person to "
     "walk on a planet was Captain James Bond.\n\n"},
};

// Prompts of 64 tokens or more: llama.cpp processes them with its tiled flash attention (f32
// queries, 64-key tiles), which the runtime follows for batches of kAttentionTile queries or more.
const ContinuationReference kLongContinuations[] = {
    {"The history of cinema began in the late nineteenth century, when inventors in France and the "
     "United States built the first machines that could record and project moving images. Early "
     "films were short, silent and shown in fairgrounds and music halls. Within two decades, "
     "feature films, movie stars and large studios had appeared, and by the end of the 1920s "
     "synchronised sound changed the industry again. In the following decades, colour film, "
     "widescreen formats and television",
     "The history of cinema began in the late nineteenth century, when inventors in France and the "
     "United States built the first machines that could record and project moving images. Early "
     "films were short, silent and shown in fairgrounds and music halls. Within two decades, "
     "feature films, movie stars and large studios had appeared, and by the end of the 1920s "
     "synchronised sound changed the industry again. In the following decades, colour film, "
     "widescreen formats and television became popular. The first television was launched in 1926, "
     "and television became a major part of the film industry.\n\nThe film industry was dominated "
     "by the big three: Hollywood, the BBC and the BBC World Service. The BBC was the only one to "
     "have a film industry, and it was the"},
    {"Recommender systems suggest items such as films, books or games to people. Classic methods "
     "learn from the ratings that many users gave to many items: neighbourhood methods compare "
     "users or items directly, while matrix factorization represents every user and every item by "
     "a short vector of learned factors. Large language models can now talk with the user, explain "
     "a recommendation and take new wishes into account, so researchers combine both kinds of "
     "model. In such a system, the",
     "Recommender systems suggest items such as films, books or games to people. Classic methods "
     "learn from the ratings that many users gave to many items: neighbourhood methods compare "
     "users or items directly, while matrix factorization represents every user and every item by "
     "a short vector of learned factors. Large language models can now talk with the user, explain "
     "a recommendation and take new wishes into account, so researchers combine both kinds of "
     "model. In such a system, the user is given a list of items, and the user is asked to choose "
     "a list of items that they want to choose from. The user is asked to choose a list of items "
     "that they want to choose from. The user is asked to choose a list of items that they want to "
     "choose from. The user is asked"},
};

class RealModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = chatrec::testing::real_model_path();
    if (!path_) return;
    model_ = new Model(GgufFile::open(*path_));
    tokenizer_ = new Tokenizer(model_->file());
    model_->init_cache(512);
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete model_;
  }
  void SetUp() override {
    if (!path_) GTEST_SKIP() << "SmolLM2 GGUF not found; run scripts/fetch-model.sh";
  }

  // Greedy continuation of a raw prompt (no chat template), like llama-simple.
  static std::string greedy(const std::string& prompt, int n_tokens) {
    std::vector<int> ids = tokenizer_->encode(prompt, true);
    std::vector<float> logits;
    model_->forward(ids, 0, ForwardOutput::kLastLogits, logits, 1);
    Sampler sampler(SamplingParams{});
    std::string text = prompt;
    int pos = static_cast<int>(ids.size());
    for (int i = 0; i < n_tokens; ++i) {
      const int t = sampler.sample(logits);
      if (tokenizer_->is_eog(t)) break;
      text += tokenizer_->decode(t);
      model_->forward(std::span<const int>(&t, 1), pos++, ForwardOutput::kLastLogits, logits, 1);
    }
    return text;
  }

  static inline std::optional<std::filesystem::path> path_;
  static inline Model* model_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
};

TEST_F(RealModelTest, ReadsSmolLm2Metadata) {
  const ModelConfig& c = model_->config();
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.n_layer, 30);
  EXPECT_EQ(c.n_embd, 576);
  EXPECT_EQ(c.n_head, 9);
  EXPECT_EQ(c.n_head_kv, 3);
  EXPECT_EQ(c.n_vocab, 49152);
  EXPECT_EQ(tokenizer_->pre(), "smollm");
}

TEST_F(RealModelTest, TokenizerMatchesLlamaCpp) {
  for (const auto& ref : kTokenReferences) {
    EXPECT_EQ(tokenizer_->encode(ref.text, true), ref.ids) << ref.text;
    EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(ref.text, false)), ref.text);
  }
}

// Greedy decoding amplifies any numerical difference (activation rounding, accumulation order,
// the exp and RoPE angle approximations): a near-tie between two tokens flips on a one-ulp change
// and the continuations part from there. The runtime follows llama.cpp's CPU numerics bit for bit
// (docs/llm-runtime.md, "Numerics"), so every continuation must be identical to llama.cpp's.
TEST_F(RealModelTest, GreedyContinuationsEqualLlamaCpp) {
  int identical = 0;
  for (const auto& ref : kContinuations) {
    const std::string got = greedy(ref.prompt, 64);
    const std::string expected = ref.text;
    std::size_t shared = 0;
    while (shared < got.size() && shared < expected.size() && got[shared] == expected[shared])
      ++shared;
    EXPECT_EQ(got, expected) << "the first " << shared - std::string(ref.prompt).size()
                             << " generated characters agree";
    identical += got == expected;
  }
  std::printf("identical continuations: %d of %zu\n", identical, std::size(kContinuations));
}

TEST_F(RealModelTest, GreedyContinuationsOfLongPromptsEqualLlamaCpp) {
  for (const auto& ref : kLongContinuations) {
    ASSERT_GE(tokenizer_->encode(ref.prompt, true).size(), 64u) << ref.prompt;
    EXPECT_EQ(greedy(ref.prompt, 64), std::string(ref.text));
  }
}

TEST_F(RealModelTest, GreedyIsDeterministicAndSensible) {
  const std::string a = greedy("The capital of France is", 16);
  EXPECT_EQ(a, greedy("The capital of France is", 16));
  EXPECT_NE(a.find("Paris"), std::string::npos) << a;
}

TEST_F(RealModelTest, ChatAnswersAndRanksPlausibleContinuations) {
  auto llm = open_builtin_model(*path_, BuiltinOptions{.threads = 2, .context = 1024});
  GenerationOptions o;
  o.max_tokens = 24;
  const Completion c =
      llm->chat({{"user", "What is the capital of France? Answer in one word."}}, o);
  EXPECT_NE(c.text.find("Paris"), std::string::npos) << c.text;
  const auto ll =
      llm->loglikelihood({{"user", "What is the capital of France?"}},
                         {"The capital of France is Paris.", "The capital of France is Berlin."});
  EXPECT_GT(ll[0].logprob, ll[1].logprob);
  o.choices = {"Paris", "London", "Rome"};
  EXPECT_EQ(
      llm->chat({{"user", "What is the capital of France? Answer with the city only."}}, o).text,
      "Paris");
}

}  // namespace
}  // namespace chatrec::llm::runtime
