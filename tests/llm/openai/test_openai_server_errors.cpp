// The OpenAI server rejects malformed requests with OpenAI-style JSON errors and survives garbage.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "common/text.h"
#include "llm/mock_model.h"
#include "server_fixture.h"

namespace chatrec::llm::openai {
namespace {

using json = nlohmann::json;
using testing::ServerThread;

std::shared_ptr<MockModel> echoing_mock() {
  auto mock = std::make_shared<MockModel>();
  mock->set_responder([](const std::vector<Message>& m, const GenerationOptions&) {
    return "re: " + m.back().content;
  });
  return mock;
}

struct Reply {
  int status = 0;
  json body;
};

Reply post(httplib::Client& client, const std::string& path, const std::string& body) {
  auto res = client.Post(path.c_str(), body, "application/json");
  if (!res) return {};
  return {res->status, json::parse(res->body, nullptr, false)};
}

void expect_error(const Reply& r, int status, const std::string& mentions) {
  EXPECT_EQ(r.status, status);
  ASSERT_TRUE(r.body.is_object()) << "error body is not JSON";
  ASSERT_TRUE(r.body.contains("error"));
  ASSERT_TRUE(r.body["error"]["message"].is_string());
  ASSERT_TRUE(r.body["error"]["type"].is_string());
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find(mentions), std::string::npos)
      << r.body["error"]["message"];
}

TEST(OpenAIServerErrors, MalformedRequestsGet400WithAReason) {
  ServerThread server(echoing_mock());
  httplib::Client client("127.0.0.1", server.port());
  const std::string chat = "/v1/chat/completions";
  expect_error(post(client, chat, "{not json"), 400, "not valid JSON");
  expect_error(post(client, chat, "[1,2]"), 400, "JSON object");
  expect_error(post(client, chat, "{}"), 400, "'messages'");
  expect_error(post(client, chat, R"({"messages":[]})"), 400, "non-empty");
  expect_error(post(client, chat, R"({"messages":[{"role":"wizard","content":"hi"}]})"), 400,
               "wizard");
  expect_error(post(client, chat, R"({"messages":[{"role":"user","content":7}]})"), 400, "content");
  const std::string ok_messages = R"("messages":[{"role":"user","content":"hi"}])";
  expect_error(post(client, chat, "{" + ok_messages + R"(,"max_tokens":"ten"})"), 400,
               "max_tokens");
  expect_error(post(client, chat, "{" + ok_messages + R"(,"max_tokens":-1})"), 400, "max_tokens");
  expect_error(post(client, chat, "{" + ok_messages + R"(,"max_tokens":18446744073709551615})"),
               400, "max_tokens");
  expect_error(post(client, chat, "{" + ok_messages + R"(,"temperature":5})"), 400, "temperature");
  expect_error(post(client, chat, "{" + ok_messages + R"(,"stop":[1]})"), 400, "stop");
  expect_error(post(client, chat, "{" + ok_messages + R"(,"n":0})"), 400, "'n'");
  expect_error(post(client, chat, "{" + ok_messages + R"(,"n":17})"), 400, "'n'");
  expect_error(post(client, chat, "{" + ok_messages + R"(,"top_logprobs":2})"), 400,
               "requires 'logprobs'");
  expect_error(post(client, chat, "{" + ok_messages + R"(,"logprobs":true,"top_logprobs":21})"),
               400, "top_logprobs");
  expect_error(post(client, chat, "{" + ok_messages + R"(,"response_format":"json"})"), 400,
               "response_format");
  expect_error(
      post(client, chat, "{" + ok_messages + R"(,"response_format":{"type":"json_schema"}})"), 400,
      "json_schema");
  expect_error(post(client, chat, "{" + ok_messages + R"(,"model":7})"), 400, "'model'");
  expect_error(post(client, chat, "{" + ok_messages + R"(,"stream":"yes"})"), 400, "stream");
  expect_error(post(client, "/v1/completions", R"({"prompt":5})"), 400, "prompt");
  expect_error(post(client, "/v1/completions",
                    R"({"prompt":"Hi there","echo":true,"max_tokens":0,"logprobs":1})"),
               400, "cannot score");
  expect_error(
      post(client, "/v1/completions", R"({"chatrec_messages":[{"role":"user","content":"x"}]})"),
      400, "chatrec_continuations");
  expect_error(post(client, "/v1/embeddings", R"({"input":[1,2,3]})"), 400, "token-array");
  expect_error(post(client, "/v1/embeddings", R"({"input":[]})"), 400, "empty");
  expect_error(post(client, "/v1/nope", "{}"), 404, "no such endpoint");

  // A valid request with every optional field still works.
  Reply ok = post(
      client, chat,
      "{" + ok_messages +
          R"(,"max_tokens":5,"temperature":0.2,"top_p":0.5,"seed":7,"stop":"x","n":1,"stream":false})");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body["choices"][0]["message"]["content"], "re: hi");
  EXPECT_EQ(ok.body["object"], "chat.completion");
  EXPECT_TRUE(ok.body["choices"][0]["logprobs"].is_null());

  // n replies, each with its own index and seed; json_object reaches the model.
  std::vector<GenerationOptions> seen;
  auto recording = std::make_shared<MockModel>();
  recording->set_responder([&](const std::vector<Message>&, const GenerationOptions& o) {
    seen.push_back(o);
    return std::string("{}");
  });
  ServerThread second(recording);
  httplib::Client client2("127.0.0.1", second.port());
  Reply three = post(client2, chat,
                     "{" + ok_messages +
                         R"(,"n":3,"seed":40,"response_format":{"type":"json_object"},)"
                         R"("logprobs":true,"top_logprobs":2})");
  ASSERT_EQ(three.status, 200) << three.body;
  ASSERT_EQ(three.body["choices"].size(), 3u);
  ASSERT_EQ(seen.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(three.body["choices"][i]["index"], i);
    EXPECT_EQ(seen[static_cast<std::size_t>(i)].seed, 40u + static_cast<unsigned>(i));
    EXPECT_TRUE(seen[static_cast<std::size_t>(i)].json_object);
    EXPECT_EQ(seen[static_cast<std::size_t>(i)].logprobs, 2);
    EXPECT_TRUE(three.body["choices"][i]["logprobs"]["content"].is_array());
  }
}

// Several served models (llm-serve with --lora: base + adapter and the base): /v1/models lists
// both, a request's "model" picks its backend, no name means the first, and an unknown name is a
// 404 model_not_found naming the served ones.
TEST(OpenAIServerErrors, RequestsPickTheirModelAndUnknownNamesAre404) {
  auto tuned = std::make_shared<MockModel>();
  tuned->set_responder(
      [](const std::vector<Message>&, const GenerationOptions&) { return "tuned"; });
  auto base = std::make_shared<MockModel>();
  base->set_responder([](const std::vector<Message>&, const GenerationOptions&) { return "base"; });
  ServerThread server(std::vector<ServedModel>{{"smol+games", tuned}, {"smol", base}});
  httplib::Client client(server.url());
  auto models = client.Get("/v1/models");
  ASSERT_TRUE(models);
  const json list = json::parse(models->body);
  ASSERT_EQ(list["data"].size(), 2u);
  EXPECT_EQ(list["data"][0]["id"], "smol+games");
  EXPECT_EQ(list["data"][1]["id"], "smol");
  auto ask = [&](const std::string& model_field) {
    return post(client, "/v1/chat/completions",
                "{" + model_field + R"("messages": [{"role": "user", "content": "hi"}]})");
  };
  Reply r = ask(R"("model": "smol",)");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["choices"][0]["message"]["content"], "base");
  EXPECT_EQ(r.body["model"], "smol");
  r = ask(R"("model": "smol+games",)");
  EXPECT_EQ(r.body["choices"][0]["message"]["content"], "tuned");
  r = ask("");
  EXPECT_EQ(r.body["choices"][0]["message"]["content"], "tuned");
  r = ask(R"("model": "gpt-4o",)");
  expect_error(r, 404, "smol+games, smol");
  EXPECT_EQ(r.body["error"]["code"], "model_not_found");
  EXPECT_EQ(r.body["error"]["param"], "model");

  // Also when only one model is served: a wrong name is never answered by another model.
  ServerThread single(std::vector<ServedModel>{{"smol", base}});
  httplib::Client client1(single.url());
  r = post(client1, "/v1/chat/completions",
           R"({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})");
  expect_error(r, 404, "served: smol");
  EXPECT_EQ(r.body["error"]["code"], "model_not_found");
}

// encoding_format "base64" (the official clients' default) is little-endian float32 in base64,
// the same vector "float" returns; anything else is a 400 naming the field.
TEST(OpenAIServerErrors, EmbeddingsComeAsFloatsOrBase64) {
  ServerThread server(echoing_mock());
  httplib::Client client(server.url());
  const Reply floats =
      post(client, "/v1/embeddings", R"({"input": ["space opera"], "encoding_format": "float"})");
  const Reply coded =
      post(client, "/v1/embeddings", R"({"input": ["space opera"], "encoding_format": "base64"})");
  ASSERT_EQ(floats.status, 200);
  ASSERT_EQ(coded.status, 200);
  const auto expected = floats.body["data"][0]["embedding"].get<std::vector<float>>();
  ASSERT_FALSE(expected.empty());
  const auto bytes = text::base64_decode(coded.body["data"][0]["embedding"].get<std::string>());
  ASSERT_TRUE(bytes);
  ASSERT_EQ(bytes->size(), expected.size() * sizeof(float));
  std::vector<float> decoded(expected.size());
  std::memcpy(decoded.data(), bytes->data(), bytes->size());
  EXPECT_EQ(decoded, expected);
  expect_error(post(client, "/v1/embeddings", R"({"input": ["x"], "encoding_format": "int8"})"),
               400, "encoding_format");
}

TEST(OpenAIServerErrors, OversizedBodiesGet413) {
  OpenAIServerOptions options;
  options.max_body_bytes = 1024;
  ServerThread server(echoing_mock(), options);
  httplib::Client client("127.0.0.1", server.port());
  std::string big = R"({"messages":[{"role":"user","content":")" + std::string(4096, 'a') + "\"}]}";
  expect_error(post(client, "/v1/chat/completions", big), 413, "too large");
}

TEST(OpenAIServerErrors, ModelErrorsAre5xxJson) {
  auto mock = std::make_shared<MockModel>();
  mock->fail_with(LlmError::Kind::kModel);
  ServerThread server(mock);
  httplib::Client client("127.0.0.1", server.port());
  expect_error(
      post(client, "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}]})"), 500,
      "configured to fail");
}

TEST(OpenAIServerErrors, StreamEndsWithDoneInOpenAIChunkFormat) {
  ServerThread server(echoing_mock());
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Post("/v1/chat/completions",
                         R"({"messages":[{"role":"user","content":"hello"}],"stream":true,
                             "stream_options":{"include_usage":true}})",
                         "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  std::string text;
  std::vector<json> events;
  size_t pos = 0;
  bool done = false;
  while ((pos = res->body.find("data: ", pos)) != std::string::npos) {
    size_t end = res->body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    std::string payload = res->body.substr(pos + 6, end - pos - 6);
    pos = end;
    if (payload == "[DONE]") {
      done = true;
      continue;
    }
    events.push_back(json::parse(payload));
  }
  EXPECT_TRUE(done);
  ASSERT_GE(events.size(), 3u);
  for (const auto& e : events) EXPECT_EQ(e["object"], "chat.completion.chunk");
  EXPECT_EQ(events.front()["choices"][0]["delta"]["role"], "assistant");
  for (const auto& e : events) {
    if (!e["choices"].empty() && e["choices"][0]["delta"].contains("content")) {
      text += e["choices"][0]["delta"]["content"].get<std::string>();
    }
  }
  EXPECT_EQ(text, "re: hello");
  EXPECT_EQ(events[events.size() - 2]["choices"][0]["finish_reason"], "stop");
  EXPECT_GT(events.back()["usage"]["total_tokens"].get<int>(), 0);
}

// Mutations of valid requests and plain noise, sent to real and made-up paths.
TEST(OpenAIServerErrors, SurvivesRandomGarbageAndKeepsServing) {
  ServerThread server(echoing_mock());
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(10, 0);
  std::mt19937 rng(20231129);
  const std::vector<std::string> paths = {"/v1/chat/completions",
                                          "/v1/completions",
                                          "/v1/embeddings",
                                          "/v1/models",
                                          "/v1/chat/completions/x",
                                          "/",
                                          "/v1"};
  const std::vector<std::string> seeds = {
      R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true})",
      R"({"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"p"}]}]})",
      R"({"prompt":"User: a\n\nAssistant: b c","echo":true,"max_tokens":0,"logprobs":1})",
      R"({"chatrec_messages":[{"role":"user","content":"q"}],"chatrec_continuations":["a","b"]})",
      R"({"input":["one","two"],"encoding_format":"float"})",
      R"({"prompt":"hello","max_tokens":4})"};
  const std::string alphabet = "{}[]\":,0123456789.-eE truefalsnul\\u\x01\xff\xc3";
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  int answered = 0;
  for (int i = 0; i < 300; ++i) {
    std::string path = paths[pick(paths.size())];
    if (pick(10) == 0) path.append("/").append(std::to_string(rng()));
    std::string body = seeds[pick(seeds.size())];
    switch (pick(4)) {
      case 0:  // replace a few bytes
        for (size_t k = 0, n = 1 + pick(5); k < n; ++k)
          body[pick(body.size())] = alphabet[pick(alphabet.size())];
        break;
      case 1:  // truncate
        body.resize(pick(body.size()));
        break;
      case 2: {  // pure noise
        body.clear();
        for (size_t k = 0, n = pick(200); k < n; ++k) body.push_back(static_cast<char>(rng()));
        break;
      }
      default: {  // splice a fragment of another request
        const std::string& other = seeds[pick(seeds.size())];
        size_t at = pick(body.size());
        std::string spliced = body.substr(0, at);
        spliced.append(other, pick(other.size()));
        spliced.append(body, at);
        body = std::move(spliced);
        break;
      }
    }
    auto res = pick(8) == 0 ? client.Get(path.c_str())
                            : client.Post(path.c_str(), body, "application/json");
    ASSERT_TRUE(res) << "server stopped answering at iteration " << i;
    ++answered;
    const int status = res->status;
    EXPECT_TRUE(status == 200 || status == 400 || status == 404 || status == 413 || status == 500 ||
                status == 501)
        << status;
    if (status != 200) {
      json error = json::parse(res->body, nullptr, false);
      EXPECT_TRUE(error.is_object() && error.contains("error")) << res->body;
    }
  }
  EXPECT_EQ(answered, 300);
  Reply ok = post(client, "/v1/chat/completions",
                  R"({"messages":[{"role":"user","content":"still there?"}]})");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body["choices"][0]["message"]["content"], "re: still there?");
}

}  // namespace
}  // namespace chatrec::llm::openai
