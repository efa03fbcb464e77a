// The GGUF reader on arbitrary bytes, then the tokenizer built from whatever metadata it accepted.
//
// Properties: a malformed file is a GgufError (anything else escaping is a bug); the in-memory
// parser and the memory-mapped reader agree on every file; an accepted file's tensors lie inside
// it at aligned offsets with the size their type and shape imply, and are found by name; typed
// getters either answer or raise GgufError; a tokenizer built from the metadata only produces ids
// of its vocabulary.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>

#include "fuzz_util.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/tokenizer.h"

namespace {

using namespace chatrec::llm::runtime;

std::optional<GgufFile> try_parse(std::span<const std::uint8_t> bytes, const std::string& name) {
  try {
    return GgufFile::parse(bytes, name);
  } catch (const GgufError&) {
    return std::nullopt;
  }
}

std::optional<GgufFile> try_open(const std::filesystem::path& path) {
  try {
    return GgufFile::open(path);
  } catch (const GgufError&) {
    return std::nullopt;
  }
}

void check_tensors(const GgufFile& f) {
  for (const GgufTensor& t : f.tensors()) {
    FUZZ_CHECK(!t.dims.empty() && t.dims.size() <= 4);
    FUZZ_CHECK(t.elements() > 0);
    FUZZ_CHECK(t.offset % f.alignment() == 0);
    FUZZ_CHECK(t.data != nullptr);
    FUZZ_CHECK(f.tensor(t.name) == &t);
    if (auto traits = type_traits(static_cast<std::uint32_t>(t.type))) {
      FUZZ_CHECK(t.size == static_cast<std::size_t>(t.elements() / traits->block_elems) *
                               traits->block_bytes);
    }
    // Touching the first and last byte makes ASan check the range against the image.
    if (t.size > 0) {
      volatile std::uint8_t sink = t.data[0];
      sink = t.data[t.size - 1];
      (void)sink;
    }
  }
}

void check_getters(const GgufFile& f) {
  for (const auto& entry : f.metadata()) {
    const std::string& key = entry.first;
    const GgufValue& value = entry.second;
    FUZZ_CHECK(f.find(key) == &value);
    FUZZ_CHECK(value.array_size() == 0 || value.type == GgufValueType::kArray);
    auto answers_or_gguf_error = [&](auto&& get) {
      try {
        get();
      } catch (const GgufError&) {
      }
    };
    answers_or_gguf_error([&] { f.get_string(key); });
    answers_or_gguf_error([&] { f.get_int(key); });
    answers_or_gguf_error([&] { f.get_float(key, 0.0); });
    answers_or_gguf_error([&] { f.get_bool(key, false); });
    answers_or_gguf_error([&] { f.get_strings(key); });
    answers_or_gguf_error([&] { f.get_numbers(key); });
  }
}

void check_tokenizer(const GgufFile& f) {
  std::optional<Tokenizer> t;
  try {
    t.emplace(f);
  } catch (const GgufError&) {
    return;
  }
  for (const char* text : {"Hello world, 123 <|im_start|>user\n\xC3\xA9\xFF", ""}) {
    for (bool special : {false, true}) {
      for (int id : t->encode(text, special)) {
        FUZZ_CHECK(id >= 0 && id < t->n_vocab());
        t->decode(id, special);
      }
    }
  }
  for (int id : {t->bos(), t->eos()}) FUZZ_CHECK(id >= -1 && id < t->n_vocab());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::filesystem::path file = chatrec::fuzz::ScratchDir::path() / "input.gguf";
  const std::optional<GgufFile> parsed = try_parse({data, size}, file.string());
  chatrec::fuzz::write_file(file, chatrec::fuzz::text_of(data, size));
  const std::optional<GgufFile> opened = try_open(file);
  FUZZ_CHECK(parsed.has_value() == opened.has_value());
  if (!parsed) return 0;

  FUZZ_CHECK(parsed->version() == opened->version());
  FUZZ_CHECK(parsed->metadata().size() == opened->metadata().size());
  FUZZ_CHECK(parsed->tensors().size() == opened->tensors().size());
  for (std::size_t i = 0; i < parsed->tensors().size(); ++i) {
    const GgufTensor& a = parsed->tensors()[i];
    const GgufTensor& b = opened->tensors()[i];
    FUZZ_CHECK(a.name == b.name && a.type == b.type && a.dims == b.dims && a.offset == b.offset &&
               a.size == b.size);
    FUZZ_CHECK(std::memcmp(a.data, b.data, a.size) == 0);
  }
  check_tensors(*parsed);
  check_getters(*parsed);
  check_tokenizer(*parsed);
  return 0;
}
