#include "planner/estimator/gguf.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace fleetplan::estimator {
namespace {

std::string Read(const std::string& name) {
  std::ifstream in(std::string(FLEETPLAN_TESTDATA_DIR) + "/gguf/" + name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// tests/data/gguf/tiny-llama-q4_k_m.gguf: a 2-layer llama (hidden 256, 4 heads, 2 KV heads, vocab
// 512) with q4_K, q8_0, q6_K, f32 and f16 tensors, written to ggml/docs/gguf.md (version 3).
TEST(Gguf, TensorBytesFromGgmlTypes) {
  auto f = ParseGgufHeader(Read("tiny-llama-q4_k_m.gguf"));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->version, 3);
  EXPECT_EQ(f->metadata.at("general.architecture"), "llama");
  EXPECT_EQ(f->metadata.at("tokenizer.ggml.tokens"), "[4 items]");
  ASSERT_EQ(f->tensors.size(), 21u);
  // q4_K: 256-element blocks of 144 bytes; q8_0 32/34; q6_K 256/210; f16 1/2; f32 1/4.
  EXPECT_EQ(f->tensors[0].bytes, 256 * 512 / 256 * 144);
  EXPECT_EQ(f->bytes_by_type.at("q8_0"), 2 * (256 * 256 + 256 * 128) / 32 * 34);
  EXPECT_EQ(f->bytes_by_type.at("q6_K"), 2 * (256 * 128 + 512 * 256) / 256 * 210);
  EXPECT_EQ(f->weights_bytes, 1187328);
  EXPECT_EQ(f->parameters, 1443072);
  EXPECT_EQ(f->header_bytes % 32, 0);
  auto kv = GgufKvCache(*f, "f16");
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->layers, 2);
  EXPECT_EQ(kv->context_length, 4096);
  EXPECT_EQ(kv->bytes_per_token, 2 * 2 * 64 * 2 * 2)
      << "layers x (K+V) x kv heads x head dim x 2 B";
  EXPECT_EQ(GgufKvCache(*f, "q8_0")->bytes_per_token, 2 * 2 * (128 / 32 * 34));
  EXPECT_FALSE(GgufKvCache(*f, "q3_K").ok());
}

TEST(Gguf, PerLayerKvHeads) {
  auto f = ParseGgufHeader(Read("hybrid-per-layer-kv.gguf"));
  ASSERT_TRUE(f.ok()) << f.status();
  auto kv = GgufKvCache(*f, "f16");
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->bytes_per_token, (2 + 0 + 1) * 64 * 2 * 2) << "a layer with 0 KV heads holds none";
  EXPECT_EQ(kv->sliding_window, 1024);
}

TEST(Gguf, MalformedHeadersAreErrorsNeverCrashes) {
  const std::string good = Read("tiny-llama-q4_k_m.gguf");
  EXPECT_EQ(ParseGgufHeader("GGU").status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ParseGgufHeader("GGML").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ParseGgufHeader("NOPE\x03\0\0\0").status().message().find("magic"), std::string::npos);
  std::string v9 = good;
  v9[4] = 9;
  EXPECT_NE(ParseGgufHeader(v9).status().message().find("version 9"), std::string::npos);
  // Every truncation of the header is OUT_OF_RANGE (read more), never a crash.
  auto full = ParseGgufHeader(good);
  ASSERT_TRUE(full.ok());
  for (int64_t n = 0; n < full->header_bytes - 32; n += 7) {
    auto cut = ParseGgufHeader(absl::string_view(good).substr(0, static_cast<size_t>(n)));
    EXPECT_EQ(cut.status().code(), absl::StatusCode::kOutOfRange) << n;
  }
  // A huge tensor count or string length is refused before anything is allocated.
  std::string many = good;
  for (size_t i = 8; i < 16; ++i) many[i] = '\xff';
  EXPECT_EQ(ParseGgufHeader(many).status().code(), absl::StatusCode::kInvalidArgument);
  std::string long_key = good;
  for (size_t i = 24; i < 32; ++i) long_key[i] = '\x7f';
  EXPECT_FALSE(ParseGgufHeader(long_key).ok());
  // An unknown ggml type names the tensor.
  std::string bad_type = good;
  const size_t at = bad_type.find("output.weight");
  ASSERT_NE(at, std::string::npos);
  // name, n_dims (4), 2 dims (16), then the type.
  bad_type[at + 13 + 4 + 16] = 77;
  auto t = ParseGgufHeader(bad_type);
  EXPECT_NE(t.status().message().find("output.weight: ggml type 77"), std::string::npos)
      << t.status();
}

}  // namespace
}  // namespace fleetplan::estimator
