// `fleetplan estimate`: offline memory estimate from a config.json (no server needed).
//
//   fleetplan estimate --model config.json --engine vllm --gpu H100-80GB --tp 2 --max-model-len
//   8192 fleetplan estimate --vllm "vllm serve /models/llama --tensor-parallel-size 2
//   --max-model-len 8192" fleetplan estimate --model config.json --engine hf-transformers --batch 4
//   --prompt-tokens 2048 fleetplan estimate --model config.json --engine training --param-dtype
//   float32 --autocast

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "clients/cli.h"
#include "clients/deployments_file.h"
#include "clients/rpc_util.h"
#include "clients/vllm_command.h"
#include "fleetplan/v1/estimator.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/gpu_catalog.h"
#include "planner/estimator/inverse.h"
#include "planner/estimator/llama_cpp.h"
#include "planner/estimator/openvino.h"
#include "planner/estimator/sglang.h"
#include "planner/estimator/vllm.h"
#include "planner/placement/candidates.h"
#include "server/convert.h"

namespace fleetplan::cli {
namespace {

std::string ServedModel(const std::string& model_path);
std::string DraftName(const FlagSet& flags);

using estimator::EstimateRequest;
using estimator::MemoryEstimate;
using json = nlohmann::json;

absl::StatusOr<estimator::DType> ParseDTypeFlag(const std::string& flag, const std::string& v) {
  return estimator::ComputeDTypeNames().Parse(absl::StrCat("--", flag), v);
}

absl::StatusOr<std::vector<int64_t>> ParseIntList(const std::string& flag, const std::string& v) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(v, ',', absl::SkipEmpty())) {
    int64_t x = 0;
    if (!absl::SimpleAtoi(part, &x) || x < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=\"", v, "\": \"", part, "\" is not a positive integer"));
    }
    out.push_back(x);
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, " is empty"));
  return out;
}

// llama-server's flags, under their own long names (--ctx-size, --parallel, --n-gpu-layers ...).
// OpenVINO's deployment: the flags, and the exported folder's openvino_config.json (beside
// --model) for the weight compression unless --weight-format says it.
absl::StatusOr<estimator::OpenvinoConfig> OpenvinoFromFlags(const FlagSet& f) {
  estimator::OpenvinoConfig c;
  ASSIGN_OR_RETURN(c.device,
                   estimator::OvDeviceNames().Parse("--ov-device", f.GetString("ov-device")));
  const std::filesystem::path beside =
      std::filesystem::path(f.GetString("model")).parent_path() / "openvino_config.json";
  if (!f.GetString("weight-format").empty()) {
    ASSIGN_OR_RETURN(c.weight_format, estimator::OvWeightFormatNames().Parse(
                                          "--weight-format", f.GetString("weight-format")));
    c.weight_format_set = true;
    c.group_size = f.GetInt("ov-group-size");
    c.ratio = f.GetDouble("ov-ratio");
    c.all_layers = f.GetBool("all-layers");
  } else if (!f.GetString("model").empty() && std::filesystem::exists(beside)) {
    ASSIGN_OR_RETURN(std::string text, ReadFileText("openvino_config.json", beside.string()));
    RETURN_IF_ERROR(estimator::ApplyOpenvinoConfigJson(text, c));
  }
  ASSIGN_OR_RETURN(c.kv_precision, estimator::OvKvPrecisionNames().Parse(
                                       "--kv-cache-precision", f.GetString("kv-cache-precision")));
  c.kv_group_size = f.GetInt("kv-group-size");
  ASSIGN_OR_RETURN(c.inference_precision,
                   estimator::OvInferencePrecisionNames().Parse(
                       "--inference-precision", f.GetString("inference-precision")));
  c.amx = f.GetBool("amx");
  c.continuous_batching = f.GetBool("continuous-batching");
  c.cache_size_gb = f.GetDouble("cache-size");
  c.num_kv_blocks = f.GetInt("num-kv-blocks");
  if (f.GetInt("max-num-batched-tokens") > 0) {
    c.max_num_batched_tokens = f.GetInt("max-num-batched-tokens");
  }
  if (f.GetInt("max-num-seqs") > 0) c.max_num_seqs = f.GetInt("max-num-seqs");
  c.images = f.GetInt("images");
  c.image_height = f.GetInt("image-height");
  c.image_width = f.GetInt("image-width");
  c.prompt_tokens = f.GetInt("prompt-tokens");
  c.new_tokens = f.GetInt("new-tokens");
  c.llm_tokens = f.GetInt("llm-tokens");
  return c;
}

absl::StatusOr<estimator::LlamaCppConfig> LlamaCppFromFlags(const FlagSet& f) {
  estimator::LlamaCppConfig c;
  c.n_ctx = f.GetInt("ctx-size");
  c.n_parallel = f.GetInt("parallel");
  c.kv_unified = f.GetBool("kv-unified");
  c.n_batch = f.GetInt("batch-size");
  c.n_ubatch = f.GetInt("ubatch-size");
  c.cache_type_k = f.GetString("cache-type-k");
  c.cache_type_v = f.GetString("cache-type-v");
  ASSIGN_OR_RETURN(c.flash_attn,
                   estimator::FlashAttnNames().Parse("--flash-attn", f.GetString("flash-attn")));
  c.n_gpu_layers = f.GetInt("n-gpu-layers");
  for (absl::string_view part :
       absl::StrSplit(f.GetString("tensor-split"), absl::ByAnyChar(",/"), absl::SkipEmpty())) {
    double w = 0;
    if (!absl::SimpleAtod(part, &w)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tensor-split=\"", f.GetString("tensor-split"), "\": \"", part, "\" is not a number"));
    }
    c.tensor_split.push_back(w);
  }
  c.n_cpu_moe = f.GetInt("n-cpu-moe");
  const std::string fit = f.GetString("fit");
  if (fit != "on" && fit != "off") {
    return absl::InvalidArgumentError(absl::StrCat("--fit=\"", fit, "\" must be on or off"));
  }
  c.fit = fit == "on";
  c.swa_full = f.GetBool("swa-full");
  c.file_type = f.GetString("gguf-type");
  c.ollama = f.GetBool("ollama");
  c.images = f.GetInt("images");
  c.image_height = f.GetInt("image-height");
  c.image_width = f.GetInt("image-width");
  return c;
}

// SGLang's flags (--mem-fraction-static ..., with --enable-lora its adapter pool, with
// --speculative-algorithm its speculative decoding): the one place both the offline estimate and
// --server read them. The draft model (--draft-model) is ApplyDraft's.
absl::StatusOr<estimator::SglangConfig> SglangFromFlags(const FlagSet& f,
                                                        estimator::Engine engine) {
  estimator::SglangConfig g{
      .mem_fraction_static = f.GetDouble("mem-fraction-static"),
      .context_length = f.GetInt("context-length"),
      .chunked_prefill_size = f.GetInt("chunked-prefill-size"),
      .cuda_graph_max_bs = f.GetInt("cuda-graph-max-bs"),
      .max_running_requests = f.GetInt("max-running-requests"),
      .page_size = f.GetInt("page-size"),
      .disable_cuda_graph = f.GetBool("disable-cuda-graph"),
      .swa_full_tokens_ratio = f.GetDouble("swa-full-tokens-ratio"),
      .disable_hybrid_swa_memory = f.GetBool("disable-hybrid-swa-memory"),
      .enable_piecewise_cuda_graph = f.GetBool("enable-piecewise-cuda-graph"),
      .piecewise_cuda_graph_max_tokens = f.GetInt("piecewise-cuda-graph-max-tokens"),
      .max_mamba_cache_size = f.GetInt("max-mamba-cache-size"),
      .mamba_full_memory_ratio = f.GetDouble("mamba-full-memory-ratio"),
      .mamba_ssm_dtype = f.GetString("mamba-ssm-dtype"),
      .disable_radix_cache = f.GetBool("disable-radix-cache")};
  const bool speculative = f.IsSet("speculative-algorithm") || f.IsSet("speculative-num-steps") ||
                           f.IsSet("speculative-eagle-topk") ||
                           f.IsSet("speculative-num-draft-tokens");
  if (engine != estimator::Engine::kSglang) {
    if (speculative || f.IsSet("sglang-version")) {
      return absl::InvalidArgumentError(
          "--speculative-algorithm, --speculative-num-*, --speculative-eagle-topk and "
          "--sglang-version are SGLang's: add --engine=sglang (vLLM: --speculative-method, "
          "--draft-model)");
    }
    return g;
  }
  g.version = f.GetString("sglang-version");
  ASSIGN_OR_RETURN(g.speculative_algorithm,
                   estimator::SglangSpeculativeNames().Parse("--speculative-algorithm",
                                                             f.GetString("speculative-algorithm")));
  g.speculative_num_steps = f.GetInt("speculative-num-steps");
  g.speculative_eagle_topk = f.GetInt("speculative-eagle-topk");
  g.speculative_num_draft_tokens = f.GetInt("speculative-num-draft-tokens");
  if (f.GetBool("enable-lora")) {
    // SGLang has no rank default to assume: --max-lora-rank must be given.
    g.enable_lora = true;
    g.max_loras_per_batch = f.GetInt("max-loras-per-batch");
    g.max_loaded_loras = f.GetInt("max-loaded-loras");
    g.max_lora_rank = f.IsSet("max-lora-rank") ? f.GetInt("max-lora-rank") : 0;
    g.lora_target_modules =
        absl::StrSplit(f.GetString("lora-target-modules"), ',', absl::SkipEmpty());
  }
  return g;
}

absl::StatusOr<EstimateRequest> BuildRequest(const FlagSet& f, const estimator::ModelSpec& spec) {
  EstimateRequest r;
  ASSIGN_OR_RETURN(r.engine, estimator::EngineNames().Parse("--engine", f.GetString("engine")));
  if (f.IsSet("gpu-memory-bytes")) {
    r.gpu_memory_bytes = f.GetInt("gpu-memory-bytes");
  } else {
    absl::StatusOr<estimator::GpuInfo> gpu = estimator::FindGpu(f.GetString("gpu"));
    if (!gpu.ok()) return absl::InvalidArgumentError(gpu.status().message());
    r.gpu_memory_bytes = gpu->memory_bytes;
    r.gpu_name = gpu->name;
  }
  r.parallelism = {
      .tp = f.GetInt("tp"), .pp = f.GetInt("pp"), .ep = f.GetInt("ep"), .dp = f.GetInt("dp")};
  if (f.GetBool("expert-parallel") && spec.is_moe())
    r.parallelism.ep = r.parallelism.tp * r.parallelism.dp;
  if (const std::string d = f.GetString("dtype"); d != "auto") {
    absl::StatusOr<estimator::DType> dtype = ParseDTypeFlag("dtype", d);
    if (!dtype.ok()) return dtype.status();
    r.dtype_set = true;
    r.dtype = *dtype;
  }
  ASSIGN_OR_RETURN(r.kv_cache_dtype, estimator::KvCacheDTypeNames().Parse(
                                         "--kv-cache-dtype", f.GetString("kv-cache-dtype")));
  r.concurrency = f.GetInt("concurrency");
  r.context_tokens = f.GetInt("context");
  r.vllm = {.version = f.GetString("vllm-version"),
            .gpu_memory_utilization = f.GetDouble("gpu-memory-utilization"),
            .max_model_len = f.GetInt("max-model-len"),
            .max_num_seqs = f.GetInt("max-num-seqs"),
            .max_num_batched_tokens = f.GetInt("max-num-batched-tokens"),
            .block_size = f.GetInt("block-size"),
            .enforce_eager = f.GetBool("enforce-eager"),
            .enable_lora = f.GetBool("enable-lora"),
            .max_loras = f.GetInt("max-loras"),
            .max_lora_rank = f.GetInt("max-lora-rank"),
            .max_cpu_loras = f.GetInt("max-cpu-loras"),
            .cpu_offload_gb = f.GetDouble("cpu-offload-gb"),
            .swap_space_gb = f.GetDouble("swap-space"),
            .mamba_cache_dtype = f.GetString("mamba-cache-dtype"),
            .mamba_ssm_cache_dtype = f.GetString("mamba-ssm-cache-dtype")};
  const std::string attn = f.GetString("attn");
  const std::string phase = f.GetString("phase");
  const std::string logits = f.GetString("logits");
  if (attn != "sdpa" && attn != "eager") {
    return absl::InvalidArgumentError(absl::StrCat("--attn=\"", attn, "\" must be sdpa or eager"));
  }
  if (phase != "prefill" && phase != "generate") {
    return absl::InvalidArgumentError(
        absl::StrCat("--phase=\"", phase, "\" must be prefill or generate"));
  }
  if (logits != "last" && logits != "all") {
    return absl::InvalidArgumentError(
        absl::StrCat("--logits=\"", logits, "\" must be last or all"));
  }
  r.hf = {.eager_attention = attn == "eager",
          .generate = phase == "generate",
          .all_logits = logits == "all",
          .batch = f.GetInt("batch"),
          .prompt_tokens = f.GetInt("prompt-tokens"),
          .new_tokens = f.GetInt("new-tokens"),
          .images = f.GetInt("images"),
          .image_height = f.GetInt("image-height"),
          .image_width = f.GetInt("image-width")};
  ASSIGN_OR_RETURN(estimator::Optimizer optimizer,
                   estimator::OptimizerNames().Parse("--optimizer", f.GetString("optimizer")));
  absl::StatusOr<estimator::DType> param =
      ParseDTypeFlag("param-dtype", f.GetString("param-dtype"));
  if (!param.ok()) return param.status();
  r.training = {.optimizer = optimizer,
                .param_dtype = *param,
                .autocast_bf16 = f.GetBool("autocast"),
                .gradient_checkpointing = f.GetBool("gradient-checkpointing"),
                .lora_rank = f.GetInt("lora-rank"),
                .zero_stage = static_cast<int>(f.GetInt("zero-stage")),
                .batch = f.GetInt("batch"),
                .seq_tokens = f.GetInt("seq-tokens")};
  if (!f.GetString("lora-targets").empty()) {
    r.training.lora_targets = absl::StrSplit(f.GetString("lora-targets"), ',', absl::SkipEmpty());
  }
  if (r.engine == estimator::Engine::kTraining) {
    r.dtype_set = true;
    r.dtype = r.training.param_dtype;
  }
  ASSIGN_OR_RETURN(r.llama_cpp, LlamaCppFromFlags(f));
  if (r.engine == estimator::Engine::kOpenvino) {
    ASSIGN_OR_RETURN(r.openvino, OpenvinoFromFlags(f));
  }
  ASSIGN_OR_RETURN(r.sglang, SglangFromFlags(f, r.engine));
  return r;
}

json StageJson(const estimator::StageMemory& s) {
  return {{"pp_stage", s.pp_stage},
          {"first_layer", s.first_layer},
          {"num_layers", s.num_layers},
          {"weights_bytes", s.weights_bytes},
          {"kv_cache_bytes", s.kv_cache_bytes},
          {"activation_peak_bytes", s.activation_peak_bytes},
          {"cuda_context_bytes", s.cuda_context_bytes},
          {"engine_overhead_bytes", s.engine_overhead_bytes},
          {"cuda_graph_bytes", s.cuda_graph_bytes},
          {"gradient_bytes", s.gradient_bytes},
          {"optimizer_bytes", s.optimizer_bytes},
          {"fragmentation_bytes", s.fragmentation_bytes},
          {"total_bytes", s.total_bytes},
          {"low_bytes", s.low_bytes},
          {"high_bytes", s.high_bytes},
          {"torch_peak_allocated_bytes", s.torch_peak_allocated_bytes},
          {"available_kv_cache_bytes", s.available_kv_cache_bytes},
          {"num_gpu_blocks", s.num_gpu_blocks},
          {"kv_cache_tokens", s.kv_cache_tokens},
          {"kv_cache_tokens_low", s.kv_cache_tokens_low},
          {"kv_cache_bytes_per_token", s.kv_cache_bytes_per_token}};
}

double GiB(int64_t b) { return BytesToGiB(b); }

// `estimate --server`: the same question through EstimatorService (a catalog model by
// --catalog-model, or the --model file inline; the GPU by registered type or bytes).
int RunRemoteEstimate(const Invocation& inv, const FlagSet& flags, const std::string& config,
                      const estimator::GgufFile* gguf = nullptr) {
  v1::EstimateRequest req;
  // --mmproj: its header goes with the model (EstimateRequest.mmproj); the server sizes it.
  if (const std::string mmproj = flags.GetString("mmproj"); !mmproj.empty()) {
    absl::StatusOr<estimator::GgufFile> read = ReadGgufHeaderFile(mmproj);
    if (!read.ok()) {
      inv.err << "fleetplan estimate: " << mmproj << ": " << read.status().message() << "\n";
      return read.status().code() == absl::StatusCode::kNotFound ? kExitError : kExitUsage;
    }
    server::ToProto(*read, req.mutable_mmproj());
    req.mutable_mmproj()->set_path(mmproj);
  }
  if (gguf != nullptr) {
    server::ToProto(*gguf, req.mutable_gguf());
    req.mutable_gguf()->set_path(flags.GetString("gguf"));
  } else if (!flags.GetString("catalog-model").empty()) {
    req.set_model_name(flags.GetString("catalog-model"));
  } else {
    req.set_config_json(config);
  }
  req.set_quantization(flags.GetString("quantization"));
  absl::StatusOr<estimator::Engine> engine =
      estimator::EngineNames().Parse("--engine", flags.GetString("engine"));
  if (!engine.ok()) {
    inv.err << "fleetplan estimate: " << engine.status().message() << "\n";
    return kExitUsage;
  }
  // No --engine: the model's own (llama.cpp for a GGUF, inline or from the catalog; else vllm).
  req.set_engine(flags.IsSet("engine") ? server::ToProto(*engine)
                 : gguf != nullptr     ? v1::ENGINE_LLAMA_CPP
                                       : v1::ENGINE_UNSPECIFIED);
  absl::StatusOr<estimator::LlamaCppConfig> llama = LlamaCppFromFlags(flags);
  if (!llama.ok()) {
    inv.err << "fleetplan estimate: " << llama.status().message() << "\n";
    return kExitUsage;
  }
  server::ToProto(*llama, req.mutable_llama_cpp());
  if (*engine == estimator::Engine::kOpenvino) {
    absl::StatusOr<estimator::OpenvinoConfig> ov = OpenvinoFromFlags(flags);
    if (!ov.ok()) {
      inv.err << "fleetplan estimate: " << ov.status().message() << "\n";
      return kExitUsage;
    }
    server::ToProto(*ov, req.mutable_openvino());
  }
  if (flags.IsSet("gpu-memory-bytes")) {
    req.set_gpu_memory_bytes(flags.GetInt("gpu-memory-bytes"));
  } else {
    req.set_gpu_type(flags.GetString("gpu"));
  }
  req.mutable_parallelism()->set_tp(flags.GetInt("tp"));
  req.mutable_parallelism()->set_pp(flags.GetInt("pp"));
  req.mutable_parallelism()->set_ep(flags.GetInt("ep"));
  req.mutable_parallelism()->set_dp(flags.GetInt("dp"));
  req.set_dtype(flags.GetString("dtype"));
  req.set_kv_cache_dtype(flags.GetString("kv-cache-dtype"));
  if (flags.IsSet("gpu-memory-utilization")) {
    req.mutable_vllm()->set_gpu_memory_utilization(flags.GetDouble("gpu-memory-utilization"));
  }
  req.mutable_vllm()->set_max_model_len(flags.GetInt("max-model-len"));
  req.mutable_vllm()->set_max_num_seqs(flags.GetInt("max-num-seqs"));
  req.mutable_vllm()->set_max_num_batched_tokens(flags.GetInt("max-num-batched-tokens"));
  if (flags.IsSet("block-size")) req.mutable_vllm()->set_block_size(flags.GetInt("block-size"));
  req.mutable_vllm()->set_enforce_eager(flags.GetBool("enforce-eager"));
  absl::StatusOr<estimator::SglangConfig> sglang = SglangFromFlags(flags, *engine);
  if (!sglang.ok()) {
    inv.err << "fleetplan estimate: " << sglang.status().message() << "\n";
    return kExitUsage;
  }
  server::ToProto(*sglang, req.mutable_sglang());
  req.mutable_vllm()->set_enable_lora(flags.GetBool("enable-lora"));
  req.mutable_vllm()->set_max_loras(flags.GetInt("max-loras"));
  req.mutable_vllm()->set_max_lora_rank(flags.GetInt("max-lora-rank"));
  req.mutable_vllm()->set_max_cpu_loras(flags.GetInt("max-cpu-loras"));
  req.mutable_vllm()->set_cpu_offload_gb(flags.GetDouble("cpu-offload-gb"));
  req.mutable_vllm()->set_swap_space_gb(flags.GetDouble("swap-space"));
  req.mutable_vllm()->set_mamba_cache_dtype(flags.GetString("mamba-cache-dtype"));
  req.mutable_vllm()->set_mamba_ssm_cache_dtype(flags.GetString("mamba-ssm-cache-dtype"));
  // Speculative decoding: a draft model travels as its config.json, a method as its name.
  if (!flags.GetString("draft-model").empty()) {
    absl::StatusOr<std::string> draft = ReadFileText("draft model", flags.GetString("draft-model"));
    if (!draft.ok()) {
      inv.err << "fleetplan estimate: " << draft.status().message() << "\n";
      return kExitUsage;
    }
    const std::string name = DraftName(flags);
    if (*engine == estimator::Engine::kSglang) {  // --speculative-draft-model-path
      req.mutable_sglang()->set_draft_config_json(*draft);
      req.mutable_sglang()->set_draft_model(name);
    } else {
      req.mutable_vllm()->set_draft_config_json(*draft);
      req.mutable_vllm()->set_draft_model(name);
    }
  }
  if (*engine == estimator::Engine::kSglang &&
      (flags.IsSet("speculative-method") || flags.IsSet("num-speculative-tokens"))) {
    inv.err << "fleetplan estimate: --speculative-method and --num-speculative-tokens are vLLM's: "
               "SGLang takes --speculative-algorithm and --speculative-num-*\n";
    return kExitUsage;
  }
  req.mutable_vllm()->set_speculative_method(flags.GetString("speculative-method"));
  if (*engine != estimator::Engine::kSglang &&
      (!flags.GetString("draft-model").empty() || !flags.GetString("speculative-method").empty())) {
    req.mutable_vllm()->set_num_speculative_tokens(flags.GetInt("num-speculative-tokens"));
  }
  req.mutable_hf()->set_eager_attention(flags.GetString("attn") == "eager");
  req.mutable_hf()->set_generate(flags.GetString("phase") == "generate");
  req.mutable_hf()->set_all_logits(flags.GetString("logits") == "all");
  req.mutable_hf()->set_batch(flags.GetInt("batch"));
  req.mutable_hf()->set_prompt_tokens(flags.GetInt("prompt-tokens"));
  req.mutable_hf()->set_new_tokens(flags.GetInt("new-tokens"));
  req.mutable_hf()->set_images(flags.GetInt("images"));
  req.mutable_hf()->set_image_height(flags.GetInt("image-height"));
  req.mutable_hf()->set_image_width(flags.GetInt("image-width"));
  req.mutable_training()->set_optimizer(flags.GetString("optimizer"));
  req.mutable_training()->set_param_dtype(flags.GetString("param-dtype"));
  req.mutable_training()->set_autocast_bf16(flags.GetBool("autocast"));
  req.mutable_training()->set_gradient_checkpointing(flags.GetBool("gradient-checkpointing"));
  req.mutable_training()->set_lora_rank(flags.GetInt("lora-rank"));
  req.mutable_training()->set_zero_stage(flags.GetInt("zero-stage"));
  req.mutable_training()->set_batch(flags.GetInt("batch"));
  req.mutable_training()->set_seq_tokens(flags.GetInt("seq-tokens"));
  req.set_concurrency(flags.GetInt("concurrency"));
  req.set_context_tokens(flags.GetInt("context"));

  auto channel = MakeChannel(flags);
  if (!channel.ok()) return ReportError(inv.err, "estimate", channel.status());
  auto stub = v1::EstimatorService::NewStub(*channel);
  grpc::ClientContext context;
  if (absl::Status s = PrepareContext(flags, context); !s.ok()) {
    inv.err << "fleetplan estimate: " << s.message() << "\n";
    return kExitUsage;
  }
  v1::EstimateResponse resp;
  grpc::Status status = stub->Estimate(&context, req, &resp);
  if (!status.ok()) {
    return ReportError(inv.err, "estimate", StatusFromGrpc(status));
  }
  if (inv.output == OutputFormat::kJson) {
    json out = {{"params", resp.params()},
                {"gpu_memory_bytes", resp.gpu_memory_bytes()},
                {"max_total_bytes", resp.max_total_bytes()},
                {"max_high_bytes", resp.max_high_bytes()},
                {"fits", resp.fits()},
                {"headroom_bytes", resp.headroom_bytes()},
                {"kv_cache_tokens", resp.kv_cache_tokens()},
                {"kv_cache_tokens_low", resp.kv_cache_tokens_low()},
                {"max_concurrency", resp.max_concurrency()},
                {"encoder_only", resp.encoder_only()},
                {"host_bytes", resp.host_bytes()},
                {"reason", resp.reason()}};
    if (!resp.launch_command().empty()) out["launch_command"] = resp.launch_command();
    out["band_widened"] =
        std::vector<std::string>(resp.band_widened().begin(), resp.band_widened().end());
    out["bytes_per_rank"] =
        std::vector<int64_t>(resp.bytes_per_rank().begin(), resp.bytes_per_rank().end());
    for (const auto& s : resp.stages()) {
      out["stages"].push_back({{"pp_stage", s.pp_stage()},
                               {"weights_bytes", s.weights_bytes()},
                               {"kv_cache_bytes", s.kv_cache_bytes()},
                               {"activation_peak_bytes", s.activation_peak_bytes()},
                               {"total_bytes", s.total_bytes()},
                               {"low_bytes", s.low_bytes()},
                               {"high_bytes", s.high_bytes()},
                               {"kv_cache_tokens", s.kv_cache_tokens()}});
    }
    inv.out << out.dump(2) << "\n";
  } else {
    for (const auto& s : resp.stages()) {
      inv.out << absl::StrFormat(
          "stage %d: weights %.2f GiB, KV %.2f GiB, activations %.2f GiB, total %.2f GiB "
          "(band %.2f-%.2f)\n",
          s.pp_stage(), GiB(s.weights_bytes()), GiB(s.kv_cache_bytes()),
          GiB(s.activation_peak_bytes()), GiB(s.total_bytes()), GiB(s.low_bytes()),
          GiB(s.high_bytes()));
    }
    if (resp.encoder_only()) {
      inv.out << absl::StrFormat(
          "%s: fullest GPU %.2f (up to %.2f) of %.2f GiB, no KV cache (bidirectional encoder; "
          "%d prompts per forward)\n",
          resp.fits() ? "FITS" : "DOES NOT FIT", GiB(resp.max_total_bytes()),
          GiB(resp.max_high_bytes()), GiB(resp.gpu_memory_bytes()), resp.max_concurrency());
    } else {
      inv.out << absl::StrFormat(
          "%s: fullest GPU %.2f (up to %.2f) of %.2f GiB, KV cache %d tokens (at least %d; %d "
          "sequences)\n",
          resp.fits() ? "FITS" : "DOES NOT FIT", GiB(resp.max_total_bytes()),
          GiB(resp.max_high_bytes()), GiB(resp.gpu_memory_bytes()), resp.kv_cache_tokens(),
          resp.kv_cache_tokens_low(), resp.max_concurrency());
    }
    if (resp.host_bytes() > 0) {
      inv.out << absl::StrFormat("host memory: %.2f GiB\n", GiB(resp.host_bytes()));
    }
    for (const auto& w : resp.band_widened()) inv.out << "band widened: " << w << "\n";
    if (!resp.reason().empty()) inv.out << "reason: " << resp.reason() << "\n";
    if (!resp.launch_command().empty()) inv.out << "\n" << resp.launch_command() << "\n";
  }
  return resp.fits() ? kExitOk : kExitError;
}

struct EmittedLaunch {
  std::string command;
  int64_t tp = 1, pp = 1, ep = 1;
  double gpu_memory_utilization = 0;
  std::string note;  // when the launch differs from the asked parallelism
};

// `--emit vllm`: the planner's own candidate search for one replica on this GPU (a node of
// --gpus-per-node GPUs in one NVLink domain), so the line is the one `fleetplan plan` would print.
// The asked parallelism is used when it holds the workload; else the cheapest that does.
absl::StatusOr<EmittedLaunch> EmitVllm(const FlagSet& flags, const estimator::ModelSpec& spec,
                                       const EstimateRequest& req, const std::string& model) {
  placement::DeploymentSpec d{.name = "emit",
                              .model = model,
                              .spec = &spec,
                              .vllm = req.vllm,
                              .kv_cache_dtype = req.kv_cache_dtype,
                              .utilization_given = flags.IsSet("gpu-memory-utilization"),
                              .concurrency = std::max<int64_t>(req.concurrency, 1),
                              .context_tokens = req.context_tokens,
                              .max_tp = flags.GetInt("gpus-per-node")};
  const placement::GpuType type{.name = flags.GetString("gpu"),
                                .memory_bytes = req.gpu_memory_bytes};
  placement::TypeCandidates tc =
      placement::CandidatesOnType(d, type, flags.GetInt("gpus-per-node"));
  if (tc.fitting.empty()) {
    placement::Unplaced u{.shortfalls = {*tc.shortfall}};
    return absl::FailedPreconditionError(absl::StrCat(
        "no vLLM configuration on ", type.name, " holds the workload: ", placement::Describe(u)));
  }
  const placement::Candidate* chosen = &tc.fitting.front();
  for (const placement::Candidate& c : tc.fitting) {
    if (c.tp == req.parallelism.tp && c.pp == req.parallelism.pp &&
        (c.ep > 1) == (req.parallelism.ep > 1)) {
      chosen = &c;
      break;
    }
  }
  EmittedLaunch out{.command = chosen->launch_command,
                    .tp = chosen->tp,
                    .pp = chosen->pp,
                    .ep = chosen->ep,
                    .gpu_memory_utilization = chosen->util};
  if (chosen->tp != req.parallelism.tp || chosen->pp != req.parallelism.pp) {
    out.note = absl::StrCat("--emit: tp=", req.parallelism.tp, " pp=", req.parallelism.pp,
                            " does not hold ", d.concurrency, " sequences; tp=", chosen->tp,
                            " pp=", chosen->pp, " does");
  }
  return out;
}

// What `vllm serve` loads: the model directory for a config.json path.
std::string ServedModel(const std::string& model_path) {
  std::filesystem::path p(model_path);
  if (p.filename() == "config.json") {
    return p.has_parent_path() ? p.parent_path().string() : std::string(".");
  }
  return model_path;
}

// --vllm="vllm serve MODEL_DIR ...": the line's flags into `flags`, its model into `model_path`
// and `model_label`, and what it ignored or did not know. A usage error says why.
absl::Status ApplyVllmCommand(FlagSet& flags, std::string& model_path, std::string& model_label,
                              std::vector<std::string>& ignored,
                              std::vector<std::string>& unknown) {
  absl::StatusOr<VllmCommandLine> line = ParseVllmCommandLine(flags.GetString("vllm"));
  if (!line.ok()) return line.status();
  std::vector<std::string> args = {"--engine=vllm"};
  args.insert(args.end(), line->flags.begin(), line->flags.end());
  ignored = line->ignored;
  unknown = line->unknown;
  if (auto parsed = flags.Parse(args); !parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--vllm: ", parsed.status().message()));
  }
  if (flags.GetBool("strict") && !unknown.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--vllm: ", absl::StrJoin(unknown, ", "),
        unknown.size() == 1 ? " is not a flag" : " are not flags", " fleetplan knows (--strict)"));
  }
  model_path = (std::filesystem::path(line->model_dir) / "config.json").string();
  model_label =
      flags.GetString("model-name").empty() ? line->model_dir : flags.GetString("model-name");
  return absl::OkStatus();
}

// What the model is, for the report: a config.json's model_type or a GGUF's architecture.
struct ModelLabel {
  std::string name, model_type;
  int64_t params = 0;
};

json EstimateJson(const ModelLabel& label, const EstimateRequest& req, const MemoryEstimate& est) {
  json out = {{"model", label.name},
              {"model_type", label.model_type},
              {"engine", estimator::EngineName(req.engine)},
              {"params", label.params},
              {"parallelism",
               {{"tp", req.parallelism.tp},
                {"pp", req.parallelism.pp},
                {"ep", req.parallelism.ep},
                {"dp", req.parallelism.dp}}},
              {"gpu_memory_bytes", est.gpu_memory_bytes},
              {"max_total_bytes", est.max_total_bytes},
              {"max_high_bytes", est.max_high_bytes},
              {"bytes_per_rank", est.BytesPerRank()},
              {"fits", est.fits},
              {"headroom_bytes", est.headroom_bytes},
              {"headroom_ratio", est.headroom_ratio},
              {"risk", RiskName(est.risk)},
              {"unverified", est.unverified},
              {"encoder_only", est.encoder_only},
              {"band_widened", est.band_widened},
              {"host_bytes", est.host_bytes},
              {"notes", est.notes}};
  if (!est.reason.empty()) out["reason"] = est.reason;
  if (!est.pipeline_parts.empty()) {
    out["pipeline_parts"] = json::array();
    for (const auto& part : est.pipeline_parts) {
      out["pipeline_parts"].push_back({{"name", part.name},
                                       {"weights_bytes", part.weights_bytes},
                                       {"temp_bytes", part.temp_bytes}});
    }
  }
  if (req.engine == estimator::Engine::kVllm || req.engine == estimator::Engine::kLlamaCpp ||
      req.engine == estimator::Engine::kSglang ||
      (req.engine == estimator::Engine::kOpenvino && req.openvino.continuous_batching)) {
    out["kv_cache_tokens"] = est.kv_cache_tokens;
    out["kv_cache_tokens_low"] = est.kv_cache_tokens_low;
    out["max_concurrency"] = est.max_concurrency;
    out["max_concurrency_low"] = est.max_concurrency_low;
    out["max_model_len"] = est.max_model_len;
  }
  out["stages"] = json::array();
  for (const auto& s : est.stages) out["stages"].push_back(StageJson(s));
  return out;
}

// What --budget and --emit=vllm add to an estimate.
struct EstimateExtras {
  std::vector<estimator::BudgetCell> budget;
  int64_t budget_columns = 0;
  std::string emitted, emit_note;
};

void PrintEstimateTable(std::ostream& o, const ModelLabel& label, const EstimateRequest& req,
                        const MemoryEstimate& est, const EstimateExtras& x) {
  o << absl::StrFormat(
      "%s (%s, %.2fB params) on %.2f GiB GPUs, engine %s, tp=%d pp=%d ep=%d dp=%d\n", label.name,
      label.model_type, static_cast<double>(label.params) / 1e9, GiB(est.gpu_memory_bytes),
      estimator::EngineName(req.engine), req.parallelism.tp, req.parallelism.pp, req.parallelism.ep,
      req.parallelism.dp);
  o << absl::StrFormat("%-6s %7s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s %15s\n", "stage", "layers",
                       "weights", "kv_cache", "activat.", "context", "overhead", "graphs", "grads",
                       "optim", "frag", "TOTAL", "band");
  for (const auto& s : est.stages) {
    o << absl::StrFormat(
        "%-6d %7d %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %7.2f-%-7.2f\n",
        s.pp_stage, s.num_layers, GiB(s.weights_bytes), GiB(s.kv_cache_bytes),
        GiB(s.activation_peak_bytes), GiB(s.cuda_context_bytes), GiB(s.engine_overhead_bytes),
        GiB(s.cuda_graph_bytes), GiB(s.gradient_bytes), GiB(s.optimizer_bytes),
        GiB(s.fragmentation_bytes), GiB(s.total_bytes), GiB(s.low_bytes), GiB(s.high_bytes));
  }
  if (req.engine == estimator::Engine::kLlamaCpp) {
    o << "(GiB per GPU, one row per GPU of the layer split; context = CUDA context, overhead = "
         "ggml's CUDA pool)\n";
    o << absl::StrFormat("host memory: %.2f GiB (CPU layers and KV, host buffers)\n",
                         GiB(est.host_bytes));
  } else if (req.engine == estimator::Engine::kOpenvino) {
    o << absl::StrFormat("(GiB of the %s's memory; kv_cache = the KV %s)\n",
                         estimator::OvDeviceNames().Name(req.openvino.device),
                         req.openvino.continuous_batching ? "blocks" : "state");
    for (const auto& part : est.pipeline_parts) {
      o << absl::StrFormat("  %-18s weights %8.2f GiB  buffers %8.2f GiB\n", part.name,
                           GiB(part.weights_bytes), GiB(part.temp_bytes));
    }
  } else {
    o << "(GiB per GPU; each stage's " << req.parallelism.tp
      << " tensor-parallel rank(s) are identical)\n";
  }
  if (est.encoder_only && req.engine == estimator::Engine::kVllm) {
    o << absl::StrFormat(
        "no KV cache (bidirectional encoder): one forward takes %d prompts of %d tokens, "
        "max_model_len %d\n",
        est.max_concurrency, req.context_tokens > 0 ? req.context_tokens : est.max_model_len,
        est.max_model_len);
  } else if (req.engine == estimator::Engine::kVllm || req.engine == estimator::Engine::kLlamaCpp ||
             req.engine == estimator::Engine::kSglang ||
             (req.engine == estimator::Engine::kOpenvino && req.openvino.continuous_batching)) {
    o << absl::StrFormat(
        "KV cache: %d tokens per replica (at least %d), %d sequences of %d tokens (at least %d), "
        "max_model_len %d\n",
        est.kv_cache_tokens, est.kv_cache_tokens_low, est.max_concurrency,
        req.context_tokens > 0 ? req.context_tokens : est.max_model_len, est.max_concurrency_low,
        est.max_model_len);
  }
  o << absl::StrFormat(
      "%s: fullest GPU %.2f GiB (up to %.2f) of %.2f GiB, headroom %.2f GiB (%.1f%%), risk %s\n",
      est.fits ? "FITS" : "DOES NOT FIT", GiB(est.max_total_bytes), GiB(est.max_high_bytes),
      GiB(est.gpu_memory_bytes), GiB(est.headroom_bytes), 100 * est.headroom_ratio,
      RiskName(est.risk));
  for (const auto& w : est.band_widened) o << "band widened: " << w << "\n";
  if (!est.reason.empty()) o << "reason: " << est.reason << "\n";
  if (est.unverified) {
    o << "UNVERIFIED: the estimator did not fully understand this config (see the notes); these "
         "numbers may be wrong in either direction, and plan refuses the model unless "
         "--allow-unverified\n";
  }
  for (const auto& n : est.notes) o << "note: " << n << "\n";
  if (!x.budget.empty()) {
    o << "\nbudget (GiB per GPU, * = does not fit):\n" << absl::StrFormat("%10s", "context");
    for (int64_t c = 0; c < x.budget_columns; ++c) {
      o << absl::StrFormat(" %9s",
                           absl::StrCat("n=", x.budget[static_cast<size_t>(c)].concurrency));
    }
    for (size_t i = 0; i < x.budget.size(); ++i) {
      if (i % static_cast<size_t>(x.budget_columns) == 0) {
        o << "\n" << absl::StrFormat("%10d", x.budget[i].context_tokens);
      }
      o << absl::StrFormat(" %8.2f%s", GiB(x.budget[i].bytes_per_gpu),
                           x.budget[i].fits ? " " : "*");
    }
    o << "\n";
  }
  if (!x.emit_note.empty()) o << "note: " << x.emit_note << "\n";
  if (!x.emitted.empty()) o << "\n" << x.emitted << "\n";
}

// --profile=FILE: a saved estimate, like vllm-wizard's profiles: a YAML (or JSON) mapping of
// estimate flags to values (`max-model-len: 8192` or `max_model_len: 8192`). Flags given on the
// command line win; a relative `model` is relative to the profile's folder.
absl::Status ApplyProfile(FlagSet& flags, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileText("profile", path));
  RETURN_IF_ERROR(CheckJsonNesting(text, path));
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '{') {
    ASSIGN_OR_RETURN(text, YamlToJson(text, path));
  }
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": a profile is a mapping of estimate flags to values"));
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    std::string name = it.key();
    std::replace(name.begin(), name.end(), '_', '-');
    if (!flags.Has(name) || name == "profile") {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": \"", it.key(), "\" is not a flag of fleetplan estimate (see --help)"));
    }
    if (flags.IsSet(name)) continue;  // the command line wins
    std::string value;
    const json& v = *it;
    if (v.is_string()) {
      value = v.get<std::string>();
    } else if (v.is_boolean()) {
      value = v.get<bool>() ? "true" : "false";
    } else if (v.is_number_integer()) {
      value = std::to_string(v.get<int64_t>());
    } else if (v.is_number()) {
      value = v.dump();
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": \"", it.key(), "\" must be a string, number or boolean, not ", v.type_name()));
    }
    if (name == "model" && !value.empty() && value.front() != '/') {
      value = (std::filesystem::path(path).parent_path() / value).lexically_normal().string();
    }
    absl::StatusOr<std::vector<std::string>> rest = flags.Parse({"--" + name + "=" + value});
    if (!rest.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", rest.status().message()));
    }
  }
  return absl::OkStatus();
}

// --draft-model=config.json, read and parsed once; the request points at it (it must outlive the
// estimate).
absl::StatusOr<std::optional<estimator::ModelSpec>> ReadDraft(const FlagSet& flags) {
  if (flags.GetString("draft-model").empty()) return std::nullopt;
  ASSIGN_OR_RETURN(std::string text, ReadFileText("draft model", flags.GetString("draft-model")));
  absl::StatusOr<estimator::ModelSpec> spec = estimator::ParseModelConfig(text);
  if (!spec.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--draft-model=", flags.GetString("draft-model"),
                                                   ": ", spec.status().message()));
  }
  return *std::move(spec);
}

std::string DraftName(const FlagSet& flags) {
  return flags.GetString("draft-model-name").empty() ? ServedModel(flags.GetString("draft-model"))
                                                     : flags.GetString("draft-model-name");
}

// The draft model of speculative decoding: vLLM's (--speculative-method, --draft-model,
// --num-speculative-tokens) or, with --engine=sglang, SGLang's --speculative-draft-model-path (the
// algorithm and its numbers are SglangFromFlags').
absl::Status ApplyDraft(const FlagSet& flags, std::optional<estimator::ModelSpec>& draft,
                        EstimateRequest& req) {
  if (req.engine == estimator::Engine::kSglang) {
    if (flags.IsSet("speculative-method") || flags.IsSet("num-speculative-tokens")) {
      return absl::InvalidArgumentError(
          "--speculative-method and --num-speculative-tokens are vLLM's: SGLang takes "
          "--speculative-algorithm, --speculative-num-steps, --speculative-eagle-topk and "
          "--speculative-num-draft-tokens");
    }
    ASSIGN_OR_RETURN(draft, ReadDraft(flags));
    if (draft.has_value()) {
      req.sglang.draft = &*draft;
      req.sglang.draft_model = DraftName(flags);
    }
    return absl::OkStatus();
  }
  const std::string method = flags.GetString("speculative-method");
  if (!method.empty()) {
    ASSIGN_OR_RETURN(req.vllm.speculative_method,
                     estimator::SpeculativeMethodNames().Parse("--speculative-method", method));
  }
  const bool head = estimator::IsEagleHead(req.vllm.speculative_method);
  if (req.vllm.speculative_method != estimator::SpeculativeMethod::kDraftModel && !head) {
    if (!flags.GetString("draft-model").empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--speculative-method=", method, " drafts without a model: drop --draft-model"));
    }
    req.vllm.num_speculative_tokens = flags.GetInt("num-speculative-tokens");
    return absl::OkStatus();
  }
  if (flags.GetString("draft-model").empty()) {
    if (head) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--speculative-method=", method, " needs the head's config.json: --draft-model"));
    }
    req.vllm.num_speculative_tokens = 0;
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(draft, ReadDraft(flags));
  req.vllm.draft = &*draft;
  req.vllm.draft_model = DraftName(flags);
  req.vllm.num_speculative_tokens = flags.GetInt("num-speculative-tokens");
  return absl::OkStatus();
}

// --compare-engines: the speculative decoding the vLLM flags describe, as SGLang runs it, so both
// rows draft alike: a draft model is STANDALONE, eagle EAGLE, eagle3 EAGLE3, mtp NEXTN, ngram
// NGRAM; N speculative tokens are N top-1 steps and N + 1 draft tokens (SGLang's rule for topk 1).
// SGLang's own --speculative-algorithm, when given, wins; it then takes --draft-model's config.
// `vllm` is the vLLM row's config (ApplyDraft's); its draft must outlive the estimate.
void SglangDraftLikeVllm(const estimator::VllmConfig& vllm, EstimateRequest& req) {
  using estimator::SglangSpeculative;
  using estimator::SpeculativeMethod;
  const SglangSpeculative given = req.sglang.speculative_algorithm;
  if (given != SglangSpeculative::kNone) {
    if (estimator::SglangHasDraftModel(given) && given != SglangSpeculative::kNextn) {
      req.sglang.draft = vllm.draft;
      req.sglang.draft_model = vllm.draft_model;
    }
    return;
  }
  const bool speculating = vllm.draft != nullptr ||
                           vllm.speculative_method == SpeculativeMethod::kMtp ||
                           vllm.speculative_method == SpeculativeMethod::kNgram;
  if (!speculating) return;
  switch (vllm.speculative_method) {
    case SpeculativeMethod::kDraftModel:
      req.sglang.speculative_algorithm = SglangSpeculative::kStandalone;
      break;
    case SpeculativeMethod::kEagle:
      req.sglang.speculative_algorithm = SglangSpeculative::kEagle;
      break;
    case SpeculativeMethod::kEagle3:
      req.sglang.speculative_algorithm = SglangSpeculative::kEagle3;
      break;
    case SpeculativeMethod::kMtp:
      req.sglang.speculative_algorithm = SglangSpeculative::kNextn;
      break;
    case SpeculativeMethod::kNgram:
      req.sglang.speculative_algorithm = SglangSpeculative::kNgram;
      break;
  }
  if (vllm.speculative_method != SpeculativeMethod::kMtp) {
    req.sglang.draft = vllm.draft;
    req.sglang.draft_model = vllm.draft_model;
  }
  req.sglang.speculative_num_steps = vllm.num_speculative_tokens;
  req.sglang.speculative_eagle_topk = 1;
  req.sglang.speculative_num_draft_tokens = vllm.num_speculative_tokens + 1;
}

int PrintLlamaCppEstimate(const Invocation& inv, const EstimateRequest& request,
                          const estimator::LlamaCppEstimate& estimate, const ModelLabel& label,
                          const std::string& path);

// `estimate --gguf=FILE`: llama.cpp's llama-server from the file's header (llama_cpp.h).
int RunLlamaCppEstimate(const Invocation& inv, const FlagSet& flags) {
  const std::string path = flags.GetString("gguf");
  if (flags.IsSet("engine") &&
      estimator::EngineNames()
              .Parse("--engine", flags.GetString("engine"))
              .value_or(estimator::Engine::kVllm) != estimator::Engine::kLlamaCpp) {
    inv.err << "fleetplan estimate: --gguf is served by --engine=llama.cpp, not --engine="
            << flags.GetString("engine") << "\n";
    return kExitUsage;
  }
  absl::StatusOr<estimator::GgufFile> file = ReadGgufHeaderFile(path);
  if (!file.ok()) {
    if (file.status().code() == absl::StatusCode::kNotFound) {
      return ReportError(inv.err, "estimate", file.status());
    }
    inv.err << "fleetplan estimate: " << path << ": " << file.status().message() << "\n";
    return kExitUsage;
  }
  const std::string mmproj_path = flags.GetString("mmproj");
  if (flags.IsSet("server")) return RunRemoteEstimate(inv, flags, "", &*file);
  absl::StatusOr<EstimateRequest> req = BuildRequest(flags, estimator::ModelSpec{});
  if (!req.ok()) {
    inv.err << "fleetplan estimate: " << req.status().message() << "\n";
    return kExitUsage;
  }
  req->engine = estimator::Engine::kLlamaCpp;
  // --mmproj FILE: the vision tower llama-server loads beside the model (its header only).
  std::optional<estimator::LlamaCppMmproj> mmproj;
  std::vector<std::string> mmproj_notes;
  if (!mmproj_path.empty()) {
    absl::StatusOr<estimator::GgufFile> mm = ReadGgufHeaderFile(mmproj_path);
    absl::StatusOr<estimator::LlamaCppMmproj> parsed =
        mm.ok() ? estimator::LlamaCppMmprojFromGguf(*mm, *req, mmproj_notes)
                : absl::StatusOr<estimator::LlamaCppMmproj>(mm.status());
    if (!parsed.ok()) {
      inv.err << "fleetplan estimate: " << mmproj_path << ": " << parsed.status().message() << "\n";
      return parsed.status().code() == absl::StatusCode::kNotFound ? kExitError : kExitUsage;
    }
    mmproj = *parsed;
  }
  absl::StatusOr<estimator::LlamaCppEstimate> est =
      estimator::EstimateLlamaCpp(*file, *req, mmproj ? &*mmproj : nullptr);
  if (!est.ok()) {
    inv.err << "fleetplan estimate: " << est.status().message() << "\n";
    return kExitUsage;
  }
  est->mmproj_path = mmproj_path;
  for (std::string& n : mmproj_notes) est->memory.notes.push_back(std::move(n));
  return PrintLlamaCppEstimate(inv, *req, *est, {path, est->architecture, file->parameters}, path);
}

// One llama.cpp estimate (from a GGUF or a converted config.json) as a table or JSON, with the
// llama-server line that realises it.
int PrintLlamaCppEstimate(const Invocation& inv, const EstimateRequest& request,
                          const estimator::LlamaCppEstimate& estimate, const ModelLabel& label,
                          const std::string& path) {
  const estimator::LlamaCppEstimate* est = &estimate;
  const EstimateRequest* req = &request;
  const MemoryEstimate& m = est->memory;
  const std::string launch = estimator::LlamaServerCommand(path, *est);
  json out = EstimateJson(label, *req, m);
  out["launch_command"] = launch;
  const estimator::LlamaCppConfig& c = est->resolved;
  out["llama_cpp"] = {{"n_ctx", c.n_ctx},
                      {"n_ctx_seq", est->n_ctx_seq},
                      {"n_parallel", c.n_parallel},
                      {"kv_unified", c.kv_unified},
                      {"n_gpu_layers", c.n_gpu_layers},
                      {"layers", est->layers},
                      {"gpu_layers", est->gpu_layers},
                      {"kv_cells", est->kv_cells},
                      {"swa_cells", est->swa_cells},
                      {"flash_attn", estimator::FlashAttnNames().Name(c.flash_attn)}};
  if (!c.file_type.empty()) out["llama_cpp"]["file_type"] = c.file_type;
  out["llama_cpp"]["mmproj"] = est->mmproj;
  if (inv.output == OutputFormat::kJson) {
    inv.out << out.dump(2) << "\n";
  } else {
    EstimateExtras x;
    x.emitted = launch;
    PrintEstimateTable(inv.out, label, *req, m, x);
  }
  return m.fits ? kExitOk : kExitError;
}

// `estimate --compare-engines`: the same model and workload on every engine that can serve it
// (vLLM, SGLang, transformers, OpenVINO from --model; llama.cpp from --gguf, else from --model
// converted to --gguf-type), one row each: the fullest
// GPU's high end, the KV tokens it counts on, the sequences of the workload it holds, and the
// line that runs it. An engine that cannot take the request says why in its row.
int RunCompareEngines(const Invocation& inv, const FlagSet& flags) {
  struct Row {
    std::string engine, error, launch;
    MemoryEstimate est;
  };
  std::vector<Row> rows;
  // The draft of the vLLM row, which the SGLang row drafts with too (SglangDraftLikeVllm).
  std::optional<estimator::ModelSpec> draft;
  estimator::VllmConfig vllm_drafting;
  // llama.cpp's row: the flags' request with llama.cpp's own types (a GGUF fixes the weights').
  auto LlamaCppRequest = [&](const estimator::ModelSpec& spec) -> absl::StatusOr<EstimateRequest> {
    ASSIGN_OR_RETURN(EstimateRequest r, BuildRequest(flags, spec));
    r.engine = estimator::Engine::kLlamaCpp;
    r.dtype_set = false;
    r.kv_cache_dtype = estimator::KvCacheDType::kAuto;
    return r;
  };
  const std::string model_path = flags.GetString("model");
  std::string model_label = ServedModel(model_path);
  if (!flags.GetString("model-name").empty()) model_label = flags.GetString("model-name");
  if (model_path.empty() && !flags.IsSet("gguf")) {
    inv.err << "fleetplan estimate: --compare-engines needs --model=config.json and/or "
               "--gguf=FILE.gguf\n";
    return kExitUsage;
  }
  if (!model_path.empty()) {
    absl::StatusOr<std::string> text = ReadFileText("model", model_path);
    if (!text.ok()) return ReportError(inv.err, "estimate", text.status());
    absl::StatusOr<estimator::ModelSpec> spec =
        estimator::ParseModelConfig(*text, {.quantization = flags.GetString("quantization"),
                                            .group_size = flags.GetInt("group-size")});
    if (!spec.ok()) return ReportError(inv.err, "estimate", spec.status());
    for (estimator::Engine engine :
         {estimator::Engine::kVllm, estimator::Engine::kSglang, estimator::Engine::kHfTransformers,
          estimator::Engine::kOpenvino}) {
      Row row{.engine = estimator::EngineName(engine)};
      absl::StatusOr<EstimateRequest> req = BuildRequest(flags, *spec);
      if (req.ok() && engine == estimator::Engine::kOpenvino) {
        absl::StatusOr<estimator::OpenvinoConfig> ov = OpenvinoFromFlags(flags);
        if (ov.ok()) {
          req->openvino = *std::move(ov);
        } else {
          req = ov.status();
        }
      }
      if (!req.ok()) {
        inv.err << "fleetplan estimate: " << req.status().message() << "\n";
        return kExitUsage;
      }
      req->engine = engine;
      if (engine == estimator::Engine::kSglang) SglangDraftLikeVllm(vllm_drafting, *req);
      if (engine == estimator::Engine::kVllm) {
        // What vLLM would be launched with: the smallest utilization that holds the workload.
        if (absl::Status s = ApplyDraft(flags, draft, *req); !s.ok()) {
          return ReportError(inv.err, "estimate", s);
        }
        vllm_drafting = req->vllm;
        absl::StatusOr<estimator::VllmFit> fit = estimator::FitVllm(*spec, *req);
        if (fit.ok()) {
          row.est = fit->estimate;
          if (fit->fits) row.launch = estimator::VllmServeCommand(model_label, *fit);
          if (!fit->fits && row.est.reason.empty()) row.est.reason = fit->reason;
          row.est.fits = fit->fits;
        } else {
          row.error = std::string(fit.status().message());
        }
      } else {
        absl::StatusOr<MemoryEstimate> est = estimator::Estimate(*spec, *req);
        if (est.ok()) {
          row.est = *std::move(est);
          if (engine == estimator::Engine::kSglang) {
            row.launch = estimator::SglangLaunchCommand(model_label, *req, row.est);
          } else if (engine == estimator::Engine::kOpenvino) {
            row.launch = estimator::OpenvinoLaunchCommand(model_label, *spec, *req, row.est);
          }
        } else {
          row.error = std::string(est.status().message());
        }
      }
      rows.push_back(std::move(row));
    }
    if (!flags.IsSet("gguf")) {
      // llama.cpp from the config: the GGUF --gguf-type names, as llama.cpp's tools write it.
      Row row{.engine = "llama.cpp"};
      absl::StatusOr<EstimateRequest> req = LlamaCppRequest(*spec);
      if (!req.ok()) {
        inv.err << "fleetplan estimate: " << req.status().message() << "\n";
        return kExitUsage;
      }
      absl::StatusOr<estimator::LlamaCppEstimate> est =
          estimator::EstimateLlamaCppFromModel(*spec, *req);
      if (est.ok()) {
        row.est = est->memory;
        row.launch = estimator::LlamaServerCommand("", *est);
      } else {
        row.error = std::string(est.status().message());
      }
      rows.push_back(std::move(row));
    }
  }
  if (flags.IsSet("gguf")) {
    Row row{.engine = "llama.cpp"};
    absl::StatusOr<estimator::GgufFile> file = ReadGgufHeaderFile(flags.GetString("gguf"));
    absl::StatusOr<EstimateRequest> req = LlamaCppRequest(estimator::ModelSpec{});
    if (!req.ok()) {
      inv.err << "fleetplan estimate: " << req.status().message() << "\n";
      return kExitUsage;
    }
    absl::StatusOr<estimator::LlamaCppEstimate> est =
        file.ok() ? estimator::EstimateLlamaCpp(*file, *req)
                  : absl::StatusOr<estimator::LlamaCppEstimate>(file.status());
    if (est.ok()) {
      row.est = est->memory;
      row.launch = estimator::LlamaServerCommand(flags.GetString("gguf"), *est);
    } else {
      row.error = std::string(est.status().message());
    }
    rows.push_back(std::move(row));
  }
  bool any_fits = false;
  json out = json::array();
  for (const Row& r : rows) {
    any_fits |= r.error.empty() && r.est.fits;
    json j = {{"engine", r.engine}};
    if (!r.error.empty()) {
      j["error"] = r.error;
    } else {
      j["fits"] = r.est.fits;
      j["max_total_bytes"] = r.est.max_total_bytes;
      j["max_high_bytes"] = r.est.max_high_bytes;
      j["bytes_per_rank"] = r.est.BytesPerRank();
      j["kv_cache_tokens"] = r.est.kv_cache_tokens;
      j["kv_cache_tokens_low"] = r.est.kv_cache_tokens_low;
      j["max_concurrency_low"] = r.est.max_concurrency_low;
      j["host_bytes"] = r.est.host_bytes;
      j["launch_command"] = r.launch;
      if (!r.est.reason.empty()) j["reason"] = r.est.reason;
    }
    out.push_back(std::move(j));
  }
  if (inv.output == OutputFormat::kJson) {
    inv.out << json{{"engines", out}}.dump(2) << "\n";
    return any_fits ? kExitOk : kExitError;
  }
  inv.out << absl::StrFormat("%-16s %-6s %12s %12s %12s %10s  %s\n", "engine", "fits", "GiB/GPU",
                             "up to", "KV tokens", "sequences", "launch / reason");
  for (const Row& r : rows) {
    if (!r.error.empty()) {
      inv.out << absl::StrFormat("%-16s %-6s %12s %12s %12s %10s  %s\n", r.engine, "-", "-", "-",
                                 "-", "-", r.error);
      continue;
    }
    inv.out << absl::StrFormat(
        "%-16s %-6s %12.2f %12.2f %12d %10d  %s\n", r.engine, r.est.fits ? "yes" : "no",
        GiB(r.est.max_total_bytes), GiB(r.est.max_high_bytes), r.est.kv_cache_tokens_low,
        r.est.max_concurrency_low, r.est.fits || r.est.reason.empty() ? r.launch : r.est.reason);
  }
  inv.out << "(GiB/GPU: the fullest GPU at the estimate and at the band's high end; KV tokens and "
             "sequences at the band's low end; transformers holds no KV pool)\n";
  return any_fits ? kExitOk : kExitError;
}

int RunEstimate(const Invocation& inv) {
  FlagSet flags = inv.flags;  // may be extended by --profile and --vllm
  if (flags.IsSet("profile")) {
    if (absl::Status s = ApplyProfile(flags, flags.GetString("profile")); !s.ok()) {
      inv.err << "fleetplan estimate: " << s.message() << "\n";
      return s.code() == absl::StatusCode::kNotFound ? kExitError : kExitUsage;
    }
  }
  std::string model_path = flags.GetString("model");
  std::string model_label = ServedModel(model_path);
  if (!flags.GetString("model-name").empty()) model_label = flags.GetString("model-name");
  std::vector<std::string> ignored, unknown;
  if (flags.IsSet("vllm")) {
    if (absl::Status s = ApplyVllmCommand(flags, model_path, model_label, ignored, unknown);
        !s.ok()) {
      inv.err << "fleetplan estimate: " << s.message() << "\n";
      return kExitUsage;
    }
  }
  if (!flags.GetString("mmproj").empty() && !flags.IsSet("gguf") &&
      !(flags.IsSet("server") && !flags.GetString("catalog-model").empty())) {
    inv.err << "fleetplan estimate: --mmproj goes with a GGUF model: --gguf=FILE, or --server "
               "with --catalog-model of one imported from a GGUF (a config.json's mmproj is "
               "converted from its vision tower)\n";
    return kExitUsage;
  }
  if (flags.GetBool("compare-engines")) return RunCompareEngines(inv, flags);
  if (flags.IsSet("gguf")) return RunLlamaCppEstimate(inv, flags);
  if (flags.IsSet("server") && !flags.GetString("catalog-model").empty()) {
    return RunRemoteEstimate(inv, flags, "");
  }
  if (model_path.empty()) {
    inv.err << "fleetplan estimate: give --model=config.json, --vllm=\"vllm serve MODEL_DIR ...\" "
               "or --gguf=FILE.gguf\n";
    return kExitUsage;
  }
  absl::StatusOr<std::string> text = ReadFileText("model", model_path);
  if (!text.ok()) return ReportError(inv.err, "estimate", text.status());
  if (flags.IsSet("server")) return RunRemoteEstimate(inv, flags, *text);
  estimator::ParseOptions parse{.quantization = flags.GetString("quantization"),
                                .group_size = flags.GetInt("group-size")};
  absl::StatusOr<estimator::ModelSpec> spec = estimator::ParseModelConfig(*text, parse);
  if (!spec.ok()) return ReportError(inv.err, "estimate", spec.status());
  absl::StatusOr<EstimateRequest> req = BuildRequest(flags, *spec);
  std::optional<estimator::ModelSpec> draft;
  if (req.ok()) {
    if (absl::Status s = ApplyDraft(flags, draft, *req); !s.ok()) req = s;
  }
  if (!req.ok()) {
    inv.err << "fleetplan estimate: " << req.status().message() << "\n";
    return req.status().code() == absl::StatusCode::kNotFound ? kExitError : kExitUsage;
  }
  if (req->engine == estimator::Engine::kLlamaCpp) {
    // The GGUF llama.cpp's tools would write for this config (--gguf-type), and its mmproj.
    absl::StatusOr<estimator::LlamaCppEstimate> converted =
        estimator::EstimateLlamaCppFromModel(*spec, *req);
    if (!converted.ok()) return ReportError(inv.err, "estimate", converted.status());
    return PrintLlamaCppEstimate(inv, *req, *converted,
                                 {model_label, spec->model_type, spec->num_params()}, "");
  }
  absl::StatusOr<MemoryEstimate> est = estimator::Estimate(*spec, *req);
  if (!est.ok()) return ReportError(inv.err, "estimate", est.status());
  for (const std::string& flag : unknown) {
    est->notes.push_back(absl::StrCat("vllm flag ", flag,
                                      " is not one fleetplan knows (a typo?); the estimate ignores "
                                      "it (--strict refuses it)"));
  }
  for (const std::string& flag : ignored) {
    if (flag == "--enable-prefix-caching") {
      // vLLM V1 caches prefixes by default; the flag shares blocks, it allocates none.
      est->notes.push_back(
          "--enable-prefix-caching changes capacity, not memory: sequences that share a prefix "
          "share its KV blocks, so the pool holds more of them than max_concurrency counts; the "
          "bytes are the same");
      continue;
    }
    est->notes.push_back(absl::StrCat("vllm flag ", flag, " does not change memory; ignored"));
  }
  const ModelLabel label{model_label, spec->model_type, spec->num_params()};
  json out = EstimateJson(label, *req, *est);
  EstimateExtras x;
  if (req->engine == estimator::Engine::kSglang) {
    x.emitted = estimator::SglangLaunchCommand(model_label, *req, *est);
    out["launch_command"] = x.emitted;
  } else if (req->engine == estimator::Engine::kOpenvino) {
    x.emitted = estimator::OpenvinoLaunchCommand(model_label, *spec, *req, *est);
    out["launch_command"] = x.emitted;
  }

  if (flags.GetBool("budget")) {
    auto contexts = ParseIntList("budget-contexts", flags.GetString("budget-contexts"));
    auto concurrencies =
        ParseIntList("budget-concurrencies", flags.GetString("budget-concurrencies"));
    if (!contexts.ok() || !concurrencies.ok()) {
      inv.err << "fleetplan estimate: "
              << (contexts.ok() ? concurrencies.status() : contexts.status()).message() << "\n";
      return kExitUsage;
    }
    auto cells = estimator::Budget(*spec, *req, *contexts, *concurrencies);
    if (!cells.ok()) return ReportError(inv.err, "estimate", cells.status());
    x.budget = *std::move(cells);
    x.budget_columns = static_cast<int64_t>(concurrencies->size());
    out["budget"] = json::array();
    for (const auto& c : x.budget) {
      out["budget"].push_back({{"context_tokens", c.context_tokens},
                               {"concurrency", c.concurrency},
                               {"bytes_per_gpu", c.bytes_per_gpu},
                               {"fits", c.fits}});
    }
  }
  if (flags.GetString("emit") == "vllm") {
    if (req->engine != estimator::Engine::kVllm) {
      inv.err << "fleetplan estimate: --emit=vllm needs --engine=vllm\n";
      return kExitUsage;
    }
    absl::StatusOr<EmittedLaunch> launch = EmitVllm(flags, *spec, *req, model_label);
    if (!launch.ok()) return ReportError(inv.err, "estimate", launch.status());
    out["vllm_command"] = launch->command;
    out["vllm_parallelism"] = {{"tp", launch->tp}, {"pp", launch->pp}, {"ep", launch->ep}};
    out["vllm_gpu_memory_utilization"] = launch->gpu_memory_utilization;
    if (!launch->note.empty()) out["notes"].push_back(launch->note);
    x.emitted = std::move(launch->command);
    x.emit_note = std::move(launch->note);
  } else if (!flags.GetString("emit").empty()) {
    inv.err << "fleetplan estimate: --emit=\"" << flags.GetString("emit") << "\" must be vllm\n";
    return kExitUsage;
  }
  if (inv.output == OutputFormat::kJson) {
    inv.out << out.dump(2) << "\n";
  } else {
    PrintEstimateTable(inv.out, label, *req, *est, x);
  }
  return est->fits ? kExitOk : kExitError;
}

FlagSet EstimateFlags() {
  FlagSet f("estimate",
            "(--model=config.json | --vllm=\"vllm serve MODEL_DIR ...\" | --server=H:P "
            "--catalog-model=NAME) "
            "[flags]");
  AddOutputFlag(f);
  AddServerFlags(f);
  f.String("catalog-model", "", "with --server: a model from the server's catalog");
  f.String("model", "", "path of a Hugging Face config.json");
  f.String("gguf", "", "a GGUF file (engine llama.cpp; only its header is read)");
  f.String("mmproj", "",
           "engine llama.cpp with --gguf (or --server --catalog-model of a GGUF): the mmproj "
           "GGUF llama-server loads beside it (header only)");
  f.Bool("ollama", false,
         "engine llama.cpp: Ollama's defaults (1 slot, context by VRAM) and an `ollama serve` "
         "line");
  f.String("gguf-type", "",
           "engine llama.cpp from --model: the GGUF file type it would be converted to (f16, "
           "bf16, q8_0, q6_K, q5_K_M, q4_K_M, q4_0 ...)");
  f.String("vllm", "", "a `vllm serve MODEL_DIR ...` command line (MODEL_DIR holds config.json)");
  f.Bool("strict", false, "--vllm: refuse flags fleetplan does not know instead of warning");
  f.String("engine", "vllm", estimator::EngineNames().Choices());
  f.String("gpu", "H100-80GB", "GPU type from the built-in table");
  f.Int("gpu-memory-bytes", 0, "GPU memory as the driver reports it (overrides --gpu)");
  f.Int("tp", 1, "tensor parallel size");
  f.Int("pp", 1, "pipeline parallel size");
  f.Int("ep", 1, "expert parallel size (MoE)");
  f.Int("dp", 1, "data parallel size");
  f.Bool("expert-parallel", false, "vLLM --enable-expert-parallel: ep = tp x dp");
  f.String("dtype", "auto", "auto | bfloat16 | float16 | float32");
  f.String("kv-cache-dtype", "auto", estimator::KvCacheDTypeNames().Choices());
  f.String("quantization", "",
           "override: none fp8 int8 w8a8 gptq awq w4a16 bnb-nf4 bnb-int8 mxfp4");
  f.Int("group-size", 128, "group size for a 4-bit quantization override");
  const estimator::VllmConfig vllm;
  f.String("vllm-version", "",
           "the vLLM version whose memory semantics apply (e.g. 0.6.3, 0.8.5, 0.22.0; default "
           "0.19, the calibrated one)");
  f.Double("gpu-memory-utilization", vllm.gpu_memory_utilization,
           "vLLM --gpu-memory-utilization (0: the version's default, 0.9, 0.92 from 0.22; with "
           "--emit: given, it is kept; else sized to the workload)");
  f.Int("max-model-len", 0, "vLLM --max-model-len (0: the model's max_position_embeddings)");
  f.Int("max-num-seqs", 0, "vLLM --max-num-seqs (0: vLLM's default for the GPU)");
  f.Int("max-num-batched-tokens", 0, "vLLM --max-num-batched-tokens (0: vLLM's default)");
  f.Int("block-size", vllm.block_size, "vLLM --block-size");
  f.Bool("enforce-eager", false, "vLLM --enforce-eager (no CUDA graphs)");
  f.String("draft-model", "",
           "speculative decoding: the draft model's config.json (vLLM's --speculative-config "
           "model, SGLang's --speculative-draft-model-path)");
  f.String("draft-model-name", "",
           "the draft model --speculative-config names (default: its folder)");
  f.Int("num-speculative-tokens", 4, "vLLM speculative decoding: tokens the draft proposes");
  f.String("speculative-method", "",
           "vLLM speculative decoding: mtp (the model's MTP layers, num_nextn_predict_layers), "
           "ngram (prompt lookup, no memory), or eagle / eagle3 with the head's config.json as "
           "--draft-model (default: a whole draft model, --draft-model)");
  f.Double("cpu-offload-gb", 0, "vLLM --cpu-offload-gb: GiB of each GPU's weights in host memory");
  f.Double("swap-space", 0, "vLLM --swap-space: V0's CPU KV blocks per GPU, GiB (0: 4)");
  f.String("mamba-cache-dtype", "",
           "vLLM --mamba-cache-dtype: linear-attention conv state (auto, float32, float16, "
           "bfloat16; default auto: the model dtype)");
  f.String("mamba-ssm-cache-dtype", "",
           "vLLM --mamba-ssm-cache-dtype: linear-attention recurrent state (default auto: as the "
           "conv state)");
  f.Bool("enable-lora", false, "vLLM --enable-lora: adapter slots on every rank");
  f.Int("max-loras", vllm.max_loras, "vLLM --max-loras: adapter slots per rank");
  f.Int("max-lora-rank", vllm.max_lora_rank, "vLLM --max-lora-rank");
  f.Int("max-cpu-loras", 0, "vLLM --max-cpu-loras: adapters cached in host memory (0: max-loras)");
  f.Int("concurrency", 0, "workload: sequences the KV cache must hold at once");
  f.Int("context", 0, "workload: tokens per sequence (0: max_model_len)");
  f.String("attn", "sdpa", "hf-transformers: sdpa | eager");
  f.String("phase", "prefill", "hf-transformers: prefill | generate");
  f.String("logits", "last", "hf-transformers: last | all");
  const estimator::HfConfig hf;
  const estimator::TrainingConfig training;
  f.Int("batch", hf.batch, "hf-transformers / training: sequences per batch");
  f.Int("prompt-tokens", hf.prompt_tokens,
        "hf-transformers / openvino: prompt tokens per sequence");
  f.Int("new-tokens", hf.new_tokens, "hf-transformers generate / openvino: new tokens");
  f.Int("images", 0, "hf-transformers / openvino / llama.cpp VLM: images per sequence");
  f.Int("image-height", 0,
        "hf-transformers / openvino / llama.cpp VLM: image height in pixels (0: the tower's native "
        "size)");
  f.Int("image-width", 0,
        "hf-transformers / openvino / llama.cpp VLM: image width in pixels (0: the tower's native "
        "size)");
  f.String("optimizer", "adamw", absl::StrCat("training: ", estimator::OptimizerNames().Choices()));
  f.String("param-dtype", "bfloat16", "training: dtype of the parameters");
  f.Bool("autocast", false, "training: bf16 autocast over fp32 parameters");
  f.Bool("gradient-checkpointing", false, "training: checkpoint every decoder layer");
  f.Int("lora-rank", 0, "training: LoRA rank (0: full fine-tuning)");
  f.String("lora-targets", "", "training: comma-separated LoRA target modules (default: all)");
  f.Int("zero-stage", 0, "training: ZeRO stage 0-3 over --dp");
  f.Int("seq-tokens", training.seq_tokens, "training: tokens per sequence");
  f.Double("mem-fraction-static", 0,
           "sglang --mem-fraction-static (0: SGLang's default for the GPU)");
  f.Int("context-length", 0, "sglang --context-length (0: the model's max_position_embeddings)");
  f.Int("chunked-prefill-size", 0, "sglang --chunked-prefill-size (0: by GPU memory)");
  f.Int("cuda-graph-max-bs", 0, "sglang --cuda-graph-max-bs (0: by GPU memory and tp)");
  f.Int("max-running-requests", 0, "sglang --max-running-requests (0: from the KV pool)");
  f.Int("page-size", 1, "sglang --page-size");
  f.Bool("disable-cuda-graph", false, "sglang --disable-cuda-graph");
  f.Double("swa-full-tokens-ratio", 0,
           "sglang --swa-full-tokens-ratio: a sliding layer's pool over a full layer's, hybrid SWA "
           "models (gpt-oss; 0: 0.8)");
  f.Bool("disable-hybrid-swa-memory", false,
         "sglang --disable-hybrid-swa-memory: one full-size pool for every layer");
  f.Bool("enable-piecewise-cuda-graph", false,
         "sglang --enable-piecewise-cuda-graph: prefill CUDA graphs (8 MiB of non-torch memory "
         "each, reserved from the fraction)");
  f.Int("piecewise-cuda-graph-max-tokens", 0,
        "sglang --piecewise-cuda-graph-max-tokens (0: the chunked-prefill size; MLA: 2048)");
  f.Int("max-mamba-cache-size", 0,
        "sglang --max-mamba-cache-size: linear-attention states pooled (0: from "
        "--mamba-full-memory-ratio)");
  f.Double("mamba-full-memory-ratio", 0,
           "sglang --mamba-full-memory-ratio: state pool over KV pool, linear-attention models "
           "(0: 0.9)");
  f.String("mamba-ssm-dtype", "",
           "sglang --mamba-ssm-dtype: the recurrent state's dtype (float32 or bfloat16; "
           "default float32)");
  f.Bool("disable-radix-cache", false, "sglang --disable-radix-cache");
  f.Int("max-loras-per-batch", estimator::SglangConfig{}.max_loras_per_batch,
        "sglang --max-loras-per-batch, with --enable-lora (and --max-lora-rank, required)");
  f.Int("max-loaded-loras", 0,
        "sglang --max-loaded-loras: adapters kept whole in each rank's host memory (0: unbounded, "
        "not counted)");
  f.String("lora-target-modules", "",
           "sglang --lora-target-modules, comma-separated (default: all: q,k,v,o,gate,up,down)");
  f.String("sglang-version", "",
           "the SGLang version whose memory rules apply (default 0.5.10; from 0.5.11 a draft "
           "model's weights are budgeted before the KV pool)");
  f.String("speculative-algorithm", "",
           absl::StrCat(
               "sglang --speculative-algorithm: ", estimator::SglangSpeculativeNames().Choices(),
               " (EAGLE, EAGLE3 and STANDALONE take --draft-model; NEXTN the model's "
               "MTP layers)"));
  f.Int("speculative-num-steps", 0, "sglang --speculative-num-steps (0: SGLang's default, 3)");
  f.Int("speculative-eagle-topk", 0, "sglang --speculative-eagle-topk (0: SGLang's default, 1)");
  f.Int("speculative-num-draft-tokens", 0,
        "sglang --speculative-num-draft-tokens (0: SGLang's default, 4)");
  const estimator::LlamaCppConfig llama;
  f.Int("ctx-size", 0, "llama.cpp -c: context of all slots (0: the model's, or slots x --context)");
  f.Int("parallel", 0, "llama.cpp -np: slots (0: --concurrency, else llama-server's auto 4)");
  f.Bool("kv-unified", false, "llama.cpp --kv-unified: one KV cache all slots share");
  f.Int("batch-size", llama.n_batch, "llama.cpp -b");
  f.Int("ubatch-size", llama.n_ubatch, "llama.cpp -ub: tokens of the compute buffer's graph");
  f.String("cache-type-k", llama.cache_type_k,
           "llama.cpp -ctk: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl");
  f.String("cache-type-v", llama.cache_type_v,
           "llama.cpp -ctv (quantized V needs flash attention)");
  f.String("flash-attn", "auto", "llama.cpp -fa: auto | on | off");
  f.Int("n-gpu-layers", llama.n_gpu_layers, "llama.cpp -ngl (-1: auto, --fit picks)");
  f.String("tensor-split", "", "llama.cpp -ts: a weight per GPU (--pp GPUs), e.g. 3,1");
  f.Int("n-cpu-moe", 0, "llama.cpp --n-cpu-moe: experts of the first N layers on the CPU");
  f.String("fit", "on", "llama.cpp --fit: on | off");
  f.Bool("swa-full", false, "llama.cpp --swa-full: full-size cache for sliding-window layers");
  const estimator::OpenvinoConfig ov;
  f.String("ov-device", "cpu", "openvino: cpu | gpu (the device the pipeline runs on)");
  f.String("weight-format", "",
           "openvino: fp32 | fp16 | int8 (int8_asym) | int8_sym | int4 (int4_asym) | int4_sym "
           "(default: the folder's openvino_config.json, else fp16)");
  f.Int("ov-group-size", ov.group_size, "openvino int4: --group-size (-1: channel-wise)");
  f.Double("ov-ratio", ov.ratio, "openvino int4: --ratio of layers in int4 (the rest int8)");
  f.Bool("all-layers", false, "openvino int4: --all-layers (embedding and lm_head in int4 too)");
  f.String("kv-cache-precision", "default",
           "openvino KV_CACHE_PRECISION: default (cpu u8, gpu f16) | u8 | u4 | f16 | bf16 | f32");
  f.Int("kv-group-size", 0, "openvino KEY/VALUE_CACHE_GROUP_SIZE (0: one group per head)");
  f.String("inference-precision", "default",
           "openvino INFERENCE_PRECISION_HINT: default (cpu f32, bf16 with --amx; gpu f16) | f32 "
           "| bf16 | f16");
  f.Bool("amx", false, "openvino cpu: the CPU has AMX (bf16 by default, fused MLPs)");
  f.Bool("continuous-batching", false,
         "openvino: continuous batching (paged KV blocks; OVMS) instead of a stateful pipeline");
  f.Double("cache-size", 0, "openvino continuous batching: cache_size in GB (0: num-kv-blocks)");
  f.Int("num-kv-blocks", 0,
        "openvino continuous batching: num_kv_blocks (0 with no cache-size: "
        "grows on demand)");
  f.Int("llm-tokens", 0,
        "openvino: the language model's prefill tokens (0: --prompt-tokens + the images' tokens)");
  f.Bool("compare-engines", false,
         "one table of this model and workload on every engine that serves it (vllm, sglang, "
         "hf-transformers, openvino from --model; llama.cpp from --gguf)");
  f.Bool("budget", false, "print the contexts x concurrencies budget matrix");
  f.String("budget-contexts", "2048,8192,32768", "budget: contexts");
  f.String("budget-concurrencies", "1,8,32,128", "budget: concurrencies");
  f.String("emit", "", "vllm: print the `vllm serve` command for this workload (planner's search)");
  f.Int("gpus-per-node", 8, "--emit: GPUs in one NVLink domain (the largest tp it may choose)");
  f.String("model-name", "", "the model `vllm serve` loads (default: the config.json's folder)");
  f.String("profile", "",
           "YAML/JSON file of these flags (a saved estimate); flags given here win over it");
  return f;
}

}  // namespace

std::vector<Command> EstimateCommands() {
  return {Command{.name = "estimate",
                  .summary = "estimate per-GPU memory of serving or training a model (offline)",
                  .make_flags = EstimateFlags,
                  .run = RunEstimate}};
}

}  // namespace fleetplan::cli
