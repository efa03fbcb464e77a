#pragma once
// Serves any LanguageModel over the OpenAI HTTP API, so that other tools (and chatrec's own OpenAI
// client) can use chatrec's built-in runtime:
//   GET  /v1/models
//   POST /v1/chat/completions   plain JSON, or `"stream": true` server-sent events
//   (chat.completion.chunk) POST /v1/completions        echo + logprobs scoring of a plain-rendered
//   chat (plain_prompt.h), plain
//                               completion of a prompt, and the chatrec scoring extension
//                               {"chatrec_messages": [...], "chatrec_continuations": [...]}
//                               -> {"chatrec_likelihoods": [{"logprob", "tokens"}]}
//   POST /v1/embeddings
//   GET  /health
// Errors are OpenAI-style {"error": {"message", "type", "code"}} with the matching HTTP status;
// handlers validate every field and never let an exception escape.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "llm/language_model.h"

namespace chatrec::llm::openai {

struct OpenAIServerOptions {
  std::size_t max_body_bytes = 8 * 1024 * 1024;  // larger requests get 413
  int threads = 0;                               // 0: httplib's default pool size
  int max_tokens_limit = 4096;                   // larger max_tokens requests are clamped
  std::size_t max_batch = 2048;                  // embedding inputs / continuations per request
  // GET /v1/models says owned_by "chatrec", which tells chatrec clients to use the scoring
  // extension.
  bool advertise_chatrec = true;
};

// One model id of GET /v1/models and the backend that answers requests naming it.
struct ServedModel {
  std::string name;
  std::shared_ptr<LanguageModel> model;
};

class OpenAIServer {
 public:
  OpenAIServer(std::shared_ptr<LanguageModel> model, std::string model_name,
               OpenAIServerOptions options = {});
  // Several models (e.g. a base and base + LoRA adapter); a request's "model" picks one, the first
  // answers requests without a name, and an unknown name is 404 model_not_found.
  OpenAIServer(std::vector<ServedModel> models, OpenAIServerOptions options = {});
  ~OpenAIServer();
  OpenAIServer(const OpenAIServer&) = delete;
  OpenAIServer& operator=(const OpenAIServer&) = delete;

  // Blocks until stop(); throws std::runtime_error when the address cannot be bound.
  void listen(const std::string& host, int port);
  // Binds the given port (throws when it cannot); then listen_after_bind() blocks.
  void bind_to_port(const std::string& host, int port);
  // Binds a free port and returns it (throws when binding fails); then listen_after_bind() blocks.
  int bind_to_any_port(const std::string& host);
  void listen_after_bind();
  // Safe from any thread, also before the listening thread has started accepting.
  void stop();
  bool is_running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chatrec::llm::openai
