#ifndef FLEETPLAN_PLANNER_ESTIMATOR_LLAMA_CPP_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_LLAMA_CPP_H_

// llama.cpp's llama-server on CUDA GPUs, from a GGUF file's header (gguf.h): what each GPU and
// the host hold. Each part follows the llama.cpp source named beside it (build b6xxx-b7xxx, 2025):
//
//   weights   each tensor's bytes from its ggml type, on the device its layer is assigned to
//             (src/llama-model.cpp load_tensors: the input embedding always on the CPU; with
//             -ngl k the output layer and the last k-1 blocks on the GPUs, split over them by
//             -ts or free memory; a tied output is a copy of token_embd on the output device;
//             --n-cpu-moe N keeps blk.0..N-1's ffn_*_exps on the CPU). Each tensor is rounded to
//             the CUDA buffer's 128-byte alignment, a quantized one padded by a row of 512
//             elements (ggml-cuda.cu ggml_backend_cuda_buffer_type_get_alloc_size).
//   KV cache  per layer with KV, K = row(type_k, n_head_kv x key_length) and V likewise, times the
//             cells (src/llama-kv-cache.cpp: tensors [n_embd, kv_size, n_stream]); cells: -c (0:
//             context_length) padded to 256; without --kv-unified each of the -np slots gets
//             n_ctx/np, padded to 256 (src/llama-context.cpp); sliding-window layers hold
//             min(cells, n_swa x (unified ? np : 1) + n_ubatch) padded to 256 per stream
//             (src/llama-kv-cache-iswa.cpp) unless --swa-full. The layer's device holds it.
//   compute   ggml-alloc's worst-case graph at n_ubatch tokens, reserved once per device
//             (llama-context.cpp sched_reserve). Our model of its liveness: a layer's peak is the
//             larger of attention (without flash attention the f32 KQ [n_kv, n_ubatch, n_head]
//             dominates; soft_max runs in place) and the FFN (gate and up live together; MoE:
//             n_expert_used rows each), plus the KQ mask and the layer input the device receives;
//             the output device also holds the f32 logits [n_vocab, n_ubatch] after the layers.
//             The host buffer holds the inputs (embeddings, the f32 mask) and any CPU layers.
//   context   the CUDA context (engine_constants.h, kCudaContextBytes) and ggml's CUDA pool for
//             matmul temporaries (one f32 [widest, n_ubatch] and cuBLAS' workspace).
//   host      CPU weights and KV, the host compute buffer, and the logits output buffer
//             (n_vocab x slots f32, llama_context::output_reserve).
//
// -ngl auto (-1) with --fit on: the most layers that keep every GPU's high end within the GPU
// less --fit-target (1 GiB); llama.cpp's own fit may lower -c instead when -c is not given. The
// launch line pins -c, -np and -ngl, so what runs is what was estimated. Its logs print each
// buffer ("CUDA0 model buffer size", "llama_kv_cache: size", "compute buffer size"): those are
// the cases that would narrow the band (uncertainty.cc).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/gguf.h"

namespace fleetplan::estimator {

// A multimodal projector (an mmproj GGUF, llama-server --mmproj): the vision encoder's weights and
// the compute buffer clip's own scheduler reserves for its graph (tools/mtmd/clip.cpp), both on
// the first GPU.
struct LlamaCppMmproj {
  int64_t weights_bytes = 0;
  int64_t compute_bytes = 0;
  int64_t patches = 0;  // tokens of the largest encoder pass
};

struct LlamaCppEstimate {
  MemoryEstimate memory;    // stages = GPUs in order (device 0 first); host_bytes beside them
  LlamaCppConfig resolved;  // the values llama-server will run with (-c, -np, -ngl, -fa)
  int64_t n_ctx_seq = 0;    // context one slot can hold
  int64_t kv_cells = 0;     // cells of the full-attention cache (all slots)
  int64_t swa_cells = 0;    // cells of the sliding-window cache (0: none)
  int64_t layers = 0;       // block_count
  int64_t gpu_layers = 0;   // blocks on GPUs
  std::string architecture;
  bool mmproj = false;     // the estimate holds an mmproj (the launch line passes --mmproj)
  std::string model_path;  // from a config.json: the file names the conversion would write
  std::string mmproj_path;
};

// INVALID_ARGUMENT names the request field or GGUF key at fault. `mmproj`, when given, is loaded
// beside the model.
absl::StatusOr<LlamaCppEstimate> EstimateLlamaCpp(const GgufFile& file,
                                                  const EstimateRequest& request,
                                                  const LlamaCppMmproj* mmproj = nullptr);

// The mmproj convert_hf_to_gguf.py --mmproj writes for `spec`'s vision tower and projector (2-D
// tensors in f16, 1-D in f32) and clip.cpp's compute buffer for the largest encoder pass of the
// request's images (llama_cpp.images of image_height x image_width; none: clip's warm-up image,
// the tower's own size, or 1024 x 1024 for a native-resolution tower). clip.cpp builds one graph
// per image or slice (batch 1): per layer the residual and the normed input [d, P] f32 live with
// the larger of attention (q, k, v [d, P] f32, and without flash attention the f32 scores
// [P, P, heads]; soft_max in place) and the MLP ([inter, P] f32, twice when gated); a tower with
// windowed attention (Qwen2.5-VL) also holds its [P, P] window mask. Flash attention follows
// llama_cpp.flash_attn (auto: on, as for the text model). `notes` receives the assumptions.
absl::StatusOr<LlamaCppMmproj> LlamaCppMmprojFromModel(const ModelSpec& spec,
                                                       const EstimateRequest& request,
                                                       std::vector<std::string>& notes);

// An mmproj GGUF file (general.architecture clip, --mmproj FILE): its weights exact from its
// tensors, clip's compute buffer by the same rule from clip.vision.* (embedding_length,
// feed_forward_length, attention.head_count, image_size, patch_size) and clip.projector_type
// (native-resolution projectors -- qwen2vl/qwen2.5vl mergers, pixtral, kimivl -- at the request's
// image, the rest at image_size). INVALID_ARGUMENT names the key at fault.
absl::StatusOr<LlamaCppMmproj> LlamaCppMmprojFromGguf(const GgufFile& mmproj,
                                                      const EstimateRequest& request,
                                                      std::vector<std::string>& notes);

// engine=llama.cpp from a config.json: the GGUF llama.cpp's converter and quantizer would write
// for llama_cpp.file_type (gguf_convert.h) and, for a vision-language model, its mmproj.
// INVALID_ARGUMENT when file_type is unset (there is no default file type to assume) or the
// architecture is not one the converter model knows.
// `converted`, when given, is LlamaCppConvert's result for the same spec and file type (a planner
// converts once and estimates every GPU count).
absl::StatusOr<LlamaCppEstimate> EstimateLlamaCppFromModel(const ModelSpec& spec,
                                                           const EstimateRequest& request,
                                                           const GgufFile* converted = nullptr);
// The GGUF header of `spec` at llama_cpp.file_type (refused when unset).
absl::StatusOr<GgufFile> LlamaCppConvert(const ModelSpec& spec, const EstimateRequest& request);

// `llama-server -m MODEL -c N -np P -ngl K ...`: the flags that realise `estimate`.
std::string LlamaServerCommand(const std::string& model_path, const LlamaCppEstimate& estimate);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_LLAMA_CPP_H_
