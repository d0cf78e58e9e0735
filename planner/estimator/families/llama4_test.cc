// Llama 4: parameter counts recomputed from transformers' modules (modeling_llama4.py) for the
// Scout and Maverick configurations, the interleaved MoE/dense layers, the vision tower and its
// image tokens, and unknown memory fields still marked unverified.

#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"

namespace fleetplan::estimator {
namespace {

// Llama4ForCausalLM's parameters: per layer the attention and two RMSNorms; MoE layers add the
// router, the experts' gate_up_proj [E, H, 2I] and down_proj [E, I, H] and the shared expert
// (gate, up, down of I); dense layers a gated MLP of I_mlp; then embeddings, final norm, lm_head.
int64_t Llama4TextParams(int64_t h, int64_t heads, int64_t kv, int64_t head_dim, int64_t layers,
                         int64_t inter, int64_t inter_mlp, int64_t experts, int64_t vocab,
                         int64_t moe_layers) {
  const int64_t attention = 2 * h * heads * head_dim + 2 * h * kv * head_dim;
  const int64_t moe = h * experts + experts * 3 * h * inter + 3 * h * inter;
  const int64_t dense = 3 * h * inter_mlp;
  return layers * (attention + 2 * h) + moe_layers * moe + (layers - moe_layers) * dense +
         2 * vocab * h + h;
}

// Llama4VisionModel + Llama4MultiModalProjector.
int64_t Llama4VisionParams(int64_t d, int64_t inter, int64_t layers, int64_t image, int64_t patch,
                           int64_t adapter_in, int64_t adapter_out, int64_t output_dim,
                           int64_t text_hidden) {
  const int64_t side = image / patch;
  const int64_t per_layer = 4 * (d * d + d) + (d * inter + inter) + (inter * d + d) + 4 * d;
  return 3 * patch * patch * d + d + (side * side + 1) * d + 4 * d + layers * per_layer +
         inter * adapter_in + adapter_out * adapter_out + output_dim * text_hidden;
}

constexpr char kScout[] = R"({
  "architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4",
  "boi_token_index": 200080, "eoi_token_index": 200081, "image_token_index": 200092,
  "tie_word_embeddings": false,
  "text_config": {
    "model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192,
    "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
    "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 202048, "num_local_experts": 16,
    "num_experts_per_tok": 1, "interleave_moe_layer_step": 1, "attention_chunk_size": 8192,
    "no_rope_layers": [], "use_qk_norm": true, "attn_temperature_tuning": true,
    "floor_scale": 8192, "attn_scale": 0.1, "max_position_embeddings": 10485760,
    "rope_theta": 500000.0, "rms_norm_eps": 1e-05, "torch_dtype": "bfloat16",
    "router_aux_loss_coef": 0.001, "router_jitter_noise": 0.0, "output_router_logits": false,
    "attention_bias": false, "tie_word_embeddings": false
  },
  "vision_config": {
    "model_type": "llama4_vision_model", "hidden_size": 1408, "intermediate_size": 5632,
    "num_hidden_layers": 34, "num_attention_heads": 16, "image_size": 336, "patch_size": 14,
    "num_channels": 3, "vision_output_dim": 4096, "projector_input_dim": 4096,
    "projector_output_dim": 4096, "pixel_shuffle_ratio": 0.5, "multi_modal_projector_bias": false,
    "vision_feature_layer": -1, "vision_feature_select_strategy": "default", "rope_theta": 10000,
    "norm_eps": 1e-05
  }
})";

TEST(Llama4Test, ScoutCountsEveryParameter) {
  auto spec = ParseModelConfig(kScout);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->unverified()) << "unconsumed: " << spec->unconsumed_fields.size();
  const int64_t text = Llama4TextParams(5120, 40, 8, 128, 48, 8192, 16384, 16, 202048, 48);
  const int64_t vision = Llama4VisionParams(1408, 5632, 34, 336, 14, 4096, 4096, 4096, 5120);
  EXPECT_EQ(text, 107769861120);
  EXPECT_EQ(vision, 871932416);
  EXPECT_EQ(spec->num_params(), text + vision);  // 108.6 B: "Llama 4 Scout, 109B total"
  ASSERT_TRUE(spec->vision.has_value());
  // 24 x 24 patches per tile, pixel-shuffled by 0.5 per side: 144 tokens; at most 17 tiles.
  EXPECT_EQ(ImageTokens(*spec, 0, 0), 144 * 17);
  for (int k : spec->layer_kind_of) {
    EXPECT_EQ(spec->layer_kinds[static_cast<size_t>(k)].mlp.num_experts, 16);
    EXPECT_EQ(spec->layer_kinds[static_cast<size_t>(k)].mlp.shared_intermediate_size, 8192);
  }
}

TEST(Llama4Test, MaverickInterleavesDenseAndMoeLayers) {
  auto spec = ParseModelConfig(R"({
    "model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192,
    "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
    "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 202048, "num_local_experts": 128,
    "num_experts_per_tok": 1, "interleave_moe_layer_step": 2, "attention_chunk_size": 8192,
    "use_qk_norm": false})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->unverified());
  // moe_layers = range(1, 48, 2): odd layers sparse, even ones dense.
  EXPECT_EQ(spec->num_params(),
            Llama4TextParams(5120, 40, 8, 128, 48, 8192, 16384, 128, 202048, 24));
  EXPECT_EQ(spec->layer_kinds[static_cast<size_t>(spec->layer_kind_of[0])].mlp.num_experts, 0);
  EXPECT_EQ(spec->layer_kinds[static_cast<size_t>(spec->layer_kind_of[1])].mlp.num_experts, 128);
  // An explicit moe_layers list wins over the step.
  auto listed = ParseModelConfig(R"({
    "model_type": "llama4_text", "hidden_size": 512, "intermediate_size": 256,
    "intermediate_size_mlp": 1024, "num_hidden_layers": 4, "num_attention_heads": 8,
    "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 1000, "num_local_experts": 4,
    "interleave_moe_layer_step": 1, "moe_layers": [3]})");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->num_params(), Llama4TextParams(512, 8, 2, 64, 4, 256, 1024, 4, 1000, 1));
  EXPECT_FALSE(ParseModelConfig(R"({"model_type": "llama4_text", "hidden_size": 512,
      "intermediate_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
      "vocab_size": 1000, "num_local_experts": 4, "moe_layers": [7]})")
                   .ok())
      << "a moe_layers entry past the last layer is refused";
}

int ChunkedLayers(const ModelSpec& spec, int64_t chunk) {
  int n = 0;
  for (int k : spec.layer_kind_of) {
    n += spec.layer_kinds[static_cast<size_t>(k)].attention.attention_chunk == chunk ? 1 : 0;
  }
  return n;
}

// SGLang's estimate of `spec` as asked and with --disable-hybrid-swa-memory.
std::pair<absl::StatusOr<MemoryEstimate>, absl::StatusOr<MemoryEstimate>> WithAndWithoutHybridPool(
    const ModelSpec& spec, const EstimateRequest& r) {
  EstimateRequest flat = r;
  flat.sglang.disable_hybrid_swa_memory = true;
  return {Estimate(spec, r), Estimate(spec, flat)};
}

// Chunked local attention (configuration_llama4.py): an empty no_rope_layers means every layer
// but each no_rope_layer_interval-th (4) is chunked; a list or layer_types says which. SGLang's
// hybrid SWA pool (model_config.py is_hybrid_swa_model, get_hybrid_layer_ids) splits the wrapper's
// tokens so the 36 chunked layers hold swa_full_tokens_ratio of a full layer's; vLLM and
// transformers keep them at full size; the text-only Llama4ForCausalLM is not hybrid in SGLang.
TEST(Llama4Test, ChunkedLayersAndSglangsHybridPool) {
  auto spec = ParseModelConfig(kScout);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(ChunkedLayers(*spec, 8192), 36);
  for (int64_t l = 3; l < 48; l += 4)
    EXPECT_EQ(spec->attention(static_cast<int>(l)).attention_chunk, 0);
  EstimateRequest r;
  r.engine = Engine::kSglang;
  r.gpu_memory_bytes = 140 * kGiB;
  r.parallelism.tp = 4;
  r.sglang.context_length = 131072;
  r.context_tokens = 131072;
  auto [hybrid, flat] = WithAndWithoutHybridPool(*spec, r);
  ASSERT_TRUE(flat.ok() && hybrid.ok()) << flat.status() << hybrid.status();
  EXPECT_EQ(
      hybrid->kv_cache_tokens,
      static_cast<int64_t>(static_cast<double>(flat->kv_cache_tokens) * 48 / (0.8 * 36 + 12)));
  EXPECT_GT(hybrid->max_concurrency, flat->max_concurrency);
  bool noted = false;
  for (const std::string& n : hybrid->notes) {
    noted |= n.find("36 chunked-attention layers (chunk 8192)") != std::string::npos;
  }
  EXPECT_TRUE(noted);
  // vLLM: the chunk changes nothing (full attention, the model's note says so).
  EstimateRequest v;
  v.engine = Engine::kVllm;
  v.gpu_memory_bytes = 140 * kGiB;
  v.parallelism.tp = 4;
  v.vllm.max_model_len = 131072;
  std::string unchunked = kScout;
  const std::string key = "\"attention_chunk_size\": 8192";
  unchunked.replace(unchunked.find(key), key.size(), "\"attention_chunk_size\": 0");
  auto plain = ParseModelConfig(unchunked);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(ChunkedLayers(*plain, 8192), 0);
  auto chunked_v = Estimate(*spec, v);
  auto plain_v = Estimate(*plain, v);
  ASSERT_TRUE(chunked_v.ok() && plain_v.ok());
  EXPECT_EQ(chunked_v->kv_cache_tokens, plain_v->kv_cache_tokens);
  // The text-only model is not hybrid in SGLang.
  auto text = ParseModelConfig(R"({
    "architectures": ["Llama4ForCausalLM"],
    "model_type": "llama4_text", "hidden_size": 512, "intermediate_size": 256,
    "intermediate_size_mlp": 1024, "num_hidden_layers": 8, "num_attention_heads": 8,
    "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 1000, "num_local_experts": 4,
    "attention_chunk_size": 1024, "no_rope_layers": [1, 1, 0, 1, 1, 1, 0, 1]})");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(ChunkedLayers(*text, 1024), 6);  // the listed RoPE layers, not the interval
  EstimateRequest small = r;
  small.parallelism.tp = 1;
  small.sglang.context_length = 4096;
  small.context_tokens = 4096;
  auto [t1, t2] = WithAndWithoutHybridPool(*text, small);
  ASSERT_TRUE(t1.ok() && t2.ok()) << t1.status() << t2.status();
  EXPECT_EQ(t1->kv_cache_tokens, t2->kv_cache_tokens);
  // Bad lists are refused by name.
  for (const char* bad :
       {R"("no_rope_layers": [1, 2, 0, 1, 1, 1, 0, 1])", R"("no_rope_layers": [1, 0])"}) {
    std::string config = R"({"model_type": "llama4_text", "hidden_size": 512,
      "intermediate_size": 256, "num_hidden_layers": 8, "num_attention_heads": 8,
      "vocab_size": 1000, "num_local_experts": 4, "attention_chunk_size": 1024, )";
    config += bad;
    config += "}";
    auto refused = ParseModelConfig(config);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.status().message().find("no_rope_layers"), std::string::npos)
        << refused.status();
  }
}

TEST(Llama4Test, UnknownMemoryFieldsStillMarkTheModelUnverified) {
  std::string config = kScout;
  config.insert(config.find("\"text_config\": {") + 16, R"("cross_attention_layers": [3, 8],)");
  auto spec = ParseModelConfig(config);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->unverified());
}

}  // namespace
}  // namespace fleetplan::estimator
