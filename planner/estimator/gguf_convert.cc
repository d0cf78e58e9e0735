#include "planner/estimator/gguf_convert.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "planner/common/status_macros.h"

namespace fleetplan::estimator {
namespace {

// ggml_type numbers (ggml.h).
constexpr int64_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
                  kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBf16 = 30;

// A file type: what convert_hf_to_gguf.py writes (--outtype) and, for a quantized type, the
// default type llama-quantize gives each weight (llama_model_quantize_impl's switch on ftype).
struct FileType {
  const char* name;
  int64_t convert_type;  // the --outtype, or f16 as the quantizer's input
  int64_t default_type;  // the quantizer's default; == convert_type when not quantized further
};
constexpr FileType kFileTypes[] = {
    {"f32", kF32, kF32},     {"f16", kF16, kF16},     {"bf16", kBf16, kBf16},
    {"q8_0", kQ8_0, kQ8_0},  {"q4_0", kF16, kQ4_0},   {"q4_1", kF16, kQ4_1},
    {"q5_0", kF16, kQ5_0},   {"q5_1", kF16, kQ5_1},   {"q6_K", kF16, kQ6_K},
    {"q5_K_M", kF16, kQ5_K}, {"q5_K_S", kF16, kQ5_K}, {"q4_K_M", kF16, kQ4_K},
    {"q4_K_S", kF16, kQ4_K},
};

const FileType* FindFileType(const std::string& name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (const FileType& t : kFileTypes) {
    if (absl::AsciiStrToLower(t.name) == lower) return &t;
  }
  return nullptr;
}

// One tensor before its type is chosen.
struct Pending {
  std::string name;
  std::vector<int64_t> dims;
  bool force_f32 = false;  // convert writes it in f32 (1-D, the router)
};

// llama-quant.cpp tensor_get_category, for the names this converter writes.
enum class Category {
  kTokenEmbd,
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnQkv,
  kAttnOut,
  kFfnDown,
  kOutput,
  kOther
};
Category CategoryOf(const std::string& name) {
  if (name == "output.weight") return Category::kOutput;
  if (name == "token_embd.weight") return Category::kTokenEmbd;
  if (name.find("attn_qkv.weight") != std::string::npos) return Category::kAttnQkv;
  if (name.find("attn_v.weight") != std::string::npos) return Category::kAttnV;
  if (name.find("attn_k.weight") != std::string::npos) return Category::kAttnK;
  if (name.find("attn_q.weight") != std::string::npos) return Category::kAttnQ;
  if (name.find("attn_output.weight") != std::string::npos) return Category::kAttnOut;
  if (name.find("ffn_down") != std::string::npos) return Category::kFfnDown;
  return Category::kOther;
}

// tensor_allows_quantization: 2-D and 3-D weights, not norms, not the router.
bool Quantizable(const Pending& t) {
  const std::string& n = t.name;
  return t.dims.size() >= 2 && n.size() >= 6 && n.compare(n.size() - 6, 6, "weight") == 0 &&
         n.find("_norm.weight") == std::string::npos &&
         n.find("ffn_gate_inp.weight") == std::string::npos;
}

bool UseMoreBits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

struct QuantState {
  const FileType* ft;
  std::string arch;
  int64_t experts = 0;
  bool tied = true;
  bool is_70b = false;
  int64_t n_attention_wv = 0, i_attention_wv = 0, n_ffn_down = 0, i_ffn_down = 0;
};

int64_t LayerOf(const std::string& name) {
  int64_t il = 0;
  if (name.rfind("blk.", 0) != 0) return 0;
  for (size_t i = 4; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
    il = il * 10 + (name[i] - '0');
  }
  return il;
}

// llama_tensor_get_type_impl for the non-IQ file types, then tensor_type_fallback.
absl::StatusOr<int64_t> QuantType(QuantState& qs, const Pending& t) {
  const Category cat = CategoryOf(t.name);
  const std::string ft = qs.ft->name;
  int64_t type = qs.ft->default_type;
  if (cat == Category::kOutput || (qs.tied && cat == Category::kTokenEmbd)) {
    if (t.dims[0] % GgmlBlockElements(type) != 0) {
      type = kQ8_0;
    } else if (type != kQ8_0) {
      type = kQ6_K;
    }
  } else if (cat == Category::kAttnV || cat == Category::kAttnQkv) {
    if ((ft == "q4_K_M" || ft == "q5_K_M") && UseMoreBits(qs.i_attention_wv, qs.n_attention_wv)) {
      type = kQ6_K;
    } else if (ft == "q4_K_S" && qs.i_attention_wv < 4) {
      type = kQ5_K;
    }
    if (qs.is_70b && type == kQ4_K) type = kQ5_K;
    if (qs.experts == 8) type = kQ8_0;
    ++qs.i_attention_wv;
  } else if (cat == Category::kAttnK) {
    if (qs.experts == 8) type = kQ8_0;
  } else if (cat == Category::kFfnDown) {
    int64_t i_layer = qs.i_ffn_down;
    const int64_t n_layer = qs.n_ffn_down;
    if (qs.experts > 1) i_layer = LayerOf(t.name);  // layer_info: from the name for MoE models
    if ((ft == "q4_K_M" || ft == "q5_K_M") && UseMoreBits(i_layer, n_layer)) {
      type = kQ6_K;
    } else if (ft == "q4_K_S" && i_layer < n_layer / 8) {
      type = kQ5_K;
    }
    ++qs.i_ffn_down;
  } else if (cat == Category::kAttnOut) {
    if (qs.experts == 8 && (ft == "q4_K_S" || ft == "q4_K_M")) type = kQ5_K;
  }
  // tensor_type_fallback: ne0 must be a whole number of blocks.
  const int64_t ncols = t.dims[0];
  if (ncols % GgmlBlockElements(type) != 0) {
    switch (type) {
      case kQ4_K:
        type = kQ5_0;
        break;
      case kQ5_K:
        type = kQ5_1;
        break;
      case kQ6_K:
        type = kQ8_0;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor ", t.name, ": rows of ", ncols, " elements are not whole ", GgmlTypeName(type),
            " blocks and llama-quantize defines no fallback for ", GgmlTypeName(type),
            " (tensor_type_fallback); choose a k-quant file type"));
    }
    if (ncols % GgmlBlockElements(type) != 0) type = kF16;
  }
  return type;
}

// The names convert_hf_to_gguf.py gives a decoder layer's tensors, from ModelSpec's.
class LayerNamer {
 public:
  explicit LayerNamer(int64_t il) : prefix_(absl::StrCat("blk.", il, ".")) {}
  // The GGUF name for the tensor called `name` in the family builder; a bias is named after the
  // weight before it.
  std::string Name(const std::string& name) {
    static const std::map<std::string, std::string> kDense = {
        {"q_proj", "attn_q"},       {"k_proj", "attn_k"},
        {"v_proj", "attn_v"},       {"o_proj", "attn_output"},
        {"gate_proj", "ffn_gate"},  {"up_proj", "ffn_up"},
        {"fc1", "ffn_up"},          {"down_proj", "ffn_down"},
        {"q_norm", "attn_q_norm"},  {"k_norm", "attn_k_norm"},
        {"router", "ffn_gate_inp"}, {"shared_expert_gate", "ffn_gate_inp_shexp"}};
    std::string base;
    if (name == "bias" || name == "norm_bias" || name == "router.bias") {
      return absl::StrCat(prefix_, last_, ".bias");
    }
    if (name == "norm") {
      static const char* const kNorms[] = {"attn_norm", "ffn_norm", "post_attention_norm",
                                           "post_ffw_norm"};
      base = norms_ < 4 ? kNorms[norms_] : absl::StrCat("norm_", norms_);
      ++norms_;
    } else if (name == "experts.gate_up" || name == "experts.down") {
      experts_seen_ = true;
      base = name == "experts.down" ? "ffn_down_exps" : "ffn_gate_up_exps";
    } else if (auto it = kDense.find(name); it != kDense.end()) {
      base = it->second;
      // After the routed experts, the dense MLP is the shared expert.
      if (experts_seen_ && (name == "gate_proj" || name == "up_proj" || name == "down_proj")) {
        absl::StrAppend(&base, "_shexp");
      }
    } else {
      base = absl::StrCat(name, "_", other_++);
    }
    last_ = base;
    return absl::StrCat(prefix_, base, ".weight");
  }

 private:
  std::string prefix_, last_;
  int norms_ = 0, other_ = 0;
  bool experts_seen_ = false;
};

}  // namespace

const std::vector<std::string>& GgufFileTypes() {
  static const auto* const kNames = [] {
    auto* v = new std::vector<std::string>;
    for (const FileType& t : kFileTypes) v->push_back(t.name);
    return v;
  }();
  return *kNames;
}

std::string GgufArchitecture(const ModelSpec& spec) {
  // convert_hf_to_gguf.py's model classes: the text model's architecture (a VLM's mmproj is a
  // separate file). Qwen2-VL/2.5-VL's text model is qwen2vl (M-RoPE); Mistral and Mixtral are
  // written as llama.
  if (spec.wrapper_type == "qwen2_vl" || spec.wrapper_type == "qwen2_5_vl") return "qwen2vl";
  static const auto* const kArch = new std::map<std::string, std::string>{
      {"llama", "llama"},     {"mistral", "llama"},      {"mixtral", "llama"},
      {"granite", "granite"}, {"qwen2", "qwen2"},        {"qwen2_moe", "qwen2moe"},
      {"qwen3", "qwen3"},     {"qwen3_moe", "qwen3moe"}, {"gemma", "gemma"},
      {"gemma2", "gemma2"},   {"gemma3", "gemma3"},      {"gemma3_text", "gemma3"},
      {"phi3", "phi3"}};
  auto it = kArch->find(spec.model_type);
  return it == kArch->end() ? "" : it->second;
}

absl::StatusOr<GgufFile> GgufFromModel(const ModelSpec& spec, const std::string& field,
                                       const std::string& file_type) {
  const FileType* ft = FindFileType(file_type);
  if (ft == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(field, "=\"", file_type, "\" is not one of ",
                                                   absl::StrJoin(GgufFileTypes(), ", ")));
  }
  for (const LayerKind& kind : spec.layer_kinds) {
    if (kind.attention.mla) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model_type=\"", spec.model_type,
          "\" uses MLA, whose GGUF layout (attn_kv_b or attn_k_b/attn_v_b) depends on the "
          "converter's version: give the GGUF file itself (estimate --gguf=FILE)"));
    }
  }
  const std::string arch = GgufArchitecture(spec);
  if (arch.empty() || spec.generic_fallback) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_type=\"", spec.model_type,
        "\": fleetplan does not model how convert_hf_to_gguf.py writes this architecture; give the "
        "GGUF file itself (estimate --gguf=FILE)"));
  }
  if (spec.num_layers <= 0 || spec.layer_kind_of.size() != static_cast<size_t>(spec.num_layers)) {
    return absl::InvalidArgumentError("the model has no decoder layers to convert");
  }
  const bool fused = arch == "phi3";  // attn_qkv and ffn_up hold q|k|v and gate|up

  std::vector<Pending> pending;
  auto add = [&](std::string name, std::vector<int64_t> dims, bool force_f32 = false) {
    pending.push_back(
        Pending{.name = std::move(name), .dims = std::move(dims), .force_f32 = force_f32});
  };
  add("token_embd.weight", {spec.hidden_size, spec.vocab_size});
  int64_t experts = 0, experts_used = 0, expert_ff = 0, shared_ff = 0, dense_ff = 0;
  std::vector<int64_t> kv_heads, windows;
  int64_t head_k = 0, head_v = 0, heads = 0;
  for (int64_t il = 0; il < spec.num_layers; ++il) {
    const LayerKind& kind =
        spec.layer_kinds[static_cast<size_t>(spec.layer_kind_of[static_cast<size_t>(il)])];
    const AttentionSpec& a = kind.attention;
    heads = std::max(heads, a.num_heads);
    head_k = a.head_dim;
    head_v = a.v_head_dim;
    kv_heads.push_back(a.num_kv_heads);
    windows.push_back(a.sliding_window);
    if (kind.mlp.num_experts > 0) {
      experts = kind.mlp.num_experts;
      experts_used = kind.mlp.experts_per_token;
      expert_ff = kind.mlp.expert_intermediate_size;
      shared_ff = kind.mlp.shared_intermediate_size;
    } else {
      dense_ff = std::max(dense_ff, kind.mlp.intermediate_size);
    }
    LayerNamer namer(il);
    int64_t qkv_out = 0, gate_up_out = 0;
    for (const Tensor& t : kind.tensors) {
      const std::string name = t.name;
      if (fused && (name == "q_proj" || name == "k_proj" || name == "v_proj")) {
        qkv_out += t.out;
        if (name == "v_proj") add(absl::StrCat("blk.", il, ".attn_qkv.weight"), {t.in, qkv_out});
        continue;
      }
      if (fused && (name == "gate_proj" || name == "up_proj")) {
        gate_up_out += t.out;
        if (name == "up_proj") add(absl::StrCat("blk.", il, ".ffn_up.weight"), {t.in, gate_up_out});
        continue;
      }
      const std::string gguf = namer.Name(name);
      if (name == "experts.gate_up") {
        // convert writes gate and up as two [in, inter, n_expert] tensors.
        const std::string stem = absl::StrCat("blk.", il, ".");
        add(stem + "ffn_gate_exps.weight", {t.in, t.out / 2, t.copies});
        add(stem + "ffn_up_exps.weight", {t.in, t.out / 2, t.copies});
        continue;
      }
      std::vector<int64_t> dims =
          t.in == 1 ? std::vector<int64_t>{t.out} : std::vector<int64_t>{t.in, t.out};
      if (t.copies > 1) dims.push_back(t.copies);
      add(gguf, dims, t.in == 1 || t.role == TensorRole::kRouter);
    }
  }
  for (const Tensor& t : spec.last_stage) {
    if (t.role == TensorRole::kLmHead) {
      add("output.weight", {t.in, t.out});
    } else if (t.in == 1) {
      add(absl::StrCat("output_", t.name, ".weight"), {t.out}, true);
    }
  }

  QuantState qs{.ft = ft, .arch = arch, .experts = experts};
  qs.is_70b = arch == "llama" && spec.num_layers == 80;  // llama-model.cpp: LLM_TYPE_70B
  for (const Pending& p : pending) {
    if (p.name == "output.weight") qs.tied = false;
    const Category c = CategoryOf(p.name);
    if (c == Category::kAttnV || c == Category::kAttnQkv) ++qs.n_attention_wv;
    if (c == Category::kFfnDown) ++qs.n_ffn_down;
  }
  std::vector<GgufTensor> tensors;
  tensors.reserve(pending.size());
  for (const Pending& p : pending) {
    int64_t type = ft->convert_type;
    const bool f32 = p.force_f32 || p.dims.size() < 2;
    if (f32) {
      type = kF32;
    } else if (type == kQ8_0 && p.dims[0] % GgmlBlockElements(kQ8_0) != 0) {
      type = kF16;  // convert's q8_0 keeps rows it cannot block in f16
    }
    if (!f32 && ft->default_type != ft->convert_type && Quantizable(p)) {
      ASSIGN_OR_RETURN(type, QuantType(qs, p));
    }
    tensors.push_back(GgufTensor{.name = p.name, .dims = p.dims, .type = type});
  }

  std::map<std::string, std::string> meta;
  std::map<std::string, std::vector<int64_t>> arrays;
  const std::string k = arch + ".";
  meta["general.architecture"] = arch;
  meta["fleetplan.converted_file_type"] = ft->name;
  meta[k + "block_count"] = absl::StrCat(spec.num_layers);
  meta[k + "context_length"] = absl::StrCat(spec.max_position_embeddings);
  meta[k + "embedding_length"] = absl::StrCat(spec.hidden_size);
  meta[k + "feed_forward_length"] = absl::StrCat(dense_ff > 0 ? dense_ff : expert_ff);
  meta[k + "attention.head_count"] = absl::StrCat(heads);
  meta[k + "attention.key_length"] = absl::StrCat(head_k);
  meta[k + "attention.value_length"] = absl::StrCat(head_v);
  if (std::all_of(kv_heads.begin(), kv_heads.end(), [&](int64_t h) { return h == kv_heads[0]; })) {
    meta[k + "attention.head_count_kv"] = absl::StrCat(kv_heads[0]);
  } else {
    arrays[k + "attention.head_count_kv"] = kv_heads;
  }
  const int64_t window = *std::max_element(windows.begin(), windows.end());
  if (window > 0) {
    meta[k + "attention.sliding_window"] = absl::StrCat(window);
    std::vector<int64_t> pattern;
    for (int64_t w : windows) pattern.push_back(w > 0 ? 1 : 0);
    arrays[k + "attention.sliding_window_pattern"] = pattern;
  }
  if (experts > 0) {
    meta[k + "expert_count"] = absl::StrCat(experts);
    meta[k + "expert_used_count"] = absl::StrCat(experts_used);
    meta[k + "expert_feed_forward_length"] = absl::StrCat(expert_ff);
    if (shared_ff > 0) {
      meta[k + "expert_shared_count"] = "1";
      meta[k + "expert_shared_feed_forward_length"] = absl::StrCat(shared_ff);
    }
  }
  return GgufFromParts(std::move(meta), std::move(arrays), std::move(tensors));
}

}  // namespace fleetplan::estimator
