// The built-in SmolLM2 runtime served over the OpenAI API and used through the OpenAI client.
#include <gtest/gtest.h>

#include "llm/openai/openai_client.h"
#include "llm/runtime/builtin_model.h"
#include "server_fixture.h"
#include "testing/test_env.h"

namespace chatrec::llm::openai {
namespace {

TEST(OpenAIIntegration, ChatRoundTripWithTheBuiltinModel) {
  auto path = chatrec::testing::real_model_path();
  if (!path) GTEST_SKIP() << "model file not found; run scripts/fetch-model.sh";
  std::shared_ptr<LanguageModel> model =
      runtime::open_builtin_model(path->string(), runtime::BuiltinOptions{});
  testing::ServerThread server(model);
  OpenAIConfig config;
  config.base_url = server.url();
  config.timeout_seconds = 300;
  config.max_retries = 0;
  auto client = open_openai_model(config);

  const std::vector<Message> chat = {{"user", "Name one famous science fiction movie."}};
  GenerationOptions options;
  options.max_tokens = 24;
  Completion direct = model->chat(chat, options);
  Completion remote = client->chat(chat, options);
  // Greedy decoding: the HTTP round trip must not change the answer.
  EXPECT_FALSE(remote.text.empty());
  EXPECT_EQ(remote.text, direct.text);

  std::string streamed;
  options.on_text = [&](std::string_view piece) {
    streamed += piece;
    return true;
  };
  Completion stream = client->chat(chat, options);
  EXPECT_EQ(streamed, direct.text);
  EXPECT_EQ(stream.text, direct.text);

  auto remote_scores = client->loglikelihood(chat, {"Star Wars", "a banana"});
  auto direct_scores = model->loglikelihood(chat, {"Star Wars", "a banana"});
  ASSERT_EQ(remote_scores.size(), 2u);
  EXPECT_NEAR(remote_scores[0].logprob, direct_scores[0].logprob, 1e-6);
  EXPECT_EQ(remote_scores[1].tokens, direct_scores[1].tokens);
}

}  // namespace
}  // namespace chatrec::llm::openai
