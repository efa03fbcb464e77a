#include "llm/runtime/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <limits>
#include <stdexcept>

#include "llm/runtime/gguf.h"

namespace chatrec::llm::runtime {
namespace {

constexpr int kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4,
              kTypeByte = 6;

// Pre-tokenizer patterns, as published in the models' tokenizer.json files. Each pattern splits the
// pieces of the previous one further; text between matches stays a piece of its own.
const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
const char* const kLlama3Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::vector<std::string> patterns_for(const std::string& pre, bool& ignore_merges) {
  ignore_merges = false;
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "dbrx" ||
      pre == "smaug-bpe") {
    ignore_merges = true;
    return {kLlama3Pattern};
  }
  if (pre == "qwen2" || pre == "stablelm2" || pre == "hunyuan" || pre == "deepseek-r1-qwen")
    return {kQwen2Pattern};
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" ||
      pre == "codeshell" || pre == "exaone" || pre == "minerva-7b") {
    return {R"(\p{N})", kGpt2Pattern};
  }
  return {kGpt2Pattern};  // "gpt-2", "default" and unknown pre-tokenizers
}

// GPT-2's reversible map from bytes to printable code points.
struct ByteMap {
  std::array<std::string, 256> byte_to_utf8;
  std::unordered_map<std::uint32_t, unsigned char> cp_to_byte;
  ByteMap() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const std::uint32_t cp =
          printable ? static_cast<std::uint32_t>(b) : static_cast<std::uint32_t>(256 + extra++);
      std::string s;
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      byte_to_utf8[static_cast<std::size_t>(b)] = s;
      cp_to_byte[cp] = static_cast<unsigned char>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when the byte does not start one.
std::size_t utf8_len(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n;
  std::uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    min = 0x10000;
  } else
    return 0;
  if (i + n > s.size()) return 0;
  std::uint32_t cp = c & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

std::uint32_t utf8_decode(std::string_view s, std::size_t i, std::size_t n) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (n == 1) return c;
  std::uint32_t cp = c & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

}  // namespace

struct Tokenizer::Regexes {
  std::vector<pcre2_code*> codes;
  ~Regexes() {
    for (auto* c : codes) pcre2_code_free(c);
  }
  // Splits every piece by pattern k, keeping unmatched stretches as pieces.
  std::vector<std::string_view> split(std::string_view text) const {
    std::vector<std::string_view> pieces{text};
    pcre2_match_data* md = nullptr;
    for (pcre2_code* code : codes) {
      md = pcre2_match_data_create_from_pattern(code, nullptr);
      std::vector<std::string_view> next;
      for (std::string_view p : pieces) {
        std::size_t start = 0, offset = 0;
        while (offset < p.size()) {
          const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), offset,
                                     PCRE2_NO_UTF_CHECK, md, nullptr);
          if (rc < 0) break;
          const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
          if (ov[1] <= ov[0]) {  // empty match: step one code point
            offset = ov[0] + std::max<std::size_t>(1, utf8_len(p, ov[0]));
            continue;
          }
          if (ov[0] > start) next.push_back(p.substr(start, ov[0] - start));
          next.push_back(p.substr(ov[0], ov[1] - ov[0]));
          start = offset = ov[1];
        }
        if (start < p.size()) next.push_back(p.substr(start));
      }
      pcre2_match_data_free(md);
      pieces = std::move(next);
    }
    return pieces;
  }
};

Tokenizer::Tokenizer(const GgufFile& f) : regexes_(std::make_unique<Regexes>()) {
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model == "gpt2") {
    kind_ = Kind::kBpe;
  } else if (model == "llama") {
    kind_ = Kind::kSpm;
  } else {
    throw GgufError(f.name() + ": tokenizer.ggml.model: unsupported tokenizer '" + model +
                    "' (gpt2 and llama are)");
  }
  pieces_ = f.get_strings("tokenizer.ggml.tokens");
  if (pieces_.empty()) throw GgufError(f.name() + ": tokenizer.ggml.tokens: empty vocabulary");
  const auto n = pieces_.size();
  if (const auto* s = f.get_numbers("tokenizer.ggml.scores")) {
    if (s->size() != n)
      throw GgufError(f.name() + ": tokenizer.ggml.scores: size differs from tokens");
    scores_.assign(s->begin(), s->end());
  } else {
    scores_.assign(n, 0.0f);
  }
  if (const auto* t = f.get_numbers("tokenizer.ggml.token_type")) {
    if (t->size() != n)
      throw GgufError(f.name() + ": tokenizer.ggml.token_type: size differs from tokens");
    types_.assign(t->begin(), t->end());
  } else {
    types_.assign(n, kTypeNormal);
  }
  for (std::size_t i = 0; i < n; ++i) piece_to_id_.emplace(pieces_[i], static_cast<int>(i));

  auto token_id = [&](const std::string& key, int fallback) {
    const std::int64_t v = f.get_int(key, fallback);
    if (v < -1 || v >= static_cast<std::int64_t>(n))
      throw GgufError(f.name() + ": " + key + ": token id " + std::to_string(v) + " out of range");
    return static_cast<int>(v);
  };
  bos_ = token_id("tokenizer.ggml.bos_token_id", kind_ == Kind::kSpm ? 1 : -1);
  eos_ = token_id("tokenizer.ggml.eos_token_id", kind_ == Kind::kSpm ? 2 : -1);
  unk_ = token_id("tokenizer.ggml.unknown_token_id", kind_ == Kind::kSpm ? 0 : -1);
  add_bos_ = f.get_bool("tokenizer.ggml.add_bos_token", kind_ == Kind::kSpm);
  add_space_prefix_ = f.get_bool("tokenizer.ggml.add_space_prefix", kind_ == Kind::kSpm);
  if (eos_ >= 0) eog_.push_back(eos_);
  const int eot = token_id("tokenizer.ggml.eot_token_id", -1);
  if (eot >= 0) eog_.push_back(eot);
  for (const char* t : {"<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|endoftext|>", "<|end|>",
                        "<|end_of_text|>"}) {
    if (auto id = find(t); id && is_control(*id)) eog_.push_back(*id);
  }

  for (std::size_t i = 0; i < n; ++i) {
    if ((types_[i] == kTypeControl || types_[i] == kTypeUserDefined || types_[i] == kTypeUnknown) &&
        !pieces_[i].empty()) {
      specials_.emplace_back(pieces_[i], static_cast<int>(i));
    }
  }
  std::stable_sort(specials_.begin(), specials_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  if (kind_ == Kind::kBpe) {
    const auto& merges = f.get_strings("tokenizer.ggml.merges");
    merge_rank_.reserve(merges.size());
    for (std::size_t i = 0; i < merges.size(); ++i)
      merge_rank_.emplace(merges[i], static_cast<int>(i));
    pre_ = f.get_string("tokenizer.ggml.pre", "default");
    for (const std::string& p : patterns_for(pre_, ignore_merges_)) {
      int err = 0;
      PCRE2_SIZE err_off = 0;
      pcre2_code* code =
          pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.c_str()), PCRE2_ZERO_TERMINATED,
                        PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
      if (!code) throw std::logic_error("tokenizer: cannot compile pre-tokenizer pattern " + p);
      pcre2_jit_compile(
          code, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter is used if it fails
      regexes_->codes.push_back(code);
    }
  }
}

Tokenizer::~Tokenizer() = default;

std::optional<int> Tokenizer::find(std::string_view piece) const {
  auto it = piece_to_id_.find(std::string(piece));
  if (it == piece_to_id_.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_control(int token) const {
  return token >= 0 && token < n_vocab() && types_[static_cast<std::size_t>(token)] == kTypeControl;
}

bool Tokenizer::is_eog(int token) const {
  return std::find(eog_.begin(), eog_.end(), token) != eog_.end();
}

std::vector<int> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int> out;
  // Split around special tokens (longest match first); control tokens only when parse_special.
  std::size_t start = 0, i = 0;
  bool first_fragment = true;
  auto flush = [&](std::size_t end) {
    if (end > start) {
      if (kind_ == Kind::kBpe) {
        encode_bpe_fragment(text.substr(start, end - start), out);
      } else {
        encode_spm_fragment(text.substr(start, end - start), add_space_prefix_ && first_fragment,
                            out);
      }
    }
    first_fragment = false;
  };
  while (i < text.size()) {
    const std::pair<std::string, int>* hit = nullptr;
    for (const auto& sp : specials_) {
      if (!parse_special && types_[static_cast<std::size_t>(sp.second)] != kTypeUserDefined)
        continue;
      if (text.compare(i, sp.first.size(), sp.first) == 0) {
        hit = &sp;
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    flush(i);
    out.push_back(hit->second);
    i += hit->first.size();
    start = i;
  }
  flush(text.size());
  return out;
}

void Tokenizer::encode_bpe_fragment(std::string_view text, std::vector<int>& out) const {
  // Invalid UTF-8 bytes cannot go through the Unicode regex; each becomes a piece of its own
  // (byte-level BPE still has a token for every byte).
  std::size_t run = 0, i = 0;
  while (i < text.size()) {
    const std::size_t n = utf8_len(text, i);
    if (n == 0) {
      if (i > run) {
        for (std::string_view w : regexes_->split(text.substr(run, i - run)))
          encode_bpe_word(w, out);
      }
      encode_bpe_word(text.substr(i, 1), out);
      run = ++i;
    } else {
      i += n;
    }
  }
  if (text.size() > run) {
    for (std::string_view w : regexes_->split(text.substr(run))) encode_bpe_word(w, out);
  }
}

void Tokenizer::encode_bpe_word(std::string_view word, std::vector<int>& out) const {
  const ByteMap& bm = byte_map();
  std::string mapped;
  std::vector<std::string> symbols;
  for (char c : word) {
    const std::string& s = bm.byte_to_utf8[static_cast<unsigned char>(c)];
    mapped += s;
    symbols.push_back(s);
  }
  if (ignore_merges_) {
    if (auto id = find(mapped)) {
      out.push_back(*id);
      return;
    }
  }
  // Repeatedly merge the adjacent pair with the lowest merge rank.
  std::string key;
  while (symbols.size() > 1) {
    int best_rank = std::numeric_limits<int>::max();
    std::size_t best = 0;
    for (std::size_t k = 0; k + 1 < symbols.size(); ++k) {
      key.assign(symbols[k]).append(" ").append(symbols[k + 1]);
      auto it = merge_rank_.find(key);
      if (it != merge_rank_.end() && it->second < best_rank) {
        best_rank = it->second;
        best = k;
      }
    }
    if (best_rank == std::numeric_limits<int>::max()) break;
    symbols[best] += symbols[best + 1];
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  for (const std::string& s : symbols) {
    if (auto id = find(s)) {
      out.push_back(*id);
      continue;
    }
    // A symbol missing from the vocabulary: fall back to its code points one by one.
    for (std::size_t k = 0; k < s.size();) {
      const std::size_t n = std::max<std::size_t>(1, utf8_len(s, k));
      if (auto id = find(s.substr(k, n))) {
        out.push_back(*id);
      } else if (unk_ >= 0) {
        out.push_back(unk_);
      }
      k += n;
    }
  }
}

void Tokenizer::byte_fallback(unsigned char byte, std::vector<int>& out) const {
  static const char* hex = "0123456789ABCDEF";
  const std::string name = std::string("<0x") + hex[byte >> 4] + hex[byte & 15] + ">";
  if (auto id = find(name)) {
    out.push_back(*id);
  } else if (unk_ >= 0) {
    out.push_back(unk_);
  }
}

void Tokenizer::encode_spm_fragment(std::string_view text, bool prefix_space,
                                    std::vector<int>& out) const {
  std::string escaped = prefix_space ? "\xE2\x96\x81" : "";
  for (char c : text) {
    if (c == ' ') {
      escaped += "\xE2\x96\x81";
    } else {
      escaped.push_back(c);
    }
  }
  // Symbols are code points (invalid bytes stand alone); merge the adjacent pair whose union is in
  // the vocabulary with the highest score, leftmost on ties.
  std::vector<std::string> symbols;
  for (std::size_t i = 0; i < escaped.size();) {
    const std::size_t n = std::max<std::size_t>(1, utf8_len(escaped, i));
    symbols.push_back(escaped.substr(i, n));
    i += n;
  }
  while (symbols.size() > 1) {
    float best_score = -std::numeric_limits<float>::infinity();
    std::size_t best = symbols.size();
    for (std::size_t k = 0; k + 1 < symbols.size(); ++k) {
      auto id = find(symbols[k] + symbols[k + 1]);
      if (id && scores_[static_cast<std::size_t>(*id)] > best_score) {
        best_score = scores_[static_cast<std::size_t>(*id)];
        best = k;
      }
    }
    if (best == symbols.size()) break;
    symbols[best] += symbols[best + 1];
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  for (const std::string& s : symbols) {
    auto id = find(s);
    if (id && types_[static_cast<std::size_t>(*id)] != kTypeByte) {
      out.push_back(*id);
    } else {
      for (char c : s) byte_fallback(static_cast<unsigned char>(c), out);
    }
  }
}

std::string Tokenizer::decode(int token, bool render_special) const {
  if (token < 0 || token >= n_vocab()) return {};
  const std::string& p = pieces_[static_cast<std::size_t>(token)];
  const int type = types_[static_cast<std::size_t>(token)];
  if (type == kTypeControl || type == kTypeUnknown) return render_special ? p : std::string();
  if (type == kTypeUserDefined) return p;
  if (kind_ == Kind::kSpm) {
    if (type == kTypeByte && p.size() == 6 && p.rfind("<0x", 0) == 0) {
      auto hex = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
      return std::string(1, static_cast<char>((hex(p[3]) << 4) | (hex(p[4]) & 15)));
    }
    std::string out;
    for (std::size_t i = 0; i < p.size();) {
      if (p.compare(i, 3, "\xE2\x96\x81") == 0) {
        out.push_back(' ');
        i += 3;
      } else {
        out.push_back(p[i++]);
      }
    }
    return out;
  }
  // Byte-level BPE: every code point of the piece stands for one byte.
  const ByteMap& bm = byte_map();
  std::string out;
  for (std::size_t i = 0; i < p.size();) {
    const std::size_t n = std::max<std::size_t>(1, utf8_len(p, i));
    auto it = bm.cp_to_byte.find(utf8_decode(p, i, n));
    if (it != bm.cp_to_byte.end()) {
      out.push_back(static_cast<char>(it->second));
    } else {
      out.append(p, i, n);
    }
    i += n;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int>& tokens, bool render_special) const {
  std::string out;
  for (int t : tokens) out += decode(t, render_special);
  return out;
}

}  // namespace chatrec::llm::runtime
