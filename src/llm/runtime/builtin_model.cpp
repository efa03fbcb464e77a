#include "llm/runtime/builtin_model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "llm/runtime/chat_template.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/json_constraint.h"
#include "llm/runtime/lora.h"
#include "llm/runtime/model.h"
#include "llm/runtime/sampler.h"
#include "llm/runtime/tokenizer.h"

namespace chatrec::llm::runtime {
namespace {

// Prompt tokens per forward pass: bounds activation memory, and equals llama.cpp's default
// micro-batch, which decides (with kAttentionTile) which attention path a prompt chunk takes.
constexpr int kBatch = 512;

// Bytes at the end of `s` that start an incomplete UTF-8 sequence (held back while streaming).
std::size_t incomplete_utf8_tail(const std::string& s) {
  for (std::size_t back = 1; back <= std::min<std::size_t>(3, s.size()); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead byte
    const std::size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

class BuiltinModel final : public LanguageModel {
 public:
  BuiltinModel(const std::filesystem::path& path, const BuiltinOptions& options)
      : model_(GgufFile::open(path)),
        tokenizer_(model_.file()),
        template_(ChatTemplate::detect(model_.file(), tokenizer_)) {
    if (!options.lora.empty()) {
      lora_ = LoraAdapter::load(options.lora, model_);
      model_.set_lora(&lora_, options.lora_scale);
    }
    threads_ = options.threads > 0
                   ? options.threads
                   : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int ctx =
        options.context > 0 ? options.context : std::min(model_.config().n_ctx_train, 4096);
    const int prompt_slots = std::max(1, options.cache_slots);
    model_.init_cache(ctx, prompt_slots + 1);
    slots_.resize(static_cast<std::size_t>(prompt_slots + 1));
    name_ = "builtin:" + path.filename().string();
    if (!options.lora.empty()) name_ += "+" + options.lora.filename().string();
    if (tokenizer_.n_vocab() > model_.config().n_vocab) {
      throw LlmError(LlmError::Kind::kModel,
                     path.string() + ": vocabulary larger than the embedding matrix");
    }
  }

  std::string name() const override { return name_; }
  int context_size() const override { return model_.cache_size(); }
  int embedding_size() const override { return model_.config().n_embd; }
  int count_tokens(std::string_view text) override {
    return static_cast<int>(tokenizer_.encode(text, false).size());
  }
  Usage total_usage() const override {
    return Usage{prompt_tokens_.load(), completion_tokens_.load(), cached_tokens_.load()};
  }

  Completion chat(const std::vector<Message>& messages, const GenerationOptions& options) override {
    std::lock_guard lock(mutex_);
    return generate(template_.render(tokenizer_, messages, true), options);
  }

  Completion complete(std::string_view text, const GenerationOptions& options) override {
    std::lock_guard lock(mutex_);
    // Plain text, as a base model was trained on: BOS when the model asks for it, and special
    // tokens in the text stay text (a completions client sends user data, not template markup).
    std::vector<int> prompt;
    if (tokenizer_.add_bos() && tokenizer_.bos() >= 0) prompt.push_back(tokenizer_.bos());
    const std::vector<int> ids = tokenizer_.encode(text, false);
    prompt.insert(prompt.end(), ids.begin(), ids.end());
    if (prompt.empty()) {
      throw LlmError(LlmError::Kind::kModel,
                     "an empty prompt has nothing to continue for a model without a BOS token");
    }
    return generate(prompt, options);
  }

 private:
  Completion generate(const std::vector<int>& prompt, const GenerationOptions& options) {
    check_fits(prompt.size(), "prompt");
    select_slot(prompt);
    std::vector<float> logits = prefill(prompt);
    prompt_tokens_ += static_cast<std::int64_t>(prompt.size());
    Completion result;
    result.usage.prompt_tokens = static_cast<std::int64_t>(prompt.size());
    result.usage.cached_prompt_tokens = last_reused_;
    Sampler sampler(
        SamplingParams{options.temperature, options.top_k, options.top_p, options.seed});
    if (!options.choices.empty()) {
      generate_choice(options, sampler, logits, result);
    } else {
      generate_free(options, sampler, logits, result);
    }
    completion_tokens_ += result.usage.completion_tokens;
    return result;
  }

 public:
  std::vector<Likelihood> loglikelihood(const std::vector<Message>& messages,
                                        const std::vector<std::string>& continuations) override {
    std::lock_guard lock(mutex_);
    const std::vector<int> prompt = template_.render(tokenizer_, messages, true);
    check_fits(prompt.size(), "prompt");
    select_slot(prompt);
    const std::vector<float> prompt_logits = prefill(prompt);
    prompt_tokens_ += static_cast<std::int64_t>(prompt.size());
    const int n_vocab = model_.config().n_vocab;
    const std::size_t P = prompt.size();
    std::vector<std::vector<int>> ids;
    std::vector<Likelihood> out(continuations.size());
    for (std::size_t c = 0; c < continuations.size(); ++c) {
      ids.push_back(tokenizer_.encode(continuations[c], false));
      out[c].tokens = static_cast<int>(ids[c].size());
      if (ids[c].empty()) continue;
      check_fits(P + ids[c].size() - 1, "prompt plus continuation");
      prompt_tokens_ += static_cast<std::int64_t>(ids[c].size());
      out[c].logprob = log_softmax_at(prompt_logits, ids[c][0]);
    }
    // The continuations' remaining tokens run side by side after the prompt, each branch seeing
    // the prompt and itself only, in batches of up to kBatch tokens: one pass instead of one per
    // continuation.
    std::vector<float> logits;
    std::size_t next = 0;
    while (next < ids.size()) {
      std::vector<int> tokens;
      Model::Branches br;
      br.shared = static_cast<int>(P);
      std::vector<std::pair<std::size_t, std::size_t>> owner;  // (continuation, token index)
      for (; next < ids.size(); ++next) {
        const std::size_t rest = ids[next].empty() ? 0 : ids[next].size() - 1;
        if (rest == 0) continue;
        if (!tokens.empty() &&
            (tokens.size() + rest > static_cast<std::size_t>(kBatch) ||
             P + tokens.size() + rest > static_cast<std::size_t>(model_.cache_size())))
          break;
        const int start = static_cast<int>(P + tokens.size());
        for (std::size_t k = 0; k < rest; ++k) {
          tokens.push_back(ids[next][k]);
          br.positions.push_back(static_cast<int>(P + k));
          br.branch_start.push_back(start);
          owner.emplace_back(next, k);
        }
      }
      if (tokens.empty()) break;
      model_.forward_branches(tokens, static_cast<int>(P), br, ForwardOutput::kAllLogits, logits,
                              threads_);
      for (std::size_t b = 0; b < owner.size(); ++b) {
        const auto [c, k] = owner[b];
        out[c].logprob += log_softmax_at(
            std::span<const float>(logits).subspan(b * static_cast<std::size_t>(n_vocab),
                                                   static_cast<std::size_t>(n_vocab)),
            ids[c][k + 1]);
      }
    }
    // Entries after the prompt hold branches, not a sequence: only the prompt stays reusable.
    cached().resize(P);
    return out;
  }

  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts) override {
    std::lock_guard lock(mutex_);
    const int E = model_.config().n_embd;
    std::vector<std::vector<float>> out;
    std::vector<float> hidden;
    use_slot(slots_.size() - 1);  // embeddings never evict a prompt prefix
    for (const std::string& text : texts) {
      std::vector<int> tokens;
      if (tokenizer_.add_bos() && tokenizer_.bos() >= 0) tokens.push_back(tokenizer_.bos());
      const auto ids = tokenizer_.encode(text, false);
      tokens.insert(tokens.end(), ids.begin(), ids.end());
      if (tokens.empty()) tokens.push_back(tokenizer_.eos() >= 0 ? tokenizer_.eos() : 0);
      if (tokens.size() > static_cast<std::size_t>(model_.cache_size()))
        tokens.resize(static_cast<std::size_t>(model_.cache_size()));
      prompt_tokens_ += static_cast<std::int64_t>(tokens.size());
      std::vector<double> sum(static_cast<std::size_t>(E), 0.0);
      cached().clear();
      for (std::size_t s = 0; s < tokens.size(); s += kBatch) {
        const std::size_t e = std::min(tokens.size(), s + kBatch);
        model_.forward(std::span<const int>(tokens).subspan(s, e - s), static_cast<int>(s),
                       ForwardOutput::kHidden, hidden, threads_);
        cached().insert(cached().end(), tokens.begin() + static_cast<std::ptrdiff_t>(s),
                        tokens.begin() + static_cast<std::ptrdiff_t>(e));
        for (std::size_t i = 0; i < hidden.size(); ++i)
          sum[i % static_cast<std::size_t>(E)] += hidden[i];
      }
      std::vector<float> v(static_cast<std::size_t>(E));
      double norm = 0.0;
      for (int i = 0; i < E; ++i) {
        v[static_cast<std::size_t>(i)] = static_cast<float>(sum[static_cast<std::size_t>(i)] /
                                                            static_cast<double>(tokens.size()));
        norm +=
            static_cast<double>(v[static_cast<std::size_t>(i)]) * v[static_cast<std::size_t>(i)];
      }
      const float inv = norm > 0.0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
      for (float& x : v) x *= inv;
      out.push_back(std::move(v));
    }
    return out;
  }

 private:
  void check_fits(std::size_t tokens, const char* what) const {
    if (tokens >= static_cast<std::size_t>(model_.cache_size())) {
      throw LlmError(LlmError::Kind::kContextOverflow,
                     std::string(what) + " has " + std::to_string(tokens) +
                         " tokens; the context holds " + std::to_string(model_.cache_size()));
    }
  }

  void use_slot(std::size_t slot) {
    current_ = slot;
    model_.use_slot(static_cast<int>(slot));
    slots_[slot].last_used = ++clock_;
  }

  // The prompt slot sharing the longest prefix with `prompt`; when no slot shares a substantial
  // part (more than the common system prompt), the least recently used one, so that the other
  // slots' prefixes survive.
  void select_slot(const std::vector<int>& prompt) {
    std::size_t best = 0, best_common = 0, lru = 0;
    for (std::size_t i = 0; i + 1 < slots_.size(); ++i) {
      const auto& t = slots_[i].tokens;
      const auto common = static_cast<std::size_t>(
          std::mismatch(t.begin(), t.end(), prompt.begin(), prompt.end()).first - t.begin());
      if (common > best_common) best = i, best_common = common;
      if (slots_[i].last_used < slots_[lru].last_used) lru = i;
    }
    const std::size_t substantial = std::min<std::size_t>(64, prompt.size() / 2);
    use_slot(best_common >= substantial && best_common > 0 ? best : lru);
  }

  // Brings the KV cache to exactly `tokens` (reusing the longest common prefix with what it holds)
  // and returns the logits after the last token.
  std::vector<float> prefill(const std::vector<int>& tokens) {
    std::size_t common = static_cast<std::size_t>(
        std::mismatch(cached().begin(), cached().end(), tokens.begin(), tokens.end()).first -
        cached().begin());
    if (common >= tokens.size())
      common = tokens.size() - 1;  // the last token must run to produce logits
    cached().resize(common);
    last_reused_ = static_cast<std::int64_t>(common);
    cached_tokens_ += last_reused_;
    std::vector<float> logits;
    for (std::size_t s = common; s < tokens.size(); s += kBatch) {
      const std::size_t e = std::min(tokens.size(), s + kBatch);
      model_.forward(std::span<const int>(tokens).subspan(s, e - s), static_cast<int>(s),
                     e == tokens.size() ? ForwardOutput::kLastLogits : ForwardOutput::kNone, logits,
                     threads_);
      cached().insert(cached().end(), tokens.begin() + static_cast<std::ptrdiff_t>(s),
                      tokens.begin() + static_cast<std::ptrdiff_t>(e));
    }
    return logits;
  }

  void step(int token, std::vector<float>& logits) {
    const int pos = static_cast<int>(cached().size());
    model_.forward(std::span<const int>(&token, 1), pos, ForwardOutput::kLastLogits, logits,
                   threads_);
    cached().push_back(token);
  }

  void generate_free(const GenerationOptions& options, Sampler& sampler, std::vector<float>& logits,
                     Completion& result) {
    std::string text;
    std::size_t emitted = 0;
    std::size_t max_stop = 0;
    for (const auto& s : options.stop) max_stop = std::max(max_stop, s.size());
    result.finish_reason = "length";
    bool done = false;
    auto emit = [&](std::size_t end) {
      if (end > emitted && options.on_text) {
        if (!options.on_text(std::string_view(text).substr(emitted, end - emitted))) done = true;
      }
      emitted = std::max(emitted, end);
    };
    JsonObjectPrefix json;
    std::vector<int> allowed;
    std::vector<std::size_t> token_starts;  // where each logprobs entry's bytes begin in `text`
    for (int i = 0; i < options.max_tokens && !done; ++i) {
      if (cached().size() >= static_cast<std::size_t>(model_.cache_size())) break;
      if (options.json_object) {
        json_continuations(json, allowed);
        if (allowed.empty()) break;
      }
      const int token = sampler.sample(logits, allowed);
      if (tokenizer_.is_eog(token)) {
        result.finish_reason = "stop";
        break;
      }
      ++result.usage.completion_tokens;
      std::string piece = tokenizer_.decode(token);
      if (options.json_object) json.feed(piece);
      if (options.logprobs >= 0) {
        TokenDistribution d = token_distribution(logits, token, std::min(options.logprobs, 20));
        TokenLogprob entry{piece, d.logprob, {}};
        for (const auto& [id, lp] : d.top) entry.top.emplace_back(tokenizer_.decode(id), lp);
        if (options.on_logprob) options.on_logprob(entry);
        token_starts.push_back(text.size());
        result.logprobs.push_back(std::move(entry));
      }
      text += piece;
      // Earliest stop sequence in the newly reachable part of the text.
      std::size_t stop_at = std::string::npos;
      const std::size_t from = emitted > max_stop ? emitted - max_stop : 0;
      for (const auto& s : options.stop) {
        if (s.empty()) continue;
        stop_at = std::min(stop_at, text.find(s, from));
      }
      if (stop_at != std::string::npos) {
        text.resize(stop_at);
        while (!token_starts.empty() && token_starts.back() >= stop_at) {
          token_starts.pop_back();
          result.logprobs.pop_back();
        }
        result.finish_reason = "stop";
        break;
      }
      // Hold back what could still become a stop sequence or is an incomplete UTF-8 character.
      std::size_t hold = incomplete_utf8_tail(text);
      for (const auto& s : options.stop) {
        for (std::size_t k = std::min(s.size() - 1, text.size()); k > hold; --k) {
          if (text.compare(text.size() - k, k, s, 0, k) == 0) {
            hold = k;
            break;
          }
        }
      }
      emit(text.size() - hold);
      if (done) {
        result.finish_reason = "stop";
        break;
      }
      if (i + 1 < options.max_tokens) step(token, logits);
    }
    if (!done) emit(text.size());
    result.text = std::move(text);
  }

  // The tokens that keep the reply a prefix of one JSON object; once it is complete, only the
  // end-of-generation tokens.
  void json_continuations(const JsonObjectPrefix& json, std::vector<int>& allowed) {
    allowed.clear();
    const int n_vocab = tokenizer_.n_vocab();
    if (token_pieces_.empty()) {
      token_pieces_.reserve(static_cast<std::size_t>(n_vocab));
      for (int t = 0; t < n_vocab; ++t) token_pieces_.push_back(tokenizer_.decode(t));
    }
    for (int t = 0; t < n_vocab; ++t) {
      if (tokenizer_.is_eog(t)) {
        if (json.complete()) allowed.push_back(t);
        continue;
      }
      const std::string& piece = token_pieces_[static_cast<std::size_t>(t)];
      if (json.complete() || piece.empty()) continue;
      JsonObjectPrefix next = json;
      if (next.feed(piece)) allowed.push_back(t);
    }
  }

  void generate_choice(const GenerationOptions& options, Sampler& sampler,
                       std::vector<float>& logits, Completion& result) {
    std::vector<std::vector<int>> sequences;
    for (const auto& c : options.choices) sequences.push_back(tokenizer_.encode(c, false));
    const ChoiceTrie trie(sequences);
    std::vector<int> eog;
    for (int t = 0; t < tokenizer_.n_vocab(); ++t) {
      if (tokenizer_.is_eog(t)) eog.push_back(t);
    }
    int node = ChoiceTrie::kRoot;
    while (true) {
      std::vector<int> allowed = trie.allowed(node);
      if (trie.choice_at(node) >= 0) allowed.insert(allowed.end(), eog.begin(), eog.end());
      if (allowed.empty() || cached().size() >= static_cast<std::size_t>(model_.cache_size()))
        break;
      const int token = sampler.sample(logits, allowed);
      if (tokenizer_.is_eog(token) && trie.next(node, token) < 0) break;
      node = trie.next(node, token);
      ++result.usage.completion_tokens;
      if (trie.is_leaf(node)) break;
      step(token, logits);
    }
    int choice = trie.choice_at(node);
    if (choice < 0) choice = 0;  // only when the context ran out mid-choice
    result.text = options.choices[static_cast<std::size_t>(choice)];
    result.finish_reason = "choice";
    if (options.on_text) options.on_text(result.text);
  }

  Model model_;
  LoraAdapter lora_;
  Tokenizer tokenizer_;
  ChatTemplate template_;
  int threads_ = 1;
  std::string name_;
  std::mutex mutex_;
  struct Slot {
    std::vector<int> tokens;  // whose keys/values are in this slot's KV cache, in order
    std::uint64_t last_used = 0;
  };
  std::vector<Slot> slots_;  // the prompt slots, then the embedding slot
  std::size_t current_ = 0;
  std::uint64_t clock_ = 0;
  std::vector<int>& cached() { return slots_[current_].tokens; }
  std::atomic<std::int64_t> prompt_tokens_{0};
  std::atomic<std::int64_t> completion_tokens_{0};
  std::atomic<std::int64_t> cached_tokens_{0};
  std::int64_t last_reused_ = 0;           // prompt tokens the last prefill found cached
  std::vector<std::string> token_pieces_;  // every token's bytes, for constrained decoding
};

}  // namespace

std::unique_ptr<LanguageModel> open_builtin_model(const std::filesystem::path& path,
                                                  const BuiltinOptions& options) {
  try {
    return std::make_unique<BuiltinModel>(path, options);
  } catch (const GgufError& e) {
    throw LlmError(LlmError::Kind::kModel, e.what());
  }
}

namespace {
constexpr KnownModel kKnownModels[] = {
    {"smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf",
     "SmolLM2-135M-Instruct, Q4_1 (HuggingFace, Apache-2.0): the default"},
    {"gemma3-270m", "gemma-3-270m-q4_k_m.gguf",
     "Gemma 3 270M base, Q4_K_M (Google, Gemma Terms of Use): a larger vocabulary for tuning"},
};

std::filesystem::path model_dir() {
  std::filesystem::path dir;
  if (const char* d = std::getenv("CHATREC_MODEL_DIR"); d && *d) {
    dir = d;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    dir = std::filesystem::path(home) / ".cache" / "chatrec" / "models";
  } else {
    dir = "models";
  }
  return dir;
}
}  // namespace

std::filesystem::path default_model_path() {
  if (const char* m = std::getenv("CHATREC_MODEL"); m && *m) return m;
  return model_dir() / kKnownModels[0].file;
}

std::span<const KnownModel> known_models() {
  return kKnownModels;
}

std::filesystem::path resolve_model_path(std::string_view name_or_path) {
  if (name_or_path.empty()) return default_model_path();
  for (const KnownModel& m : kKnownModels)
    if (name_or_path == m.name) return model_dir() / m.file;
  return std::filesystem::path(name_or_path);
}

}  // namespace chatrec::llm::runtime
