// The OpenAI client against misbehaving upstreams: rate limits, outages, bad keys, garbage and
// slowness.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "llm/openai/openai_client.h"
#include "server_fixture.h"

namespace chatrec::llm::openai {
namespace {

using json = nlohmann::json;
using testing::FakeServer;
using Clock = std::chrono::steady_clock;

const std::vector<Message> kChat = {{"user", "Recommend a game."}};

std::string chat_reply(const std::string& text) {
  return json{{"id", "x"},
              {"object", "chat.completion"},
              {"choices", json::array({{{"index", 0},
                                        {"message", {{"role", "assistant"}, {"content", text}}},
                                        {"finish_reason", "stop"}}})},
              {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 3}, {"total_tokens", 14}}}}
      .dump();
}

OpenAIConfig fast_config(const FakeServer& server) {
  OpenAIConfig config;
  config.base_url = server.url();
  config.model = "test-model";
  config.timeout_seconds = 5;
  config.max_retries = 3;
  config.backoff_initial_seconds = 0.01;
  return config;
}

LlmError::Kind kind_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const LlmError& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "expected an LlmError";
  return LlmError::Kind::kModel;
}

TEST(OpenAIClientResilience, RetriesRateLimitHonouringRetryAfter) {
  FakeServer fake;
  std::atomic<int> attempts{0};
  std::string auth;
  fake.server().Post("/v1/chat/completions",
                     [&](const httplib::Request& req, httplib::Response& res) {
                       auth = req.get_header_value("Authorization");
                       if (attempts++ == 0) {
                         res.status = 429;
                         res.set_header("Retry-After", "1");
                         res.set_content(R"({"error":{"message":"slow down","type":"rate_limit"}})",
                                         "application/json");
                         return;
                       }
                       json body = json::parse(req.body);
                       EXPECT_EQ(body["model"], "test-model");
                       res.set_content(chat_reply("Hades"), "application/json");
                     });
  fake.start();
  OpenAIConfig config = fast_config(fake);
  config.api_key = "sk-test";
  auto client = open_openai_model(config);

  auto start = Clock::now();
  Completion c = client->chat(kChat, GenerationOptions{});
  double waited = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(c.text, "Hades");
  EXPECT_EQ(attempts.load(), 2);
  EXPECT_GE(waited, 0.95);  // Retry-After: 1, not the 10 ms backoff
  EXPECT_EQ(auth, "Bearer sk-test");
  EXPECT_EQ(c.usage.prompt_tokens, 11);
  EXPECT_EQ(client->total_usage().completion_tokens, 3);
}

TEST(OpenAIClientResilience, GivesUpAfterMaxRetriesOnServerErrors) {
  FakeServer fake;
  std::atomic<int> attempts{0};
  fake.server().Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++attempts;
    res.status = 503;
    res.set_content(R"({"error":{"message":"overloaded, try later"}})", "application/json");
  });
  fake.start();
  OpenAIConfig config = fast_config(fake);
  config.max_retries = 2;
  auto client = open_openai_model(config);
  std::string message;
  EXPECT_EQ(kind_of([&] { client->chat(kChat, GenerationOptions{}); }, &message),
            LlmError::Kind::kHttp);
  EXPECT_EQ(attempts.load(), 3);
  EXPECT_NE(message.find("503"), std::string::npos) << message;
  EXPECT_NE(message.find("overloaded, try later"), std::string::npos) << message;
}

TEST(OpenAIClientResilience, UnauthorizedIsNotRetriedAndSaysWhy) {
  FakeServer fake;
  std::atomic<int> attempts{0};
  fake.server().Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++attempts;
    res.status = 401;
    res.set_content(
        R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}})",
        "application/json");
  });
  fake.start();
  auto client = open_openai_model(fast_config(fake));
  std::string message;
  EXPECT_EQ(kind_of([&] { client->chat(kChat, GenerationOptions{}); }, &message),
            LlmError::Kind::kHttp);
  EXPECT_EQ(attempts.load(), 1);
  EXPECT_NE(message.find("HTTP 401"), std::string::npos) << message;
  EXPECT_NE(message.find("Incorrect API key provided"), std::string::npos) << message;
}

TEST(OpenAIClientResilience, ContextOverflowIsReportedAsSuch) {
  FakeServer fake;
  fake.server().Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 400;
    res.set_content(R"({"error":{"message":"too long","code":"context_length_exceeded"}})",
                    "application/json");
  });
  fake.start();
  auto client = open_openai_model(fast_config(fake));
  EXPECT_EQ(kind_of([&] { client->chat(kChat, GenerationOptions{}); }),
            LlmError::Kind::kContextOverflow);
}

TEST(OpenAIClientResilience, MalformedJsonIsABadResponse) {
  FakeServer fake;
  fake.server().Post("/v1/chat/completions", [&](const httplib::Request& req,
                                                 httplib::Response& res) {
    if (req.body.find("\"stream\":true") != std::string::npos) {
      res.set_content("data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: {broken\n\n",
                      "text/event-stream");
    } else {
      res.set_content("{\"choices\": [", "application/json");
    }
  });
  fake.server().Post("/v1/embeddings", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"data":[{"embedding":[1,"x"]}]})", "application/json");
  });
  fake.start();
  auto client = open_openai_model(fast_config(fake));
  EXPECT_EQ(kind_of([&] { client->chat(kChat, GenerationOptions{}); }),
            LlmError::Kind::kBadResponse);
  GenerationOptions streamed;
  streamed.on_text = [](std::string_view) { return true; };
  EXPECT_EQ(kind_of([&] { client->chat(kChat, streamed); }), LlmError::Kind::kBadResponse);
  EXPECT_EQ(kind_of([&] { client->embed({"a"}); }), LlmError::Kind::kBadResponse);
}

TEST(OpenAIClientResilience, SlowServerTimesOut) {
  FakeServer fake;
  std::atomic<int> attempts{0};
  fake.server().Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++attempts;
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    res.set_content(chat_reply("too late"), "application/json");
  });
  fake.start();
  OpenAIConfig config = fast_config(fake);
  config.timeout_seconds = 0.2;
  auto client = open_openai_model(config);
  auto start = Clock::now();
  EXPECT_EQ(kind_of([&] { client->chat(kChat, GenerationOptions{}); }), LlmError::Kind::kTimeout);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 1.0);
  EXPECT_EQ(attempts.load(), 1);
}

TEST(OpenAIClientResilience, UnreachableServerIsATransportError) {
  // A port that was free a moment ago: bound without listen(), then closed.
  int port = 0;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
    ::close(fd);
  }
  OpenAIConfig config;
  config.base_url = "http://127.0.0.1:" + std::to_string(port);
  config.model = "m";
  config.timeout_seconds = 5;
  config.max_retries = 1;
  config.backoff_initial_seconds = 0.01;
  auto client = open_openai_model(config);
  EXPECT_EQ(kind_of([&] { client->chat(kChat, GenerationOptions{}); }), LlmError::Kind::kTransport);
}

TEST(OpenAIClientResilience, EchoLogprobsSumOnlyTheContinuation) {
  FakeServer fake;
  fake.server().Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body);
    EXPECT_EQ(body["echo"], true);
    EXPECT_EQ(body["max_tokens"], 0);
    EXPECT_EQ(body["prompt"], "User: Recommend a game.\n\nAssistant: Yes please");
    // A vLLM-style echo: the prompt's tokens with character offsets, the first without a logprob.
    json tokens = {"User", ":",         " Recommend", " a",   " game",  ".",
                   "\n\n", "Assistant", ":",          " Yes", " please"};
    json logprobs = json::array({nullptr});
    json offsets = json::array();
    size_t offset = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
      offsets.push_back(offset);
      offset += tokens[i].get<std::string>().size();
      if (i > 0) logprobs.push_back(i >= 9 ? -0.5 * static_cast<double>(i - 8) : -7.0);
    }
    json lp = {{"tokens", tokens}, {"token_logprobs", logprobs}, {"text_offset", offsets}};
    res.set_content(
        json{{"choices", json::array({{{"text", body["prompt"]}, {"logprobs", lp}}})}}.dump(),
        "application/json");
  });
  fake.start();
  auto client = open_openai_model(fast_config(fake));
  auto scores = client->loglikelihood(kChat, {"Yes please"});
  ASSERT_EQ(scores.size(), 1u);
  EXPECT_DOUBLE_EQ(scores[0].logprob, -1.5);
  EXPECT_EQ(scores[0].tokens, 2);
}

TEST(OpenAIClientResilience, ChoicesFallBackToGeneratingWhenScoringIsUnsupported) {
  FakeServer fake;
  std::atomic<int> scoring_attempts{0};
  fake.server().Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++scoring_attempts;
    res.status = 404;
    res.set_content(
        R"({"error":{"message":"This is a chat model and not supported in v1/completions"}})",
        "application/json");
  });
  fake.server().Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(chat_reply("I would pick Celeste, it is great."), "application/json");
  });
  fake.start();
  auto client = open_openai_model(fast_config(fake));
  std::string message;
  EXPECT_EQ(kind_of([&] { client->loglikelihood(kChat, {"x"}); }, &message),
            LlmError::Kind::kUnsupported);
  EXPECT_NE(message.find("not supported in v1/completions"), std::string::npos) << message;

  GenerationOptions o;
  o.choices = {"Hades", "Celeste", "Tetris"};
  for (int i = 0; i < 2; ++i) {
    Completion c = client->chat(kChat, o);
    EXPECT_EQ(c.text, "Celeste");
    EXPECT_EQ(c.finish_reason, "choice");
  }
  // Once the server said it cannot score, the client stops asking.
  EXPECT_EQ(scoring_attempts.load(), 2);
}

}  // namespace
}  // namespace chatrec::llm::openai
