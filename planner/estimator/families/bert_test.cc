// Bidirectional encoders (families/bert.cc): parameter counts recomputed from transformers'
// modules (modeling_bert.py, modeling_roberta.py, modeling_xlm_roberta.py) and equal to what
// model.num_parameters() reports for the published checkpoints; no KV cache on any engine; the
// engines and requests an encoder cannot take are refused by name.

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/testing/test_models.h"
#include "planner/estimator/vllm.h"
#include "planner/estimator/vllm_version.h"

namespace fleetplan::estimator {
namespace {

using nlohmann::json;

json ReadConfig(const std::string& name) { return testing::TestModelJson(name); }

ModelSpec Parse(const json& config) {
  auto spec = ParseModelConfig(config.dump());
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : ModelSpec{};
}

// One encoder layer of width h and MLP width i: q, k, v, o with biases, two LayerNorms with
// biases, intermediate and output dense with biases.
int64_t EncoderLayer(int64_t h, int64_t i) { return 4 * (h * h + h) + 4 * h + 2 * h * i + i + h; }

// Embeddings: words, positions, token types, LayerNorm with bias.
int64_t Embeddings(int64_t v, int64_t h, int64_t positions, int64_t types) {
  return (v + positions + types) * h + 2 * h;
}

TEST(BertTest, ParameterCountsAreTransformers) {
  struct Case {
    const char* file;
    int64_t params;  // model.num_parameters() of the published checkpoint
    int64_t recomputed;
  } cases[] = {
      // BertForMaskedLM: no pooler; the MLM head's transform dense, LayerNorm and decoder bias
      // (its weight tied to the word embeddings).
      {"bert-base-uncased.json", 109'514'298,
       Embeddings(30522, 768, 512, 2) + 12 * EncoderLayer(768, 3072) + 768 * 768 + 768 + 2 * 768 +
           30522},
      // BertModel with its pooler (sentence-transformers checkpoints keep it).
      {"all-minilm-l6-v2.json", 22'713'216,
       Embeddings(30522, 384, 512, 2) + 6 * EncoderLayer(384, 1536) + 384 * 384 + 384},
      // RobertaForMaskedLM: 514 positions (padding_idx 1), one token type, the lm_head.
      {"roberta-base.json", 124'697'433,
       Embeddings(50265, 768, 514, 1) + 12 * EncoderLayer(768, 3072) + 768 * 768 + 768 + 2 * 768 +
           50265},
      // XLMRobertaModel (bge-m3): 8194 positions, the pooler.
      {"bge-m3.json", 567'754'752,
       Embeddings(250002, 1024, 8194, 1) + 24 * EncoderLayer(1024, 4096) + 1024 * 1024 + 1024},
      // XLMRobertaForSequenceClassification with one label: no pooler, the classification head's
      // dense and out_proj.
      {"bge-reranker-v2-m3.json", 567'755'777,
       Embeddings(250002, 1024, 8194, 1) + 24 * EncoderLayer(1024, 4096) + 1024 * 1024 + 1024 +
           1024 + 1},
  };
  for (const Case& c : cases) {
    const ModelSpec spec = Parse(ReadConfig(c.file));
    EXPECT_EQ(c.recomputed, c.params) << c.file;
    EXPECT_EQ(spec.num_params(), c.params) << c.file;
    EXPECT_TRUE(spec.encoder_only) << c.file;
    EXPECT_FALSE(spec.unverified()) << c.file << ": " << spec.notes.back();
  }
  // RoBERTa's positions start after padding_idx: 514 positions hold 512 tokens.
  EXPECT_EQ(Parse(ReadConfig("roberta-base.json")).max_position_embeddings, 512);
  EXPECT_EQ(Parse(ReadConfig("bge-m3.json")).max_position_embeddings, 8192);
  EXPECT_EQ(Parse(ReadConfig("bert-base-uncased.json")).max_position_embeddings, 512);
}

TEST(BertTest, HeadsByArchitecture) {
  json base = ReadConfig("bert-base-uncased.json");
  const int64_t h = 768, v = 30522;
  const int64_t trunk = Embeddings(v, h, 512, 2) + 12 * EncoderLayer(h, 3072);
  const int64_t pooler = h * h + h;
  struct Case {
    const char* architecture;
    json id2label;
    int64_t params;
    int64_t token_outputs;
  } cases[] = {
      {"BertModel", nullptr, trunk + pooler, 0},
      {"BertForPreTraining", nullptr, trunk + pooler + pooler + 2 * h + v + 2 * h + 2, v},
      // Two labels when id2label is absent (PretrainedConfig's default num_labels).
      {"BertForSequenceClassification", nullptr, trunk + pooler + 2 * h + 2, 0},
      {"BertForSequenceClassification", json{{"0", "a"}, {"1", "b"}, {"2", "c"}},
       trunk + pooler + 3 * h + 3, 0},
      {"BertForTokenClassification", json{{"0", "O"}, {"1", "B-PER"}, {"2", "I-PER"}},
       trunk + 3 * h + 3, 3},
      {"BertForQuestionAnswering", nullptr, trunk + 2 * h + 2, 2},
      {"BertForMultipleChoice", nullptr, trunk + pooler + h + 1, 0},
  };
  for (const Case& c : cases) {
    json config = base;
    config["architectures"] = {c.architecture};
    if (!c.id2label.is_null()) config["id2label"] = c.id2label;
    const ModelSpec spec = Parse(config);
    EXPECT_EQ(spec.num_params(), c.params) << c.architecture;
    EXPECT_EQ(spec.encoder_token_outputs, c.token_outputs) << c.architecture;
  }
  // RoBERTa's sequence classifier has no pooler but a dense + out_proj head.
  json roberta = ReadConfig("roberta-base.json");
  roberta["architectures"] = {"RobertaForSequenceClassification"};
  EXPECT_EQ(Parse(roberta).num_params(),
            Embeddings(50265, h, 514, 1) + 12 * EncoderLayer(h, 3072) + h * h + h + 2 * h + 2);
  // An untied MLM decoder is its own [V, H] weight.
  json untied = base;
  untied["tie_word_embeddings"] = false;
  EXPECT_EQ(Parse(untied).num_params(), Parse(base).num_params() + v * h);
}

TEST(BertTest, RefusesWhatItDoesNotModel) {
  const json base = ReadConfig("bert-base-uncased.json");
  struct Case {
    const char* field;
    json value;
    const char* expect;
  } cases[] = {
      {"architectures", json::array({"BertLMHeadModel"}), "BertLMHeadModel"},
      {"architectures", json::array({"BertForCausalLM"}), "BertForCausalLM"},
      {"architectures", json::array({"BertForSomethingElse"}), "BertForSomethingElse"},
      {"architectures", json::array({7}), "architectures[0]"},
      {"is_decoder", true, "is_decoder"},
      {"add_cross_attention", true, "add_cross_attention"},
      {"position_embedding_type", "relative_key", "relative_key"},
      {"num_attention_heads", 7, "num_attention_heads"},
      {"id2label", json::object(), "id2label"},
  };
  for (const Case& c : cases) {
    json config = base;
    config[c.field] = c.value;
    auto spec = ParseModelConfig(config.dump());
    ASSERT_FALSE(spec.ok()) << c.field;
    EXPECT_NE(spec.status().message().find(c.expect), std::string::npos)
        << c.field << ": " << spec.status();
  }
  json roberta = ReadConfig("roberta-base.json");
  roberta["max_position_embeddings"] = 2;
  auto no_positions = ParseModelConfig(roberta.dump());
  ASSERT_FALSE(no_positions.ok());
  EXPECT_NE(no_positions.status().message().find("pad_token_id"), std::string::npos);
}

EstimateRequest VllmOnH100() {
  EstimateRequest req;
  req.engine = Engine::kVllm;
  req.gpu_memory_bytes = 80 * kGiB;
  req.gpu_name = "H100-80GB";
  return req;
}

// vLLM keeps no KV cache for encoder-only attention, so the estimate is weights, the profile
// forward, non-torch memory and graphs: a few GiB, where a decoder of the same shape would fill
// the 0.9 budget with KV blocks.
TEST(BertTest, VllmHasNoKvCacheAndBatchesWholePrompts) {
  const ModelSpec spec = Parse(ReadConfig("bge-m3.json"));
  EstimateRequest req = VllmOnH100();
  auto est = Estimate(spec, req);
  ASSERT_TRUE(est.ok()) << est.status();
  ASSERT_EQ(est->stages.size(), 1u);
  EXPECT_TRUE(est->fits) << est->reason;
  EXPECT_TRUE(est->encoder_only);
  EXPECT_EQ(est->stages[0].kv_cache_bytes, 0);
  EXPECT_EQ(est->kv_cache_tokens, 0);
  EXPECT_LT(est->max_total_bytes, 8 * kGiB);
  EXPECT_GT(est->stages[0].weights_bytes, 1 * kGiB);  // fp32 checkpoint: 2.1 GiB
  // No chunked prefill: one forward of max_model_len = 8192 tokens holds one prompt of 8192,
  // 16 of 512; more requests queue (a note, not a failure).
  EXPECT_EQ(est->max_model_len, 8192);
  EXPECT_EQ(est->max_concurrency, 1);
  req.context_tokens = 512;
  req.concurrency = 100;
  auto short_prompts = Estimate(spec, req);
  ASSERT_TRUE(short_prompts.ok()) << short_prompts.status();
  EXPECT_TRUE(short_prompts->fits) << short_prompts->reason;
  EXPECT_EQ(short_prompts->max_concurrency, 16);
  bool queued = false;
  for (const std::string& n : short_prompts->notes) queued |= n.find("queue") != std::string::npos;
  EXPECT_TRUE(queued);
  // The profile forward is of the whole batch: a larger --max-num-batched-tokens costs
  // activation memory.
  req.vllm.max_num_batched_tokens = 65536;
  auto large = Estimate(spec, req);
  ASSERT_TRUE(large.ok()) << large.status();
  EXPECT_GT(large->stages[0].activation_peak_bytes,
            4 * short_prompts->stages[0].activation_peak_bytes);
  EXPECT_EQ(large->max_concurrency, 128);
  // The plan's launch line.
  auto fit = FitVllm(spec, VllmOnH100());
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_TRUE(fit->fits) << fit->reason;
  const std::string line = VllmServeCommand("BAAI/bge-m3", *fit);
  EXPECT_NE(line.find("--max-model-len 8192"), std::string::npos) << line;
  // The smallest utilization that covers the model (vLLM checks at start that utilization x
  // total is free, so a shared GPU needs it small): a few hundredths of an H100.
  EXPECT_NE(line.find("--gpu-memory-utilization 0.0"), std::string::npos) << line;
}

TEST(BertTest, SchedulerDefaultsWithoutChunkedPrefill) {
  const VllmProfile now = VllmProfileFor({0, 19, 0});
  const VllmBatchDefaults v1 = VllmSchedulerDefaults(now, 80 * kGiB, "H100-80GB", 512, true);
  EXPECT_EQ(v1.max_num_batched_tokens, 512);
  EXPECT_EQ(v1.max_num_seqs, 512);  // min(1024, max_num_batched_tokens)
  const VllmBatchDefaults v1_long = VllmSchedulerDefaults(now, 80 * kGiB, "H100-80GB", 8192, true);
  EXPECT_EQ(v1_long.max_num_seqs, 1024);
}

TEST(BertTest, EnginesAndRequestsAnEncoderCannotTake) {
  const ModelSpec spec = Parse(ReadConfig("bert-base-uncased.json"));
  auto refused = [&](const EstimateRequest& req, const std::string& expect) {
    auto est = Estimate(spec, req);
    ASSERT_FALSE(est.ok()) << expect;
    EXPECT_EQ(est.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(est.status().message().find(expect), std::string::npos) << est.status();
  };
  for (Engine e : {Engine::kSglang, Engine::kOpenvino, Engine::kLlamaCpp}) {
    EstimateRequest req = VllmOnH100();
    req.engine = e;
    refused(req, absl::StrCat("engine=", EngineName(e)));
  }
  EstimateRequest req = VllmOnH100();
  req.vllm.max_model_len = 1024;
  refused(req, "vllm.max_model_len=1024");
  req = VllmOnH100();
  req.context_tokens = 600;
  refused(req, "context_tokens=600");
  req = VllmOnH100();
  req.vllm.max_num_batched_tokens = 256;
  refused(req, "vllm.max_num_batched_tokens=256");
  req = VllmOnH100();
  req.vllm.version = "0.9.2";
  refused(req, "vllm.version=0.9.2");
  req.vllm.version = "0.10.2";
  refused(req, "vllm.version=0.10.2");
  req.vllm.version = "0.11.0";
  EXPECT_TRUE(Estimate(spec, req).ok());
  req = VllmOnH100();
  req.vllm.speculative_method = SpeculativeMethod::kNgram;
  req.vllm.num_speculative_tokens = 3;
  refused(req, "speculative decoding");
  req = VllmOnH100();
  req.engine = Engine::kHfTransformers;
  req.hf.generate = true;
  refused(req, "hf.generate");
  req.hf.generate = false;
  req.hf.prompt_tokens = 513;
  refused(req, "prompt_tokens=513");
  req = VllmOnH100();
  req.engine = Engine::kTraining;
  req.training.seq_tokens = 1024;
  refused(req, "seq_tokens=1024");
}

// transformers: one forward, no past_key_values; a masked-LM head writes [B, S, V] logits, the
// base model only hidden states.
TEST(BertTest, TransformersForwardHasNoCacheAndMlmLogits) {
  json config = ReadConfig("bert-base-uncased.json");
  EstimateRequest req;
  req.engine = Engine::kHfTransformers;
  req.gpu_memory_bytes = 80 * kGiB;
  req.hf.batch = 64;
  req.hf.prompt_tokens = 512;
  auto mlm = Estimate(Parse(config), req);
  ASSERT_TRUE(mlm.ok()) << mlm.status();
  EXPECT_EQ(mlm->stages[0].kv_cache_bytes, 0);
  config["architectures"] = {"BertModel"};
  auto base = Estimate(Parse(config), req);
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_EQ(base->stages[0].kv_cache_bytes, 0);
  // bf16 logits of 64 x 512 tokens over 30522 words (2.0 GB) replace the largest layer's
  // transients (the MLP's fc1 output and activation beside four hidden-size tensors) at the peak.
  const int64_t tokens = int64_t{64} * 512;
  const int64_t logits = tokens * 30522 * 2;
  const int64_t layer = tokens * (2 * 3072 + 4 * 768) * 2;
  EXPECT_GE(mlm->stages[0].activation_peak_bytes - base->stages[0].activation_peak_bytes,
            logits - layer);
}

}  // namespace
}  // namespace fleetplan::estimator
