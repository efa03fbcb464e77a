#pragma once
// The model's vocabulary and tokenizer, built from the GGUF metadata `tokenizer.ggml.*`:
//  - "gpt2": byte-level BPE with merges, after a pre-tokenizer regex chosen by `tokenizer.ggml.pre`
//    (smollm/starcoder, llama3, qwen2, gpt2 patterns; PCRE2 with Unicode properties);
//  - "llama": SentencePiece-style merges by score over "▁"-escaped text, with <0xXX> byte fallback.
// Control and user-defined tokens are matched literally in the text when parse_special is set.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace chatrec::llm::runtime {

class GgufFile;

class Tokenizer {
 public:
  enum class Kind { kBpe, kSpm };
  explicit Tokenizer(const GgufFile& file);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text to token ids, without BOS. With parse_special, control tokens written in the text (e.g.
  // "<|im_start|>") become their ids; otherwise they are tokenized as plain text.
  std::vector<int> encode(std::string_view text, bool parse_special) const;
  // The bytes a token stands for (byte-level decoding; may be a partial UTF-8 sequence). Control
  // tokens give "" unless render_special.
  std::string decode(int token, bool render_special = false) const;
  std::string decode(const std::vector<int>& tokens, bool render_special = false) const;

  Kind kind() const { return kind_; }
  const std::string& pre() const { return pre_; }
  int n_vocab() const { return static_cast<int>(pieces_.size()); }
  const std::string& piece(int token) const { return pieces_.at(static_cast<std::size_t>(token)); }
  std::optional<int> find(std::string_view piece) const;
  int bos() const { return bos_; }
  int eos() const { return eos_; }
  bool add_bos() const { return add_bos_; }
  bool is_control(int token) const;
  // End of generation: EOS, EOT and the turn-end tokens of the chat formats.
  bool is_eog(int token) const;

 private:
  struct Regexes;
  void encode_bpe_word(std::string_view word, std::vector<int>& out) const;
  void encode_bpe_fragment(std::string_view text, std::vector<int>& out) const;
  void encode_spm_fragment(std::string_view text, bool prefix_space, std::vector<int>& out) const;
  void byte_fallback(unsigned char byte, std::vector<int>& out) const;

  Kind kind_;
  std::string pre_;
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<int> types_;
  std::unordered_map<std::string, int> piece_to_id_;
  std::unordered_map<std::string, int> merge_rank_;    // "left right" -> rank
  std::vector<std::pair<std::string, int>> specials_;  // longest first
  std::vector<int> eog_;
  int bos_ = -1;
  int eos_ = -1;
  int unk_ = -1;
  bool add_bos_ = false;
  bool add_space_prefix_ = false;
  bool ignore_merges_ = false;
  std::unique_ptr<Regexes> regexes_;
};

}  // namespace chatrec::llm::runtime
