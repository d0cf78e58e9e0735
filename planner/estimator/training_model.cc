// Memory of one training step (forward, backward, optimizer step) in PyTorch with transformers'
// causal-LM loss, per GPU, with ZeRO 0-3 sharding over data parallelism (DeepSpeed semantics).
//
// persistent = weights + optimizer state + two cuBLAS workspaces (forward and autograd threads) +
//              input ids
// The step peaks in one of three phases:
//   forward   persistent + saved activations + autocast's bf16 weight copies + the logits in
//             bf16, their fp32 copy and the fp32 log-softmax the loss saves
//   backward  persistent + saved activations + log-softmax + two fp32 logit gradients
//             (+ one layer's recomputation with gradient checkpointing)
//   optimizer persistent + gradients + one parameter-sized temporary (torch's foreach AdamW)
// Saved activations per decoder layer and token. PyTorch saves an input for backward only when a
// gradient needs it (autograd codegen checks should_compute_output), so a frozen weight's matmul
// saves nothing and q * cos saves only cos. With a = activation bytes, for sdpa attention:
//   RMSNorm      its fp32 input (4 H) and, when the norm weight trains, the normed value (a H);
//                its output is saved by the matmuls that read it (a H); under autocast each matmul
//                saves its own bf16 cast of the fp32 output (2 H per consumer)
//   sdpa         q, k, v and the output: a (2 q_dim + 2 kv_dim); o_proj saves its input a q_dim
//   gated MLP    gate (saved by act), act(gate) and up (by their product), the product (by down):
//                4 a I; with a frozen base down's input is not saved: 3 a I
//   MoE          per routed expert the token copy, gate_up output, act and product: k a (H + 4 I_e)
//   LoRA         peft casts each adapted layer's input to the adapter dtype and lora_A saves it:
//                4 B x in_features per adapted layer
// With gradient checkpointing only each layer's input stays (fp32 under autocast).

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/engine_constants.h"
#include "planner/estimator/rank_layout.h"

namespace fleetplan::estimator {

using internal::CeilDiv;
using internal::RankContext;

namespace {

bool Targets(const TrainingConfig& t, const char* name) {
  if (t.lora_targets.empty()) return true;
  return std::find(t.lora_targets.begin(), t.lora_targets.end(), name) != t.lora_targets.end();
}

// LoRA adapter parameters (A: r x in, B: out x r) of the targeted linear layers in [first, last).
int64_t LoraParams(const ModelSpec& spec, const TrainingConfig& t, int64_t first, int64_t last) {
  int64_t total = 0;
  for (int64_t l = first; l < last; ++l) {
    const int kind_index = spec.layer_kind_of[static_cast<size_t>(l)];
    for (const Tensor& w : spec.layer_kinds[static_cast<size_t>(kind_index)].tensors) {
      if (w.role != TensorRole::kLinear) continue;
      if (!Targets(t, w.name)) continue;
      total += t.lora_rank * (w.in + w.out) * w.copies;
    }
  }
  return total;
}

// Bytes saved for backward per token by one layer.
int64_t SavedPerToken(const RankContext& c, const LayerKind& kind, const TrainingConfig& t) {
  const int64_t h = c.spec.hidden_size;
  const AttentionSpec& at = kind.attention;
  const int64_t q_dim = at.num_heads * at.head_dim;
  const int64_t kv_dim =
      at.mla ? at.num_heads * (at.head_dim + at.v_head_dim) : at.num_kv_heads * at.head_dim;
  const bool lora = t.lora_rank > 0;
  const bool autocast = t.autocast_bf16;
  const int64_t a = autocast ? 2 : c.a;
  // Two norms: before attention (read by q, k, v) and before the MLP (read by gate, up).
  int64_t norms = 0;
  for (int consumers : {3, 2}) {
    norms += 4 * h;               // fp32 input kept for the variance backward
    if (!lora) norms += c.a * h;  // normed value, for the norm weight's gradient
    if (autocast) {
      norms += consumers * 2 * h;  // each matmul's own bf16 cast
    } else if (!lora) {
      norms += a * h;  // the output, shared by the matmuls that read it
    }
  }
  const int64_t attention = a * (2 * q_dim + 2 * kv_dim) + (lora ? 0 : a * q_dim);
  const MlpSpec& m = kind.mlp;
  int64_t mlp = 0;
  int64_t mlp_inner = m.intermediate_size;
  if (m.num_experts > 0) {
    mlp = m.experts_per_token * a * (h + 4 * m.expert_intermediate_size) +
          4 * a * m.shared_intermediate_size;
    mlp_inner = m.expert_intermediate_size;
  } else {
    mlp = (m.gated ? (lora ? 3 : 4) : 2) * a * m.intermediate_size;
  }
  int64_t adapters = 0;
  if (lora) {
    auto adapted = [&](const char* name) { return Targets(t, name) ? 1 : 0; };
    adapters = 4 * (h * (adapted("q_proj") + adapted("k_proj") + adapted("v_proj") +
                         adapted("gate_proj") + adapted("up_proj")) +
                    q_dim * adapted("o_proj") + mlp_inner * adapted("down_proj"));
  }
  return norms + attention + mlp + adapters;
}

}  // namespace

absl::Status EstimateTraining(const RankContext& c, MemoryEstimate& out) {
  const ModelSpec& spec = c.spec;
  const TrainingConfig& t = c.req.training;
  const Parallelism& p = c.req.parallelism;
  if (t.autocast_bf16 && c.dtype != DType::kFloat32) {
    return absl::InvalidArgumentError(
        absl::StrCat("autocast_bf16 needs fp32 parameters, param_dtype is ", DTypeName(c.dtype)));
  }
  const bool lora = t.lora_rank > 0;
  const int64_t dp = p.dp;
  const int64_t tokens = t.batch * t.seq_tokens;
  const int64_t v = spec.vocab_size;
  const int64_t h = spec.hidden_size;

  for (int64_t stage = 0; stage < p.pp; ++stage) {
    StageMemory s = internal::NewStage(spec, p.pp, stage);
    const int64_t first = s.first_layer, last = s.first_layer + s.num_layers;
    const int64_t base_weights = internal::StageWeights(c, stage, first, last);
    const int64_t param_bytes = DTypeBytes(c.dtype);
    const int64_t base_params = base_weights / param_bytes;
    int64_t trainable_bytes_each = param_bytes;
    int64_t trainable = base_params;
    int64_t adapter_weights = 0;
    if (lora) {
      trainable = LoraParams(spec, t, first, last);
      trainable_bytes_each = DTypeBytes(t.lora_dtype);
      adapter_weights = trainable * trainable_bytes_each;
    }
    const int64_t trainable_bytes = trainable * trainable_bytes_each;
    // Optimizer state per trainable parameter: AdamW two moments in the parameter's dtype;
    // 8-bit AdamW two 1-byte moments (bitsandbytes, block statistics negligible); SGD without
    // momentum none.
    int64_t optimizer = 0;
    switch (t.optimizer) {
      case Optimizer::kAdamW:
        optimizer = 2 * trainable_bytes;
        break;
      case Optimizer::kAdamW8bit:
        optimizer = 2 * trainable;
        break;
      case Optimizer::kSgd:
        optimizer = 0;
        break;
    }
    int64_t weights = base_weights + adapter_weights;
    int64_t grads = trainable_bytes;
    // ZeRO: stage 1 shards optimizer state, 2 also gradients, 3 also parameters.
    if (t.zero_stage >= 1) optimizer = CeilDiv(optimizer, dp);
    if (t.zero_stage >= 2) grads = CeilDiv(grads, dp);
    int64_t gathered = 0;
    if (t.zero_stage >= 3) {
      weights = CeilDiv(weights, dp);
      // One layer's full parameters are gathered at a time (plus prefetch of the next).
      int64_t largest = 0;
      for (const LayerKind& k : spec.layer_kinds) {
        int64_t bytes = 0;
        for (const Tensor& w : k.tensors) bytes += internal::RankTensorBytes(c, w);
        largest = std::max(largest, bytes);
      }
      gathered = 2 * largest;
    }
    const int64_t workspaces = 2 * kCublasWorkspaceBytes + tokens * 8;
    const int64_t persistent = weights + optimizer + workspaces + gathered;

    // Saved activations.
    int64_t saved = 0;
    int64_t largest_layer = 0;
    for (int64_t l = first; l < last; ++l) {
      const LayerKind& k =
          spec.layer_kinds[static_cast<size_t>(spec.layer_kind_of[static_cast<size_t>(l)])];
      const int64_t per_token = SavedPerToken(c, k, t);
      largest_layer = std::max(largest_layer, per_token);
      saved += t.gradient_checkpointing ? (t.autocast_bf16 ? 4 : c.a) * h : per_token;
    }
    saved *= tokens;
    const int64_t recompute = t.gradient_checkpointing ? largest_layer * tokens : 0;
    // Autocast caches the bf16 cast of every matmul weight for the whole forward; without
    // checkpointing they are also saved for backward.
    int64_t weight_copies = 0;
    if (t.autocast_bf16) {
      int64_t matmul_params = 0;
      for (int64_t l = first; l < last; ++l) {
        for (const Tensor& w :
             spec.layer_kinds[static_cast<size_t>(spec.layer_kind_of[static_cast<size_t>(l)])]
                 .tensors) {
          if (w.role == TensorRole::kLinear || w.role == TensorRole::kExpertLinear ||
              w.role == TensorRole::kRouter) {
            matmul_params += internal::RankTensorBytes(c, w) / param_bytes;
          }
        }
      }
      if (stage == p.pp - 1) matmul_params += v * h;  // lm_head (tied or not) is a matmul
      weight_copies = 2 * matmul_params;
    }
    // Logits on the last stage: bf16 [T, V], its fp32 copy, the fp32 log-softmax saved.
    const bool last_stage = stage == p.pp - 1;
    const int64_t fp32_logits = last_stage ? 4 * tokens * v : 0;
    const int64_t logits_bf16 = last_stage ? 2 * tokens * v : 0;
    const int64_t after_forward =
        saved + (t.gradient_checkpointing ? 0 : weight_copies) + fp32_logits;
    const int64_t forward_peak = saved + weight_copies + logits_bf16 + 2 * fp32_logits;
    const int64_t backward_peak = after_forward + 2 * fp32_logits + recompute;
    const int64_t step_temp = t.optimizer == Optimizer::kAdamW ? trainable_bytes : 0;
    s.weights_bytes = weights;
    s.optimizer_bytes = optimizer;
    s.engine_overhead_bytes = workspaces + gathered;
    if (grads + step_temp > std::max(forward_peak, backward_peak)) {
      // The optimizer step: all gradients exist, plus the foreach temporary.
      s.gradient_bytes = grads;
      s.activation_peak_bytes = step_temp;
    } else {
      // Forward or the loss backward: no parameter gradient exists yet (zero_grad set them None).
      s.gradient_bytes = 0;
      s.activation_peak_bytes = std::max(forward_peak, backward_peak);
    }
    s.torch_peak_allocated_bytes = persistent + s.gradient_bytes + s.activation_peak_bytes;
    const int64_t activation = s.gradient_bytes + s.activation_peak_bytes;
    // Training fragments the allocator most (calibration: reserved 2-36 % above allocated); keep
    // a quarter of the transient tensors in reserve.
    s.fragmentation_bytes = activation / 4;
    s.total_bytes = s.torch_peak_allocated_bytes + s.cuda_context_bytes + s.fragmentation_bytes;
    out.stages.push_back(s);
  }
  return absl::OkStatus();
}

}  // namespace fleetplan::estimator
