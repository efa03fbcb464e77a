#include "llm/runtime/tokenizer.h"

#include <gtest/gtest.h>

#include <random>

#include "gguf_writer.h"
#include "llm/runtime/chat_template.h"
#include "llm/runtime/gguf.h"

namespace chatrec::llm::runtime {
namespace {

GgufFile tiny_file() {
  return GgufFile::parse(
      testing::make_tiny_model(testing::TinyModelSpec{.n_layer = 1, .n_embd = 32, .n_ff = 32}));
}

int id_of(const Tokenizer& t, const std::string& piece) {
  auto id = t.find(piece);
  EXPECT_TRUE(id.has_value()) << piece;
  return id.value_or(-1);
}

TEST(BpeTokenizer, AppliesMergesInRankOrderAfterPreTokenizing) {
  const GgufFile f = tiny_file();
  const Tokenizer t(f);
  EXPECT_EQ(t.kind(), Tokenizer::Kind::kBpe);
  EXPECT_EQ(t.pre(), "smollm");
  // " the" -> "Ġthe" via Ġ t, h e, Ġt he; "and" has no merge without the leading space.
  EXPECT_EQ(t.encode(" the", false), (std::vector<int>{id_of(t, "Ġthe")}));
  EXPECT_EQ(t.encode("the and", false),
            (std::vector<int>{id_of(t, "t"), id_of(t, "he"), id_of(t, "Ġand")}));
  // smollm splits every digit on its own.
  EXPECT_EQ(t.encode("12", false), (std::vector<int>{id_of(t, "1"), id_of(t, "2")}));
}

TEST(BpeTokenizer, RoundTripsArbitraryBytesIncludingInvalidUtf8) {
  const GgufFile f = tiny_file();
  const Tokenizer t(f);
  std::mt19937_64 rng(5);
  for (int iter = 0; iter < 200; ++iter) {
    std::string s;
    const int len = static_cast<int>(rng() % 40);
    for (int i = 0; i < len; ++i)
      s.push_back(static_cast<char>(rng() % 4 == 0 ? rng() % 256 : "the and of in "[rng() % 14]));
    EXPECT_EQ(t.decode(t.encode(s, false)), s);
  }
  const std::string unicode = "café naïve 日本語 🙂\n\t  x";
  EXPECT_EQ(t.decode(t.encode(unicode, false)), unicode);
}

TEST(BpeTokenizer, SpecialTokensOnlyWhenParsingSpecial) {
  const GgufFile f = tiny_file();
  const Tokenizer t(f);
  const auto with = t.encode("<|im_start|>user", true);
  ASSERT_FALSE(with.empty());
  EXPECT_EQ(with.front(), 1);
  const auto without = t.encode("<|im_start|>user", false);
  EXPECT_NE(without.front(), 1);
  EXPECT_EQ(t.decode(without), "<|im_start|>user");
  EXPECT_EQ(t.decode(with), "user");  // control tokens decode to nothing by default
  EXPECT_EQ(t.decode(with, true), "<|im_start|>user");
  EXPECT_TRUE(t.is_eog(2));
  EXPECT_FALSE(t.is_eog(1));
}

TEST(ChatTemplate, RendersChatMlWithMarkersAsSpecialTokens) {
  const GgufFile f = tiny_file();
  const Tokenizer t(f);
  const ChatTemplate tpl = ChatTemplate::detect(f, t);
  EXPECT_EQ(tpl.format, ChatFormat::kChatMl);
  const std::vector<Message> msgs = {{"system", "be brief"}, {"user", "hi <|im_end|>"}};
  EXPECT_EQ(tpl.render_text(msgs, true),
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi "
            "<|im_end|><|im_end|>\n<|im_start|>assistant\n");
  const auto ids = tpl.render(t, msgs, true);
  // Exactly three <|im_start|> and two <|im_end|> tokens: the one typed in the user message stays
  // text.
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 3);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 2);
}

TEST(ChatTemplate, ExtractsDefaultSystemPrompt) {
  testing::GgufWriter w;
  w.add_string("tokenizer.chat_template",
               "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' "
               "%}{{ '<|im_start|>system\nYou are "
               "helpful<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
               "message['content'] + '<|im_end|>' + "
               "'\n'}}{% endfor %}");
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_strings("tokenizer.ggml.tokens", testing::tiny_vocab());
  w.add_strings("tokenizer.ggml.merges", testing::tiny_merges());
  const GgufFile f = GgufFile::parse(w.bytes());
  const Tokenizer t(f);
  const ChatTemplate tpl = ChatTemplate::detect(f, t);
  EXPECT_EQ(tpl.default_system, "You are helpful");
  EXPECT_EQ(tpl.render_text({{"user", "q"}}, false),
            "<|im_start|>system\nYou are helpful<|im_end|>\n<|im_start|>user\nq<|im_end|>\n");
  EXPECT_EQ(tpl.render_text({{"system", "s"}, {"user", "q"}}, false),
            "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nq<|im_end|>\n");
}

TEST(ChatTemplate, Llama3AndGemmaFormats) {
  ChatTemplate l3{ChatFormat::kLlama3, ""};
  EXPECT_EQ(l3.render_text({{"system", "s"}, {"user", "q"}}, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\ns<|eot_id|><|start_"
            "header_id|>user<|end_header_id|>\n\nq<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  ChatTemplate gemma{ChatFormat::kGemma, ""};
  EXPECT_EQ(
      gemma.render_text({{"system", "s"}, {"user", "q"}, {"assistant", "a"}}, false),
      "<bos><start_of_turn>user\ns\n\nq<end_of_turn>\n<start_of_turn>model\na<end_of_turn>\n");
}

// A final assistant message with a generation prompt is the start of the reply: its turn stays
// open, in every format.
TEST(ChatTemplate, TrailingAssistantMessageIsAPrefill) {
  const std::vector<Message> msgs = {{"user", "q"}, {"assistant", "a\nb\n"}};
  EXPECT_EQ((ChatTemplate{ChatFormat::kChatMl, ""}.render_text(msgs, true)),
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na\nb\n");
  EXPECT_EQ((ChatTemplate{ChatFormat::kLlama3, ""}.render_text(msgs, true)),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\na\nb\n");
  EXPECT_EQ((ChatTemplate{ChatFormat::kGemma, ""}.render_text(msgs, true)),
            "<bos><start_of_turn>user\nq<end_of_turn>\n<start_of_turn>model\na\nb\n");
  // Without a generation prompt the conversation is rendered closed, as before.
  EXPECT_EQ((ChatTemplate{ChatFormat::kChatMl, ""}.render_text(msgs, false)),
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na\nb\n<|im_end|>\n");
}

// SentencePiece-style vocabulary: merges by score, "▁" for spaces, <0xXX> byte fallback.
TEST(SpmTokenizer, MergesByScoreWithByteFallback) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<std::int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    scores.push_back(0);
    types.push_back(6);
  }
  const std::vector<std::pair<std::string, float>> pieces = {{"\xE2\x96\x81", -1},
                                                             {"h", -2},
                                                             {"e", -2},
                                                             {"l", -2},
                                                             {"o", -2},
                                                             {"he", -3},
                                                             {"ll", -3},
                                                             {"hell", -4},
                                                             {"hello", -5},
                                                             {"\xE2\x96\x81hello", -6},
                                                             {"w", -2}};
  for (const auto& [p, s] : pieces) {
    tokens.push_back(p);
    scores.push_back(s);
    types.push_back(1);
  }
  testing::GgufWriter w;
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_strings("tokenizer.ggml.tokens", tokens);
  w.add_f32s("tokenizer.ggml.scores", scores);
  w.add_i32s("tokenizer.ggml.token_type", types);
  const GgufFile f = GgufFile::parse(w.bytes());
  const Tokenizer t(f);
  EXPECT_EQ(t.kind(), Tokenizer::Kind::kSpm);
  EXPECT_TRUE(t.add_bos());
  EXPECT_EQ(t.bos(), 1);
  const auto ids = t.encode("hello w!", false);
  // "▁hello" is one piece (prefix space added), then "▁", "w", and "!" through byte fallback.
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], id_of(t, "\xE2\x96\x81hello"));
  EXPECT_EQ(ids[1], id_of(t, "\xE2\x96\x81"));
  EXPECT_EQ(ids[2], id_of(t, "w"));
  EXPECT_EQ(ids[3], id_of(t, "<0x21>"));
  EXPECT_EQ(t.decode(ids), " hello w!");
}

}  // namespace
}  // namespace chatrec::llm::runtime
