#pragma once
// A scripted LanguageModel for unit tests of parsing and prompting only. Integration tests use the
// real built-in runtime.
#include <deque>
#include <functional>
#include <mutex>

#include "llm/language_model.h"

namespace chatrec::llm {

class MockModel : public LanguageModel {
 public:
  // Replies to chat(): the responder sees the messages and options; by default, queued replies in
  // order (an empty queue throws LlmError kBadResponse, which lets tests exercise the fallbacks).
  using Responder =
      std::function<std::string(const std::vector<Message>&, const GenerationOptions&)>;
  // Scores continuations for loglikelihood(); by default the negative length in characters.
  using Scorer = std::function<double(const std::vector<Message>&, const std::string&)>;

  MockModel() = default;
  void queue_reply(std::string reply);
  void set_responder(Responder r) { responder_ = std::move(r); }
  void set_scorer(Scorer s) { scorer_ = std::move(s); }
  // Every chat() throws this kind, to test degradation.
  void fail_with(LlmError::Kind kind) {
    fail_ = kind;
    failing_ = true;
  }

  const std::vector<std::vector<Message>>& seen_prompts() const { return prompts_; }
  // The text prompts complete() was given (it answers from the same queue or responder, which
  // then sees one "user" message holding the text).
  const std::vector<std::string>& seen_text_prompts() const { return text_prompts_; }

  std::string name() const override { return "mock"; }
  int context_size() const override { return 8192; }
  int count_tokens(std::string_view text) override;
  Completion chat(const std::vector<Message>& messages, const GenerationOptions& options) override;
  Completion complete(std::string_view prompt, const GenerationOptions& options) override;
  std::vector<Likelihood> loglikelihood(const std::vector<Message>& messages,
                                        const std::vector<std::string>& continuations) override;
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts) override;
  int embedding_size() const override { return 64; }
  Usage total_usage() const override;

 private:
  mutable std::mutex mutex_;
  std::deque<std::string> replies_;
  Responder responder_;
  Scorer scorer_;
  bool failing_ = false;
  LlmError::Kind fail_ = LlmError::Kind::kTimeout;
  std::vector<std::vector<Message>> prompts_;
  std::vector<std::string> text_prompts_;
  Usage usage_;
};

}  // namespace chatrec::llm
