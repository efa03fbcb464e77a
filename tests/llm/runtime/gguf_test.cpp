#include "llm/runtime/gguf.h"
#include "llm/runtime/model.h"
#include "llm/runtime/tokenizer.h"

#include <gtest/gtest.h>

#include <random>

#include "gguf_writer.h"
#include "testing/test_env.h"

namespace chatrec::llm::runtime {
namespace {

using testing::GgufWriter;

std::vector<std::uint8_t> small_file(std::uint32_t version = 3, std::uint32_t alignment = 32) {
  GgufWriter w(version, alignment);
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 2);
  w.add_i32("some.int", -5);
  w.add_u64("some.u64", 1ull << 40);
  w.add_f32("some.f32", 0.25f);
  w.add_f64("some.f64", -1.5);
  w.add_bool("some.bool", true);
  w.add_u8("some.u8", 200);
  w.add_i16("some.i16", -300);
  w.add_strings("some.strings", {"a", "", "日本"});
  w.add_f32s("some.floats", {1.0f, -2.5f});
  w.add_i32s("some.ints", {3, -4, 5});
  std::vector<float> v(64);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.1f - 3.0f;
  w.add_tensor("a.weight", GgmlType::F32, {32, 2}, v);
  w.add_tensor("b.weight", GgmlType::Q8_0, {64}, v);
  w.add_tensor("c.weight", GgmlType::F16, {8, 4, 2}, v);
  return w.bytes();
}

TEST(Gguf, ParsesEveryMetadataTypeAndTensorInfo) {
  const auto bytes = small_file();
  const GgufFile f = GgufFile::parse(bytes);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 2);
  EXPECT_EQ(f.get_int("some.int"), -5);
  EXPECT_EQ(f.get_int("some.u64"), 1ll << 40);
  EXPECT_DOUBLE_EQ(f.get_float("some.f32", 0), 0.25);
  EXPECT_DOUBLE_EQ(f.get_float("some.f64", 0), -1.5);
  EXPECT_TRUE(f.get_bool("some.bool", false));
  EXPECT_EQ(f.get_int("some.u8"), 200);
  EXPECT_EQ(f.get_int("some.i16"), -300);
  EXPECT_EQ(f.get_strings("some.strings"), (std::vector<std::string>{"a", "", "日本"}));
  EXPECT_EQ(*f.get_numbers("some.floats"), (std::vector<double>{1.0, -2.5}));
  EXPECT_EQ(*f.get_numbers("some.ints"), (std::vector<double>{3, -4, 5}));
  EXPECT_EQ(f.get_int("missing", 42), 42);
  EXPECT_THROW(f.get_int("general.architecture"), GgufError);
  EXPECT_THROW(f.get_string("missing"), GgufError);

  ASSERT_EQ(f.tensors().size(), 3u);
  const GgufTensor* a = f.tensor("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dims, (std::vector<std::int64_t>{32, 2}));
  EXPECT_EQ(a->size, 64u * 4);
  EXPECT_FLOAT_EQ(reinterpret_cast<const float*>(a->data)[5], 0.5f - 3.0f);
  const GgufTensor* b = f.tensor("b.weight");
  EXPECT_EQ(b->type, GgmlType::Q8_0);
  EXPECT_EQ(b->size, 2u * 34);
  EXPECT_EQ(f.tensor("c.weight")->elements(), 64);
  for (const auto& t : f.tensors()) EXPECT_EQ((t.data - f.tensor("a.weight")->data) % 32, 0);
}

TEST(Gguf, HonoursCustomAlignmentAndVersion2) {
  const GgufFile f = GgufFile::parse(small_file(2, 64));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ((f.tensor("b.weight")->data - f.tensor("a.weight")->data) % 64, 0);
}

TEST(Gguf, OpensFromDiskWithMmap) {
  chatrec::testing::TempDir dir;
  const auto path = dir.path() / "x.gguf";
  GgufWriter w;
  w.add_string("k", "v");
  w.write(path);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.get_string("k"), "v");
  EXPECT_THROW(GgufFile::open(dir.path() / "missing.gguf"), GgufError);
}

TEST(Gguf, RejectsBadMagicVersionAndEveryTruncation) {
  auto bytes = small_file();
  auto bad = bytes;
  bad[0] = 'X';
  EXPECT_THROW(GgufFile::parse(bad), GgufError);
  bad = bytes;
  bad[4] = 9;
  try {
    GgufFile::parse(bad);
    FAIL();
  } catch (const GgufError& e) {
    EXPECT_NE(std::string(e.what()).find("version"), std::string::npos);
  }
  // Every proper prefix is truncated somewhere: header, metadata, tensor infos or tensor data.
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THROW(GgufFile::parse(std::span(bytes.data(), n)), GgufError)
        << "prefix of " << n << " bytes";
  }
}

TEST(Gguf, ErrorsNameOffsetAndField) {
  GgufWriter w;
  w.add_string("general.name", "x");
  auto bytes = w.bytes();
  bytes.resize(24 + 8 + 12 + 4 +
               8);  // header, key, type, string length: the 1-byte value is missing
  try {
    GgufFile::parse(bytes);
    FAIL();
  } catch (const GgufError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("offset"), std::string::npos) << msg;
    EXPECT_NE(msg.find("general.name"), std::string::npos) << msg;
  }
}

TEST(Gguf, RejectsTensorsOutsideTheFileAndBadShapes) {
  {
    GgufWriter w;
    w.add_raw_tensor("t", 0, {16}, std::vector<std::uint8_t>(16));  // 16 floats need 64 bytes
    EXPECT_THROW(GgufFile::parse(w.bytes()), GgufError);
  }
  {
    GgufWriter w;
    w.add_raw_tensor("t", 8, {33}, std::vector<std::uint8_t>(68));  // not a whole Q8_0 block
    EXPECT_THROW(GgufFile::parse(w.bytes()), GgufError);
  }
  {
    GgufWriter w;
    w.add_raw_tensor("t", 77, {32}, std::vector<std::uint8_t>(128));  // unknown type
    EXPECT_THROW(GgufFile::parse(w.bytes()), GgufError);
  }
  {
    GgufWriter w;
    w.add_raw_tensor("t", 0, {4}, std::vector<std::uint8_t>(16));
    w.add_raw_tensor("t", 0, {4}, std::vector<std::uint8_t>(16));  // duplicate name
    EXPECT_THROW(GgufFile::parse(w.bytes()), GgufError);
  }
  {
    GgufWriter w(3, 24);  // alignment must be a power of two
    w.add_string("k", "v");
    EXPECT_THROW(GgufFile::parse(w.bytes()), GgufError);
  }
}

TEST(Gguf, RejectsHugeCounts) {
  auto bytes = small_file();
  // tensor_count at offset 8, kv count at 16.
  for (std::size_t at : {8u, 16u}) {
    auto bad = bytes;
    for (int i = 0; i < 8; ++i) bad[at + static_cast<std::size_t>(i)] = 0xFF;
    EXPECT_THROW(GgufFile::parse(bad), GgufError);
  }
}

// Random mutations of a valid file must either load or throw GgufError; never crash (run under ASan
// in CI).
TEST(Gguf, RandomMutationsThrowOrLoad) {
  const auto bytes =
      testing::make_tiny_model(testing::TinyModelSpec{.n_layer = 1, .n_embd = 32, .n_ff = 64});
  std::mt19937_64 rng(99);
  int loaded = 0, rejected = 0;
  for (int iter = 0; iter < 400; ++iter) {
    auto m = bytes;
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      // Bias mutations toward the header and metadata, where parsing decisions are made.
      const std::size_t limit = rng() % 4 == 0 ? m.size() : std::min<std::size_t>(m.size(), 20000);
      const std::size_t pos = rng() % limit;
      switch (rng() % 4) {
        case 0:
          m[pos] = static_cast<std::uint8_t>(rng());
          break;
        case 1:
          m[pos] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
          break;
        case 2:
          m[pos] = 0xFF;
          break;
        case 3:
          m.resize(pos);
          break;
      }
      if (m.empty()) break;
    }
    try {
      GgufFile f = GgufFile::parse(m);
      // Touch the first and last byte of every tensor: out-of-range data would trip ASan.
      unsigned sum = 0;
      for (const auto& t : f.tensors()) sum += t.data[0] + t.data[t.size - 1];
      (void)sum;
      ++loaded;
      // Whatever loads must also be safe to build a model and tokenizer from (or be rejected
      // cleanly).
      try {
        Model model(std::move(f));
        Tokenizer tok(model.file());
        (void)tok.encode("hello world", true);
      } catch (const std::exception&) {
      }
    } catch (const GgufError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_EQ(loaded + rejected, 400);
}

}  // namespace
}  // namespace chatrec::llm::runtime
