#ifndef FLEETPLAN_PLANNER_ESTIMATOR_TESTING_GGUF_WRITER_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_TESTING_GGUF_WRITER_H_

// A small GGUF writer for tests (ggml/docs/gguf.md, version 3): typed metadata and tensor infos,
// the header only (readers stop at the tensor data). Tests build the files they read with it.

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace fleetplan::estimator::testing {

// ggml_type numbers (ggml.h).
enum GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kBF16 = 30,
};

class GgufWriter {
 public:
  GgufWriter& Str(const std::string& key, const std::string& value) {
    Key(key, 8);
    String(meta_, value);
    return *this;
  }
  GgufWriter& U32(const std::string& key, uint32_t value) {
    Key(key, 4);
    Put(meta_, value);
    return *this;
  }
  GgufWriter& F32(const std::string& key, float value) {
    Key(key, 6);
    Put(meta_, value);
    return *this;
  }
  GgufWriter& I32Array(const std::string& key, const std::vector<int32_t>& values) {
    Key(key, 9);
    Put(meta_, uint32_t{5});
    Put(meta_, static_cast<uint64_t>(values.size()));
    for (int32_t v : values) Put(meta_, v);
    return *this;
  }
  GgufWriter& BoolArray(const std::string& key, const std::vector<bool>& values) {
    Key(key, 9);
    Put(meta_, uint32_t{7});
    Put(meta_, static_cast<uint64_t>(values.size()));
    for (bool v : values) Put(meta_, static_cast<uint8_t>(v ? 1 : 0));
    return *this;
  }
  GgufWriter& StrArray(const std::string& key, int64_t n) {
    Key(key, 9);
    Put(meta_, uint32_t{8});
    Put(meta_, static_cast<uint64_t>(n));
    for (int64_t i = 0; i < n; ++i) String(meta_, "t" + std::to_string(i));
    return *this;
  }
  GgufWriter& Tensor(const std::string& name, const std::vector<int64_t>& dims, uint32_t type) {
    String(tensors_, name);
    Put(tensors_, static_cast<uint32_t>(dims.size()));
    for (int64_t d : dims) Put(tensors_, static_cast<uint64_t>(d));
    Put(tensors_, type);
    Put(tensors_, uint64_t{0});  // offset into the data (not read)
    ++n_tensors_;
    return *this;
  }
  std::string Build() const {
    std::string out = "GGUF";
    Put(out, uint32_t{3});
    Put(out, n_tensors_);
    Put(out, n_kv_);
    out += meta_;
    out += tensors_;
    out.resize((out.size() + 31) / 32 * 32, '\0');
    return out;
  }

 private:
  template <typename T>
  static void Put(std::string& out, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
  }
  static void String(std::string& out, const std::string& s) {
    Put(out, static_cast<uint64_t>(s.size()));
    out += s;
  }
  void Key(const std::string& key, uint32_t type) {
    String(meta_, key);
    Put(meta_, type);
    ++n_kv_;
  }
  std::string meta_, tensors_;
  uint64_t n_kv_ = 0, n_tensors_ = 0;
};

// A llama-architecture model: `layers` blocks of hidden `embd`, `heads` heads of `head_dim`
// (`kv_heads` for K and V), an FFN of `ff`, a vocabulary of `vocab`; matrices in `type`, norms in
// f32, token_embd in q8_0... tied (no output.weight) when `tied`. With `experts` > 0 the FFN is a
// mixture of experts (ffn_*_exps [embd, ff, experts] and a router).
struct TestModel {
  std::string arch = "llama";
  int64_t layers = 4, embd = 512, heads = 8, kv_heads = 2, head_dim = 64, ff = 1024, vocab = 1024;
  int64_t context = 4096;
  int64_t experts = 0, experts_used = 0;
  int64_t sliding_window = 0;
  uint32_t type = kQ4_K;
  bool tied = false;
};

inline std::string WriteModel(const TestModel& m) {
  GgufWriter w;
  const std::string a = m.arch;
  w.Str("general.architecture", a)
      .U32(a + ".block_count", static_cast<uint32_t>(m.layers))
      .U32(a + ".context_length", static_cast<uint32_t>(m.context))
      .U32(a + ".embedding_length", static_cast<uint32_t>(m.embd))
      .U32(a + ".feed_forward_length", static_cast<uint32_t>(m.ff))
      .U32(a + ".attention.head_count", static_cast<uint32_t>(m.heads))
      .U32(a + ".attention.head_count_kv", static_cast<uint32_t>(m.kv_heads))
      .U32(a + ".attention.key_length", static_cast<uint32_t>(m.head_dim))
      .U32(a + ".attention.value_length", static_cast<uint32_t>(m.head_dim))
      .F32(a + ".rope.freq_base", 10000.0f)
      .StrArray("tokenizer.ggml.tokens", 8);
  if (m.experts > 0) {
    w.U32(a + ".expert_count", static_cast<uint32_t>(m.experts))
        .U32(a + ".expert_used_count", static_cast<uint32_t>(m.experts_used))
        .U32(a + ".expert_feed_forward_length", static_cast<uint32_t>(m.ff));
  }
  if (m.sliding_window > 0) {
    w.U32(a + ".attention.sliding_window", static_cast<uint32_t>(m.sliding_window));
  }
  w.Tensor("token_embd.weight", {m.embd, m.vocab}, kQ8_0);
  for (int64_t i = 0; i < m.layers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    w.Tensor(b + "attn_norm.weight", {m.embd}, kF32)
        .Tensor(b + "attn_q.weight", {m.embd, m.heads * m.head_dim}, m.type)
        .Tensor(b + "attn_k.weight", {m.embd, m.kv_heads * m.head_dim}, m.type)
        .Tensor(b + "attn_v.weight", {m.embd, m.kv_heads * m.head_dim}, kQ6_K)
        .Tensor(b + "attn_output.weight", {m.heads * m.head_dim, m.embd}, m.type)
        .Tensor(b + "ffn_norm.weight", {m.embd}, kF32);
    if (m.experts > 0) {
      w.Tensor(b + "ffn_gate_inp.weight", {m.embd, m.experts}, kF32)
          .Tensor(b + "ffn_gate_exps.weight", {m.embd, m.ff, m.experts}, m.type)
          .Tensor(b + "ffn_up_exps.weight", {m.embd, m.ff, m.experts}, m.type)
          .Tensor(b + "ffn_down_exps.weight", {m.ff, m.embd, m.experts}, kQ6_K);
    } else {
      w.Tensor(b + "ffn_gate.weight", {m.embd, m.ff}, m.type)
          .Tensor(b + "ffn_up.weight", {m.embd, m.ff}, m.type)
          .Tensor(b + "ffn_down.weight", {m.ff, m.embd}, kQ6_K);
    }
  }
  w.Tensor("output_norm.weight", {m.embd}, kF32);
  if (!m.tied) w.Tensor("output.weight", {m.embd, m.vocab}, kQ6_K);
  return w.Build();
}

// A small mmproj (general.architecture clip, an MLP projector): a 64-wide vision tower of 4 heads
// at 112 px in 14 px patches, one attention matrix and one projector matrix in f16
// (64 x 64 x 2 + 64 x 512 x 2 bytes of weights).
inline std::string WriteMmproj() {
  GgufWriter w;
  w.Str("general.architecture", "clip")
      .Str("clip.projector_type", "mlp")
      .U32("clip.vision.embedding_length", 64)
      .U32("clip.vision.feed_forward_length", 256)
      .U32("clip.vision.attention.head_count", 4)
      .U32("clip.vision.image_size", 112)
      .U32("clip.vision.patch_size", 14)
      .Tensor("v.blk.0.attn_q.weight", {64, 64}, kF16)
      .Tensor("mm.0.weight", {64, 512}, kF16);
  return w.Build();
}

}  // namespace fleetplan::estimator::testing

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_TESTING_GGUF_WRITER_H_
