#include "planner/estimator/llama_cpp.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "planner/common/limits.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/engine_constants.h"
#include "planner/estimator/gguf_convert.h"
#include "planner/estimator/uncertainty.h"
#include "planner/estimator/vllm.h"

namespace fleetplan::estimator {
namespace {

// ggml-cuda.cu: buffers align tensors to 128 bytes; quantized rows are padded to 512 elements
// (MATRIX_ROW_PADDING) so the matmul kernels need no bounds checks.
constexpr int64_t kCudaAlignment = 128;
constexpr int64_t kMatrixRowPadding = 512;
// llama-context.cpp: n_ctx and each slot's n_ctx_seq are padded to 256 cells; the KQ mask's
// token dimension to GGML_KQ_MASK_PAD (64).
constexpr int64_t kCtxPad = 256;
constexpr int64_t kMaskPad = 64;
// llama.h LLAMA_MAX_SEQ and ggml LLAMA_MAX_DEVICES: the slots and GPUs llama.cpp accepts.
constexpr int64_t kMaxSlots = 256;
constexpr int64_t kMaxDevices = 16;
// tools/server/server.cpp: -np unset ("auto") runs 4 slots over one unified KV cache.
constexpr int64_t kAutoSlots = 4;

// Ollama's defaults where they differ from llama-server's (docs/faq.md; docs/context-length.mdx
// at ollama commit 948f693, 2026): OLLAMA_NUM_PARALLEL 1; the context per request by the VRAM
// (under 24 GiB 4k, under 48 GiB 32k, else 256k; releases before 2025 used 2048, then 4096); the
// runner gets -c num_ctx x num_parallel and num_parallel slots, each its own KV stream.
constexpr int64_t kOllamaSlots = 1;
int64_t OllamaContext(int64_t vram_bytes) {
  if (vram_bytes < 24 * kGiB) return 4096;
  if (vram_bytes < 48 * kGiB) return 32768;
  return 262144;
}
constexpr int64_t kF32 = 4;

int64_t Pad(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// A tensor's bytes in a CUDA buffer: quantized rows padded by a row of 512 elements, the whole
// tensor aligned to 128 bytes (ggml_backend_cuda_buffer_type_get_alloc_size).
int64_t GpuAllocBytes(const GgufTensor& t) {
  int64_t size = t.bytes;
  if (GgmlTypeIsQuantized(t.type) && t.dims[0] % kMatrixRowPadding != 0) {
    size += GgmlRowBytes(t.type, kMatrixRowPadding - t.dims[0] % kMatrixRowPadding);
  }
  return Pad(size, kCudaAlignment);
}

// What the graph model needs from the GGUF's metadata.
struct Arch {
  std::string name;
  int64_t layers = 0, context = 0, embd = 0, heads = 0, head_k = 0, head_v = 0;
  int64_t ff = 0, experts = 0, experts_used = 0, ff_expert = 0, ff_shared = 0;
  int64_t vocab = 0, n_swa = 0;
  std::vector<int64_t> k_elements, v_elements;  // per layer, per token
  std::vector<bool> swa;                        // per layer: a sliding-window layer
  std::vector<bool> moe;                        // per layer: holds ffn_*_exps tensors
  bool recurrent = false, mla = false, swa_pattern_unknown = false;
};

const std::string* Meta(const GgufFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  return it == f.metadata.end() ? nullptr : &it->second;
}

// An integer key (or the largest of a per-layer integer array); `fallback` when absent.
absl::StatusOr<int64_t> MetaInt(const GgufFile& f, const std::string& key, int64_t fallback) {
  if (auto arr = f.int_arrays.find(key); arr != f.int_arrays.end()) {
    int64_t most = 0;
    for (int64_t v : arr->second) most = std::max(most, v);
    return most;
  }
  const std::string* v = Meta(f, key);
  if (v == nullptr) return fallback;
  int64_t out = 0;
  if (!absl::SimpleAtoi(*v, &out) || out < 0 || out > (int64_t{1} << 40)) {
    return absl::InvalidArgumentError(absl::StrCat("GGUF ", key, "=", *v, " is not a count"));
  }
  return out;
}

// The layer a tensor belongs to: blk.N.* -> N; the input embeddings -> -1; the rest (output,
// output_norm and any other global tensor) -> `layers` (the output layer).
int64_t TensorLayer(const std::string& name, int64_t layers) {
  if (name.rfind("blk.", 0) == 0) {
    const size_t dot = name.find('.', 4);
    int64_t il = 0;
    if (dot != std::string::npos && absl::SimpleAtoi(name.substr(4, dot - 4), &il) && il >= 0 &&
        il < layers) {
      return il;
    }
    return layers;
  }
  for (const char* input : {"token_embd.", "token_embd_norm.", "token_types.", "position_embd."}) {
    if (name.rfind(input, 0) == 0) return -1;
  }
  return layers;
}

bool IsExpertTensor(const std::string& name) {
  // common/common.h LLM_FFN_EXPS_REGEX: blk.N.ffn_(up|down|gate|gate_up)_(ch|)exps
  for (const char* part : {".ffn_up_exps", ".ffn_down_exps", ".ffn_gate_exps", ".ffn_gate_up_exps",
                           ".ffn_up_chexps", ".ffn_down_chexps", ".ffn_gate_chexps"}) {
    if (name.find(part) != std::string::npos) return true;
  }
  return false;
}

// Sliding-window layers by architecture: llama-model.cpp load_hparams, set_swa_pattern(n): layer
// il is sliding when il % n < n - 1.
int64_t SwaPattern(const std::string& arch) {
  static const auto* const kPatterns = new std::map<std::string, int64_t>{
      {"gemma2", 2}, {"gemma3", 6}, {"cohere2", 4}, {"gpt-oss", 2}, {"llama4", 4}, {"exaone4", 4}};
  auto it = kPatterns->find(arch);
  return it == kPatterns->end() ? 0 : it->second;
}

absl::StatusOr<Arch> ReadArch(const GgufFile& f) {
  ASSIGN_OR_RETURN(GgufKv kv, GgufKvCache(f, "f16"));
  Arch a;
  a.name = kv.architecture;
  a.layers = kv.layers;
  a.context = kv.context_length;
  a.n_swa = kv.sliding_window;
  a.k_elements = kv.k_elements;
  a.v_elements = kv.v_elements;
  const std::string p = a.name + ".";
  ASSIGN_OR_RETURN(a.embd, MetaInt(f, p + "embedding_length", 0));
  ASSIGN_OR_RETURN(a.heads, MetaInt(f, p + "attention.head_count", 0));
  if (a.embd <= 0 || a.heads <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("GGUF ", p, "embedding_length and ", p, "attention.head_count must be > 0"));
  }
  ASSIGN_OR_RETURN(a.head_k, MetaInt(f, p + "attention.key_length", a.embd / a.heads));
  ASSIGN_OR_RETURN(a.head_v, MetaInt(f, p + "attention.value_length", a.embd / a.heads));
  ASSIGN_OR_RETURN(a.ff, MetaInt(f, p + "feed_forward_length", 0));
  ASSIGN_OR_RETURN(a.experts, MetaInt(f, p + "expert_count", 0));
  ASSIGN_OR_RETURN(a.experts_used, MetaInt(f, p + "expert_used_count", 0));
  ASSIGN_OR_RETURN(a.ff_expert, MetaInt(f, p + "expert_feed_forward_length", a.ff));
  ASSIGN_OR_RETURN(int64_t shared, MetaInt(f, p + "expert_shared_count", 0));
  ASSIGN_OR_RETURN(int64_t ff_shared,
                   MetaInt(f, p + "expert_shared_feed_forward_length", a.ff_expert));
  if (shared > 0 && ff_shared > (int64_t{1} << 40) / shared) {
    return absl::InvalidArgumentError(absl::StrCat("GGUF ", p, "expert_shared_count=", shared,
                                                   " x its feed_forward_length is out of range"));
  }
  a.ff_shared = shared * ff_shared;
  a.recurrent = Meta(f, p + "ssm.state_size") != nullptr || Meta(f, p + "wkv.head_size") != nullptr;
  a.mla = Meta(f, p + "attention.kv_lora_rank") != nullptr;
  a.moe.assign(static_cast<size_t>(a.layers), false);
  for (const GgufTensor& t : f.tensors) {
    if (t.name == "token_embd.weight" && t.dims.size() >= 2) a.vocab = t.dims[1];
    if (a.vocab == 0 && t.name == "output.weight" && t.dims.size() >= 2) a.vocab = t.dims[1];
    const int64_t il = TensorLayer(t.name, a.layers);
    if (il >= 0 && il < a.layers && IsExpertTensor(t.name)) a.moe[static_cast<size_t>(il)] = true;
  }
  if (a.vocab <= 0) {
    return absl::InvalidArgumentError(
        "GGUF has no token_embd.weight or output.weight [n_embd, n_vocab] to size the logits");
  }
  a.swa.assign(static_cast<size_t>(a.layers), false);
  if (a.n_swa > 0) {
    auto pattern = f.int_arrays.find(p + "attention.sliding_window_pattern");
    const int64_t n = SwaPattern(a.name);
    if (pattern != f.int_arrays.end() && static_cast<int64_t>(pattern->second.size()) == a.layers) {
      for (int64_t il = 0; il < a.layers; ++il) {
        a.swa[static_cast<size_t>(il)] = pattern->second[static_cast<size_t>(il)] != 0;
      }
    } else if (n > 0) {
      for (int64_t il = 0; il < a.layers; ++il) a.swa[static_cast<size_t>(il)] = il % n < n - 1;
    } else {
      a.swa_pattern_unknown = true;  // llama.cpp treats such layers as full; so do we
    }
  }
  return a;
}

// The request, resolved to what llama-server runs with.
struct Resolved {
  LlamaCppConfig c;
  int64_t devices = 1;
  bool fa = true;
  int64_t type_k = 1, type_v = 1;
  int64_t n_ctx = 0, n_ctx_seq = 0, n_stream = 1, ubatch = 0;
  int64_t cells = 0, swa_cells = 0;  // all streams
  std::vector<float> splits;         // cumulative, normalised (load_tensors)
};

absl::Status Range(const char* field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("llama_cpp.", field, "=", v, " must be in [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Resolved> Resolve(const Arch& a, const EstimateRequest& r) {
  Resolved out;
  out.c = r.llama_cpp;
  LlamaCppConfig& c = out.c;
  const Parallelism& p = r.parallelism;
  if (p.tp != 1 || p.ep != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tp=", p.tp, " ep=", p.ep,
        ": llama.cpp splits layers over GPUs (-sm layer); give the GPU count as pp, tp=1, ep=1"));
  }
  if (p.pp < 1 || p.pp > kMaxDevices) {
    return absl::InvalidArgumentError(
        absl::StrCat("pp=", p.pp, " (GPUs of one llama-server) must be in [1, ", kMaxDevices, "]"));
  }
  out.devices = p.pp;
  if (r.gpu_memory_bytes <= 0 || r.gpu_memory_bytes > limits::kMaxGpuMemoryBytes) {
    return absl::InvalidArgumentError(absl::StrCat("gpu_memory_bytes=", r.gpu_memory_bytes,
                                                   " must be in (0, ", limits::kMaxGpuMemoryBytes,
                                                   "]"));
  }
  if (r.kv_cache_dtype != KvCacheDType::kAuto || r.dtype_set) {
    return absl::InvalidArgumentError(
        "dtype and kv_cache_dtype are vLLM's; a GGUF fixes each tensor's type, and llama.cpp's "
        "cache types are llama_cpp.cache_type_k / cache_type_v (-ctk / -ctv)");
  }
  RETURN_IF_ERROR(Range("n_ctx", c.n_ctx, 0, limits::kMaxContextTokens));
  RETURN_IF_ERROR(Range("n_parallel", c.n_parallel, 0, kMaxSlots));
  RETURN_IF_ERROR(Range("n_batch", c.n_batch, 1, int64_t{1} << 20));
  RETURN_IF_ERROR(Range("n_ubatch", c.n_ubatch, 1, int64_t{1} << 20));
  RETURN_IF_ERROR(Range("n_gpu_layers", c.n_gpu_layers, -1, int64_t{1} << 20));
  RETURN_IF_ERROR(Range("n_cpu_moe", c.n_cpu_moe, 0, a.layers));
  RETURN_IF_ERROR(Range("fit_margin_bytes", c.fit_margin_bytes, 0, r.gpu_memory_bytes));
  RETURN_IF_ERROR(Range("concurrency", r.concurrency, 0, kMaxSlots));
  RETURN_IF_ERROR(Range("context_tokens", r.context_tokens, 0, limits::kMaxContextTokens));
  ASSIGN_OR_RETURN(out.type_k, GgmlCacheType("llama_cpp.cache_type_k=", c.cache_type_k));
  ASSIGN_OR_RETURN(out.type_v, GgmlCacheType("llama_cpp.cache_type_v=", c.cache_type_v));
  out.fa = c.flash_attn != FlashAttn::kOff;
  // llama-context.cpp: "quantized V cache was requested, but this requires Flash Attention".
  if (!out.fa && GgmlTypeIsQuantized(out.type_v)) {
    return absl::InvalidArgumentError(absl::StrCat("llama_cpp.cache_type_v=", c.cache_type_v,
                                                   " needs flash attention (flash_attn=off)"));
  }
  if (!c.tensor_split.empty()) {
    if (static_cast<int64_t>(c.tensor_split.size()) != out.devices) {
      return absl::InvalidArgumentError(absl::StrCat("llama_cpp.tensor_split has ",
                                                     c.tensor_split.size(),
                                                     " entries for pp=", out.devices, " GPUs"));
    }
    double sum = 0;
    for (double w : c.tensor_split) {
      if (!(w >= 0 && w <= 1e6)) {
        return absl::InvalidArgumentError(
            absl::StrCat("llama_cpp.tensor_split entry ", w, " must be in [0, 1e6]"));
      }
      sum += w;
    }
    if (!(sum > 0)) {
      return absl::InvalidArgumentError("llama_cpp.tensor_split must not be all zero");
    }
  }
  // load_tensors: the split points, cumulative and normalised, in float as llama.cpp has them.
  // Without -ts it splits by free memory: equal on identical, empty GPUs.
  out.splits.assign(static_cast<size_t>(out.devices), 1.0f);
  if (!c.tensor_split.empty()) {
    for (size_t i = 0; i < out.splits.size(); ++i) {
      out.splits[i] = static_cast<float>(c.tensor_split[i]);
    }
  }
  float sum = 0;
  for (float& s : out.splits) {
    sum += s;
    s = sum;
  }
  for (float& s : out.splits) s /= sum;

  // Slots: -np, else one per sequence of the workload, else llama-server's auto (4, unified) or
  // Ollama's 1.
  if (c.n_parallel == 0) {
    if (r.concurrency > 0) {
      c.n_parallel = r.concurrency;
    } else if (c.ollama) {
      c.n_parallel = kOllamaSlots;
    } else {
      c.n_parallel = kAutoSlots;
      c.kv_unified = true;
    }
  }
  if (c.ollama && c.cache_type_k != c.cache_type_v) {
    return absl::InvalidArgumentError(absl::StrCat("llama_cpp.cache_type_k=", c.cache_type_k,
                                                   " and cache_type_v=", c.cache_type_v,
                                                   " with ollama: OLLAMA_KV_CACHE_TYPE sets both"));
  }
  if (c.ollama && c.kv_unified) {
    return absl::InvalidArgumentError(
        "llama_cpp.kv_unified with ollama: Ollama gives each of its OLLAMA_NUM_PARALLEL slots its "
        "own context");
  }
  // Ollama's context per request: by the VRAM of the GPUs, at most the model's.
  if (c.ollama && c.n_ctx == 0 && r.context_tokens == 0) {
    int64_t per_slot = OllamaContext(r.gpu_memory_bytes * out.devices);
    if (a.context > 0) per_slot = std::min(per_slot, a.context);
    c.n_ctx = per_slot * c.n_parallel;
  }
  // Context: -c, else every slot the workload's context, else the model's (llama-context.cpp:
  // n_ctx 0 is n_ctx_train).
  if (c.n_ctx == 0) {
    c.n_ctx = r.context_tokens > 0 ? r.context_tokens * c.n_parallel : a.context;
  }
  if (c.n_ctx <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GGUF has no ", a.name, ".context_length: give llama_cpp.n_ctx (-c) or context_tokens"));
  }
  if (c.n_ctx > limits::kMaxContextTokens) {
    return absl::InvalidArgumentError(absl::StrCat("n_ctx=", c.n_ctx,
                                                   " (slots x context) is more than ",
                                                   limits::kMaxContextTokens, " tokens"));
  }
  out.n_ctx = Pad(c.n_ctx, kCtxPad);
  if (c.kv_unified) {
    out.n_ctx_seq = out.n_ctx;
    out.n_stream = 1;
  } else {
    out.n_ctx_seq = Pad(out.n_ctx / c.n_parallel, kCtxPad);
    out.n_ctx = out.n_ctx_seq * c.n_parallel;
    out.n_stream = c.n_parallel;
  }
  out.cells = out.n_ctx;
  // llama-context.cpp: n_batch is at most n_ctx with causal attention, n_ubatch at most n_batch.
  out.ubatch = std::min({c.n_ubatch, c.n_batch, out.n_ctx});
  if (a.n_swa > 0 && !c.swa_full) {
    const int64_t per_stream = out.cells / out.n_stream;
    out.swa_cells =
        Pad(std::min(per_stream, a.n_swa * (c.kv_unified ? c.n_parallel : 1) + out.ubatch),
            kCtxPad) *
        out.n_stream;
  }
  return out;
}

// One layout: where each part sits for n_gpu_layers = `ngl`.
struct Layout {
  std::vector<StageMemory> gpus;
  int64_t host_bytes = 0;
  int64_t gpu_layers = 0;
};

Layout Place(const GgufFile& f, const Arch& a, const Resolved& res, int64_t ngl,
             const LlamaCppMmproj* mmproj) {
  const int64_t n_layer = a.layers;
  const int64_t devices = res.devices;
  const int64_t i_gpu_start = std::max<int64_t>(n_layer + 1 - ngl, 0);
  const int64_t act = std::min(ngl, n_layer + 1);
  // load_tensors get_layer_buft_list: -1 for the CPU.
  auto device_of = [&](int64_t il) -> int64_t {
    if (il < i_gpu_start || il - i_gpu_start >= act) return -1;
    const float at = static_cast<float>(il - i_gpu_start) / static_cast<float>(act);
    return std::upper_bound(res.splits.begin(), res.splits.end(), at) - res.splits.begin();
  };
  Layout out;
  out.gpus.resize(static_cast<size_t>(devices));
  for (int64_t d = 0; d < devices; ++d) out.gpus[static_cast<size_t>(d)].pp_stage = d;
  const int64_t out_dev = device_of(n_layer);
  const int64_t T = res.ubatch;
  const int64_t E = a.embd, H = a.heads;

  // Weights.
  bool tied = true;
  int64_t embd_bytes = 0;
  bool output_quantized = false;
  for (const GgufTensor& t : f.tensors) {
    if (t.name == "output.weight") {
      tied = false;
      output_quantized = GgmlTypeIsQuantized(t.type);
    }
    if (t.name == "token_embd.weight") {
      embd_bytes = GpuAllocBytes(t);
      if (tied) output_quantized = GgmlTypeIsQuantized(t.type);
    }
    const int64_t il = TensorLayer(t.name, n_layer);
    int64_t dev = il < 0 ? -1 : device_of(il);
    if (dev >= 0 && il < res.c.n_cpu_moe && IsExpertTensor(t.name)) dev = -1;  // --n-cpu-moe
    if (dev < 0) {
      out.host_bytes += t.bytes;
    } else {
      out.gpus[static_cast<size_t>(dev)].weights_bytes += GpuAllocBytes(t);
    }
  }
  // A tied output: llama.cpp loads token_embd again as the output (TENSOR_DUPLICATED).
  if (tied && out_dev >= 0) out.gpus[static_cast<size_t>(out_dev)].weights_bytes += embd_bytes;

  // KV cache and the compute peaks, per layer.
  std::vector<int64_t> layer_peak(static_cast<size_t>(devices), 0);
  std::vector<bool> has_full(static_cast<size_t>(devices), false);
  std::vector<bool> has_swa(static_cast<size_t>(devices), false);
  int64_t cpu_peak = 0;
  bool cpu_layers = false;
  auto cells_of = [&](int64_t il) {
    return a.swa[static_cast<size_t>(il)] && res.swa_cells > 0 ? res.swa_cells : res.cells;
  };
  for (int64_t il = 0; il < n_layer; ++il) {
    const int64_t dev = device_of(il);
    const size_t l = static_cast<size_t>(il);
    const int64_t cells = cells_of(il);
    const int64_t kv =
        (GgmlRowBytes(res.type_k, a.k_elements[l]) + GgmlRowBytes(res.type_v, a.v_elements[l])) *
        cells;
    const int64_t kv_heads = a.head_k > 0 ? a.k_elements[l] / a.head_k : 0;
    const int64_t n_kv = cells / res.n_stream;  // the cells one stream's attention sees
    int64_t attn = kF32 * T * (H * a.head_k + H * a.head_v + 2 * E);
    if (kv_heads > 0) {
      attn += res.fa ? kF32 * T * 2 * kv_heads * a.head_k : kF32 * n_kv * T * H;
    }
    int64_t ffn = 0;
    if (a.moe[l]) {
      ffn = kF32 * T *
            (a.experts_used * (2 * a.ff_expert + E) + 2 * E + 2 * a.experts + 2 * a.ff_shared);
    } else {
      ffn = kF32 * T * (2 * a.ff + 2 * E);
    }
    const int64_t peak = std::max(attn, ffn);
    if (dev < 0) {
      out.host_bytes += kv;
      cpu_peak = std::max(cpu_peak, peak);
      cpu_layers = true;
      continue;
    }
    StageMemory& g = out.gpus[static_cast<size_t>(dev)];
    if (g.num_layers == 0) g.first_layer = il;
    ++g.num_layers;
    ++out.gpu_layers;
    g.kv_cache_bytes += kv;
    g.kv_cache_bytes_per_token += kv / cells;
    layer_peak[static_cast<size_t>(dev)] = std::max(layer_peak[static_cast<size_t>(dev)], peak);
    if (kv_heads > 0) {
      (a.swa[l] && res.swa_cells > 0 ? has_swa : has_full)[static_cast<size_t>(dev)] = true;
    }
  }
  const int64_t mask_t = Pad(T, kMaskPad);
  const int64_t mask_elem = res.fa ? 2 : 4;  // cast to f16 for flash attention
  const int64_t full_mask = res.cells / res.n_stream * mask_t;
  const int64_t swa_mask = res.swa_cells / res.n_stream * mask_t;
  const int64_t logits = kF32 * T * (E + a.vocab);
  const int64_t widest = std::max({E, a.ff, a.experts_used * a.ff_expert});
  for (int64_t d = 0; d < devices; ++d) {
    StageMemory& g = out.gpus[static_cast<size_t>(d)];
    const size_t i = static_cast<size_t>(d);
    int64_t compute = 0;
    if (g.num_layers > 0) {
      compute = layer_peak[i] + kF32 * T * E + (has_full[i] ? full_mask * mask_elem : 0) +
                (has_swa[i] ? swa_mask * mask_elem : 0);
    }
    if (d == out_dev) compute = std::max(compute, logits);
    // tools/mtmd: the mmproj's weights and clip's own scheduler buffer live on the first GPU
    // (mtmd_context_params.use_gpu), whatever -ngl leaves there.
    const bool clip = d == 0 && mmproj != nullptr;
    if (clip) {
      g.weights_bytes += mmproj->weights_bytes;
      compute += mmproj->compute_bytes;
    }
    g.activation_peak_bytes = compute;
    const bool used = g.num_layers > 0 || d == out_dev || clip;
    if (used) {
      g.cuda_context_bytes = kCudaContextBytes;
      // ggml's CUDA pool: one f32 [widest, n_ubatch] temporary, the f16 logits of an unquantized
      // output matmul through cuBLAS, and cuBLAS' workspace.
      g.engine_overhead_bytes = kCublasWorkspaceBytes + kF32 * T * widest +
                                (d == out_dev && !output_quantized ? 2 * T * a.vocab : 0);
    }
    g.kv_cache_tokens = g.num_layers > 0 ? res.cells : 0;
    g.total_bytes = g.weights_bytes + g.kv_cache_bytes + g.activation_peak_bytes +
                    g.cuda_context_bytes + g.engine_overhead_bytes;
  }
  // Host: the inputs (embeddings, the f32 masks), CPU layers and a CPU output; the logits buffer.
  int64_t host_compute = kF32 * T * E + full_mask * 4 + swa_mask * 4;
  if (cpu_layers) host_compute += cpu_peak;
  if (out_dev < 0) host_compute = std::max(host_compute, logits);
  out.host_bytes += host_compute + kF32 * a.vocab * res.c.n_parallel;
  return out;
}

int64_t MaxHigh(const Margins& m, const Layout& l) {
  int64_t most = 0;
  for (const StageMemory& s : l.gpus) {
    most = std::max(most, s.total_bytes + StageMarginBytes(m, Engine::kLlamaCpp, s).above);
  }
  return most;
}

absl::Status CheckMagnitude(const Arch& a, const Resolved& r) {
  // Every product the layout forms, in long double, so a hostile header is refused by name
  // before any int64 arithmetic could wrap.
  using LD = long double;
  const LD T = static_cast<LD>(r.ubatch);
  const LD cells = static_cast<LD>(r.cells);
  LD kv_elements = 0;
  for (size_t l = 0; l < a.k_elements.size(); ++l) {
    kv_elements += static_cast<LD>(a.k_elements[l]) + static_cast<LD>(a.v_elements[l]);
  }
  const LD ffn = 2 * static_cast<LD>(a.ff) + 2 * static_cast<LD>(a.embd) +
                 static_cast<LD>(a.experts_used) *
                     (2 * static_cast<LD>(a.ff_expert) + static_cast<LD>(a.embd)) +
                 2 * static_cast<LD>(a.experts) + 2 * static_cast<LD>(a.ff_shared);
  const LD terms[] = {
      cells * T * static_cast<LD>(a.heads) * 4,
      T * (static_cast<LD>(a.embd) + static_cast<LD>(a.vocab)) * 8, kv_elements * cells * 4,
      T * ffn * 8,
      T * static_cast<LD>(a.heads) * (static_cast<LD>(a.head_k) + static_cast<LD>(a.head_v)) * 8};
  for (LD t : terms) {
    if (t > static_cast<LD>(int64_t{1} << 60)) {
      return absl::InvalidArgumentError(
          absl::StrCat("n_ctx=", r.n_ctx, " x n_ubatch=", r.ubatch,
                       " is out of range for this model: more than 1 EiB per GPU"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LlamaCppEstimate> EstimateLlamaCpp(const GgufFile& file,
                                                  const EstimateRequest& request,
                                                  const LlamaCppMmproj* mmproj) {
  if (request.engine != Engine::kLlamaCpp) {
    return absl::InvalidArgumentError(absl::StrCat("engine=", EngineName(request.engine),
                                                   ": a GGUF file is served by engine=llama.cpp"));
  }
  ASSIGN_OR_RETURN(Arch a, ReadArch(file));
  ASSIGN_OR_RETURN(Resolved res, Resolve(a, request));
  RETURN_IF_ERROR(CheckMagnitude(a, res));
  Margins margins = LlamaCppMargins();
  if (a.recurrent) {
    margins.total = 0.5;
    margins.widened.push_back(absl::StrCat(
        "architecture ", a.name, " keeps a recurrent state per slot that is not modelled"));
  }
  if (a.mla) {
    margins.total = 0.5;
    margins.widened.push_back(
        absl::StrCat("architecture ", a.name,
                     " uses MLA: which of K and V llama.cpp caches depends on the build"));
  }
  if (res.devices > 1) {
    margins.widened.push_back(
        "more than one GPU: llama.cpp's pipeline-parallel scheduler keeps copies of each split's "
        "inputs, not modelled");
  }
  if (res.c.ollama) {
    margins.total = std::max(margins.total, 0.1);
    margins.widened.push_back(
        "ollama: its own engine runs some architectures (gemma3, qwen3, llama4 ...) with its own "
        "KV cache and graph code, and its scheduler reserves GPU memory of its own: llama.cpp's "
        "layout is the estimate, the band is wider");
  }

  // -ngl: given, or (auto) all of them unless --fit has to leave some on the CPU.
  const int64_t all = a.layers + 1;
  int64_t ngl = request.llama_cpp.n_gpu_layers;
  std::vector<std::string> notes;
  if (ngl < 0) {
    ngl = all;
    if (res.c.fit) {
      const int64_t budget = request.gpu_memory_bytes - res.c.fit_margin_bytes;
      // A GPU's bytes only grow with the layers it takes: the largest count within the budget,
      // by bisection (a hostile header's thousands of layers cost a dozen layouts, not one each).
      if (MaxHigh(margins, Place(file, a, res, ngl, mmproj)) > budget) {
        int64_t lo = 0, hi = all;  // lo fits (or is 0), hi does not
        while (hi - lo > 1) {
          const int64_t mid = lo + (hi - lo) / 2;
          (MaxHigh(margins, Place(file, a, res, mid, mmproj)) <= budget ? lo : hi) = mid;
        }
        ngl = lo;
      }
      if (ngl < all) {
        notes.push_back(absl::StrCat(
            "-ngl auto with --fit: ", ngl, " of ", all,
            " layers (output included) keep every GPU's high end within the GPU less the ",
            BytesToGiB(res.c.fit_margin_bytes),
            " GiB fit target; llama.cpp's own fit may lower -c instead when -c is not given"));
      }
    }
  }
  ngl = std::min(ngl, all);
  Layout layout = Place(file, a, res, ngl, mmproj);

  LlamaCppEstimate out;
  out.architecture = a.name;
  out.layers = a.layers;
  out.gpu_layers = layout.gpu_layers;
  out.n_ctx_seq = res.n_ctx_seq;
  out.kv_cells = res.cells;
  out.swa_cells = res.swa_cells;
  out.resolved = res.c;
  out.resolved.n_ctx = res.n_ctx;
  out.resolved.n_gpu_layers = ngl;
  out.mmproj = mmproj != nullptr;
  MemoryEstimate& m = out.memory;
  m.engine = Engine::kLlamaCpp;
  m.parallelism = request.parallelism;
  m.gpu_memory_bytes = request.gpu_memory_bytes;
  m.stages = std::move(layout.gpus);
  m.host_bytes = layout.host_bytes;
  m.notes = std::move(notes);
  if (a.swa_pattern_unknown) {
    m.notes.push_back(absl::StrCat(
        "the GGUF declares a sliding window but llama.cpp's architecture ", a.name,
        " has no sliding-window layers fleetplan knows of: every layer is counted at full size"));
  }
  if (request.llama_cpp.flash_attn == FlashAttn::kAuto) {
    m.notes.push_back(
        "flash attention auto: counted on (CUDA has kernels for the usual head sizes); where it "
        "falls back to off, the compute buffer also holds the f32 KQ matrix");
  }
  if (layout.gpu_layers < a.layers) {
    m.notes.push_back(absl::StrCat(a.layers - layout.gpu_layers, " of ", a.layers,
                                   " layers run on the CPU (", BytesToGiB(m.host_bytes),
                                   " GiB of host memory)"));
  }
  // The replica's capacity: tokens of the cache; sequences of the workload's context it holds.
  m.kv_cache_tokens = res.cells;
  m.kv_cache_tokens_low = res.cells;
  m.max_model_len = res.n_ctx_seq;
  const int64_t context = request.context_tokens > 0 ? request.context_tokens : res.n_ctx_seq;
  const int64_t slots = res.c.n_parallel;
  m.max_concurrency = context > res.n_ctx_seq ? 0
                      : res.c.kv_unified      ? std::min(slots, res.cells / context)
                                              : slots;
  m.max_concurrency_low = m.max_concurrency;
  if (request.context_tokens > res.n_ctx_seq) {
    m.reason = absl::StrCat("context_tokens=", request.context_tokens, " is more than a slot's ",
                            res.n_ctx_seq, " tokens (-c ", res.n_ctx, " over ", slots, " slots)");
  } else if (request.concurrency > m.max_concurrency) {
    m.reason = absl::StrCat("concurrency=", request.concurrency, " needs more than the ",
                            m.max_concurrency, " sequences of ", context, " tokens that -np ",
                            slots, " and -c ", res.n_ctx, " hold");
  }
  ConcludeEstimate(margins, m);
  return out;
}

namespace {

// clip.cpp's graph for one pass of P tokens (batch 1): per layer the residual and the normed input
// [d, P] f32 live with the larger of attention (q, k, v [d, P] f32 and, without flash attention,
// the f32 scores [P, P, heads]; soft_max in place) and the MLP ([inter, P] f32, twice gated); a
// windowed tower (Qwen2.5-VL) also holds its [P, P] mask (f16 for flash attention).
int64_t ClipComputeBytes(int64_t P, int64_t D, int64_t F, int64_t h, bool gated, bool windowed,
                         bool fa) {
  const int64_t attn = kF32 * P * 3 * D + (fa ? 0 : kF32 * P * P * h);
  const int64_t ffn = kF32 * P * F * (gated ? 2 : 1);
  return kF32 * P * 2 * D + std::max(attn, ffn) + (windowed ? (fa ? 2 : 4) * P * P : 0);
}

absl::Status CheckImage(const LlamaCppConfig& c) {
  RETURN_IF_ERROR(Range("images", c.images, 0, kMaxSlots));
  RETURN_IF_ERROR(Range("image_height", c.image_height, 0, int64_t{1} << 16));
  return Range("image_width", c.image_width, 0, int64_t{1} << 16);
}

}  // namespace

absl::StatusOr<LlamaCppMmproj> LlamaCppMmprojFromGguf(const GgufFile& f,
                                                      const EstimateRequest& request,
                                                      std::vector<std::string>& notes) {
  const LlamaCppConfig& c = request.llama_cpp;
  RETURN_IF_ERROR(CheckImage(c));
  const std::string* arch = Meta(f, "general.architecture");
  if (arch == nullptr || *arch != "clip") {
    return absl::InvalidArgumentError(
        absl::StrCat("mmproj: GGUF general.architecture=", arch == nullptr ? "(none)" : *arch,
                     " is not an mmproj (clip) file"));
  }
  ASSIGN_OR_RETURN(const int64_t D, MetaInt(f, "clip.vision.embedding_length", 0));
  ASSIGN_OR_RETURN(const int64_t F, MetaInt(f, "clip.vision.feed_forward_length", 0));
  ASSIGN_OR_RETURN(const int64_t h, MetaInt(f, "clip.vision.attention.head_count", 0));
  ASSIGN_OR_RETURN(const int64_t side, MetaInt(f, "clip.vision.image_size", 0));
  ASSIGN_OR_RETURN(const int64_t patch, MetaInt(f, "clip.vision.patch_size", 0));
  if (D <= 0 || D > (int64_t{1} << 20) || F > (int64_t{1} << 20) || h <= 0 || h > 4096 ||
      patch <= 0 || patch > 4096 || side > (int64_t{1} << 16)) {
    return absl::InvalidArgumentError(
        absl::StrCat("mmproj: clip.vision.embedding_length=", D, ", attention.head_count=", h,
                     ", patch_size=", patch, ", image_size=", side, " do not describe a tower"));
  }
  const std::string* projector = Meta(f, "clip.projector_type");
  const std::string type = projector == nullptr ? "mlp" : *projector;
  LlamaCppMmproj out;
  bool gated = false, cls = false;
  for (const GgufTensor& t : f.tensors) {
    out.weights_bytes += GpuAllocBytes(t);
    gated = gated || t.name == "v.blk.0.ffn_gate.weight";
    cls = cls || t.name == "v.class_embd";
  }
  // Native-resolution projectors run the image at its size (in units of two patches, the merge
  // of Qwen2-VL and Pixtral-type towers); the rest at clip.vision.image_size.
  const bool native = type.rfind("qwen2", 0) == 0 || type == "pixtral" || type == "kimivl";
  int64_t P = 0;
  if (native) {
    int64_t height = c.image_height, width = c.image_width;
    if (height <= 0 || width <= 0) {
      height = width = 1024;
      notes.push_back(
          "mmproj: no image size given (llama_cpp.image_height/image_width); clip's compute "
          "buffer is counted for one 1024 x 1024 image, and it grows with larger images");
    }
    const int64_t unit = 2 * patch;
    P = ((height + unit - 1) / unit * 2) * ((width + unit - 1) / unit * 2);
    notes.push_back(absl::StrCat("mmproj: projector ", type, " runs the image at its size (", P,
                                 " patches, rounded to the merge as its preprocessing does)"));
  } else {
    if (side <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("mmproj: projector ", type,
                       " without clip.vision.image_size: its input size is unknown"));
    }
    P = (side / patch) * (side / patch) + (cls ? 1 : 0);
  }
  if (P <= 0 || P > (int64_t{1} << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("mmproj: ", P, " patches per encoder pass is out of range"));
  }
  out.patches = P;
  const bool fa = c.flash_attn != FlashAttn::kOff;
  out.compute_bytes = ClipComputeBytes(
      P, D, F, h, gated, type.find("2.5") != std::string::npos || type == "qwen25vl_merger", fa);
  notes.push_back(absl::StrCat("mmproj: ", BytesToGiB(out.weights_bytes),
                               " GiB of weights from the file, clip's compute buffer for ", P,
                               "-patch passes ", BytesToGiB(out.compute_bytes),
                               " GiB, on the first GPU"));
  return out;
}

absl::StatusOr<LlamaCppMmproj> LlamaCppMmprojFromModel(const ModelSpec& spec,
                                                       const EstimateRequest& request,
                                                       std::vector<std::string>& notes) {
  if (!spec.vision) return absl::InvalidArgumentError("the model has no vision tower");
  const VisionSpec& v = *spec.vision;
  const LlamaCppConfig& c = request.llama_cpp;
  RETURN_IF_ERROR(CheckImage(c));
  LlamaCppMmproj out;
  bool gated = false;
  for (const std::vector<Tensor>* part : {&v.tower, &v.projector}) {
    for (const Tensor& t : *part) {
      // convert_hf_to_gguf.py --mmproj (outtype f16): 1-D tensors in f32, the rest in f16; each
      // tensor 128-byte aligned in the CUDA buffer.
      const int64_t each = Pad(t.out * t.in * (t.in == 1 ? kF32 : 2), kCudaAlignment);
      out.weights_bytes += each * t.copies;
      gated = gated || std::string(t.name) == "gate";
    }
  }
  int64_t height = c.image_height, width = c.image_width;
  if (v.image_size <= 0 && (height <= 0 || width <= 0)) {
    height = width = 1024;
    notes.push_back(
        "mmproj: no image size given (llama_cpp.image_height/image_width); clip's compute "
        "buffer is counted for one 1024 x 1024 image, and it grows with larger images");
  }
  const VisionPasses passes =
      VisionTowerPasses(spec, std::max<int64_t>(c.images, 1), height, width);
  const int64_t P = passes.tokens, D = v.hidden_size, F = v.intermediate_size, h = v.num_heads;
  if (P <= 0 || P > (int64_t{1} << 20) || D <= 0 || F < 0 || h <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("llama_cpp.images of ", height, " x ", width,
                                                   " px make ", P, " patches per encoder pass"));
  }
  const bool fa = c.flash_attn != FlashAttn::kOff;
  out.compute_bytes = ClipComputeBytes(P, D, F, h, gated, v.model_type == "qwen2_5_vl", fa);
  out.patches = P;
  notes.push_back(
      absl::StrCat("mmproj: the vision tower as convert_hf_to_gguf.py --mmproj writes it (f16), ",
                   BytesToGiB(out.weights_bytes), " GiB, and clip's compute buffer for ", P,
                   "-patch passes without ",
                   fa ? "the f32 attention scores (flash attention)" : "flash attention", ", ",
                   BytesToGiB(out.compute_bytes), " GiB, on the first GPU"));
  return out;
}

absl::StatusOr<GgufFile> LlamaCppConvert(const ModelSpec& spec, const EstimateRequest& request) {
  const std::string& type = request.llama_cpp.file_type;
  if (type.empty()) {
    return absl::InvalidArgumentError(
        "engine=llama.cpp from a config.json needs llama_cpp.file_type (estimate --gguf-type: "
        "f16, q8_0, q4_K_M ...), the GGUF it would be converted to; or give the GGUF itself "
        "(estimate --gguf=FILE)");
  }
  return GgufFromModel(spec, "llama_cpp.file_type", type);
}

absl::StatusOr<LlamaCppEstimate> EstimateLlamaCppFromModel(const ModelSpec& spec,
                                                           const EstimateRequest& request,
                                                           const GgufFile* converted) {
  std::optional<GgufFile> own;
  if (converted == nullptr) {
    ASSIGN_OR_RETURN(own, LlamaCppConvert(spec, request));
    converted = &*own;
  }
  const GgufFile& file = *converted;
  const std::string& type = request.llama_cpp.file_type;
  std::vector<std::string> notes;
  std::optional<LlamaCppMmproj> mmproj;
  // The vision-language wrappers whose projector tools/mtmd (clip.cpp projector types) runs;
  // another wrapper's text model is served alone.
  static const auto* const kMtmd =
      new std::set<std::string>{"gemma3",   "qwen2_vl", "qwen2_5_vl", "internvl_chat",
                                "minicpmv", "llava",    "llava_next", "mistral3"};
  if (spec.vision && kMtmd->count(spec.wrapper_type) > 0) {
    ASSIGN_OR_RETURN(mmproj, LlamaCppMmprojFromModel(spec, request, notes));
  } else if (spec.vision) {
    notes.push_back(absl::StrCat("llama.cpp's tools/mtmd has no projector for model_type \"",
                                 spec.wrapper_type,
                                 "\": the text model alone, without its vision tower"));
  }
  ASSIGN_OR_RETURN(LlamaCppEstimate out,
                   EstimateLlamaCpp(file, request, mmproj ? &*mmproj : nullptr));
  auto type_name = file.metadata.find("fleetplan.converted_file_type");
  out.model_path =
      absl::StrCat("MODEL-", type_name == file.metadata.end() ? type : type_name->second, ".gguf");
  if (mmproj) out.mmproj_path = "mmproj-MODEL-f16.gguf";
  notes.insert(notes.begin(),
               absl::StrCat("weights as convert_hf_to_gguf.py and llama-quantize ", type,
                            " would write them (", BytesToGiB(file.weights_bytes),
                            " GiB, no importance matrix); a real GGUF's header is exact: give "
                            "--gguf=FILE"));
  for (std::string& n : notes) out.memory.notes.push_back(std::move(n));
  return out;
}

std::string LlamaServerCommand(const std::string& model_path, const LlamaCppEstimate& e) {
  const LlamaCppConfig& c = e.resolved;
  if (c.ollama) {
    // Ollama takes its settings from the environment of `ollama serve` (docs/faq.md).
    std::string line =
        absl::StrCat("OLLAMA_CONTEXT_LENGTH=", e.n_ctx_seq, " OLLAMA_NUM_PARALLEL=", c.n_parallel);
    if (c.flash_attn == FlashAttn::kOn) absl::StrAppend(&line, " OLLAMA_FLASH_ATTENTION=1");
    if (c.cache_type_k != "f16") absl::StrAppend(&line, " OLLAMA_KV_CACHE_TYPE=", c.cache_type_k);
    absl::StrAppend(&line, " ollama serve");
    if (c.n_gpu_layers <= e.layers) {
      absl::StrAppend(&line, "  # and num_gpu ", c.n_gpu_layers, " in the request's options");
    }
    return line;
  }
  std::string line = absl::StrCat("llama-server -m ",
                                  ShellQuote(!model_path.empty()     ? model_path
                                             : !e.model_path.empty() ? e.model_path
                                                                     : "MODEL.gguf"),
                                  " -c ", c.n_ctx, " -np ", c.n_parallel, " -ngl ", c.n_gpu_layers);
  if (e.mmproj) {
    absl::StrAppend(&line, " --mmproj ",
                    ShellQuote(e.mmproj_path.empty() ? "MMPROJ.gguf" : e.mmproj_path));
  }
  if (c.kv_unified) absl::StrAppend(&line, " --kv-unified");
  if (!c.tensor_split.empty()) {
    absl::StrAppend(&line, " -ts ", absl::StrJoin(c.tensor_split, ","));
  }
  if (c.cache_type_k != "f16") absl::StrAppend(&line, " -ctk ", c.cache_type_k);
  if (c.cache_type_v != "f16") absl::StrAppend(&line, " -ctv ", c.cache_type_v);
  if (c.flash_attn != FlashAttn::kAuto) {
    absl::StrAppend(&line, " -fa ", FlashAttnNames().Name(c.flash_attn));
  }
  if (c.n_batch != 2048) absl::StrAppend(&line, " -b ", c.n_batch);
  if (c.n_ubatch != 512) absl::StrAppend(&line, " -ub ", c.n_ubatch);
  if (c.n_cpu_moe > 0) absl::StrAppend(&line, " --n-cpu-moe ", c.n_cpu_moe);
  if (c.swa_full) absl::StrAppend(&line, " --swa-full");
  if (!c.fit) absl::StrAppend(&line, " --fit off");
  return line;
}

}  // namespace fleetplan::estimator
