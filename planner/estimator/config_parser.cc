#include "planner/estimator/config_parser.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "planner/common/status_macros.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/quantization.h"

namespace fleetplan::estimator {
namespace {

using json = nlohmann::json;

// Sanity limits: far beyond any published model, small enough that every byte count the estimator
// derives (elements x 4 bytes, summed over layers) stays well inside int64.
constexpr int64_t kMaxDim = int64_t{1} << 22;  // hidden / intermediate / vocab sizes
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxHeads = 8192;
constexpr int64_t kMaxExperts = 65536;
constexpr int64_t kMaxPositions = int64_t{1} << 26;
constexpr double kMaxParams = 1e15;  // one quadrillion parameters

// Reads typed fields of one JSON object and names the full path in every error.
class Fields {
 public:
  Fields(const json& obj, std::string prefix) : obj_(obj), prefix_(std::move(prefix)) {}

  std::string Path(absl::string_view key) const { return absl::StrCat(prefix_, key); }

  bool Has(const char* key) const {
    auto it = obj_.find(key);
    return it != obj_.end() && !it->is_null();
  }

  // A required integer in [min, max].
  absl::StatusOr<int64_t> Int(const char* key, int64_t min = 1, int64_t max = kMaxDim) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) {
      return absl::InvalidArgumentError(absl::StrCat(Path(key), " is missing"));
    }
    return Check(key, *it, min, max);
  }

  // An optional integer: `fallback` when missing or null.
  absl::StatusOr<int64_t> IntOr(const char* key, int64_t fallback, int64_t min = 1,
                                int64_t max = kMaxDim) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return fallback;
    return Check(key, *it, min, max);
  }

  absl::StatusOr<bool> BoolOr(const char* key, bool fallback) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Path(key), "=", it->dump(), " must be true or false"));
    }
    return it->get<bool>();
  }

  absl::StatusOr<double> DoubleOr(const char* key, double fallback) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return fallback;
    if (!it->is_number()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Path(key), "=", it->dump(), " must be a number"));
    }
    return it->get<double>();
  }

  std::string StringOr(const char* key, std::string fallback) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || !it->is_string()) return fallback;
    return it->get<std::string>();
  }

  const json* Object(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || !it->is_object()) return nullptr;
    return &*it;
  }
  // An array field that may be absent or null (nullptr); any other type is an error.
  absl::StatusOr<const json*> OptionalArray(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    if (!it->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(Path(key), "=", it->dump(), " must be an array"));
    }
    return &*it;
  }
  // A field that is an array in some configs and a scalar in others: the array or nullptr.
  const json* ArrayIfArray(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || !it->is_array()) return nullptr;
    return &*it;
  }
  const json& raw() const { return obj_; }
  const std::string& prefix() const { return prefix_; }

 private:
  absl::StatusOr<int64_t> Check(const char* key, const json& v, int64_t min, int64_t max) const {
    int64_t value = 0;
    if (v.is_number_integer()) {
      value = v.get<int64_t>();
    } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
               std::fabs(v.get<double>()) < 9e15) {
      value = static_cast<int64_t>(v.get<double>());
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(Path(key), "=", v.dump(), " must be an integer"));
    }
    if (value < min) {
      return absl::InvalidArgumentError(absl::StrCat(Path(key), "=", value, " must be >= ", min));
    }
    if (value > max) {
      return absl::InvalidArgumentError(
          absl::StrCat(Path(key), "=", value, " is absurdly large (limit ", max, ")"));
    }
    return value;
  }

  const json& obj_;
  std::string prefix_;
};

// ---- Tensor builders -------------------------------------------------------------------------

Tensor Linear(const char* name, int64_t in, int64_t out, TpSplit split,
              TensorRole role = TensorRole::kLinear) {
  return Tensor{.name = name, .out = out, .in = in, .role = role, .split = split};
}

Tensor Vec(const char* name, int64_t n, TensorRole role, TpSplit split = TpSplit::kReplicated) {
  return Tensor{.name = name, .out = n, .in = 1, .role = role, .split = split};
}

// Bias of a linear layer split like its weight (column-split biases shard; row-split replicate).
Tensor BiasOf(const Tensor& weight) {
  TpSplit split = weight.split == TpSplit::kRow ? TpSplit::kReplicated : weight.split;
  return Tensor{.name = "bias",
                .out = weight.out,
                .in = 1,
                .copies = weight.copies,
                .role = weight.role == TensorRole::kExpertLinear ? TensorRole::kExpertBias
                                                                 : TensorRole::kBias,
                .split = split,
                .heads = weight.heads};
}

void AddLinear(std::vector<Tensor>& t, Tensor w, bool bias) {
  t.push_back(w);
  if (bias) t.push_back(BiasOf(w));
}

// What varies between the llama-like decoder families.
struct DecoderStyle {
  bool qkv_bias = false;
  bool o_bias = false;
  bool mlp_bias = false;
  bool qk_norm = false;          // per-head RMSNorm on q and k (qwen3, gemma3)
  int norms_per_layer = 2;       // 2 (llama), 4 (gemma2/3 sandwich), 1 (phi parallel block)
  bool layernorm_bias = false;   // LayerNorm with bias (phi, opt)
  bool gated_mlp = true;         // gate/up/down vs fc1/fc2
  bool attention_sinks = false;  // gpt-oss: one learned logit per head
};

void AddAttention(std::vector<Tensor>& t, const AttentionSpec& a, int64_t hidden,
                  const DecoderStyle& style) {
  const int64_t q_out = a.num_heads * a.head_dim;
  const int64_t kv_out = a.num_kv_heads * a.head_dim;
  Tensor q = Linear("q_proj", hidden, q_out, TpSplit::kHeads);
  q.heads = a.num_heads;
  Tensor k = Linear("k_proj", hidden, kv_out, TpSplit::kKvHeads);
  k.heads = a.num_kv_heads;
  Tensor v = Linear("v_proj", hidden, a.num_kv_heads * a.v_head_dim, TpSplit::kKvHeads);
  v.heads = a.num_kv_heads;
  Tensor o = Linear("o_proj", a.num_heads * a.v_head_dim, hidden, TpSplit::kRow);
  AddLinear(t, q, style.qkv_bias);
  AddLinear(t, k, style.qkv_bias);
  AddLinear(t, v, style.qkv_bias);
  AddLinear(t, o, style.o_bias);
  if (style.qk_norm) {
    t.push_back(Vec("q_norm", a.head_dim, TensorRole::kNorm));
    t.push_back(Vec("k_norm", a.head_dim, TensorRole::kNorm));
  }
  if (style.attention_sinks) {
    Tensor sinks = Vec("sinks", a.num_heads, TensorRole::kOther, TpSplit::kHeads);
    sinks.heads = a.num_heads;
    t.push_back(sinks);
  }
}

void AddDenseMlp(std::vector<Tensor>& t, int64_t hidden, int64_t inter, const DecoderStyle& style) {
  if (style.gated_mlp) {
    AddLinear(t, Linear("gate_proj", hidden, inter, TpSplit::kColumn), style.mlp_bias);
    AddLinear(t, Linear("up_proj", hidden, inter, TpSplit::kColumn), style.mlp_bias);
  } else {
    AddLinear(t, Linear("fc1", hidden, inter, TpSplit::kColumn), style.mlp_bias);
  }
  AddLinear(t, Linear("down_proj", inter, hidden, TpSplit::kRow), style.mlp_bias);
}

void AddNorms(std::vector<Tensor>& t, int64_t hidden, const DecoderStyle& style) {
  for (int i = 0; i < style.norms_per_layer; ++i) {
    t.push_back(Vec("norm", hidden, TensorRole::kNorm));
    if (style.layernorm_bias) t.push_back(Vec("norm_bias", hidden, TensorRole::kNorm));
  }
}

// Routed experts: `count` gated experts of H -> I -> H. Expert tensors split by EP (copies) and,
// without EP, by TP inside each expert like a dense MLP.
void AddExperts(std::vector<Tensor>& t, int64_t hidden, int64_t inter, int64_t count, bool bias) {
  Tensor gate =
      Linear("experts.gate_up", hidden, 2 * inter, TpSplit::kColumn, TensorRole::kExpertLinear);
  gate.copies = count;
  Tensor down = Linear("experts.down", inter, hidden, TpSplit::kRow, TensorRole::kExpertLinear);
  down.copies = count;
  AddLinear(t, gate, bias);
  AddLinear(t, down, bias);
}

void AddRouter(std::vector<Tensor>& t, int64_t hidden, int64_t experts, bool bias) {
  t.push_back(Linear("router", hidden, experts, TpSplit::kReplicated, TensorRole::kRouter));
  if (bias) t.push_back(Vec("router.bias", experts, TensorRole::kRouter));
}

// ---- Layer kinds -------------------------------------------------------------------------------

struct TextModel {
  ModelSpec spec;
};

// Interns a layer kind (same attention, MLP and tensors) and returns its index.
int InternKind(ModelSpec& spec, LayerKind kind) {
  for (size_t i = 0; i < spec.layer_kinds.size(); ++i) {
    const LayerKind& k = spec.layer_kinds[i];
    if (k.name == kind.name && k.attention == kind.attention && k.mlp == kind.mlp &&
        k.tensors.size() == kind.tensors.size()) {
      return static_cast<int>(i);
    }
  }
  spec.layer_kinds.push_back(std::move(kind));
  return static_cast<int>(spec.layer_kinds.size() - 1);
}

absl::StatusOr<DType> ParseDType(const Fields& f) {
  const std::string d = f.StringOr("torch_dtype", f.StringOr("dtype", "bfloat16"));
  return ComputeDTypeNames().Parse(f.Path("torch_dtype"), d);
}

// Per-layer sliding windows: from layer_types when present, else the family's pattern.
absl::StatusOr<std::vector<int64_t>> SlidingWindows(const Fields& f, const std::string& type,
                                                    int64_t layers) {
  std::vector<int64_t> windows(static_cast<size_t>(layers), 0);
  ASSIGN_OR_RETURN(int64_t window, f.IntOr("sliding_window", 0, 0, kMaxPositions));
  ASSIGN_OR_RETURN(const json* types, f.OptionalArray("layer_types"));
  if (types != nullptr) {
    if (static_cast<int64_t>(types->size()) < layers) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.Path("layer_types"), " has ", types->size(),
                       " entries, fewer than num_hidden_layers=", layers));
    }
    for (int64_t i = 0; i < layers; ++i) {
      const json& t = (*types)[static_cast<size_t>(i)];
      if (!t.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(f.Path("layer_types"), "[", i, "]=", t.dump(), " must be a string"));
      }
      const std::string s = t.get<std::string>();
      if (s == "sliding_attention") {
        if (window <= 0) {
          return absl::InvalidArgumentError(absl::StrCat(f.Path("sliding_window"),
                                                         " is missing but layer_types[", i,
                                                         "] is sliding_attention"));
        }
        windows[static_cast<size_t>(i)] = window;
      } else if (s != "full_attention" && s != "attention" && s != "chunked_attention") {
        return absl::InvalidArgumentError(absl::StrCat(f.Path("layer_types"), "[", i, "]=\"", s,
                                                       "\" is not a known attention type"));
      }
    }
    return windows;
  }
  if (window <= 0) return windows;
  if (type == "gemma2") {
    for (int64_t i = 0; i < layers; i += 2) windows[static_cast<size_t>(i)] = window;
  } else if (type == "gemma3_text" || type == "gemma3") {
    ASSIGN_OR_RETURN(int64_t pattern, f.IntOr("sliding_window_pattern", 6, 1, kMaxLayers));
    for (int64_t i = 0; i < layers; ++i) {
      if ((i + 1) % pattern != 0) windows[static_cast<size_t>(i)] = window;
    }
  } else if (type == "qwen2" || type == "qwen2_moe" || type == "qwen3" || type == "qwen3_moe") {
    ASSIGN_OR_RETURN(bool use, f.BoolOr("use_sliding_window", false));
    ASSIGN_OR_RETURN(int64_t max_window_layers,
                     f.IntOr("max_window_layers", layers, 0, kMaxLayers));
    if (use) {
      for (int64_t i = max_window_layers; i < layers; ++i) windows[static_cast<size_t>(i)] = window;
    }
  } else if (type == "mistral" || type == "mixtral" || type == "phi3" || type == "generic") {
    std::fill(windows.begin(), windows.end(), window);
  }
  return windows;
}

// The final RMSNorm and, unless tied to the embedding, the lm_head: on the last pipeline stage.
void AddFinalNormAndHead(ModelSpec& spec) {
  spec.last_stage.push_back(Vec("norm", spec.hidden_size, TensorRole::kNorm));
  if (!spec.tie_word_embeddings) {
    spec.last_stage.push_back(
        Linear("lm_head", spec.hidden_size, spec.vocab_size, TpSplit::kVocab, TensorRole::kLmHead));
  }
}

// hidden_size, num_hidden_layers and vocab_size: named alike in every family.
absl::Status ReadCoreDims(const Fields& f, ModelSpec& spec) {
  ASSIGN_OR_RETURN(spec.hidden_size, f.Int("hidden_size"));
  ASSIGN_OR_RETURN(spec.num_layers, f.Int("num_hidden_layers", 1, kMaxLayers));
  ASSIGN_OR_RETURN(spec.vocab_size, f.Int("vocab_size", 1, kMaxVocab));
  return absl::OkStatus();
}

// The common llama-like decoder (llama, mistral, granite, qwen2/3, gemma*, phi3, generic) and the
// MoE variants (mixtral, qwen2_moe, qwen3_moe, gpt_oss).
absl::Status BuildDecoder(const Fields& f, const std::string& type, ModelSpec& spec) {
  RETURN_IF_ERROR(ReadCoreDims(f, spec));
  ASSIGN_OR_RETURN(int64_t heads, f.Int("num_attention_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(int64_t kv_heads, f.IntOr("num_key_value_heads", heads, 1, kMaxHeads));
  ASSIGN_OR_RETURN(spec.max_position_embeddings,
                   f.IntOr("max_position_embeddings", 4096, 1, kMaxPositions));
  if (heads % kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("num_attention_heads"), "=", heads,
                     " is not a multiple of num_key_value_heads=", kv_heads));
  }
  int64_t head_dim = 0;
  if (f.Has("head_dim")) {
    ASSIGN_OR_RETURN(head_dim, f.Int("head_dim", 1, 65536));
  } else {
    if (spec.hidden_size % heads != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.Path("hidden_size"), "=", spec.hidden_size,
          " is not divisible by num_attention_heads=", heads, " and head_dim is not given"));
    }
    head_dim = spec.hidden_size / heads;
  }
  ASSIGN_OR_RETURN(double partial_rotary, f.DoubleOr("partial_rotary_factor", 1.0));
  spec.rotary_dim = static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary);

  DecoderStyle style;
  bool tie_default = false;
  if (type == "qwen2" || type == "qwen2_moe") {
    style.qkv_bias = true;
  } else if (type == "qwen3" || type == "qwen3_moe") {
    style.qk_norm = true;
    ASSIGN_OR_RETURN(style.qkv_bias, f.BoolOr("attention_bias", false));
  } else if (type == "gemma") {
    tie_default = true;
  } else if (type == "gemma2") {
    tie_default = true;
    style.norms_per_layer = 4;
  } else if (type == "gemma3_text" || type == "gemma3") {
    tie_default = true;
    style.norms_per_layer = 4;
    style.qk_norm = true;
  } else if (type == "gpt_oss") {
    style.qkv_bias = style.o_bias = true;
    style.attention_sinks = true;
  } else {
    // llama, mistral, mixtral, granite, phi3, generic: biases as the config says.
    ASSIGN_OR_RETURN(bool attention_bias, f.BoolOr("attention_bias", false));
    style.qkv_bias = style.o_bias = attention_bias;
    ASSIGN_OR_RETURN(style.mlp_bias, f.BoolOr("mlp_bias", false));
  }
  if (type == "gemma" || type == "gemma2" || type == "gemma3_text" || type == "gemma3") {
    ASSIGN_OR_RETURN(spec.final_logit_softcapping, f.DoubleOr("final_logit_softcapping", 0.0));
  }
  ASSIGN_OR_RETURN(spec.tie_word_embeddings, f.BoolOr("tie_word_embeddings", tie_default));

  // MoE geometry.
  int64_t experts = 0, top_k = 0, expert_inter = 0, shared_inter = 0;
  bool shared_gate = false, expert_bias = false, router_bias = false;
  std::vector<bool> sparse(static_cast<size_t>(spec.num_layers), false);
  int64_t dense_inter = 0;
  if (type == "mixtral") {
    ASSIGN_OR_RETURN(experts, f.Int("num_local_experts", 1, kMaxExperts));
    ASSIGN_OR_RETURN(top_k, f.IntOr("num_experts_per_tok", 2, 1, kMaxExperts));
    ASSIGN_OR_RETURN(expert_inter, f.Int("intermediate_size"));
    std::fill(sparse.begin(), sparse.end(), true);
  } else if (type == "gpt_oss") {
    ASSIGN_OR_RETURN(experts, f.Int("num_local_experts", 1, kMaxExperts));
    ASSIGN_OR_RETURN(top_k, f.IntOr("num_experts_per_tok", 4, 1, kMaxExperts));
    ASSIGN_OR_RETURN(expert_inter, f.Int("intermediate_size"));
    expert_bias = router_bias = true;
    std::fill(sparse.begin(), sparse.end(), true);
  } else if (type == "qwen2_moe" || type == "qwen3_moe") {
    ASSIGN_OR_RETURN(experts, f.Int("num_experts", 1, kMaxExperts));
    ASSIGN_OR_RETURN(top_k, f.Int("num_experts_per_tok", 1, kMaxExperts));
    ASSIGN_OR_RETURN(expert_inter, f.Int("moe_intermediate_size"));
    ASSIGN_OR_RETURN(dense_inter, f.IntOr("intermediate_size", expert_inter));
    if (type == "qwen2_moe") {
      ASSIGN_OR_RETURN(shared_inter, f.IntOr("shared_expert_intermediate_size", 0, 0));
      shared_gate = shared_inter > 0;
    }
    ASSIGN_OR_RETURN(int64_t step, f.IntOr("decoder_sparse_step", 1, 1, kMaxLayers));
    std::vector<int64_t> mlp_only;
    ASSIGN_OR_RETURN(const json* only_layers, f.OptionalArray("mlp_only_layers"));
    if (only_layers != nullptr) {
      for (const json& v : *only_layers) {
        if (!v.is_number_integer()) {
          return absl::InvalidArgumentError(
              absl::StrCat(f.Path("mlp_only_layers"), " entry ", v.dump(), " must be an integer"));
        }
        mlp_only.push_back(v.get<int64_t>());
      }
    }
    for (int64_t i = 0; i < spec.num_layers; ++i) {
      const bool only = std::find(mlp_only.begin(), mlp_only.end(), i) != mlp_only.end();
      sparse[static_cast<size_t>(i)] = !only && experts > 0 && (i + 1) % step == 0;
    }
  } else {
    ASSIGN_OR_RETURN(dense_inter, f.Int("intermediate_size"));
  }
  if (top_k > experts) {
    return absl::InvalidArgumentError(absl::StrCat(f.Path("num_experts_per_tok"), "=", top_k,
                                                   " exceeds the number of experts ", experts));
  }

  ASSIGN_OR_RETURN(std::vector<int64_t> windows, SlidingWindows(f, type, spec.num_layers));

  spec.first_stage.push_back(Linear("embed_tokens", spec.hidden_size, spec.vocab_size,
                                    TpSplit::kVocab, TensorRole::kEmbedding));
  spec.layer_kind_of.resize(static_cast<size_t>(spec.num_layers));
  for (int64_t i = 0; i < spec.num_layers; ++i) {
    LayerKind kind;
    kind.attention = AttentionSpec{.num_heads = heads,
                                   .num_kv_heads = kv_heads,
                                   .head_dim = head_dim,
                                   .v_head_dim = head_dim,
                                   .sliding_window = windows[static_cast<size_t>(i)]};
    AddAttention(kind.tensors, kind.attention, spec.hidden_size, style);
    if (sparse[static_cast<size_t>(i)]) {
      kind.name = "moe";
      kind.mlp = MlpSpec{.num_experts = experts,
                         .experts_per_token = top_k,
                         .expert_intermediate_size = expert_inter,
                         .shared_intermediate_size = shared_inter};
      AddRouter(kind.tensors, spec.hidden_size, experts, router_bias);
      AddExperts(kind.tensors, spec.hidden_size, expert_inter, experts, expert_bias);
      if (shared_inter > 0) {
        DecoderStyle plain;
        AddDenseMlp(kind.tensors, spec.hidden_size, shared_inter, plain);
        if (shared_gate) {
          kind.tensors.push_back(Linear("shared_expert_gate", spec.hidden_size, 1,
                                        TpSplit::kReplicated, TensorRole::kRouter));
        }
      }
    } else {
      kind.name = "dense";
      kind.mlp = MlpSpec{.intermediate_size = dense_inter, .gated = style.gated_mlp};
      AddDenseMlp(kind.tensors, spec.hidden_size, dense_inter, style);
    }
    if (kind.attention.sliding_window > 0) absl::StrAppend(&kind.name, "/sliding");
    AddNorms(kind.tensors, spec.hidden_size, style);
    spec.layer_kind_of[static_cast<size_t>(i)] = InternKind(spec, std::move(kind));
  }
  AddFinalNormAndHead(spec);
  return absl::OkStatus();
}

// phi (phi-1/1.5/2): parallel attention+MLP block with one LayerNorm, biases everywhere, partial
// rotary, lm_head with bias.
absl::Status BuildPhi(const Fields& f, ModelSpec& spec) {
  RETURN_IF_ERROR(ReadCoreDims(f, spec));
  ASSIGN_OR_RETURN(int64_t heads, f.Int("num_attention_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(int64_t kv_heads, f.IntOr("num_key_value_heads", heads, 1, kMaxHeads));
  ASSIGN_OR_RETURN(int64_t inter, f.Int("intermediate_size"));
  ASSIGN_OR_RETURN(spec.max_position_embeddings,
                   f.IntOr("max_position_embeddings", 2048, 1, kMaxPositions));
  ASSIGN_OR_RETURN(bool qk_layernorm, f.BoolOr("qk_layernorm", false));
  ASSIGN_OR_RETURN(spec.tie_word_embeddings, f.BoolOr("tie_word_embeddings", false));
  if (spec.hidden_size % heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("hidden_size"), "=", spec.hidden_size,
                     " is not divisible by num_attention_heads=", heads));
  }
  if (heads % kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("num_attention_heads"), "=", heads,
                     " is not a multiple of num_key_value_heads=", kv_heads));
  }
  const int64_t head_dim = spec.hidden_size / heads;
  ASSIGN_OR_RETURN(double partial_rotary, f.DoubleOr("partial_rotary_factor", 0.5));
  spec.rotary_dim = static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary);
  DecoderStyle style{.qkv_bias = true,
                     .o_bias = true,
                     .mlp_bias = true,
                     .norms_per_layer = 1,
                     .layernorm_bias = true,
                     .gated_mlp = false};
  LayerKind kind{.name = "dense",
                 .attention = {.num_heads = heads,
                               .num_kv_heads = kv_heads,
                               .head_dim = head_dim,
                               .v_head_dim = head_dim},
                 .mlp = {.intermediate_size = inter, .gated = false}};
  AddAttention(kind.tensors, kind.attention, spec.hidden_size, style);
  if (qk_layernorm) {
    for (const char* n : {"q_layernorm", "k_layernorm"}) {
      kind.tensors.push_back(Vec(n, head_dim, TensorRole::kNorm));
      kind.tensors.push_back(Vec(n, head_dim, TensorRole::kNorm));
    }
  }
  AddDenseMlp(kind.tensors, spec.hidden_size, inter, style);
  AddNorms(kind.tensors, spec.hidden_size, style);
  spec.layer_kinds.push_back(std::move(kind));
  spec.layer_kind_of.assign(static_cast<size_t>(spec.num_layers), 0);
  spec.first_stage.push_back(Linear("embed_tokens", spec.hidden_size, spec.vocab_size,
                                    TpSplit::kVocab, TensorRole::kEmbedding));
  spec.last_stage.push_back(Vec("final_layernorm", spec.hidden_size, TensorRole::kNorm));
  spec.last_stage.push_back(Vec("final_layernorm.bias", spec.hidden_size, TensorRole::kNorm));
  if (!spec.tie_word_embeddings) {
    Tensor head =
        Linear("lm_head", spec.hidden_size, spec.vocab_size, TpSplit::kVocab, TensorRole::kLmHead);
    spec.last_stage.push_back(head);
    spec.last_stage.push_back(
        Vec("lm_head.bias", spec.vocab_size, TensorRole::kBias, TpSplit::kVocab));
  }
  return absl::OkStatus();
}

// opt: learned positions (offset 2), LayerNorms with bias, biases everywhere, fc1/fc2 MLP,
// optional word_embed_proj_dim projections, tied lm_head.
absl::Status BuildOpt(const Fields& f, ModelSpec& spec) {
  RETURN_IF_ERROR(ReadCoreDims(f, spec));
  ASSIGN_OR_RETURN(int64_t heads, f.Int("num_attention_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(int64_t ffn, f.Int("ffn_dim"));
  ASSIGN_OR_RETURN(spec.max_position_embeddings,
                   f.IntOr("max_position_embeddings", 2048, 1, kMaxPositions));
  ASSIGN_OR_RETURN(int64_t proj_dim, f.IntOr("word_embed_proj_dim", spec.hidden_size));
  ASSIGN_OR_RETURN(bool enable_bias, f.BoolOr("enable_bias", true));
  ASSIGN_OR_RETURN(bool ln_before, f.BoolOr("do_layer_norm_before", true));
  ASSIGN_OR_RETURN(bool remove_final, f.BoolOr("_remove_final_layer_norm", false));
  ASSIGN_OR_RETURN(bool ln_affine, f.BoolOr("layer_norm_elementwise_affine", true));
  ASSIGN_OR_RETURN(spec.tie_word_embeddings, f.BoolOr("tie_word_embeddings", true));
  if (spec.hidden_size % heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("hidden_size"), "=", spec.hidden_size,
                     " is not divisible by num_attention_heads=", heads));
  }
  const int64_t head_dim = spec.hidden_size / heads;
  DecoderStyle style{.qkv_bias = enable_bias,
                     .o_bias = enable_bias,
                     .mlp_bias = enable_bias,
                     .norms_per_layer = ln_affine ? 2 : 0,
                     .layernorm_bias = enable_bias,
                     .gated_mlp = false};
  LayerKind kind{.name = "dense",
                 .attention = {.num_heads = heads,
                               .num_kv_heads = heads,
                               .head_dim = head_dim,
                               .v_head_dim = head_dim},
                 .mlp = {.intermediate_size = ffn, .gated = false}};
  AddAttention(kind.tensors, kind.attention, spec.hidden_size, style);
  AddDenseMlp(kind.tensors, spec.hidden_size, ffn, style);
  AddNorms(kind.tensors, spec.hidden_size, style);
  spec.layer_kinds.push_back(std::move(kind));
  spec.layer_kind_of.assign(static_cast<size_t>(spec.num_layers), 0);
  spec.first_stage.push_back(
      Linear("embed_tokens", proj_dim, spec.vocab_size, TpSplit::kVocab, TensorRole::kEmbedding));
  spec.first_stage.push_back(Linear("embed_positions", spec.hidden_size,
                                    spec.max_position_embeddings + 2, TpSplit::kReplicated,
                                    TensorRole::kOther));
  if (proj_dim != spec.hidden_size) {
    spec.first_stage.push_back(
        Linear("project_in", proj_dim, spec.hidden_size, TpSplit::kReplicated, TensorRole::kOther));
    spec.last_stage.push_back(Linear("project_out", spec.hidden_size, proj_dim,
                                     TpSplit::kReplicated, TensorRole::kOther));
  }
  if (ln_before && !remove_final && ln_affine) {
    spec.last_stage.push_back(Vec("final_layer_norm", spec.hidden_size, TensorRole::kNorm));
    if (enable_bias) {
      spec.last_stage.push_back(Vec("final_layer_norm.bias", spec.hidden_size, TensorRole::kNorm));
    }
  }
  if (!spec.tie_word_embeddings) {
    spec.last_stage.push_back(
        Linear("lm_head", proj_dim, spec.vocab_size, TpSplit::kVocab, TensorRole::kLmHead));
  }
  return absl::OkStatus();
}

// deepseek_v2 / deepseek_v3: multi-head latent attention + MoE with shared experts.
absl::Status BuildDeepseek(const Fields& f, const std::string& type, ModelSpec& spec) {
  RETURN_IF_ERROR(ReadCoreDims(f, spec));
  ASSIGN_OR_RETURN(int64_t heads, f.Int("num_attention_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(int64_t inter, f.Int("intermediate_size"));
  ASSIGN_OR_RETURN(spec.max_position_embeddings,
                   f.IntOr("max_position_embeddings", 4096, 1, kMaxPositions));
  ASSIGN_OR_RETURN(int64_t q_lora, f.IntOr("q_lora_rank", 0, 0));
  ASSIGN_OR_RETURN(int64_t kv_lora, f.Int("kv_lora_rank"));
  ASSIGN_OR_RETURN(int64_t nope, f.Int("qk_nope_head_dim", 0));
  ASSIGN_OR_RETURN(int64_t rope, f.Int("qk_rope_head_dim"));
  ASSIGN_OR_RETURN(int64_t v_dim, f.Int("v_head_dim"));
  ASSIGN_OR_RETURN(int64_t experts, f.IntOr("n_routed_experts", 0, 0, kMaxExperts));
  ASSIGN_OR_RETURN(int64_t shared, f.IntOr("n_shared_experts", 0, 0, kMaxExperts));
  ASSIGN_OR_RETURN(int64_t top_k, f.IntOr("num_experts_per_tok", 0, 0, kMaxExperts));
  ASSIGN_OR_RETURN(int64_t moe_inter, f.IntOr("moe_intermediate_size", inter));
  ASSIGN_OR_RETURN(int64_t first_dense, f.IntOr("first_k_dense_replace", 0, 0, kMaxLayers));
  ASSIGN_OR_RETURN(int64_t freq, f.IntOr("moe_layer_freq", 1, 1, kMaxLayers));
  ASSIGN_OR_RETURN(bool attention_bias, f.BoolOr("attention_bias", false));
  ASSIGN_OR_RETURN(spec.tie_word_embeddings, f.BoolOr("tie_word_embeddings", false));
  if (top_k > experts) {
    return absl::InvalidArgumentError(absl::StrCat(f.Path("num_experts_per_tok"), "=", top_k,
                                                   " exceeds n_routed_experts=", experts));
  }
  spec.rotary_dim = rope;
  const int64_t qk_dim = nope + rope;
  AttentionSpec attn{.num_heads = heads,
                     .num_kv_heads = heads,
                     .head_dim = qk_dim,
                     .v_head_dim = v_dim,
                     .mla = true,
                     .kv_lora_rank = kv_lora,
                     .qk_rope_head_dim = rope};
  std::vector<Tensor> attn_tensors;
  if (q_lora > 0) {
    AddLinear(attn_tensors, Linear("q_a_proj", spec.hidden_size, q_lora, TpSplit::kReplicated),
              attention_bias);
    attn_tensors.push_back(Vec("q_a_layernorm", q_lora, TensorRole::kNorm));
    Tensor qb = Linear("q_b_proj", q_lora, heads * qk_dim, TpSplit::kHeads);
    qb.heads = heads;
    attn_tensors.push_back(qb);
  } else {
    Tensor q = Linear("q_proj", spec.hidden_size, heads * qk_dim, TpSplit::kHeads);
    q.heads = heads;
    attn_tensors.push_back(q);
  }
  // The latent projection is shared by all heads: replicated on every TP rank.
  AddLinear(attn_tensors,
            Linear("kv_a_proj_with_mqa", spec.hidden_size, kv_lora + rope, TpSplit::kReplicated),
            attention_bias);
  attn_tensors.push_back(Vec("kv_a_layernorm", kv_lora, TensorRole::kNorm));
  Tensor kvb = Linear("kv_b_proj", kv_lora, heads * (nope + v_dim), TpSplit::kHeads);
  kvb.heads = heads;
  attn_tensors.push_back(kvb);
  AddLinear(attn_tensors, Linear("o_proj", heads * v_dim, spec.hidden_size, TpSplit::kRow),
            attention_bias);

  spec.first_stage.push_back(Linear("embed_tokens", spec.hidden_size, spec.vocab_size,
                                    TpSplit::kVocab, TensorRole::kEmbedding));
  spec.layer_kind_of.resize(static_cast<size_t>(spec.num_layers));
  DecoderStyle plain;
  for (int64_t i = 0; i < spec.num_layers; ++i) {
    LayerKind kind;
    kind.attention = attn;
    kind.tensors = attn_tensors;
    const bool moe = experts > 0 && i >= first_dense && i % freq == 0;
    if (moe) {
      kind.name = "moe";
      kind.mlp = MlpSpec{.num_experts = experts,
                         .experts_per_token = top_k,
                         .expert_intermediate_size = moe_inter,
                         .shared_intermediate_size = moe_inter * shared};
      AddRouter(kind.tensors, spec.hidden_size, experts, false);
      if (type == "deepseek_v3") {
        kind.tensors.push_back(Vec("e_score_correction_bias", experts, TensorRole::kRouter));
      }
      AddExperts(kind.tensors, spec.hidden_size, moe_inter, experts, false);
      if (shared > 0) AddDenseMlp(kind.tensors, spec.hidden_size, moe_inter * shared, plain);
    } else {
      kind.name = "dense";
      kind.mlp = MlpSpec{.intermediate_size = inter};
      AddDenseMlp(kind.tensors, spec.hidden_size, inter, plain);
    }
    AddNorms(kind.tensors, spec.hidden_size, plain);
    spec.layer_kind_of[static_cast<size_t>(i)] = InternKind(spec, std::move(kind));
  }
  AddFinalNormAndHead(spec);
  return absl::OkStatus();
}

absl::Status BuildText(const Fields& f, const std::string& type, ModelSpec& spec) {
  static const char* const kLlamaLike[] = {
      "llama",     "mistral", "mixtral", "granite",     "qwen2",  "qwen3", "qwen2_moe",
      "qwen3_moe", "gemma",   "gemma2",  "gemma3_text", "gemma3", "phi3",  "gpt_oss"};
  for (const char* t : kLlamaLike) {
    if (type == t) return BuildDecoder(f, type, spec);
  }
  if (type == "phi") return BuildPhi(f, spec);
  if (type == "opt") return BuildOpt(f, spec);
  if (type == "deepseek_v2" || type == "deepseek_v3") return BuildDeepseek(f, type, spec);
  // Generic fallback: a llama-like decoder from the standard fields.
  spec.generic_fallback = true;
  spec.notes.push_back(absl::StrCat("model_type \"", type,
                                    "\" is not a known family; parsed as a generic llama-like "
                                    "decoder (attention + gated MLP, 2 norms per layer)"));
  return BuildDecoder(f, "generic", spec);
}

// ---- Vision towers ---------------------------------------------------------------------------

void AddVisionLayer(std::vector<Tensor>& t, int64_t d, int64_t inter, int64_t layers,
                    bool gated_mlp, bool rms_norm) {
  auto add = [&](const char* name, int64_t in, int64_t out) {
    Tensor w{.name = name, .out = out, .in = in, .copies = layers, .role = TensorRole::kVision};
    t.push_back(w);
    t.push_back(
        Tensor{.name = "bias", .out = out, .in = 1, .copies = layers, .role = TensorRole::kVision});
  };
  add("q", d, d);
  add("k", d, d);
  add("v", d, d);
  add("o", d, d);
  if (gated_mlp) {
    add("gate", d, inter);
    add("up", d, inter);
    add("down", inter, d);
  } else {
    add("fc1", d, inter);
    add("fc2", inter, d);
  }
  const int64_t norm_params = rms_norm ? 1 : 2;
  t.push_back(Tensor{.name = "norms",
                     .out = d * 2 * norm_params,
                     .in = 1,
                     .copies = layers,
                     .role = TensorRole::kVision});
}

Tensor VisionTensor(const char* name, int64_t out, int64_t in = 1) {
  return Tensor{.name = name, .out = out, .in = in, .role = TensorRole::kVision};
}

absl::StatusOr<VisionSpec> BuildVision(const Fields& v, const Fields& top,
                                       const std::string& wrapper, int64_t text_hidden) {
  VisionSpec vs;
  vs.model_type = v.StringOr("model_type", wrapper == "qwen2_5_vl" || wrapper == "qwen2_vl"
                                               ? wrapper
                                               : "siglip_vision_model");
  const bool qwen_vl = wrapper == "qwen2_5_vl" || wrapper == "qwen2_vl";
  if (qwen_vl) {
    ASSIGN_OR_RETURN(vs.num_layers, v.IntOr("depth", 32, 1, kMaxLayers));
    ASSIGN_OR_RETURN(vs.hidden_size, v.IntOr("hidden_size", 1280));
    ASSIGN_OR_RETURN(vs.num_heads, v.IntOr("num_heads", 16, 1, kMaxHeads));
    ASSIGN_OR_RETURN(vs.patch_size, v.IntOr("patch_size", 14, 1, 4096));
    ASSIGN_OR_RETURN(vs.spatial_merge, v.IntOr("spatial_merge_size", 2, 1, 64));
    ASSIGN_OR_RETURN(int64_t temporal, v.IntOr("temporal_patch_size", 2, 1, 64));
    ASSIGN_OR_RETURN(int64_t in_chans, v.IntOr("in_chans", 3, 1, 64));
    ASSIGN_OR_RETURN(int64_t out_hidden, v.IntOr("out_hidden_size", text_hidden));
    const bool gated = wrapper == "qwen2_5_vl";
    if (gated) {
      ASSIGN_OR_RETURN(vs.intermediate_size, v.IntOr("intermediate_size", 3420));
    } else {
      ASSIGN_OR_RETURN(int64_t ratio, v.IntOr("mlp_ratio", 4));
      vs.intermediate_size = vs.hidden_size * ratio;
    }
    vs.token_rule = VisionSpec::TokenRule::kPatchesMerged;
    const int64_t d = vs.hidden_size;
    vs.tower.push_back(
        VisionTensor("patch_embed", d, in_chans * temporal * vs.patch_size * vs.patch_size));
    AddVisionLayer(vs.tower, d, vs.intermediate_size, vs.num_layers, gated, /*rms_norm=*/gated);
    const int64_t merged = d * vs.spatial_merge * vs.spatial_merge;
    vs.projector.push_back(VisionTensor("merger.ln_q", gated ? d : 2 * d));
    vs.projector.push_back(VisionTensor("merger.mlp.0", merged, merged));
    vs.projector.push_back(VisionTensor("merger.mlp.0.bias", merged));
    vs.projector.push_back(VisionTensor("merger.mlp.2", out_hidden, merged));
    vs.projector.push_back(VisionTensor("merger.mlp.2.bias", out_hidden));
    return vs;
  }
  ASSIGN_OR_RETURN(vs.hidden_size, v.Int("hidden_size"));
  ASSIGN_OR_RETURN(vs.intermediate_size, v.Int("intermediate_size"));
  ASSIGN_OR_RETURN(vs.num_layers, v.Int("num_hidden_layers", 1, kMaxLayers));
  ASSIGN_OR_RETURN(vs.num_heads, v.Int("num_attention_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(vs.patch_size, v.Int("patch_size", 1, 4096));
  const int64_t d = vs.hidden_size;
  if (vs.model_type == "moonvit") {
    // Kimi-VL's MoonViT (custom code): LayerNorm pre-norm blocks, fused qkv with bias, fc0/fc1
    // MLP, learned 2-D position embedding; 2x2 patch merge into the projector.
    ASSIGN_OR_RETURN(int64_t pos_h, v.IntOr("init_pos_emb_height", 64));
    ASSIGN_OR_RETURN(int64_t pos_w, v.IntOr("init_pos_emb_width", 64));
    vs.spatial_merge = 2;
    vs.token_rule = VisionSpec::TokenRule::kPatchesMerged;
    vs.tower.push_back(VisionTensor("patch_embed", d, 3 * vs.patch_size * vs.patch_size));
    vs.tower.push_back(VisionTensor("patch_embed.bias", d));
    vs.tower.push_back(VisionTensor("pos_emb", pos_h * pos_w, d));
    AddVisionLayer(vs.tower, d, vs.intermediate_size, vs.num_layers, false, false);
    vs.tower.push_back(VisionTensor("final_layernorm", 2 * d));
    const int64_t merged = d * 4;
    vs.projector.push_back(VisionTensor("pre_norm", 2 * d));
    vs.projector.push_back(VisionTensor("linear_1", merged, merged));
    vs.projector.push_back(VisionTensor("linear_1.bias", merged));
    vs.projector.push_back(VisionTensor("linear_2", text_hidden, merged));
    vs.projector.push_back(VisionTensor("linear_2.bias", text_hidden));
    return vs;
  }
  ASSIGN_OR_RETURN(vs.image_size, v.Int("image_size", 1, 65536));
  if (vs.image_size < vs.patch_size) {
    return absl::InvalidArgumentError(absl::StrCat(v.Path("image_size"), "=", vs.image_size,
                                                   " is smaller than patch_size=", vs.patch_size));
  }
  // The patch convolution drops a remainder (SigLIP-384 with 14-px patches: 27 x 27).
  const int64_t patches = (vs.image_size / vs.patch_size) * (vs.image_size / vs.patch_size);
  const bool clip = vs.model_type == "clip_vision_model";
  if (clip) {
    vs.tower.push_back(VisionTensor("class_embedding", d));
    vs.tower.push_back(VisionTensor("patch_embedding", d, 3 * vs.patch_size * vs.patch_size));
    vs.tower.push_back(VisionTensor("position_embedding", patches + 1, d));
    vs.tower.push_back(VisionTensor("pre_layrnorm", 2 * d));
  } else {
    vs.tower.push_back(VisionTensor("patch_embedding", d, 3 * vs.patch_size * vs.patch_size));
    vs.tower.push_back(VisionTensor("patch_embedding.bias", d));
    vs.tower.push_back(VisionTensor("position_embedding", patches, d));
  }
  AddVisionLayer(vs.tower, d, vs.intermediate_size, vs.num_layers, false, false);
  vs.tower.push_back(VisionTensor("post_layernorm", 2 * d));
  ASSIGN_OR_RETURN(bool use_head, v.BoolOr("vision_use_head", !clip && wrapper != "gemma3"));
  if (!clip && use_head) {
    // SiglipMultiheadAttentionPoolingHead: probe, nn.MultiheadAttention, LayerNorm, MLP.
    vs.tower.push_back(VisionTensor("head.probe", d));
    vs.tower.push_back(VisionTensor("head.attention.in_proj", 3 * d, d));
    vs.tower.push_back(VisionTensor("head.attention.in_proj_bias", 3 * d));
    vs.tower.push_back(VisionTensor("head.attention.out_proj", d, d));
    vs.tower.push_back(VisionTensor("head.attention.out_proj.bias", d));
    vs.tower.push_back(VisionTensor("head.layernorm", 2 * d));
    vs.tower.push_back(VisionTensor("head.mlp.fc1", vs.intermediate_size, d));
    vs.tower.push_back(VisionTensor("head.mlp.fc1.bias", vs.intermediate_size));
    vs.tower.push_back(VisionTensor("head.mlp.fc2", d, vs.intermediate_size));
    vs.tower.push_back(VisionTensor("head.mlp.fc2.bias", d));
  }
  if (wrapper == "gemma3") {
    ASSIGN_OR_RETURN(vs.fixed_tokens_per_image, top.IntOr("mm_tokens_per_image", 256));
    vs.token_rule = VisionSpec::TokenRule::kFixed;
    vs.projector.push_back(VisionTensor("mm_input_projection", text_hidden, d));
    vs.projector.push_back(VisionTensor("mm_soft_emb_norm", d));
    return vs;
  }
  // llava / llava_next: 2-layer MLP projector over the concatenated feature layers.
  int64_t feature_layers = 1;
  if (const json* layers = top.ArrayIfArray("vision_feature_layer"); layers != nullptr) {
    feature_layers = static_cast<int64_t>(layers->size());
  }
  ASSIGN_OR_RETURN(bool proj_bias, top.BoolOr("multimodal_projector_bias", true));
  vs.projector.push_back(VisionTensor("linear_1", text_hidden, d * feature_layers));
  if (proj_bias) vs.projector.push_back(VisionTensor("linear_1.bias", text_hidden));
  vs.projector.push_back(VisionTensor("linear_2", text_hidden, text_hidden));
  if (proj_bias) vs.projector.push_back(VisionTensor("linear_2.bias", text_hidden));
  const std::string strategy = top.StringOr("vision_feature_select_strategy", "default");
  vs.fixed_tokens_per_image = strategy == "full" ? patches + (clip ? 1 : 0) : patches;
  if (wrapper == "llava_next") {
    ASSIGN_OR_RETURN(bool newline, top.BoolOr("use_image_newline_parameter", true));
    if (newline) vs.projector.push_back(VisionTensor("image_newline", text_hidden));
    vs.image_newline = newline;
    vs.token_rule = VisionSpec::TokenRule::kLlavaNext;
    ASSIGN_OR_RETURN(const json* pins, top.OptionalArray("image_grid_pinpoints"));
    if (pins != nullptr) {
      for (const json& p : *pins) {
        if (!p.is_array() || p.size() != 2 || !p[0].is_number_integer() ||
            !p[1].is_number_integer() || p[0].get<int64_t>() <= 0 || p[1].get<int64_t>() <= 0) {
          return absl::InvalidArgumentError(absl::StrCat(top.Path("image_grid_pinpoints"),
                                                         " entry ", p.dump(),
                                                         " must be [height, width] > 0"));
        }
        vs.grid_pinpoints.emplace_back(p[0].get<int64_t>(), p[1].get<int64_t>());
      }
    }
    if (vs.grid_pinpoints.empty()) vs.grid_pinpoints = {{vs.image_size, vs.image_size}};
  } else {
    vs.token_rule = VisionSpec::TokenRule::kFixed;
  }
  return vs;
}

absl::Status CheckTotalSize(const ModelSpec& spec) {
  long double total = 0;
  auto add = [&](const std::vector<Tensor>& ts, long double times) {
    for (const Tensor& t : ts) {
      total += static_cast<long double>(t.out) * static_cast<long double>(t.in) *
               static_cast<long double>(t.copies) * times;
    }
  };
  add(spec.first_stage, 1);
  add(spec.last_stage, 1);
  std::vector<long double> counts(spec.layer_kinds.size(), 0);
  for (int k : spec.layer_kind_of) counts[static_cast<size_t>(k)] += 1;
  for (size_t i = 0; i < spec.layer_kinds.size(); ++i) add(spec.layer_kinds[i].tensors, counts[i]);
  if (spec.vision) {
    add(spec.vision->tower, 1);
    add(spec.vision->projector, 1);
  }
  if (total > static_cast<long double>(kMaxParams)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model has ", static_cast<double>(total), " parameters, more than the limit of ",
        kMaxParams,
        "; check hidden_size, intermediate_size, num_hidden_layers and the expert counts"));
  }
  return absl::OkStatus();
}

}  // namespace

const char* DTypeName(DType d) {
  switch (d) {
    case DType::kFloat32:
      return "float32";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kFloat16:
      return "float16";
    case DType::kFloat8:
      return "float8";
    case DType::kInt8:
      return "int8";
  }
  return "?";
}

absl::StatusOr<ModelSpec> ParseModelConfig(absl::string_view config_json,
                                           const ParseOptions& options) {
  json root = json::parse(config_json.begin(), config_json.end(), nullptr,
                          /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError("config.json is not valid JSON");
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json must be a JSON object, got ", root.type_name()));
  }
  Fields top(root, "");
  auto type_it = root.find("model_type");
  if (type_it == root.end() || !type_it->is_string() || type_it->get<std::string>().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_type is missing or not a string",
                     type_it == root.end() ? "" : absl::StrCat(" (", type_it->dump(), ")")));
  }
  const std::string top_type = type_it->get<std::string>();

  ModelSpec spec;
  static const char* const kWrappers[] = {"gemma3",   "llava",   "llava_next", "qwen2_5_vl",
                                          "qwen2_vl", "kimi_vl", "mllama",     "paligemma"};
  bool wrapper = false;
  for (const char* w : kWrappers) wrapper = wrapper || top_type == w;
  if (wrapper) spec.wrapper_type = top_type;

  const json* text_obj = top.Object("text_config");
  const bool nested_text = text_obj != nullptr;
  Fields text = nested_text ? Fields(*text_obj, "text_config.") : Fields(root, "");
  std::string text_type = text.StringOr("model_type", "");
  if (!nested_text) text_type = top_type;
  if (wrapper && text_type.empty()) {
    // transformers' defaults for text_config without model_type.
    text_type = top_type == "gemma3" ? "gemma3_text" : "llama";
  }
  if (text_type == "qwen2_5_vl" || text_type == "qwen2_vl" || text_type == "qwen2_5_vl_text" ||
      text_type == "qwen2_vl_text") {
    text_type = "qwen2";
  }
  if (top_type == "mllama") {
    return absl::InvalidArgumentError(
        "model_type=\"mllama\": cross-attention vision-language models are not supported yet");
  }
  spec.model_type = text_type;
  ASSIGN_OR_RETURN(spec.dtype, ParseDType(nested_text && !top.Has("torch_dtype") ? text : top));
  RETURN_IF_ERROR(BuildText(text, text_type, spec));
  if (nested_text && top.Has("tie_word_embeddings") && !text.Has("tie_word_embeddings")) {
    // VLM wrappers (LLaVA) may tie at the top level.
    ASSIGN_OR_RETURN(bool tie, top.BoolOr("tie_word_embeddings", spec.tie_word_embeddings));
    if (tie && !spec.tie_word_embeddings) {
      spec.tie_word_embeddings = true;
      spec.last_stage.erase(
          std::remove_if(spec.last_stage.begin(), spec.last_stage.end(),
                         [](const Tensor& t) { return t.role == TensorRole::kLmHead; }),
          spec.last_stage.end());
    }
  }
  if (wrapper) {
    const json* vision_obj = top.Object("vision_config");
    if (vision_obj == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("vision_config is missing for model_type=\"", top_type, "\""));
    }
    Fields vision(*vision_obj, "vision_config.");
    ASSIGN_OR_RETURN(spec.vision, BuildVision(vision, top, top_type, spec.hidden_size));
    if (top_type == "kimi_vl") {
      spec.notes.push_back(
          "kimi_vl is custom code: MoonViT tower and projector sizes follow the published "
          "modeling file, parameter count not verified against transformers");
    }
  }
  RETURN_IF_ERROR(CheckTotalSize(spec));
  const json* quant = top.Object("quantization_config");
  if (quant == nullptr && nested_text) quant = text.Object("quantization_config");
  ASSIGN_OR_RETURN(spec.quant, ParseQuantization(quant, options.quantization, options.group_size));
  if (spec.quant.method == QuantSpec::Method::kMxfp4 && !spec.is_moe()) {
    spec.notes.push_back("mxfp4 applies to MoE experts only; this dense model stays unquantized");
  }
  return spec;
}

}  // namespace fleetplan::estimator
