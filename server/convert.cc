#include "server/convert.h"

#include <map>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/support/status.h"
#include "planner/common/limits.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/vllm_version.h"

namespace fleetplan::server {
namespace {

v1::NodeState ToProtoState(placement::NodeState s) {
  switch (s) {
    case placement::NodeState::kActive:
      return v1::NODE_STATE_ACTIVE;
    case placement::NodeState::kCordoned:
      return v1::NODE_STATE_CORDONED;
    case placement::NodeState::kDraining:
      return v1::NODE_STATE_DRAINING;
    case placement::NodeState::kDown:
      return v1::NODE_STATE_DOWN;
  }
  return v1::NODE_STATE_UNSPECIFIED;
}

}  // namespace

v1::RiskLevel ToProtoRisk(Risk r) {
  switch (r) {
    case Risk::kLow:
      return v1::RISK_LEVEL_LOW;
    case Risk::kMedium:
      return v1::RISK_LEVEL_MEDIUM;
    case Risk::kHigh:
      return v1::RISK_LEVEL_HIGH;
  }
  return v1::RISK_LEVEL_UNSPECIFIED;
}

Risk FromProto(v1::RiskLevel r) {
  switch (r) {
    case v1::RISK_LEVEL_LOW:
      return Risk::kLow;
    case v1::RISK_LEVEL_MEDIUM:
      return Risk::kMedium;
    default:
      return Risk::kHigh;
  }
}

placement::NodeState FromProto(v1::NodeState s) {
  switch (s) {
    case v1::NODE_STATE_ACTIVE:
      return placement::NodeState::kActive;
    case v1::NODE_STATE_CORDONED:
      return placement::NodeState::kCordoned;
    case v1::NODE_STATE_DRAINING:
      return placement::NodeState::kDraining;
    default:
      return placement::NodeState::kDown;
  }
}

v1::Engine ToProto(estimator::Engine e) {
  switch (e) {
    case estimator::Engine::kVllm:
      return v1::ENGINE_VLLM;
    case estimator::Engine::kHfTransformers:
      return v1::ENGINE_HF_TRANSFORMERS;
    case estimator::Engine::kTraining:
      return v1::ENGINE_TRAINING;
    case estimator::Engine::kLlamaCpp:
      return v1::ENGINE_LLAMA_CPP;
    case estimator::Engine::kSglang:
      return v1::ENGINE_SGLANG;
    case estimator::Engine::kOpenvino:
      return v1::ENGINE_OPENVINO;
  }
  return v1::ENGINE_UNSPECIFIED;
}

absl::StatusOr<estimator::Engine> EngineFromProto(v1::Engine e) {
  switch (e) {
    case v1::ENGINE_UNSPECIFIED:
    case v1::ENGINE_VLLM:
      return estimator::Engine::kVllm;
    case v1::ENGINE_HF_TRANSFORMERS:
      return estimator::Engine::kHfTransformers;
    case v1::ENGINE_TRAINING:
      return estimator::Engine::kTraining;
    case v1::ENGINE_LLAMA_CPP:
      return estimator::Engine::kLlamaCpp;
    case v1::ENGINE_SGLANG:
      return estimator::Engine::kSglang;
    case v1::ENGINE_OPENVINO:
      return estimator::Engine::kOpenvino;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("engine=", static_cast<int>(e), " is not an Engine"));
  }
}

v1::Strategy ToProto(placement::Strategy s) {
  switch (s) {
    case placement::Strategy::kPack:
      return v1::STRATEGY_PACK;
    case placement::Strategy::kSpread:
      return v1::STRATEGY_SPREAD;
    case placement::Strategy::kExact:
      return v1::STRATEGY_EXACT;
  }
  return v1::STRATEGY_UNSPECIFIED;
}

absl::StatusOr<placement::Strategy> StrategyFromProto(v1::Strategy s) {
  switch (s) {
    case v1::STRATEGY_UNSPECIFIED:
    case v1::STRATEGY_PACK:
      return placement::Strategy::kPack;
    case v1::STRATEGY_SPREAD:
      return placement::Strategy::kSpread;
    case v1::STRATEGY_EXACT:
      return placement::Strategy::kExact;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("strategy=", static_cast<int>(s), " is not a Strategy"));
  }
}

namespace {

// "" and "auto" leave the checkpoint's dtype.
absl::Status ApplyDType(const char* field, const std::string& name, estimator::EstimateRequest& r) {
  if (name.empty() || name == "auto") return absl::OkStatus();
  ASSIGN_OR_RETURN(r.dtype, estimator::ComputeDTypeNames().Parse(field, name));
  r.dtype_set = true;
  return absl::OkStatus();
}

absl::StatusOr<estimator::KvCacheDType> KvCacheDTypeFromName(const std::string& field,
                                                             const std::string& name) {
  if (name.empty()) return estimator::KvCacheDType::kAuto;
  return estimator::KvCacheDTypeNames().Parse(field, name);
}

// Unset optional fields keep the domain struct's defaults. A utilization that is set must be in
// (0, 1]: zero is the domain's "unset", never a value a caller can send.
absl::Status FromProto(const v1::VllmConfig& v, estimator::VllmConfig& d) {
  if (v.has_gpu_memory_utilization()) {
    if (!(v.gpu_memory_utilization() > 0 && v.gpu_memory_utilization() <= 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vllm.gpu_memory_utilization=", v.gpu_memory_utilization(), " must be in (0, 1]"));
    }
    d.gpu_memory_utilization = v.gpu_memory_utilization();
  }
  d.max_model_len = v.max_model_len();
  d.max_num_seqs = v.max_num_seqs();
  d.max_num_batched_tokens = v.max_num_batched_tokens();
  if (v.has_block_size()) d.block_size = v.block_size();
  d.enforce_eager = v.enforce_eager();
  d.version = v.version();
  d.enable_lora = v.enable_lora();
  if (v.has_max_loras()) d.max_loras = v.max_loras();
  if (v.has_max_lora_rank()) d.max_lora_rank = v.max_lora_rank();
  d.max_cpu_loras = v.max_cpu_loras();
  // The draft's ModelSpec is the caller's to parse and keep (draft_config_json); here its name.
  d.draft_model = v.draft_model();
  d.cpu_offload_gb = v.cpu_offload_gb();
  d.swap_space_gb = v.swap_space_gb();
  d.mamba_cache_dtype = v.mamba_cache_dtype();
  d.mamba_ssm_cache_dtype = v.mamba_ssm_cache_dtype();
  if (!v.speculative_method().empty()) {
    ASSIGN_OR_RETURN(d.speculative_method, estimator::SpeculativeMethodNames().Parse(
                                               "vllm.speculative_method", v.speculative_method()));
  }
  const bool method = d.speculative_method != estimator::SpeculativeMethod::kDraftModel;
  const bool headless = d.speculative_method == estimator::SpeculativeMethod::kMtp ||
                        d.speculative_method == estimator::SpeculativeMethod::kNgram;
  if (headless && !v.draft_config_json().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vllm.speculative_method=", v.speculative_method(), " needs no vllm.draft_config_json"));
  }
  if (!v.draft_config_json().empty() || method) {
    d.num_speculative_tokens = v.has_num_speculative_tokens() ? v.num_speculative_tokens() : 4;
  } else if (v.has_num_speculative_tokens()) {
    return absl::InvalidArgumentError(
        absl::StrCat("vllm.num_speculative_tokens=", v.num_speculative_tokens(),
                     " needs vllm.draft_config_json or vllm.speculative_method"));
  }
  return estimator::ParseVllmVersion("vllm.version", d.version).status();
}

void ToProto(const placement::Headroom& d, v1::Headroom* p) {
  p->set_key(d.key);
  p->set_total_bytes(d.total_bytes);
  p->set_reserved_bytes(d.reserved_bytes);
  p->set_committed_bytes(d.committed_bytes);
  p->set_free_bytes(d.free_bytes);
  p->set_headroom_ratio(d.headroom_ratio);
  p->set_risk(ToProtoRisk(d.risk));
  p->set_gpus(d.gpus);
  p->set_free_gpus(d.free_gpus);
  p->set_largest_free_nvlink_domain(d.largest_free_nvlink_domain);
}

}  // namespace

placement::GpuType FromProto(const v1::GpuType& p) {
  return placement::GpuType{
      .name = p.name(),
      .memory_bytes = p.memory_bytes(),
      .memory_bandwidth_bytes_per_second = p.memory_bandwidth_bytes_per_second(),
      .bf16_tflops = p.bf16_tflops(),
      .cost_per_hour = p.cost_per_hour(),
      .nvlink_generation = p.nvlink_generation()};
}

void ToProto(const placement::GpuType& d, v1::GpuType* p) {
  p->set_name(d.name);
  p->set_memory_bytes(d.memory_bytes);
  p->set_memory_bandwidth_bytes_per_second(d.memory_bandwidth_bytes_per_second);
  p->set_bf16_tflops(d.bf16_tflops);
  p->set_cost_per_hour(d.cost_per_hour);
  p->set_nvlink_generation(d.nvlink_generation);
}

absl::StatusOr<int64_t> PageSizeFromProto(int64_t page_size) {
  if (page_size < 0 || page_size > limits::kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size=", page_size, " must be in [0, ",
                                                   limits::kMaxPageSize, "] (0: default)"));
  }
  return page_size == 0 ? limits::kDefaultPageSize : page_size;
}

absl::StatusOr<placement::Node> FromProto(const v1::Node& p) {
  placement::Node n{
      .name = p.name(),
      .pool = p.pool(),
      .zone = p.zone(),
      .rack = p.rack(),
      .inter_node_bandwidth_bytes_per_second = p.inter_node_bandwidth_bytes_per_second()};
  for (const auto& [k, v] : p.labels()) n.labels[k] = v;
  switch (p.state()) {
    case v1::NODE_STATE_UNSPECIFIED:
    case v1::NODE_STATE_ACTIVE:
      n.state = placement::NodeState::kActive;
      break;
    case v1::NODE_STATE_CORDONED:
      n.state = placement::NodeState::kCordoned;
      break;
    case v1::NODE_STATE_DRAINING:
      n.state = placement::NodeState::kDraining;
      break;
    case v1::NODE_STATE_DOWN:
      n.state = placement::NodeState::kDown;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "node \"", p.name(), "\": state=", static_cast<int>(p.state()), " is not a NodeState"));
  }
  for (const v1::Gpu& g : p.gpus()) {
    n.gpus.push_back(placement::Gpu{.index = g.index(),
                                    .gpu_type = g.gpu_type(),
                                    .nvlink_domain = g.nvlink_domain(),
                                    .healthy = !g.has_healthy() || g.healthy(),
                                    .uuid = g.uuid()});
  }
  return n;
}

void ToProto(const placement::Node& d, v1::Node* p) {
  p->set_name(d.name);
  p->set_pool(d.pool);
  p->set_zone(d.zone);
  p->set_rack(d.rack);
  for (const auto& [k, v] : d.labels) (*p->mutable_labels())[k] = v;
  p->set_state(ToProtoState(d.state));
  p->set_inter_node_bandwidth_bytes_per_second(d.inter_node_bandwidth_bytes_per_second);
  for (const placement::Gpu& g : d.gpus) {
    v1::Gpu* gp = p->add_gpus();
    gp->set_index(g.index);
    gp->set_gpu_type(g.gpu_type);
    gp->set_nvlink_domain(g.nvlink_domain);
    gp->set_healthy(g.healthy);
    gp->set_uuid(g.uuid);
    gp->set_committed_bytes(g.committed_bytes);
    gp->set_reserved_bytes(g.reserved_bytes);
  }
  p->set_etag(NodeEtag(d.version));
}

void ToProto(const placement::ModelRecord& d, v1::Model* p) {
  p->set_name(d.name);
  p->set_config_json(d.config_json);
  p->set_quantization(d.quantization);
  p->set_model_type(d.model_type);
  p->set_params(d.params);
  p->set_weights_bytes(d.weights_bytes);
  p->set_kv_bytes_per_token(d.kv_bytes_per_token);
  p->set_create_time_unix_ms(d.created_unix_ms);
  p->set_format(d.gguf_json.empty() ? "config.json" : "gguf");
  // A list carries "{}" for a GGUF model (the header is in GetModel and FULL); the header was
  // checked when it was imported.
  if (!d.gguf_json.empty() && d.gguf_json != "{}") {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    (void)google::protobuf::util::JsonStringToMessage(d.gguf_json, p->mutable_gguf(), options);
  }
}

absl::Status FromProto(const v1::SglangConfig& g, estimator::SglangConfig& d) {
  d.mem_fraction_static = g.mem_fraction_static();
  d.context_length = g.context_length();
  d.chunked_prefill_size = g.chunked_prefill_size();
  d.cuda_graph_max_bs = g.cuda_graph_max_bs();
  d.max_running_requests = g.max_running_requests();
  if (g.has_page_size()) d.page_size = g.page_size();
  d.disable_cuda_graph = g.disable_cuda_graph();
  d.enable_lora = g.enable_lora();
  if (g.has_max_loras_per_batch()) d.max_loras_per_batch = g.max_loras_per_batch();
  d.max_lora_rank = g.max_lora_rank();
  d.lora_target_modules = {g.lora_target_modules().begin(), g.lora_target_modules().end()};
  d.version = g.version();
  // The draft's ModelSpec is the caller's to parse and keep (draft_config_json); here its name.
  d.draft_model = g.draft_model();
  d.speculative_num_steps = g.speculative_num_steps();
  d.speculative_eagle_topk = g.speculative_eagle_topk();
  d.speculative_num_draft_tokens = g.speculative_num_draft_tokens();
  d.swa_full_tokens_ratio = g.swa_full_tokens_ratio();
  d.disable_hybrid_swa_memory = g.disable_hybrid_swa_memory();
  d.enable_piecewise_cuda_graph = g.enable_piecewise_cuda_graph();
  d.piecewise_cuda_graph_max_tokens = g.piecewise_cuda_graph_max_tokens();
  d.max_mamba_cache_size = g.max_mamba_cache_size();
  d.mamba_full_memory_ratio = g.mamba_full_memory_ratio();
  d.mamba_ssm_dtype = g.mamba_ssm_dtype();
  d.disable_radix_cache = g.disable_radix_cache();
  d.max_loaded_loras = g.max_loaded_loras();
  ASSIGN_OR_RETURN(d.speculative_algorithm,
                   estimator::SglangSpeculativeNames().Parse("sglang.speculative_algorithm",
                                                             g.speculative_algorithm()));
  return absl::OkStatus();
}

void ToProto(const estimator::SglangConfig& d, v1::SglangConfig* g) {
  g->set_mem_fraction_static(d.mem_fraction_static);
  g->set_context_length(d.context_length);
  g->set_chunked_prefill_size(d.chunked_prefill_size);
  g->set_cuda_graph_max_bs(d.cuda_graph_max_bs);
  g->set_max_running_requests(d.max_running_requests);
  g->set_page_size(d.page_size);
  g->set_disable_cuda_graph(d.disable_cuda_graph);
  g->set_enable_lora(d.enable_lora);
  g->set_max_loras_per_batch(d.max_loras_per_batch);
  g->set_max_lora_rank(d.max_lora_rank);
  *g->mutable_lora_target_modules() = {d.lora_target_modules.begin(), d.lora_target_modules.end()};
  g->set_version(d.version);
  if (d.speculative_algorithm != estimator::SglangSpeculative::kNone) {
    g->set_speculative_algorithm(estimator::SglangSpeculativeNames().Name(d.speculative_algorithm));
  }
  g->set_draft_model(d.draft_model);
  g->set_speculative_num_steps(d.speculative_num_steps);
  g->set_speculative_eagle_topk(d.speculative_eagle_topk);
  g->set_speculative_num_draft_tokens(d.speculative_num_draft_tokens);
  g->set_swa_full_tokens_ratio(d.swa_full_tokens_ratio);
  g->set_disable_hybrid_swa_memory(d.disable_hybrid_swa_memory);
  g->set_enable_piecewise_cuda_graph(d.enable_piecewise_cuda_graph);
  g->set_piecewise_cuda_graph_max_tokens(d.piecewise_cuda_graph_max_tokens);
  g->set_max_mamba_cache_size(d.max_mamba_cache_size);
  g->set_mamba_full_memory_ratio(d.mamba_full_memory_ratio);
  g->set_mamba_ssm_dtype(d.mamba_ssm_dtype);
  g->set_disable_radix_cache(d.disable_radix_cache);
  g->set_max_loaded_loras(d.max_loaded_loras);
}

absl::Status FromProto(const v1::OpenvinoConfig& p, estimator::OpenvinoConfig& c) {
  if (!p.device().empty()) {
    ASSIGN_OR_RETURN(c.device, estimator::OvDeviceNames().Parse("openvino.device", p.device()));
  }
  if (!p.weight_format().empty()) {
    ASSIGN_OR_RETURN(c.weight_format, estimator::OvWeightFormatNames().Parse(
                                          "openvino.weight_format", p.weight_format()));
    c.weight_format_set = true;
  }
  if (p.has_group_size()) c.group_size = p.group_size();
  if (p.has_ratio()) c.ratio = p.ratio();
  c.all_layers = p.all_layers();
  if (!p.kv_cache_precision().empty()) {
    ASSIGN_OR_RETURN(c.kv_precision, estimator::OvKvPrecisionNames().Parse(
                                         "openvino.kv_cache_precision", p.kv_cache_precision()));
  }
  c.kv_group_size = p.kv_group_size();
  if (!p.inference_precision().empty()) {
    ASSIGN_OR_RETURN(c.inference_precision,
                     estimator::OvInferencePrecisionNames().Parse("openvino.inference_precision",
                                                                  p.inference_precision()));
  }
  c.amx = p.amx();
  c.continuous_batching = p.continuous_batching();
  c.cache_size_gb = p.cache_size_gb();
  c.num_kv_blocks = p.num_kv_blocks();
  if (p.has_max_num_batched_tokens()) c.max_num_batched_tokens = p.max_num_batched_tokens();
  if (p.has_max_num_seqs()) c.max_num_seqs = p.max_num_seqs();
  c.images = p.images();
  c.image_height = p.image_height();
  c.image_width = p.image_width();
  if (p.has_prompt_tokens()) c.prompt_tokens = p.prompt_tokens();
  if (p.has_new_tokens()) c.new_tokens = p.new_tokens();
  c.llm_tokens = p.llm_tokens();
  return absl::OkStatus();
}

void ToProto(const estimator::OpenvinoConfig& c, v1::OpenvinoConfig* p) {
  p->set_device(estimator::OvDeviceNames().Name(c.device));
  if (c.weight_format_set)
    p->set_weight_format(estimator::OvWeightFormatNames().Name(c.weight_format));
  p->set_group_size(c.group_size);
  p->set_ratio(c.ratio);
  p->set_all_layers(c.all_layers);
  p->set_kv_cache_precision(estimator::OvKvPrecisionNames().Name(c.kv_precision));
  p->set_kv_group_size(c.kv_group_size);
  p->set_inference_precision(estimator::OvInferencePrecisionNames().Name(c.inference_precision));
  p->set_amx(c.amx);
  p->set_continuous_batching(c.continuous_batching);
  p->set_cache_size_gb(c.cache_size_gb);
  p->set_num_kv_blocks(c.num_kv_blocks);
  p->set_max_num_batched_tokens(c.max_num_batched_tokens);
  p->set_max_num_seqs(c.max_num_seqs);
  p->set_images(c.images);
  p->set_image_height(c.image_height);
  p->set_image_width(c.image_width);
  p->set_prompt_tokens(c.prompt_tokens);
  p->set_new_tokens(c.new_tokens);
  p->set_llm_tokens(c.llm_tokens);
}

absl::Status FromProto(const v1::LlamaCppConfig& p, estimator::LlamaCppConfig& c) {
  c.n_ctx = p.n_ctx();
  c.n_parallel = p.n_parallel();
  c.kv_unified = p.kv_unified();
  if (p.has_n_batch()) c.n_batch = p.n_batch();
  if (p.has_n_ubatch()) c.n_ubatch = p.n_ubatch();
  if (!p.cache_type_k().empty()) c.cache_type_k = p.cache_type_k();
  if (!p.cache_type_v().empty()) c.cache_type_v = p.cache_type_v();
  if (!p.flash_attn().empty()) {
    ASSIGN_OR_RETURN(c.flash_attn,
                     estimator::FlashAttnNames().Parse("llama_cpp.flash_attn", p.flash_attn()));
  }
  if (p.has_n_gpu_layers()) c.n_gpu_layers = p.n_gpu_layers();
  c.tensor_split = {p.tensor_split().begin(), p.tensor_split().end()};
  c.n_cpu_moe = p.n_cpu_moe();
  if (p.has_fit()) c.fit = p.fit();
  if (p.has_fit_margin_bytes()) c.fit_margin_bytes = p.fit_margin_bytes();
  c.swa_full = p.swa_full();
  c.file_type = p.file_type();
  c.images = p.images();
  c.image_height = p.image_height();
  c.image_width = p.image_width();
  c.ollama = p.ollama();
  return absl::OkStatus();
}

absl::StatusOr<estimator::GgufFile> FromProto(const v1::GgufModel& p) {
  std::map<std::string, std::string> metadata(p.metadata().begin(), p.metadata().end());
  std::map<std::string, std::vector<int64_t>> arrays;
  for (const auto& [key, values] : p.int_arrays()) {
    arrays[key] = {values.values().begin(), values.values().end()};
  }
  std::vector<estimator::GgufTensor> tensors;
  tensors.reserve(static_cast<size_t>(p.tensors_size()));
  for (const v1::GgufModel::Tensor& t : p.tensors()) {
    tensors.push_back(estimator::GgufTensor{
        .name = t.name(), .dims = {t.dims().begin(), t.dims().end()}, .type = t.type()});
  }
  absl::StatusOr<estimator::GgufFile> file =
      estimator::GgufFromParts(std::move(metadata), std::move(arrays), std::move(tensors));
  if (!file.ok())
    return absl::InvalidArgumentError(absl::StrCat("gguf: ", file.status().message()));
  return file;
}

void ToProto(const estimator::GgufFile& d, v1::GgufModel* p) {
  for (const auto& [key, value] : d.metadata) (*p->mutable_metadata())[key] = value;
  for (const auto& [key, values] : d.int_arrays) {
    *(*p->mutable_int_arrays())[key].mutable_values() = {values.begin(), values.end()};
  }
  for (const estimator::GgufTensor& t : d.tensors) {
    v1::GgufModel::Tensor* tp = p->add_tensors();
    tp->set_name(t.name);
    *tp->mutable_dims() = {t.dims.begin(), t.dims.end()};
    tp->set_type(t.type);
  }
}

void ToProto(const estimator::LlamaCppConfig& d, v1::LlamaCppConfig* p) {
  p->set_n_ctx(d.n_ctx);
  p->set_n_parallel(d.n_parallel);
  p->set_kv_unified(d.kv_unified);
  p->set_n_batch(d.n_batch);
  p->set_n_ubatch(d.n_ubatch);
  p->set_cache_type_k(d.cache_type_k);
  p->set_cache_type_v(d.cache_type_v);
  p->set_flash_attn(estimator::FlashAttnNames().Name(d.flash_attn));
  p->set_n_gpu_layers(d.n_gpu_layers);
  *p->mutable_tensor_split() = {d.tensor_split.begin(), d.tensor_split.end()};
  p->set_n_cpu_moe(d.n_cpu_moe);
  p->set_fit(d.fit);
  p->set_fit_margin_bytes(d.fit_margin_bytes);
  p->set_swa_full(d.swa_full);
  p->set_file_type(d.file_type);
  p->set_images(d.images);
  p->set_image_height(d.image_height);
  p->set_image_width(d.image_width);
  p->set_ollama(d.ollama);
}

absl::StatusOr<estimator::EstimateRequest> FromProto(const v1::EstimateRequest& p) {
  estimator::EstimateRequest r;
  ASSIGN_OR_RETURN(r.engine, EngineFromProto(p.engine()));
  if (p.model_case() == v1::EstimateRequest::kGguf && p.engine() == v1::ENGINE_UNSPECIFIED) {
    r.engine = estimator::Engine::kLlamaCpp;
  }
  RETURN_IF_ERROR(FromProto(p.llama_cpp(), r.llama_cpp));
  RETURN_IF_ERROR(FromProto(p.sglang(), r.sglang));
  RETURN_IF_ERROR(FromProto(p.openvino(), r.openvino));
  const v1::Parallelism& par = p.parallelism();
  if (par.has_tp()) r.parallelism.tp = par.tp();
  if (par.has_pp()) r.parallelism.pp = par.pp();
  if (par.has_ep()) r.parallelism.ep = par.ep();
  if (par.has_dp()) r.parallelism.dp = par.dp();
  RETURN_IF_ERROR(ApplyDType("dtype", p.dtype(), r));
  ASSIGN_OR_RETURN(r.kv_cache_dtype, KvCacheDTypeFromName("kv_cache_dtype", p.kv_cache_dtype()));
  r.concurrency = p.concurrency();
  r.context_tokens = p.context_tokens();
  RETURN_IF_ERROR(FromProto(p.vllm(), r.vllm));
  const v1::HfConfig& h = p.hf();
  r.hf.eager_attention = h.eager_attention();
  r.hf.generate = h.generate();
  r.hf.all_logits = h.all_logits();
  if (h.has_batch()) r.hf.batch = h.batch();
  if (h.has_prompt_tokens()) r.hf.prompt_tokens = h.prompt_tokens();
  if (h.has_new_tokens()) r.hf.new_tokens = h.new_tokens();
  r.hf.images = h.images();
  r.hf.image_height = h.image_height();
  r.hf.image_width = h.image_width();
  const v1::TrainingConfig& t = p.training();
  if (!t.optimizer().empty()) {
    ASSIGN_OR_RETURN(r.training.optimizer,
                     estimator::OptimizerNames().Parse("training.optimizer", t.optimizer()));
  }
  if (!t.param_dtype().empty()) {
    ASSIGN_OR_RETURN(r.training.param_dtype,
                     estimator::ComputeDTypeNames().Parse("training.param_dtype", t.param_dtype()));
  }
  r.training.autocast_bf16 = t.autocast_bf16();
  r.training.gradient_checkpointing = t.gradient_checkpointing();
  r.training.lora_rank = t.lora_rank();
  r.training.lora_targets = {t.lora_targets().begin(), t.lora_targets().end()};
  // Clamped into int range; the estimator refuses anything outside 0..3 by name.
  r.training.zero_stage = static_cast<int>(std::clamp<int64_t>(t.zero_stage(), -1, 4));
  if (t.has_batch()) r.training.batch = t.batch();
  if (t.has_seq_tokens()) r.training.seq_tokens = t.seq_tokens();
  if (r.engine == estimator::Engine::kTraining) {
    r.dtype_set = true;
    r.dtype = r.training.param_dtype;
  }
  return r;
}

absl::StatusOr<placement::DeploymentSpec> FromProto(const v1::DeploymentSpec& p, size_t index) {
  return FromProto(p, absl::StrCat("deployments[", index, "] \"", p.name(), "\""));
}

absl::StatusOr<placement::DeploymentSpec> FromProto(const v1::DeploymentSpec& p,
                                                    const std::string& where) {
  auto named = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
  };
  if (p.model().empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": model is empty"));
  placement::DeploymentSpec d{.name = p.name(), .model = p.model()};
  if (absl::Status s = FromProto(p.vllm(), d.vllm); !s.ok()) return named(s);
  d.utilization_given = p.vllm().has_gpu_memory_utilization();
  absl::StatusOr<estimator::Engine> engine = EngineFromProto(p.engine());
  if (!engine.ok()) return named(engine.status());
  d.engine = *engine;
  if (absl::Status s = FromProto(p.sglang(), d.sglang); !s.ok()) return named(s);
  if (absl::Status s = FromProto(p.llama_cpp(), d.llama_cpp); !s.ok()) return named(s);
  absl::StatusOr<estimator::KvCacheDType> kv =
      KvCacheDTypeFromName("kv_cache_dtype", p.kv_cache_dtype());
  if (!kv.ok()) return named(kv.status());
  d.kv_cache_dtype = *kv;
  if (p.has_concurrency()) d.concurrency = p.concurrency();
  d.context_tokens = p.context_tokens();
  if (p.has_replicas()) d.replicas = p.replicas();
  d.gpu_types = {p.gpu_types().begin(), p.gpu_types().end()};
  d.pools = {p.pools().begin(), p.pools().end()};
  d.zones = {p.zones().begin(), p.zones().end()};
  d.shared = p.shared();
  d.allow_unverified = p.allow_unverified();
  absl::StatusOr<placement::Spread> spread = placement::SpreadNames().Parse("spread", p.spread());
  if (!spread.ok()) return named(spread.status());
  d.spread = *spread;
  if (p.has_min_free_ratio()) d.min_free_ratio = p.min_free_ratio();
  if (p.has_max_tp()) d.max_tp = p.max_tp();
  if (p.has_max_pp()) d.max_pp = p.max_pp();
  return d;
}

void ToProto(const estimator::MemoryEstimate& d, int64_t params, v1::EstimateResponse* p) {
  for (const estimator::StageMemory& s : d.stages) {
    v1::StageMemory* sp = p->add_stages();
    sp->set_pp_stage(s.pp_stage);
    sp->set_first_layer(s.first_layer);
    sp->set_num_layers(s.num_layers);
    sp->set_weights_bytes(s.weights_bytes);
    sp->set_kv_cache_bytes(s.kv_cache_bytes);
    sp->set_activation_peak_bytes(s.activation_peak_bytes);
    sp->set_cuda_context_bytes(s.cuda_context_bytes);
    sp->set_engine_overhead_bytes(s.engine_overhead_bytes);
    sp->set_cuda_graph_bytes(s.cuda_graph_bytes);
    sp->set_gradient_bytes(s.gradient_bytes);
    sp->set_optimizer_bytes(s.optimizer_bytes);
    sp->set_fragmentation_bytes(s.fragmentation_bytes);
    sp->set_total_bytes(s.total_bytes);
    sp->set_kv_cache_tokens(s.kv_cache_tokens);
    sp->set_available_kv_cache_bytes(s.available_kv_cache_bytes);
    sp->set_low_bytes(s.low_bytes);
    sp->set_high_bytes(s.high_bytes);
    sp->set_kv_cache_tokens_low(s.kv_cache_tokens_low);
  }
  for (int64_t b : d.BytesPerRank()) p->add_bytes_per_rank(b);
  p->set_gpu_memory_bytes(d.gpu_memory_bytes);
  p->set_max_total_bytes(d.max_total_bytes);
  p->set_max_high_bytes(d.max_high_bytes);
  p->set_kv_cache_tokens_low(d.kv_cache_tokens_low);
  p->set_max_concurrency_low(d.max_concurrency_low);
  for (const std::string& w : d.band_widened) p->add_band_widened(w);
  p->set_fits(d.fits);
  p->set_headroom_bytes(d.headroom_bytes);
  p->set_headroom_ratio(d.headroom_ratio);
  p->set_risk(ToProtoRisk(d.risk));
  p->set_reason(d.reason);
  p->set_kv_cache_tokens(d.kv_cache_tokens);
  p->set_max_concurrency(d.max_concurrency);
  p->set_max_model_len(d.max_model_len);
  p->set_params(params);
  for (const std::string& n : d.notes) p->add_notes(n);
  p->set_unverified(d.unverified);
  p->set_encoder_only(d.encoder_only);
  p->set_host_bytes(d.host_bytes);
  for (const estimator::MemoryEstimate::PipelinePart& part : d.pipeline_parts) {
    v1::EstimateResponse::PipelinePart* pp = p->add_pipeline_parts();
    pp->set_name(part.name);
    pp->set_weights_bytes(part.weights_bytes);
    pp->set_temp_bytes(part.temp_bytes);
  }
}

void ToProto(const estimator::BudgetCell& d, v1::BudgetCell* p) {
  p->set_context_tokens(d.context_tokens);
  p->set_concurrency(d.concurrency);
  p->set_bytes_per_gpu(d.bytes_per_gpu);
  p->set_fits(d.fits);
}

void ToProto(const placement::FleetHeadroom& d, v1::FleetHeadroom* p) {
  p->set_generation(d.generation);
  ToProto(d.fleet, p->mutable_fleet());
  for (const auto& h : d.pools) ToProto(h, p->add_pools());
  for (const auto& h : d.gpu_types) ToProto(h, p->add_gpu_types());
  for (const auto& h : d.nodes) ToProto(h, p->add_nodes());
  for (const auto& g : d.gpus) {
    v1::GpuHeadroom* gp = p->add_gpus();
    gp->set_node(g.node);
    gp->set_index(g.index);
    gp->set_pool(g.pool);
    gp->set_gpu_type(g.gpu_type);
    gp->set_uuid(g.uuid);
    ToProto(g.headroom, gp->mutable_headroom());
  }
}

void ToProto(const placement::Shortfall& s, v1::Shortfall* sp) {
  sp->set_kind(placement::ShortfallKindNames().Name(s.kind));
  sp->set_gpu_type(s.gpu_type);
  sp->set_tp(s.tp);
  sp->set_pp(s.pp);
  sp->set_gpus(s.gpus);
  sp->set_need_bytes_per_gpu(s.need_bytes_per_gpu);
  sp->set_allowed_bytes_per_gpu(s.allowed_bytes_per_gpu);
  sp->set_largest_domain(s.largest_domain);
  sp->set_best_eligible_gpus(s.best_eligible_gpus);
  sp->set_spread_targets(s.spread_targets);
  sp->set_detail(s.detail);
}

void ToProto(const placement::Recommendation& r, v1::RecommendResponse* p) {
  for (const placement::Configuration& c : r.configurations) {
    const placement::Candidate& k = c.candidate;
    v1::RecommendedConfiguration* cp = p->add_configurations();
    cp->set_gpu_type(k.type->name);
    cp->set_gpus(k.gpus);
    cp->set_tp(k.tp);
    cp->set_pp(k.pp);
    cp->set_ep(k.ep);
    cp->set_max_bytes_per_gpu(k.max_rank_bytes);
    for (int64_t b : k.stage_bytes) cp->add_stage_bytes_per_gpu(b);
    cp->set_kv_cache_tokens(k.kv_tokens);
    cp->set_gpu_memory_utilization(k.util);
    cp->set_cost_per_hour(c.cost_per_hour);
    cp->set_launch_command(k.launch_command);
  }
  for (const placement::TypeVerdict& v : r.types) {
    v1::GpuTypeVerdict* vp = p->add_gpu_types();
    vp->set_gpu_type(v.gpu_type);
    vp->set_fits(!v.none_fits.has_value());
    if (v.none_fits) {
      ToProto(*v.none_fits, vp->mutable_why_not());
      vp->set_reason(placement::Describe(*v.none_fits));
    }
    vp->set_fewest_gpus(v.fewest);
    if (v.why_not_fewer) {
      vp->set_fewer_gpus(v.fewer);
      ToProto(*v.why_not_fewer, vp->mutable_why_not_fewer());
      vp->set_reason(placement::Describe(*v.why_not_fewer));
    }
  }
}

void ToProto(const placement::Plan& plan, v1::Plan* p) {
  p->set_snapshot_generation(plan.snapshot_generation);
  for (const auto& r : plan.replicas) {
    v1::ReplicaPlan* rp = p->add_replicas();
    rp->set_deployment(r.deployment);
    rp->set_model(r.model);
    rp->set_replica(r.replica);
    rp->set_gpu_type(r.gpu_type);
    rp->set_tp(r.tp);
    rp->set_pp(r.pp);
    rp->set_ep(r.ep);
    for (const auto& rank : r.ranks) {
      v1::PlacedRank* pr = rp->add_ranks();
      pr->set_rank(rank.rank);
      pr->set_node(rank.gpu.node);
      pr->set_gpu_index(rank.gpu.index);
      pr->set_bytes(rank.bytes);
    }
    rp->set_kv_cache_tokens(r.kv_cache_tokens);
    rp->set_gpu_memory_utilization(r.gpu_memory_utilization);
    rp->set_risk(ToProtoRisk(r.risk));
    rp->set_launch_command(r.launch_command);
    rp->set_host_bytes(r.host_bytes);
    for (const auto& v : r.cuda_visible_devices) rp->add_cuda_visible_devices(v);
  }
  for (const auto& u : plan.unplaced) {
    v1::UnplacedReplica* up = p->add_unplaced();
    up->set_deployment(u.deployment);
    up->set_replica(u.replica);
    up->set_code(u.retryable() ? static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED)
                               : static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
    up->set_reason(placement::Describe(u));
    for (const placement::Shortfall& s : u.shortfalls) ToProto(s, up->add_shortfalls());
  }
  p->set_gpus_used(plan.gpus_used);
  p->set_cost_per_hour(plan.cost_per_hour);
  p->set_lower_bound_gpus(plan.lower_bound_gpus);
  p->set_gap(plan.gap);
  p->set_strategy(plan.strategy_used);
}

void ExplainLines(const v1::Plan& plan, google::protobuf::RepeatedPtrField<std::string>* lines) {
  for (const auto& r : plan.replicas()) {
    int64_t fullest = 0;
    for (const auto& rank : r.ranks()) fullest = std::max(fullest, rank.bytes());
    *lines->Add() = absl::StrFormat(
        "replica %d: %s tp=%d pp=%d ep=%d on %d GPUs, %.1f GiB on its fullest GPU, utilization "
        "%.2f, KV for %d tokens",
        r.replica(), r.gpu_type(), r.tp(), r.pp(), r.ep(), r.ranks_size(), BytesToGiB(fullest),
        r.gpu_memory_utilization(), r.kv_cache_tokens());
  }
  for (const auto& u : plan.unplaced()) {
    *lines->Add() =
        absl::StrFormat("replica %d not placed (%s): %s", u.replica(),
                        u.code() == static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED)
                            ? "RESOURCE_EXHAUSTED, fits when capacity frees"
                            : "FAILED_PRECONDITION, cannot fit this fleet",
                        u.reason());
  }
  *lines->Add() = absl::StrFormat("%d GPUs, lower bound %d (gap %.1f%%)", plan.gpus_used(),
                                  plan.lower_bound_gpus(), 100 * plan.gap());
}

void ToProto(const placement::Placement& d, v1::PlacementRecord* p) {
  p->set_id(d.id);
  p->set_deployment(d.deployment);
  p->set_model(d.model);
  p->set_replica(d.replica);
  p->set_tp(d.tp);
  p->set_pp(d.pp);
  p->set_ep(d.ep);
  p->set_state(placement::PlacementStateName(d.state));
  for (const auto& r : d.ranks) {
    v1::PlacedRank* pr = p->add_ranks();
    pr->set_rank(r.rank);
    pr->set_node(r.gpu.node);
    pr->set_gpu_index(r.gpu.index);
    pr->set_bytes(r.bytes);
  }
  p->set_request_id(d.request_id);
  p->set_create_time_unix_ms(d.created_unix_ms);
  p->set_expire_time_unix_ms(d.expires_unix_ms);
}

void ToProto(const placement::DeploymentRecord& d, v1::DeploymentRecord* p) {
  p->set_name(d.name);
  p->set_model(d.model);
  p->set_replicas(d.replicas);
  p->set_create_time_unix_ms(d.created_unix_ms);
  // The stored spec is the DeploymentSpec's JSON; a record written by another version that does
  // not parse is left out rather than failing the listing.
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  (void)google::protobuf::util::JsonStringToMessage(d.spec_json, p->mutable_spec(), options);
}

std::string NodeEtag(int64_t version) { return absl::StrCat("v", version); }

absl::StatusOr<int64_t> ParseNodeEtag(const std::string& etag) {
  absl::string_view s = etag;
  int64_t v = 0;
  if (!absl::ConsumePrefix(&s, "v") || !absl::SimpleAtoi(s, &v) || v < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("node.etag=\"", etag, "\" is not an etag this server issued"));
  }
  return v;
}

}  // namespace fleetplan::server
