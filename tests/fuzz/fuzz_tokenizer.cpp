// The built-in runtime's tokenizers on arbitrary bytes (valid UTF-8 or not): byte-level BPE with
// each pre-tokenizer family (smollm's digit split, qwen2, llama3's merge-free lookup) and a
// SentencePiece vocabulary with byte fallback, all written in memory. The first byte picks the
// tokenizer and whether control tokens are parsed; the rest is the text.
//
// Properties: ids are in the vocabulary; byte-level BPE gives back every input byte for byte
// (decode(encode(s)) == s), with control tokens too when they are parsed and rendered;
// SentencePiece gives back " " + s (its prefix space) unless s contains "▁" itself, which the
// format cannot tell from an escaped space.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "gguf_writer.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/tokenizer.h"

namespace {

using chatrec::llm::runtime::GgufFile;
using chatrec::llm::runtime::Tokenizer;
namespace testing = chatrec::llm::runtime::testing;

GgufFile bpe_file(const std::string& pre) {
  testing::GgufWriter w;
  const auto vocab = testing::tiny_vocab();
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", pre);
  w.add_strings("tokenizer.ggml.tokens", vocab);
  std::vector<std::int32_t> types(vocab.size(), 1);
  types[0] = types[1] = types[2] = 3;  // control: <|endoftext|>, <|im_start|>, <|im_end|>
  w.add_i32s("tokenizer.ggml.token_type", types);
  w.add_strings("tokenizer.ggml.merges", testing::tiny_merges());
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
  return GgufFile::parse(w.bytes(), "bpe-" + pre);
}

GgufFile spm_file() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<std::int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    scores.push_back(0);
    types.push_back(6);
  }
  const std::vector<std::pair<std::string, float>> pieces = {{"\xE2\x96\x81", -1},
                                                             {"h", -2},
                                                             {"e", -2},
                                                             {"l", -2},
                                                             {"o", -2},
                                                             {"he", -3},
                                                             {"ll", -3},
                                                             {"hell", -4},
                                                             {"hello", -5},
                                                             {"\xE2\x96\x81hello", -6},
                                                             {"w", -2},
                                                             {"\xC3\xA9", -2},
                                                             {"\xE2\x96\x81w", -3}};
  for (const auto& [p, s] : pieces) {
    tokens.push_back(p);
    scores.push_back(s);
    types.push_back(1);
  }
  testing::GgufWriter w;
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_strings("tokenizer.ggml.tokens", tokens);
  w.add_f32s("tokenizer.ggml.scores", scores);
  w.add_i32s("tokenizer.ggml.token_type", types);
  return GgufFile::parse(w.bytes(), "spm");
}

struct Tokenizers {
  std::vector<GgufFile> files;
  std::vector<std::unique_ptr<Tokenizer>> all;
  Tokenizers() {
    for (const char* pre : {"smollm", "qwen2", "llama3", "gpt-2"}) files.push_back(bpe_file(pre));
    files.push_back(spm_file());
    for (const GgufFile& f : files) all.push_back(std::make_unique<Tokenizer>(f));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Tokenizers tokenizers;
  if (size == 0) return 0;
  const Tokenizer& t = *tokenizers.all[data[0] % tokenizers.all.size()];
  const bool parse_special = (data[0] / tokenizers.all.size()) % 2 == 1;
  const std::string text(chatrec::fuzz::text_of(data + 1, size - 1));

  const std::vector<int> ids = t.encode(text, parse_special);
  for (int id : ids) FUZZ_CHECK(id >= 0 && id < t.n_vocab());
  if (t.kind() == Tokenizer::Kind::kBpe) {
    FUZZ_CHECK(t.decode(ids, parse_special) == text);
  } else if (!parse_special && text.find("\xE2\x96\x81") == std::string::npos) {
    FUZZ_CHECK(t.decode(ids) == (text.empty() ? text : " " + text));
  }
  // Piece by piece decoding is what streaming does; it must agree with the whole.
  std::string pieces;
  for (int id : ids) pieces += t.decode(id, parse_special);
  FUZZ_CHECK(pieces == t.decode(ids, parse_special));
  return 0;
}
