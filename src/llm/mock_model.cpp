#include "llm/mock_model.h"

#include <cmath>

#include "common/hash.h"

namespace chatrec::llm {

void MockModel::queue_reply(std::string reply) {
  std::lock_guard lock(mutex_);
  replies_.push_back(std::move(reply));
}

int MockModel::count_tokens(std::string_view text) {
  // Roughly four characters per token, as for English BPE vocabularies.
  return static_cast<int>((text.size() + 3) / 4);
}

Completion MockModel::chat(const std::vector<Message>& messages, const GenerationOptions& options) {
  std::string text;
  {
    std::lock_guard lock(mutex_);
    prompts_.push_back(messages);
    if (failing_) throw LlmError(fail_, "mock model configured to fail");
    if (responder_) {
      text = responder_(messages, options);
    } else {
      if (replies_.empty())
        throw LlmError(LlmError::Kind::kBadResponse, "mock model has no queued reply");
      text = std::move(replies_.front());
      replies_.pop_front();
    }
    for (const auto& m : messages) usage_.prompt_tokens += count_tokens(m.content);
    usage_.completion_tokens += count_tokens(text);
  }
  if (!options.choices.empty()) {
    bool valid = false;
    for (const auto& c : options.choices) valid = valid || c == text;
    if (!valid) text = options.choices.front();
  }
  if (options.on_text) options.on_text(text);
  return Completion{text, options.choices.empty() ? "stop" : "choice", {}};
}

Completion MockModel::complete(std::string_view prompt, const GenerationOptions& options) {
  std::string text;
  {
    std::lock_guard lock(mutex_);
    text_prompts_.emplace_back(prompt);
    if (failing_) throw LlmError(fail_, "mock model configured to fail");
    if (responder_) {
      text = responder_({{"user", std::string(prompt)}}, options);
    } else {
      if (replies_.empty())
        throw LlmError(LlmError::Kind::kBadResponse, "mock model has no queued reply");
      text = std::move(replies_.front());
      replies_.pop_front();
    }
    usage_.prompt_tokens += count_tokens(prompt);
    usage_.completion_tokens += count_tokens(text);
  }
  if (options.on_text) options.on_text(text);
  return Completion{text, "stop", {}};
}

std::vector<Likelihood> MockModel::loglikelihood(const std::vector<Message>& messages,
                                                 const std::vector<std::string>& continuations) {
  std::lock_guard lock(mutex_);
  if (failing_) throw LlmError(fail_, "mock model configured to fail");
  prompts_.push_back(messages);
  std::vector<Likelihood> out;
  for (const auto& c : continuations) {
    double lp = scorer_ ? scorer_(messages, c) : -static_cast<double>(c.size());
    out.push_back({lp, count_tokens(c)});
  }
  return out;
}

std::vector<std::vector<float>> MockModel::embed(const std::vector<std::string>& texts) {
  // Bag of hashed lower-case words: texts that share words are similar, which is enough for unit
  // tests.
  std::vector<std::vector<float>> out;
  for (const auto& t : texts) {
    std::vector<float> v(static_cast<size_t>(embedding_size()), 0.0f);
    std::string word;
    auto flush = [&] {
      if (!word.empty()) v[hash::fnv1a64(word) % v.size()] += 1.0f;
      word.clear();
    };
    for (char ch : t) {
      if (std::isalnum(static_cast<unsigned char>(ch))) {
        word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
      } else {
        flush();
      }
    }
    flush();
    double norm = 0;
    for (float x : v) norm += static_cast<double>(x) * x;
    if (norm > 0) {
      for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
    }
    out.push_back(std::move(v));
  }
  return out;
}

Usage MockModel::total_usage() const {
  std::lock_guard lock(mutex_);
  return usage_;
}

}  // namespace chatrec::llm
