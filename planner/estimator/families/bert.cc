// Bidirectional encoders: BERT (model_type "bert", transformers models/bert/modeling_bert.py),
// RoBERTa ("roberta", models/roberta) and XLM-RoBERTa ("xlm-roberta", models/xlm_roberta) — the
// embedding, reranker and classifier models fleets serve next to their LLMs (bge, e5, gte,
// all-MiniLM, bge-reranker ...).
//
// The module tree, as transformers instantiates it:
//   embeddings: word_embeddings [V, H], position_embeddings [P, H], token_type_embeddings
//     [type_vocab_size, H], LayerNorm (weight and bias);
//   each of num_hidden_layers layers (post-LayerNorm): query, key, value and attention.output.dense
//     [H, H] with biases, a LayerNorm, intermediate.dense [H, I] and output.dense [I, H] with
//     biases (a plain GELU MLP), a LayerNorm; no final norm after the stack;
//   the head, by architectures[0]:
//     *Model                     pooler.dense [H, H] + bias (add_pooling_layer=True);
//     *ForMaskedLM               no pooler; the MLM head: transform dense [H, H] + bias, LayerNorm,
//                                decoder tied to word_embeddings (unless tie_word_embeddings is
//                                false) and its bias [V] (one parameter, decoder.bias = bias);
//     *ForPreTraining (BERT)     pooler, MLM head, seq_relationship [H, 2] + bias;
//     *ForSequenceClassification BERT: pooler + classifier [H, num_labels]; RoBERTa: no pooler,
//                                RobertaClassificationHead dense [H, H] + out_proj [H, num_labels];
//     *ForTokenClassification    no pooler, classifier [H, num_labels];
//     *ForQuestionAnswering      no pooler, qa_outputs [H, 2];
//     *ForMultipleChoice         pooler + classifier [H, 1].
//   num_labels is len(id2label) when the config writes it, else 2 (PretrainedConfig).
// RoBERTa's positions start after padding_idx (create_position_ids_from_input_ids), so a sequence
// holds max_position_embeddings - pad_token_id - 1 tokens (514 -> 512).
//
// No engine keeps a KV cache for these (ModelSpec::encoder_only): vLLM's encoder-only attention
// layers get no cache spec (v1 gpu_model_runner.py may_add_encoder_only_layers_to_kv_cache_config)
// and transformers' encoder returns no past_key_values.

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

enum class Head { kBase, kMaskedLm, kPreTraining, kSequence, kToken, kQa, kMultipleChoice };

struct HeadRead {
  Head head = Head::kBase;
  std::string architecture;  // as written, or "" when the config names none
};

absl::StatusOr<HeadRead> ReadHead(const Fields& f) {
  ASSIGN_OR_RETURN(const json* archs, f.OptionalArray("architectures"));
  HeadRead r;
  if (archs == nullptr || archs->empty()) return r;
  const json& first = archs->front();
  if (!first.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("architectures"), "[0]=", Shown(first), " is not a string"));
  }
  r.architecture = first.get<std::string>();
  const std::string& a = r.architecture;
  if (absl::StrContains(a, "LMHead") || absl::StrContains(a, "ForCausalLM")) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("architectures"), "[0]=\"", a,
                     "\": a causal (decoder) use of the encoder is not modelled"));
  }
  static constexpr std::pair<const char*, Head> kSuffixes[] = {
      {"ForMaskedLM", Head::kMaskedLm},
      {"ForPreTraining", Head::kPreTraining},
      {"ForSequenceClassification", Head::kSequence},
      {"ForTokenClassification", Head::kToken},
      {"ForQuestionAnswering", Head::kQa},
      {"ForMultipleChoice", Head::kMultipleChoice},
      {"Model", Head::kBase},
  };
  for (const auto& [suffix, head] : kSuffixes) {
    if (absl::EndsWith(a, suffix)) {
      r.head = head;
      return r;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      f.Path("architectures"), "[0]=\"", a,
      "\": not an encoder head this estimator models (Model, ForMaskedLM, ForPreTraining, "
      "ForSequenceClassification, ForTokenClassification, ForQuestionAnswering, "
      "ForMultipleChoice); a decoder use (ForCausalLM, is_decoder) is not modelled"));
}

absl::StatusOr<int64_t> NumLabels(const Fields& f) {
  const json* labels = f.Object("id2label");
  f.Consume("label2id");
  if (labels != nullptr) {
    if (labels->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(f.Path("id2label"), " is empty"));
    }
    return static_cast<int64_t>(labels->size());
  }
  return f.IntOr("num_labels", 2, 1, kMaxVocab);
}

absl::Status BuildEncoder(const Fields& f, const std::string& model_type, ModelSpec& spec) {
  const bool roberta = model_type != "bert";
  RETURN_IF_ERROR(ReadCoreDims(f, spec));
  ASSIGN_OR_RETURN(const int64_t heads, f.Int("num_attention_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(const int64_t inter, f.Int("intermediate_size"));
  ASSIGN_OR_RETURN(const int64_t positions,
                   f.IntOr("max_position_embeddings", 512, 1, kMaxPositions));
  ASSIGN_OR_RETURN(const int64_t type_vocab, f.IntOr("type_vocab_size", 2, 0, kMaxVocab));
  ASSIGN_OR_RETURN(const int64_t pad, f.IntOr("pad_token_id", roberta ? 1 : 0, 0, kMaxVocab));
  ASSIGN_OR_RETURN(spec.tie_word_embeddings, f.BoolOr("tie_word_embeddings", true));
  ASSIGN_OR_RETURN(const bool is_decoder, f.BoolOr("is_decoder", false));
  ASSIGN_OR_RETURN(const bool cross, f.BoolOr("add_cross_attention", false));
  if (is_decoder || cross) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_type \"", model_type, "\" with ", is_decoder ? "is_decoder" : "add_cross_attention",
        "=true: a causal or cross-attending BERT is not modelled (only the bidirectional "
        "encoder)"));
  }
  const std::string position_type = f.StringOr("position_embedding_type", "absolute");
  if (position_type != "absolute") {
    return absl::InvalidArgumentError(absl::StrCat(
        f.Path("position_embedding_type"), "=\"", position_type,
        "\": only absolute position embeddings are modelled (relative_key adds a distance "
        "embedding per layer that vLLM does not load)"));
  }
  if (spec.hidden_size % heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("hidden_size"), "=", spec.hidden_size,
                     " is not divisible by num_attention_heads=", heads));
  }
  ASSIGN_OR_RETURN(const HeadRead head, ReadHead(f));
  ASSIGN_OR_RETURN(const int64_t labels, NumLabels(f));
  // Activation, dropout and initialisation choices: the same tensors whatever they say.
  for (const char* k :
       {"hidden_act", "layer_norm_eps", "hidden_dropout_prob", "attention_probs_dropout_prob",
        "classifier_dropout", "initializer_range", "use_cache", "gradient_checkpointing"}) {
    f.Consume(k);
  }
  const int64_t h = spec.hidden_size;
  spec.encoder_only = true;
  spec.max_position_embeddings = roberta ? std::max<int64_t>(positions - pad - 1, 1) : positions;
  if (roberta && positions - pad - 1 < 1) {
    return absl::InvalidArgumentError(absl::StrCat(f.Path("max_position_embeddings"), "=",
                                                   positions,
                                                   " leaves no position after pad_token_id=", pad));
  }

  const int64_t head_dim = h / heads;
  const DecoderStyle style{.qkv_bias = true,
                           .o_bias = true,
                           .mlp_bias = true,
                           .norms_per_layer = 2,
                           .layernorm_bias = true,
                           .gated_mlp = false};
  LayerKind kind{.name = "encoder",
                 .attention = {.num_heads = heads,
                               .num_kv_heads = heads,
                               .head_dim = head_dim,
                               .v_head_dim = head_dim},
                 .mlp = {.intermediate_size = inter, .gated = false}};
  AddAttention(kind.tensors, kind.attention, h, style);
  AddDenseMlp(kind.tensors, h, inter, style);
  AddNorms(kind.tensors, h, style);
  spec.layer_kinds.push_back(std::move(kind));
  spec.layer_kind_of.assign(static_cast<size_t>(spec.num_layers), 0);

  AddEmbedding(spec);
  spec.first_stage.push_back(
      Linear("position_embeddings", h, positions, TpSplit::kReplicated, TensorRole::kOther));
  if (type_vocab > 0) {
    spec.first_stage.push_back(
        Linear("token_type_embeddings", h, type_vocab, TpSplit::kReplicated, TensorRole::kOther));
  }
  spec.first_stage.push_back(Vec("embeddings.LayerNorm", h, TensorRole::kNorm));
  spec.first_stage.push_back(Vec("embeddings.LayerNorm.bias", h, TensorRole::kNorm));

  std::vector<Tensor>& last = spec.last_stage;
  auto dense = [&](const char* name, int64_t out) {
    AddLinear(last, Linear(name, h, out, TpSplit::kReplicated, TensorRole::kOther), true);
  };
  const bool pooler = head.head == Head::kBase || head.head == Head::kPreTraining ||
                      head.head == Head::kMultipleChoice ||
                      (head.head == Head::kSequence && !roberta);
  if (pooler) dense("pooler.dense", h);
  switch (head.head) {
    case Head::kMaskedLm:
    case Head::kPreTraining:
      dense("mlm.transform.dense", h);
      last.push_back(Vec("mlm.transform.LayerNorm", h, TensorRole::kNorm));
      last.push_back(Vec("mlm.transform.LayerNorm.bias", h, TensorRole::kNorm));
      if (!spec.tie_word_embeddings) {
        last.push_back(
            Linear("mlm.decoder", h, spec.vocab_size, TpSplit::kVocab, TensorRole::kLmHead));
      }
      last.push_back(Vec("mlm.decoder.bias", spec.vocab_size, TensorRole::kBias));
      if (head.head == Head::kPreTraining) dense("seq_relationship", 2);
      spec.encoder_token_outputs = spec.vocab_size;
      break;
    case Head::kSequence:
      if (roberta) dense("classifier.dense", h);
      dense(roberta ? "classifier.out_proj" : "classifier", labels);
      break;
    case Head::kToken:
      dense("classifier", labels);
      spec.encoder_token_outputs = labels;
      break;
    case Head::kQa:
      dense("qa_outputs", 2);
      spec.encoder_token_outputs = 2;
      break;
    case Head::kMultipleChoice:
      dense("classifier", 1);
      break;
    case Head::kBase:
      break;
  }
  spec.notes.push_back(absl::StrCat(
      "model_type \"", model_type, "\": a bidirectional encoder (",
      head.architecture.empty() ? "no architectures: counted as the base model with its pooler"
                                : head.architecture,
      "): no KV cache, one forward per batch of up to ", spec.max_position_embeddings,
      " tokens per sequence"));
  return absl::OkStatus();
}

}  // namespace

FLEETPLAN_FAMILY(bert) {
  registry.AddText({.model_types = {"bert", "roberta", "xlm-roberta"}, .build = BuildEncoder});
}

}  // namespace fleetplan::estimator::internal
