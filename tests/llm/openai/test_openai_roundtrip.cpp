// The OpenAI client against the OpenAI server wrapping the mock model, over loopback HTTP.
#include <gtest/gtest.h>

#include <cmath>
#include <mutex>

#include "llm/mock_model.h"
#include "llm/openai/openai_client.h"
#include "llm/openai/plain_prompt.h"
#include "server_fixture.h"

namespace chatrec::llm::openai {
namespace {

using testing::ServerThread;

// The mock replies in one piece; this one streams its reply word by word, like a real model.
class StreamingMock : public MockModel {
 public:
  Completion chat(const std::vector<Message>& messages, const GenerationOptions& options) override {
    GenerationOptions quiet = options;
    quiet.on_text = nullptr;
    Completion c = MockModel::chat(messages, quiet);
    // With logprobs: one "token" per byte (so multi-byte characters are split), -0.5 each.
    auto byte_logprob = [&](char b) {
      TokenLogprob t{std::string(1, b), -0.5, {}};
      if (options.logprobs >= 1) t.top.emplace_back(t.token, -0.5);
      if (options.logprobs >= 2) t.top.emplace_back("x", -1.5);
      return t;
    };
    if (options.logprobs >= 0) {
      for (char b : c.text) c.logprobs.push_back(byte_logprob(b));
    }
    if (!options.on_text) return c;
    std::string sent;
    size_t start = 0;
    while (start < c.text.size()) {
      size_t end = c.text.find(' ', start + 1);
      if (end == std::string::npos) end = c.text.size();
      std::string piece = c.text.substr(start, end - start);
      sent += piece;
      start = end;
      if (options.logprobs >= 0 && options.on_logprob) {
        for (char b : piece) options.on_logprob(byte_logprob(b));
      }
      if (!options.on_text(piece)) {
        c.text = sent;
        break;
      }
    }
    return c;
  }

  Completion complete(std::string_view prompt, const GenerationOptions& options) override {
    Completion c = MockModel::complete(prompt, options);
    if (options.logprobs >= 0) {
      for (char b : c.text) {
        TokenLogprob t{std::string(1, b), -0.25, {}};
        if (options.logprobs >= 2) t.top = {{t.token, -0.25}, {"y", -2.0}};
        c.logprobs.push_back(std::move(t));
      }
    }
    return c;
  }
};

struct Recorded {
  std::mutex mutex;
  GenerationOptions options;
};

OpenAIConfig config_for(const ServerThread& server) {
  OpenAIConfig config;
  config.base_url = server.url();
  config.timeout_seconds = 10;
  config.max_retries = 0;
  return config;
}

const std::vector<Message> kChat = {{"system", "You recommend movies."},
                                    {"user", "I liked Alien.\nWhat next?"}};

TEST(OpenAIRoundTrip, PlainChatReturnsTheModelsReplyAndUsage) {
  auto mock = std::make_shared<StreamingMock>();
  mock->queue_reply("Try Aliens (1986).");
  ServerThread server(mock);
  auto client = open_openai_model(config_for(server));

  Completion c = client->chat(kChat, GenerationOptions{});
  EXPECT_EQ(c.text, "Try Aliens (1986).");
  EXPECT_EQ(c.finish_reason, "stop");
  EXPECT_GT(c.usage.prompt_tokens, 0);
  EXPECT_EQ(c.usage.completion_tokens, mock->count_tokens("Try Aliens (1986)."));
  ASSERT_EQ(mock->seen_prompts().size(), 1u);
  ASSERT_EQ(mock->seen_prompts()[0].size(), 2u);
  EXPECT_EQ(mock->seen_prompts()[0][1].content, "I liked Alien.\nWhat next?");
  EXPECT_EQ(mock->seen_prompts()[0][0].role, "system");
  EXPECT_EQ(client->total_usage().completion_tokens, c.usage.completion_tokens);
  // The model name comes from GET /v1/models when none is configured.
  EXPECT_NE(client->name().find("mock-model"), std::string::npos);
}

TEST(OpenAIRoundTrip, GenerationOptionsArePassedThrough) {
  auto mock = std::make_shared<StreamingMock>();
  auto recorded = std::make_shared<Recorded>();
  mock->set_responder([recorded](const std::vector<Message>&, const GenerationOptions& o) {
    std::lock_guard lock(recorded->mutex);
    recorded->options = o;
    return std::string("fine");
  });
  ServerThread server(mock);
  auto client = open_openai_model(config_for(server));

  GenerationOptions o;
  o.max_tokens = 7;
  o.stop = {"\n\n", "END"};
  o.temperature = 0.5f;
  o.top_p = 0.9f;
  o.top_k = 40;
  o.seed = 42;
  EXPECT_EQ(client->chat(kChat, o).text, "fine");
  std::lock_guard lock(recorded->mutex);
  EXPECT_EQ(recorded->options.max_tokens, 7);
  EXPECT_EQ(recorded->options.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_FLOAT_EQ(recorded->options.temperature, 0.5f);
  EXPECT_FLOAT_EQ(recorded->options.top_p, 0.9f);
  EXPECT_EQ(recorded->options.top_k, 40);
  EXPECT_EQ(recorded->options.seed, 42u);
  EXPECT_FALSE(recorded->options.json_object);
  EXPECT_EQ(recorded->options.logprobs, -1);
}

// A plain text prompt is continued as text (the completions API), not wrapped in a chat: the
// model sees the prompt byte for byte, the options arrive, and the legacy logprobs come back.
TEST(OpenAIRoundTrip, TextCompletionContinuesThePromptAsItIs) {
  auto mock = std::make_shared<StreamingMock>();
  auto recorded = std::make_shared<Recorded>();
  mock->set_responder([recorded](const std::vector<Message>&, const GenerationOptions& o) {
    std::lock_guard lock(recorded->mutex);
    recorded->options = o;
    return std::string(" Paris.");
  });
  ServerThread server(mock);
  auto client = open_openai_model(config_for(server));
  GenerationOptions o;
  o.max_tokens = 5;
  o.stop = {"\n"};
  o.seed = 9;
  o.logprobs = 2;
  const std::string prompt = "The capital of France is";
  const Completion c = client->complete(prompt, o);
  EXPECT_EQ(c.text, " Paris.");
  EXPECT_EQ(c.finish_reason, "stop");
  ASSERT_EQ(mock->seen_text_prompts().size(), 1u);
  EXPECT_EQ(mock->seen_text_prompts()[0], prompt);
  EXPECT_TRUE(mock->seen_prompts().empty());  // no chat was asked
  ASSERT_EQ(c.logprobs.size(), c.text.size());
  EXPECT_EQ(c.logprobs[1].token, "P");
  EXPECT_DOUBLE_EQ(c.logprobs[1].logprob, -0.25);
  ASSERT_EQ(c.logprobs[1].top.size(), 2u);
  EXPECT_EQ(c.logprobs[1].top[0].first, "P");
  EXPECT_EQ(c.logprobs[1].top[1].first, "y");
  std::lock_guard lock(recorded->mutex);
  EXPECT_EQ(recorded->options.max_tokens, 5);
  EXPECT_EQ(recorded->options.stop, (std::vector<std::string>{"\n"}));
  EXPECT_EQ(recorded->options.seed, 9u);
  EXPECT_EQ(recorded->options.logprobs, 2);
}

// response_format json_object and logprobs travel to the server and the token logprobs come back
// with their exact bytes (a character split across tokens included), plain and streamed.
TEST(OpenAIRoundTrip, JsonModeAndLogprobsRoundTrip) {
  auto mock = std::make_shared<StreamingMock>();
  auto recorded = std::make_shared<Recorded>();
  mock->set_responder([recorded](const std::vector<Message>&, const GenerationOptions& o) {
    std::lock_guard lock(recorded->mutex);
    recorded->options = o;
    return std::string("{\"film\": \"Zo\u00eb\"}");
  });
  ServerThread server(mock);
  auto client = open_openai_model(config_for(server));
  GenerationOptions o;
  o.json_object = true;
  o.logprobs = 2;
  for (bool streamed : {false, true}) {
    std::vector<TokenLogprob> seen;
    o.on_logprob = [&](const TokenLogprob& t) { seen.push_back(t); };
    o.on_text = nullptr;
    if (streamed) o.on_text = [](std::string_view) { return true; };
    const Completion c = client->chat(kChat, o);
    {
      std::lock_guard lock(recorded->mutex);
      EXPECT_TRUE(recorded->options.json_object);
      EXPECT_EQ(recorded->options.logprobs, 2);
    }
    ASSERT_EQ(c.text, "{\"film\": \"Zo\u00eb\"}");
    ASSERT_EQ(c.logprobs.size(), c.text.size()) << "streamed " << streamed;
    std::string joined;
    for (const TokenLogprob& t : c.logprobs) {
      joined += t.token;
      EXPECT_DOUBLE_EQ(t.logprob, -0.5);
      ASSERT_EQ(t.top.size(), 2u);
      EXPECT_EQ(t.top[0].first, t.token);
      EXPECT_DOUBLE_EQ(t.top[1].second, -1.5);
    }
    EXPECT_EQ(joined, c.text);
    EXPECT_EQ(seen.size(), c.logprobs.size());
  }
}

TEST(OpenAIRoundTrip, StreamedPiecesConcatenateToTheFullText) {
  auto mock = std::make_shared<StreamingMock>();
  const std::string reply = "You might enjoy Blade Runner, Solaris and Moon — all slow sci-fi.";
  mock->queue_reply(reply);
  ServerThread server(mock);
  auto client = open_openai_model(config_for(server));

  std::vector<std::string> pieces;
  GenerationOptions o;
  o.on_text = [&](std::string_view piece) {
    pieces.emplace_back(piece);
    return true;
  };
  Completion c = client->chat(kChat, o);
  EXPECT_EQ(c.text, reply);
  EXPECT_GT(pieces.size(), 5u);
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, reply);
  EXPECT_EQ(c.finish_reason, "stop");
  EXPECT_GT(c.usage.completion_tokens, 0);
}

TEST(OpenAIRoundTrip, StreamingStopsWhenTheCallbackSaysSo) {
  auto mock = std::make_shared<StreamingMock>();
  mock->queue_reply("one two three four five six");
  mock->queue_reply("still serving");
  ServerThread server(mock);
  auto client = open_openai_model(config_for(server));

  GenerationOptions o;
  int calls = 0;
  o.on_text = [&](std::string_view) { return ++calls < 2; };
  Completion c = client->chat(kChat, o);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(c.text, "one two");
  EXPECT_EQ(client->chat(kChat, GenerationOptions{}).text, "still serving");
}

TEST(OpenAIRoundTrip, EmbeddingsMatchTheModel) {
  auto mock = std::make_shared<StreamingMock>();
  ServerThread server(mock);
  auto client = open_openai_model(config_for(server));

  std::vector<std::string> texts = {"red apple", "green apple pie", "blue car", ""};
  auto remote = client->embed(texts);
  auto local = mock->embed(texts);
  ASSERT_EQ(remote.size(), texts.size());
  for (size_t i = 0; i + 1 < texts.size(); ++i) {
    ASSERT_EQ(remote[i].size(), 64u);
    for (size_t j = 0; j < remote[i].size(); ++j) EXPECT_NEAR(remote[i][j], local[i][j], 1e-6);
  }
  EXPECT_EQ(client->embedding_size(), 64);
}

TEST(OpenAIRoundTrip, LikelihoodThroughTheChatrecExtension) {
  auto mock = std::make_shared<StreamingMock>();
  mock->set_scorer([](const std::vector<Message>& m, const std::string& c) {
    return (c == "Yes" ? -0.25 : -3.5) - 0.001 * static_cast<double>(m.size());
  });
  ServerThread server(mock);
  auto client = open_openai_model(config_for(server));

  auto scores = client->loglikelihood(kChat, {"Yes", "No", "Maybe later"});
  ASSERT_EQ(scores.size(), 3u);
  EXPECT_DOUBLE_EQ(scores[0].logprob, -0.252);
  EXPECT_DOUBLE_EQ(scores[1].logprob, -3.502);
  EXPECT_EQ(scores[2].tokens, mock->count_tokens("Maybe later"));
  ASSERT_FALSE(mock->seen_prompts().empty());
  EXPECT_EQ(mock->seen_prompts().back()[1].content, kChat[1].content);
}

TEST(OpenAIRoundTrip, LikelihoodThroughEchoLogprobsWhenTheServerIsNotChatrec) {
  auto mock = std::make_shared<StreamingMock>();
  mock->set_scorer(
      [](const std::vector<Message>&, const std::string& c) { return -0.5 * c.size(); });
  OpenAIServerOptions options;
  options.advertise_chatrec = false;
  ServerThread server(mock, options);
  auto client = open_openai_model(config_for(server));

  auto scores = client->loglikelihood(kChat, {"Yes", "The Thing (1982)"});
  ASSERT_EQ(scores.size(), 2u);
  // The per-piece scores telescope back to the model's score of the whole continuation.
  EXPECT_NEAR(scores[0].logprob, -1.5, 1e-9);
  EXPECT_EQ(scores[0].tokens, 1);
  EXPECT_NEAR(scores[1].logprob, -8.0, 1e-9);
  EXPECT_EQ(scores[1].tokens, 3);
  // The server recovered the chat from the plain rendering.
  ASSERT_FALSE(mock->seen_prompts().empty());
  const auto& seen = mock->seen_prompts().back();
  ASSERT_EQ(seen.size(), kChat.size());
  EXPECT_EQ(seen[0].content, kChat[0].content);
  EXPECT_EQ(seen[1].content, kChat[1].content);
}

TEST(OpenAIRoundTrip, ConstrainedChoiceIsTheMostLikelyOne) {
  auto mock = std::make_shared<StreamingMock>();
  mock->set_scorer(
      [](const std::vector<Message>&, const std::string& c) { return c == "Dune" ? -1.0 : -2.0; });
  ServerThread server(mock);
  auto client = open_openai_model(config_for(server));

  GenerationOptions o;
  o.choices = {"Alien", "Dune", "Heat"};
  std::string streamed;
  o.on_text = [&](std::string_view s) {
    streamed += s;
    return true;
  };
  Completion c = client->chat(kChat, o);
  EXPECT_EQ(c.text, "Dune");
  EXPECT_EQ(c.finish_reason, "choice");
  EXPECT_EQ(streamed, "Dune");
}

TEST(OpenAIRoundTrip, ModelFailuresBecomeHttpErrors) {
  auto mock = std::make_shared<StreamingMock>();  // no queued reply: the mock throws kBadResponse
  ServerThread server(mock);
  auto client = open_openai_model(config_for(server));
  try {
    client->chat(kChat, GenerationOptions{});
    FAIL() << "expected an error";
  } catch (const LlmError& e) {
    EXPECT_EQ(e.kind(), LlmError::Kind::kHttp);
    EXPECT_NE(std::string(e.what()).find("HTTP 500"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no queued reply"), std::string::npos) << e.what();
  }
}

TEST(PlainPrompt, RoundTripsMessagesAndContinuation) {
  std::vector<Message> messages = {{"system", "Be brief."},
                                   {"user", "Line one\n\nUser: not a header"},
                                   {"assistant", "Earlier answer"},
                                   {"user", "And now?"}};
  std::string prefix = render_plain_prompt(messages);
  EXPECT_EQ(prefix.substr(0, 17), "System: Be brief.");
  EXPECT_EQ(prefix.substr(prefix.size() - 10), "Assistant:");
  auto parsed = parse_plain_prompt(prefix + " Sure thing");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->continuation, "Sure thing");
  EXPECT_EQ(parsed->prefix_bytes, prefix.size());
  // "\n\nUser: " inside content is ambiguous in the plain format; the parser splits there, which is
  // why chatrec clients prefer the JSON extension.
  ASSERT_EQ(parsed->messages.size(), 5u);
  EXPECT_EQ(parsed->messages[0].content, "Be brief.");
  EXPECT_EQ(parsed->messages[3].content, "Earlier answer");
  EXPECT_EQ(parsed->messages[4].content, "And now?");

  auto simple = parse_plain_prompt(render_plain_prompt(kChat) + " Yes");
  ASSERT_TRUE(simple.has_value());
  ASSERT_EQ(simple->messages.size(), 2u);
  EXPECT_EQ(simple->messages[1].content, kChat[1].content);
  EXPECT_FALSE(parse_plain_prompt("no headers at all").has_value());
  EXPECT_FALSE(parse_plain_prompt("Hello\n\nAssistant: x").has_value());
}

TEST(PlainPrompt, Utf8Helpers) {
  const std::string s = "caf\xc3\xa9 \xe2\x80\x94";  // "café —"
  EXPECT_EQ(utf8_length(s), 6u);
  EXPECT_EQ(utf8_complete_prefix(s), s.size());
  EXPECT_EQ(utf8_complete_prefix(s.substr(0, s.size() - 1)), s.size() - 3);
  EXPECT_EQ(utf8_complete_prefix(s.substr(0, 4)), 3u);
  EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
}

TEST(ClosestChoice, ExactMentionAndEditDistance) {
  std::vector<std::string> choices = {"New York", "New York City", "Boston"};
  EXPECT_EQ(closest_choice("  boston. ", choices), "Boston");
  EXPECT_EQ(closest_choice("I'd say New York City, honestly", choices), "New York City");
  EXPECT_EQ(closest_choice("Probably Boston, not New York", choices), "Boston");
  EXPECT_EQ(closest_choice("Bostn", choices), "Boston");
  EXPECT_EQ(normalize_base_url("localhost:8081"), "http://localhost:8081/v1");
  EXPECT_EQ(normalize_base_url("http://h:1/v1/"), "http://h:1/v1");
  EXPECT_EQ(normalize_base_url("https://api.openai.com/"), "https://api.openai.com/v1");
}

}  // namespace
}  // namespace chatrec::llm::openai
