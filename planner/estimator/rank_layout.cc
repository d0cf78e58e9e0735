#include "planner/estimator/rank_layout.h"

#include <algorithm>
#include <vector>

#include "planner/estimator/engine_constants.h"
#include "planner/estimator/quantization.h"

namespace fleetplan::estimator::internal {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

namespace {
int64_t RoundUp(int64_t a, int64_t b) { return CeilDiv(a, b) * b; }

int64_t SumBytes(const RankContext& c, const std::vector<Tensor>& ts);
}  // namespace

DType ResolveDType(const ModelSpec& spec, const EstimateRequest& req) {
  if (req.dtype_set) return req.dtype;
  // vLLM's dtype="auto" runs float32 checkpoints in bfloat16 (vllm/config/model.py
  // _get_and_verify_dtype; SGLang's ModelConfig copies it: 2 bytes either way); transformers'
  // from_config keeps what it is given.
  if (spec.dtype == DType::kFloat32 &&
      (req.engine == Engine::kVllm || req.engine == Engine::kSglang)) {
    return DType::kBFloat16;
  }
  if (req.engine == Engine::kTraining) return req.training.param_dtype;
  return spec.dtype;
}

// Layer range of pipeline stage `stage`, as vLLM's get_pp_indices splits them: equal parts, the
// remainder going one layer each to the stages before the last, from the back.
std::pair<int64_t, int64_t> StageLayers(int64_t layers, int64_t pp, int64_t stage) {
  std::vector<int64_t> parts(static_cast<size_t>(pp), layers / pp);
  const int64_t rem = layers % pp;
  for (int64_t i = 2; i < rem + 2; ++i) {
    parts[static_cast<size_t>(std::max<int64_t>(0, pp - i))] += 1;
  }
  int64_t start = 0;
  for (int64_t s = 0; s < stage; ++s) start += parts[static_cast<size_t>(s)];
  return {start, start + parts[static_cast<size_t>(stage)]};
}

StageMemory NewStage(const ModelSpec& spec, int64_t pp, int64_t stage) {
  auto [first, last] = StageLayers(spec.num_layers, pp, stage);
  StageMemory s;
  s.pp_stage = stage;
  s.first_layer = first;
  s.num_layers = last - first;
  s.cuda_context_bytes = kCudaContextBytes;
  return s;
}

int64_t RankTensorBytes(const RankContext& c, const Tensor& t) {
  const Parallelism& p = c.req.parallelism;
  const bool expert = t.role == TensorRole::kExpertLinear || t.role == TensorRole::kExpertBias;
  int64_t copies = t.copies;
  int64_t tp = p.tp;
  if (expert && p.ep > 1) {
    copies = CeilDiv(copies, p.ep);
    tp = 1;  // with expert parallelism each expert lives whole on one rank
  }
  int64_t out = t.out;
  int64_t in = t.in;
  switch (t.split) {
    case TpSplit::kReplicated:
      break;
    case TpSplit::kColumn:
      out = CeilDiv(out, tp);
      break;
    case TpSplit::kRow:
      in = CeilDiv(in, tp);
      break;
    case TpSplit::kHeads:
    case TpSplit::kKvHeads: {
      const int64_t heads = std::max<int64_t>(t.heads, 1);
      const int64_t per_head = out / heads;
      out = per_head * std::max<int64_t>(1, CeilDiv(heads, tp));
      break;
    }
    case TpSplit::kVocab: {
      const int64_t padded = c.vllm ? RoundUp(out, kVllmVocabPadding) : out;
      out = CeilDiv(padded, tp);
      break;
    }
  }
  if (expert && c.vllm && c.spec.quant.method == QuantSpec::Method::kMxfp4) {
    out = RoundUp(out, kVllmMxfp4Alignment);
    in = in == 1 ? 1 : RoundUp(in, kVllmMxfp4Alignment);
  }
  return WeightBytes(c.spec.quant, t, out, in, copies, c.dtype);
}

namespace {

int64_t SumBytes(const RankContext& c, const std::vector<Tensor>& ts) {
  int64_t total = 0;
  for (const Tensor& t : ts) total += RankTensorBytes(c, t);
  return total;
}

}  // namespace

int64_t StageWeights(const RankContext& c, int64_t stage, int64_t first, int64_t last) {
  const int64_t pp = c.req.parallelism.pp;
  int64_t bytes = 0;
  std::vector<int64_t> kind_bytes(c.spec.layer_kinds.size(), -1);
  for (int64_t l = first; l < last; ++l) {
    const size_t k = static_cast<size_t>(c.spec.layer_kind_of[static_cast<size_t>(l)]);
    if (kind_bytes[k] < 0) kind_bytes[k] = SumBytes(c, c.spec.layer_kinds[k].tensors);
    bytes += kind_bytes[k];
  }
  if (stage == 0) {
    bytes += SumBytes(c, c.spec.first_stage);
    if (c.spec.vision)
      bytes += SumBytes(c, c.spec.vision->tower) + SumBytes(c, c.spec.vision->projector);
  }
  if (stage == pp - 1) {
    bytes += SumBytes(c, c.spec.last_stage);
    // A tied lm_head is a second copy of the embedding on the last stage when pp > 1.
    if (c.spec.tie_word_embeddings && pp > 1) bytes += SumBytes(c, c.spec.first_stage);
  }
  if (c.vllm && c.spec.rotary_dim > 0 && last > first) {
    // vLLM's RotaryEmbedding keeps a cos/sin cache [max_position_embeddings, rotary_dim] in the
    // model dtype (vllm/model_executor/layers/rotary_embedding/base.py, _compute_cos_sin_cache);
    // get_rope() shares one per distinct configuration. Gemma-3 has a local and a global one.
    int64_t ropes = 1;
    if (c.spec.model_type == "gemma3_text" || c.spec.model_type == "gemma3") ropes = 2;
    bytes += ropes * c.spec.max_position_embeddings * c.spec.rotary_dim * DTypeBytes(c.dtype);
  }
  return bytes;
}

int64_t DraftWeights(const RankContext& draft, DraftHead head) {
  const ModelSpec& d = draft.spec;
  if (head == DraftHead::kWholeModel) return StageWeights(draft, 0, 0, d.num_layers);
  // A middle stage's weights are the layers alone; the last stage's tensors but the lm_head.
  int64_t bytes = StageWeights(draft, /*stage=*/-1, 0, d.num_layers);
  const bool eagle3 = head == DraftHead::kEagle3;
  // EAGLE3's head covers draft_vocab_size tokens when the config says so.
  const int64_t head_vocab = eagle3 && d.draft_vocab_size > 0 ? d.draft_vocab_size : d.vocab_size;
  for (Tensor t : d.last_stage) {
    if (t.role == TensorRole::kLmHead && !eagle3) continue;
    if (t.role == TensorRole::kLmHead) t.out = head_vocab;
    bytes += RankTensorBytes(draft, t);
  }
  const int64_t h = d.hidden_size;
  const int64_t elem = DTypeBytes(draft.dtype);
  if (head == DraftHead::kEagle) bytes += elem * (2 * h * h + h);
  if (eagle3) {
    if (d.tie_word_embeddings) {  // a tied head is still its own: the embedding is the target's
      for (Tensor t : d.first_stage) {
        t.out = head_vocab;
        bytes += RankTensorBytes(draft, t);
      }
    }
    // fc reads three of the target's hidden states; the midlayer's qkv_proj reads 2 x hidden.
    const int64_t target_h = d.target_hidden_size > 0 ? d.target_hidden_size : h;
    const AttentionSpec& a = d.attention(0);
    bytes += elem * (3 * target_h * h + h * (a.num_heads + 2 * a.num_kv_heads) * a.head_dim /
                                            draft.req.parallelism.tp);
    // draft_id_to_target_id: int64 per draft token.
    if (d.draft_vocab_size > 0) bytes += 8 * d.draft_vocab_size;
  }
  return bytes;
}

int64_t LoraSlotBytes(const RankContext& c, int64_t first, int64_t last, int64_t slots,
                      int64_t rank, const LoraTargets& targets) {
  if (slots <= 0 || rank <= 0) return 0;
  const int64_t tp = c.req.parallelism.tp;
  const int64_t h = c.spec.hidden_size;
  const int64_t r = rank;
  int64_t per_slot = 0;
  for (int64_t l = first; l < last; ++l) {
    const LayerKind& k =
        c.spec.layer_kinds[static_cast<size_t>(c.spec.layer_kind_of[static_cast<size_t>(l)])];
    const AttentionSpec& a = k.attention;
    if (a.num_heads > 0 && !a.mla) {
      // KV heads replicate when tp exceeds them, as the base layer's do.
      const int64_t kv_heads = std::max<int64_t>(1, CeilDiv(a.num_kv_heads, tp));
      const int64_t q_out = CeilDiv(a.num_heads, tp) * a.head_dim;
      const int64_t qkv_out = q_out + kv_heads * (a.head_dim + a.v_head_dim);
      if (targets.qkv_proj) per_slot += 3 * r * h + r * qkv_out;
      if (targets.o_proj) per_slot += r * CeilDiv(a.num_heads, tp) * a.v_head_dim + h * r;
    }
    const MlpSpec& m = k.mlp;
    const int64_t inter = m.num_experts > 0 ? m.shared_intermediate_size : m.intermediate_size;
    if (inter > 0) {
      const int64_t up = m.gated ? 2 : 1;
      if (targets.gate_up_proj) per_slot += up * r * h + r * up * CeilDiv(inter, tp);
      if (targets.down_proj) per_slot += r * CeilDiv(inter, tp) + h * r;
    }
  }
  return per_slot * slots * c.a;
}

// KV bytes per token of one layer on one rank (both K and V; MLA: the latent).
int64_t LayerKvBytesPerToken(const RankContext& c, const AttentionSpec& a) {
  if (c.spec.encoder_only) return 0;  // bidirectional: nothing is cached between forwards
  if (a.cross_attention || a.linear_attention)
    return 0;  // the image's K/V, not the sequence's (CrossKvBytes...)
  if (a.mla) return (a.kv_lora_rank + a.qk_rope_head_dim) * c.kv_elem;
  const int64_t tp = c.req.parallelism.tp;
  const int64_t heads = std::max<int64_t>(1, CeilDiv(a.num_kv_heads, tp));
  return heads * (a.head_dim + a.v_head_dim) * c.kv_elem;
}
}  // namespace fleetplan::estimator::internal
