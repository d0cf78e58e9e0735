#include "planner/estimator/config_parser.h"

#include <algorithm>
#include <memory>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "planner/common/status_macros.h"
#include "planner/estimator/config_fields.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/family.h"
#include "planner/estimator/quantization.h"

namespace fleetplan::estimator {
namespace {

using internal::Fields;
using internal::json;
using internal::kMaxParams;

// config.json files nest a handful of levels (text_config.rope_scaling ...). Anything deeper is not
// a model configuration, and is refused before parsing, so no later step (error messages included)
// ever recurses through attacker-chosen depth.
constexpr int kMaxNesting = 64;

absl::Status CheckNesting(absl::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxNesting) {
        return absl::InvalidArgumentError(absl::StrCat("config.json nests deeper than ",
                                                       kMaxNesting, " levels (at byte ", i, ")"));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<DType> ParseDType(const Fields& f) {
  const std::string d = f.StringOr("torch_dtype", f.StringOr("dtype", "bfloat16"));
  return ComputeDTypeNames().Parse(f.Path("torch_dtype"), d);
}

// A model_type no family knows: a llama-like decoder from the standard fields, flagged.
absl::Status BuildGeneric(const Fields& f, const std::string& type, ModelSpec& spec) {
  spec.generic_fallback = true;
  spec.notes.push_back(absl::StrCat("model_type \"", type,
                                    "\" is not a known family; parsed as a generic llama-like "
                                    "decoder (attention + gated MLP, 2 norms per layer)"));
  return internal::BuildDecoder(
      f, {.style = internal::BiasesFromConfig, .window_pattern = internal::AllLayersSlide}, spec);
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

// ---- What the parser did not understand
// ----------------------------------------------------------

// Whether a config key's name says it shapes the model's memory (layers, widths, experts, attention
// layouts, extra towers ...). Token ids, dropout, activations, initialisation, RoPE and norm
// epsilons do not.
bool MemoryRelevantKey(absl::string_view key) {
  const std::string k = absl::AsciiStrToLower(key);
  static const char* const kIrrelevant[] = {
      "token_id",   "token_index", "dropout",    "initializer", "_eps",        "epsilon",
      "rope",       "_act",        "activation", "_std",        "temperature", "bias_init",
      "_name",      "pad_",        "bos_",       "eos_",        "label",       "torchscript",
      "multiplier", "scaling",     "coef",       "loss",        "jitter"};
  for (const char* p : kIrrelevant) {
    if (absl::StrContains(k, p)) return false;
  }
  if (absl::EndsWith(k, "_id") || absl::EndsWith(k, "_ids")) return false;
  static const char* const kRelevant[] = {"expert",
                                          "moe",
                                          "interleave",
                                          "cross_attention",
                                          "cross_attn",
                                          "mtp",
                                          "nextn",
                                          "linear_",
                                          "mamba",
                                          "ssm",
                                          "conv",
                                          "state_size",
                                          "chunk",
                                          "window",
                                          "sliding",
                                          "local_attention",
                                          "global_attention",
                                          "layers",
                                          "layer_types",
                                          "hidden",
                                          "intermediate",
                                          "ffn",
                                          "heads",
                                          "head_dim",
                                          "vocab",
                                          "kv_lora",
                                          "q_lora",
                                          "lora_rank",
                                          "dense",
                                          "shared",
                                          "altup",
                                          "laurel",
                                          "per_layer",
                                          "router",
                                          "adapter",
                                          "vision",
                                          "image",
                                          "patch",
                                          "audio",
                                          "encoder",
                                          "projector",
                                          "mm_",
                                          "embed",
                                          "n_layer",
                                          "num_layer",
                                          "dim"};
  for (const char* p : kRelevant) {
    if (absl::StrContains(k, p)) return true;
  }
  return false;
}

// Whether a value makes a difference: false, 0, null, "" and empty containers usually mean "off".
bool ActiveValue(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get<std::string>().empty() && v.get<std::string>() != "none";
  return !v.empty();
}

// Memory-relevant keys of `obj` (and of nested objects the builders entered) that nothing read.
void FindUnconsumed(const json& obj, const std::string& prefix,
                    const std::set<std::string>& consumed, std::vector<std::string>& out) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& key = it.key();
    if (!key.empty() && key[0] == '_') continue;  // our own annotations (_params, _source ...)
    const std::string path = prefix + key;
    const json& value = it.value();
    const bool read = consumed.count(path) > 0;
    if (value.is_object() && read) {
      // Entered (text_config, vision_config): look inside, unless it is a block the parser
      // takes whole (quantization_config, rope_scaling).
      if (key != "quantization_config" && key != "rope_scaling") {
        FindUnconsumed(value, path + ".", consumed, out);
      }
      continue;
    }
    if (read || !ActiveValue(value)) continue;
    // A whole nested configuration nobody read (an audio tower, a draft model ...) counts.
    const bool nested_config = value.is_object() && absl::EndsWith(key, "_config");
    if (nested_config || MemoryRelevantKey(key)) out.push_back(path);
  }
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
  RETURN_IF_ERROR(CheckNesting(config_json));
  json root = json::parse(config_json.begin(), config_json.end(), nullptr,
                          /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError("config.json is not valid JSON");
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json must be a JSON object, got ", root.type_name()));
  }
  auto consumed = std::make_shared<std::set<std::string>>();
  Fields top(root, "", consumed);
  auto type_it = root.find("model_type");
  if (type_it == root.end() || !type_it->is_string() || type_it->get<std::string>().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_type is missing or not a string",
        type_it == root.end() ? "" : absl::StrCat(" (", internal::Shown(*type_it), ")")));
  }
  top.Consume("model_type");
  const std::string top_type = type_it->get<std::string>();
  const internal::FamilyRegistry& families = internal::Families();
  const internal::WrapperFamily* wrapper = families.FindWrapper(top_type);

  ModelSpec spec;
  if (wrapper != nullptr) spec.wrapper_type = top_type;
  const std::string text_key = wrapper != nullptr ? wrapper->text_config_key : "text_config";
  const json* text_obj = top.Object(text_key.c_str());
  const bool nested_text = text_obj != nullptr;
  Fields text = nested_text ? top.Child(*text_obj, text_key.c_str()) : top;
  std::string text_type = nested_text ? text.StringOr("model_type", "") : top_type;
  if (wrapper != nullptr && !nested_text && wrapper->flat_text_type) {
    ASSIGN_OR_RETURN(text_type, wrapper->flat_text_type(top));
  }
  if (wrapper != nullptr && text_type.empty()) text_type = wrapper->default_text_type;
  std::string canonical = text_type;
  const internal::TextFamily* family = families.FindText(text_type, &canonical);
  spec.model_type = canonical;
  ASSIGN_OR_RETURN(spec.dtype, ParseDType(nested_text && !top.Has("torch_dtype") ? text : top));
  if (family != nullptr) {
    RETURN_IF_ERROR(family->build(text, canonical, spec));
  } else {
    RETURN_IF_ERROR(BuildGeneric(text, text_type, spec));
  }
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
  if (wrapper != nullptr) {
    const char* vision_key = wrapper->vision_config_key.c_str();
    const json* vision_obj = top.Object(vision_key);
    if (vision_obj == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(vision_key, " is missing for model_type=\"", top_type, "\""));
    }
    ASSIGN_OR_RETURN(spec.vision, wrapper->build_vision(top.Child(*vision_obj, vision_key), top,
                                                        top_type, spec.hidden_size));
    if (!wrapper->note.empty()) spec.notes.push_back(wrapper->note);
    if (!spec.vision->note.empty()) spec.notes.push_back(spec.vision->note);
    spec.vision->in_vision_config = wrapper->vision_config_key == "vision_config";
    auto written = [&](const char* key) -> int64_t {
      const auto it = vision_obj->find(key);
      return it != vision_obj->end() && it->is_number_integer() ? it->get<int64_t>() : 0;
    };
    spec.vision->config_num_hidden_layers = written("num_hidden_layers");
    spec.vision->config_hidden_size = written("hidden_size");
  }
  RETURN_IF_ERROR(CheckTotalSize(spec));
  const json* quant = top.Object("quantization_config");
  if (quant == nullptr && nested_text) quant = text.Object("quantization_config");
  ASSIGN_OR_RETURN(spec.quant, ParseQuantization(quant, options.quantization, options.group_size));
  if (spec.mtp) spec.mtp->quant = spec.quant;  // the checkpoint quantizes its MTP layers alike
  if (spec.quant.method == QuantSpec::Method::kMxfp4 && !spec.is_moe()) {
    spec.notes.push_back("mxfp4 applies to MoE experts only; this dense model stays unquantized");
  }
  // Fields that change memory but that the builder did not read: the estimate would be of a
  // different model. Mark it; callers refuse or widen (ModelSpec::unverified).
  FindUnconsumed(root, "", *consumed, spec.unconsumed_fields);
  if (!spec.unconsumed_fields.empty()) {
    spec.notes.push_back(absl::StrCat(
        "model_type \"", top_type, "\": fields that change memory were not understood (",
        absl::StrJoin(spec.unconsumed_fields, ", "), "); the estimate is unverified"));
  }
  return spec;
}

}  // namespace fleetplan::estimator
