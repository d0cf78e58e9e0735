#include "planner/estimator/calibration.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/vllm_version.h"

namespace fleetplan::estimator {
namespace {

using json = nlohmann::json;

int64_t IntOr(const json& j, const char* key, int64_t fallback) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return fallback;
  return it->get<int64_t>();
}

std::string StrOr(const json& j, const char* key, const std::string& fallback) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

bool DTypeFromName(const std::string& name, DType* out) {
  absl::StatusOr<DType> d = ComputeDTypeNames().Parse("dtype", name);
  if (!d.ok()) return false;
  *out = *d;
  return true;
}

void Add(CaseResult& r, const json& measured, const char* key, int64_t predicted) {
  auto it = measured.find(key);
  if (it == measured.end() || !it->is_number()) return;
  r.metrics[key] = MetricPair{it->get<int64_t>(), predicted};
}

void AddBand(CaseResult& r, const json& measured, const char* key, BandCheck band) {
  auto it = measured.find(key);
  if (it == measured.end() || !it->is_number()) return;
  band.measured = it->get<int64_t>();
  r.bands[key] = band;
}

// HF cache tensors' nbytes after `tokens` tokens (sliding layers hold window - 1).
int64_t HfCacheTensorBytes(const ModelSpec& spec, int64_t batch, int64_t tokens, DType dtype) {
  int64_t total = 0;
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    const AttentionSpec& a = spec.attention(static_cast<int>(l));
    const int64_t per = a.mla ? (a.kv_lora_rank + a.qk_rope_head_dim)
                              : a.num_kv_heads * (a.head_dim + a.v_head_dim);
    const int64_t t = a.sliding_window > 0 ? std::min(tokens, a.sliding_window - 1) : tokens;
    total += batch * t * per * DTypeBytes(dtype);
  }
  return total;
}

}  // namespace

double BandCheck::width() const {
  if (point == 0) return 0;
  return static_cast<double>(capacity ? point - low : high - point) / static_cast<double>(point);
}

double MetricPair::rel_err() const {
  if (measured == 0) return predicted == 0 ? 0.0 : 1.0;
  return static_cast<double>(predicted - measured) / static_cast<double>(measured);
}

absl::StatusOr<std::string> CaseModelPath(absl::string_view case_line) {
  json c = json::parse(case_line.begin(), case_line.end(), nullptr, false);
  if (c.is_discarded() || !c.is_object())
    return absl::InvalidArgumentError("case line is not a JSON object");
  std::string model = StrOr(c, "model", "");
  if (model.empty()) return absl::InvalidArgumentError("case has no \"model\"");
  return model;
}

CaseResult ScoreCase(absl::string_view case_line, absl::string_view model_config) {
  CaseResult r;
  json c = json::parse(case_line.begin(), case_line.end(), nullptr, false);
  if (c.is_discarded() || !c.is_object()) {
    r.skip_reason = "case line is not a JSON object";
    return r;
  }
  r.case_id = StrOr(c, "case", "?");
  r.engine = StrOr(c, "engine", "");
  auto measured_it = c.find("measured");
  if (measured_it == c.end() || !measured_it->is_object()) {
    r.skip_reason = "case has no \"measured\" object";
    return r;
  }
  const json& m = *measured_it;
  r.measured_oom = m.value("oom", false) || StrOr(c, "startup_status", "ok") == "failed";

  ParseOptions parse_options;
  if (r.engine == "vllm") {
    const std::string q = StrOr(c, "quantization", "");
    // Run-time quantization of an unquantized checkpoint (--quantization fp8).
    json model = json::parse(model_config.begin(), model_config.end(), nullptr, false);
    const bool checkpoint_quantized = model.is_object() && model.contains("quantization_config");
    if (!q.empty() && !checkpoint_quantized) parse_options.quantization = q;
  }
  absl::StatusOr<ModelSpec> spec = ParseModelConfig(model_config, parse_options);
  if (!spec.ok()) {
    r.skip_reason = absl::StrCat("model config: ", spec.status().message());
    return r;
  }
  EstimateRequest req;
  req.gpu_memory_bytes = IntOr(c, "gpu_total_bytes", 0);
  DType dtype = DType::kBFloat16;
  if (DTypeFromName(StrOr(c, "dtype", ""), &dtype)) {
    req.dtype_set = true;
    req.dtype = dtype;
  }
  if (r.engine == "hf-transformers" || r.engine == "hf-transformers-vision") {
    req.engine = Engine::kHfTransformers;
    req.hf.eager_attention = StrOr(c, "attn", "sdpa") == "eager";
    if (r.engine == "hf-transformers-vision") {
      req.hf.vision_tower_only = true;
      req.hf.batch = 1;
      req.hf.images = IntOr(c, "images", 1);
      req.hf.image_height = IntOr(c, "image_height", 0);
      req.hf.image_width = IntOr(c, "image_width", 0);
    } else {
      req.hf.generate = StrOr(c, "phase", "prefill") == "generate";
      req.hf.all_logits = StrOr(c, "logits", "last") == "all";
      req.hf.batch = IntOr(c, "batch", 1);
      req.hf.prompt_tokens = IntOr(c, "prompt_tokens", 1);
      req.hf.new_tokens = IntOr(c, "new_tokens", 0);
    }
  } else if (r.engine == "hf-transformers-train") {
    req.engine = Engine::kTraining;
    const json t = c.value("training", json::object());
    DType param = DType::kBFloat16;
    if (!DTypeFromName(StrOr(t, "param_dtype", "bfloat16"), &param)) {
      r.skip_reason =
          absl::StrCat("training.param_dtype \"", StrOr(t, "param_dtype", ""), "\" unknown");
      return r;
    }
    req.dtype_set = true;
    req.dtype = param;
    req.training.param_dtype = param;
    req.training.autocast_bf16 = StrOr(t, "autocast_dtype", "") == "bfloat16";
    absl::StatusOr<Optimizer> opt =
        OptimizerNames().Parse("training.optimizer", StrOr(t, "optimizer", "adamw"));
    if (!opt.ok()) {
      r.skip_reason = std::string(opt.status().message());
      return r;
    }
    req.training.optimizer = *opt;
    req.training.gradient_checkpointing = t.value("gradient_checkpointing", false);
    req.training.batch = IntOr(c, "batch", 1);
    req.training.seq_tokens = IntOr(c, "seq_tokens", 1);
    if (auto lora = t.find("lora"); lora != t.end() && lora->is_object()) {
      req.training.lora_rank = IntOr(*lora, "r", 0);
      for (const json& name : lora->value("target_modules", json::array())) {
        if (name.is_string()) req.training.lora_targets.push_back(name.get<std::string>());
      }
      DType adapter = DType::kFloat32;
      if (DTypeFromName(StrOr(*lora, "adapter_dtype", "float32"), &adapter))
        req.training.lora_dtype = adapter;
    }
  } else if (r.engine == "vllm") {
    req.engine = Engine::kVllm;
    // The version the case ran (its memory semantics) and the GPU's name (the A100 rule).
    // A version the log did not print ("~unknown") is scored with the default semantics.
    if (const std::string version = StrOr(c, "engine_version", "");
        ParseVllmVersion("engine_version", version).ok()) {
      req.vllm.version = version;
    }
    req.gpu_name = StrOr(c, "gpu", "");
    req.parallelism.tp = IntOr(c, "tensor_parallel_size", 1);
    req.parallelism.pp = IntOr(c, "pipeline_parallel_size", 1);
    req.parallelism.dp = IntOr(c, "data_parallel_size", 1);
    const VllmConfig defaults;
    req.vllm.gpu_memory_utilization =
        c.value("gpu_memory_utilization", defaults.gpu_memory_utilization);
    req.vllm.max_model_len = IntOr(c, "max_model_len", 0);
    req.vllm.max_num_seqs = IntOr(c, "max_num_seqs", 0);
    req.vllm.max_num_batched_tokens = IntOr(c, "max_num_batched_tokens", 0);
    req.vllm.block_size = IntOr(c, "block_size", defaults.block_size);
    req.vllm.enforce_eager = c.value("enforce_eager", false);
    absl::StatusOr<KvCacheDType> kv =
        KvCacheDTypeNames().Parse("kv_cache_dtype", StrOr(c, "kv_cache_dtype", "auto"));
    if (!kv.ok()) {
      r.skip_reason = std::string(kv.status().message());
      return r;
    }
    req.kv_cache_dtype = *kv;
  } else {
    r.skip_reason = absl::StrCat("engine \"", r.engine, "\" is not modelled");
    return r;
  }
  absl::StatusOr<MemoryEstimate> est = Estimate(*spec, req);
  if (!est.ok()) {
    r.skip_reason = absl::StrCat("estimate: ", est.status().message());
    return r;
  }
  const StageMemory& s = est->stages.front();
  r.predicted_fits = est->fits;
  if (r.engine == "vllm") {
    Add(r, m, "weights_bytes", s.weights_bytes);
    Add(r, m, "kv_cache_tokens", s.kv_cache_tokens);
    Add(r, m, "available_kv_cache_bytes", s.available_kv_cache_bytes);
    Add(r, m, "activation_peak_bytes", s.activation_peak_bytes);
    // What the version's log calls non-torch memory: the increase during profiling, or (whole-
    // device profiling) everything outside torch, the context included.
    const bool whole_device =
        VllmProfileFor(*ParseVllmVersion("engine_version", req.vllm.version)).profiling ==
        VllmProfiling::kWholeDevicePeak;
    Add(r, m, "non_torch_bytes",
        s.engine_overhead_bytes + (whole_device ? s.cuda_context_bytes : 0));
    Add(r, m, "num_gpu_blocks", s.num_gpu_blocks);
    Add(r, m, "cuda_graph_bytes", s.cuda_graph_bytes);
    AddBand(r, m, "kv_cache_tokens",
            BandCheck{.low = s.kv_cache_tokens_low,
                      .point = s.kv_cache_tokens,
                      .high = s.kv_cache_tokens,
                      .capacity = true});
    // The GPU's use: the requested budget, the CUDA graphs outside it and the CUDA context, as
    // the log gives them (requested_bytes, cuda_graph_bytes, init_non_torch_bytes).
    if (m.contains("requested_bytes") && m.contains("cuda_graph_bytes") &&
        m.contains("init_non_torch_bytes")) {
      json used = {{"gpu_used_bytes", IntOr(m, "requested_bytes", 0) +
                                          IntOr(m, "cuda_graph_bytes", 0) +
                                          IntOr(m, "init_non_torch_bytes", 0)}};
      AddBand(r, used, "gpu_used_bytes",
              BandCheck{.low = s.low_bytes, .point = s.total_bytes, .high = s.high_bytes});
    }
    // A failed start is out of memory: the estimate must not fit.
    if (r.measured_oom) r.predicted_fits = est->fits && s.available_kv_cache_bytes > 0;
    return r;
  }
  if (r.engine == "hf-transformers-vision") {
    Add(
        r, m, "params", spec->num_vision_params() - [&] {
          int64_t p = 0;
          for (const Tensor& t : spec->vision->projector) p += t.elements();
          return p;
        }());
  } else if (r.engine == "hf-transformers-train") {
    int64_t params = spec->num_params();
    if (req.training.lora_rank > 0) {
      int64_t adapters = 0;
      for (int k : spec->layer_kind_of) {
        for (const Tensor& t : spec->layer_kinds[static_cast<size_t>(k)].tensors) {
          if (t.role != TensorRole::kLinear) continue;
          const auto& targets = req.training.lora_targets;
          if (!targets.empty() &&
              std::find(targets.begin(), targets.end(), t.name) == targets.end())
            continue;
          adapters += req.training.lora_rank * (t.in + t.out) * t.copies;
        }
      }
      params += adapters;
    }
    Add(r, m, "params", params);
  } else {
    Add(r, m, "params", spec->num_params());
  }
  Add(r, m, "weights_bytes", s.weights_bytes);
  Add(r, m, "peak_allocated_bytes", s.torch_peak_allocated_bytes);
  AddBand(r, m, "peak_allocated_bytes",
          BandCheck{.low = s.torch_peak_allocated_bytes - (s.total_bytes - s.low_bytes),
                    .point = s.torch_peak_allocated_bytes,
                    .high = s.torch_peak_allocated_bytes + (s.high_bytes - s.total_bytes)});
  if (r.engine == "hf-transformers" && !r.measured_oom) {
    const int64_t tokens = req.hf.prompt_tokens + (req.hf.generate ? req.hf.new_tokens - 1 : 0);
    Add(r, m, "kv_cache_bytes", HfCacheTensorBytes(*spec, req.hf.batch, tokens, req.dtype));
  }
  if (r.engine == "hf-transformers-train") {
    Add(r, m, "optimizer_state_bytes", s.optimizer_bytes);
  }
  // An OOM case must be predicted not to fit the GPU it ran on.
  if (r.measured_oom) r.predicted_fits = s.torch_peak_allocated_bytes <= req.gpu_memory_bytes;
  return r;
}

ValidationSummary Summarize(const std::vector<CaseResult>& results) {
  ValidationSummary out;
  std::map<std::string, std::vector<double>> errors;
  std::map<std::string, std::vector<double>> widths;
  std::map<std::string, double> worst_outside;
  for (const CaseResult& r : results) {
    ++out.cases;
    if (!r.skip_reason.empty()) {
      out.skipped.emplace_back(r.case_id, r.skip_reason);
      continue;
    }
    ++out.scored;
    if (r.measured_oom) {
      ++out.oom_cases;
      if (!r.predicted_fits) ++out.oom_predicted_not_fit;
      // An OOM run's peak is where it failed, not what the workload needs: not an accuracy point.
      continue;
    }
    for (const auto& [name, pair] : r.metrics) errors[name].push_back(pair.rel_err());
    for (const auto& [name, band] : r.bands) {
      BandSummary& b = out.bands[name];
      ++b.n;
      if (band.covered()) {
        ++b.covered;
      } else {
        const double outside =
            std::fabs(static_cast<double>(band.measured - (band.capacity ? band.low : band.high)));
        if (outside > worst_outside[name]) {
          worst_outside[name] = outside;
          b.worst_case = r.case_id;
        }
      }
      widths[name].push_back(band.width());
    }
  }
  for (auto& [name, w] : widths) {
    std::sort(w.begin(), w.end());
    out.bands[name].median_width = w[(w.size() - 1) / 2];
  }
  for (auto& [name, errs] : errors) {
    MetricSummary s;
    s.n = static_cast<int64_t>(errs.size());
    std::vector<double> abs_errs;
    for (double e : errs) {
      abs_errs.push_back(std::fabs(e));
      if (e < -0.02) ++s.under_predicted_over_2pct;
    }
    std::sort(abs_errs.begin(), abs_errs.end());
    std::sort(errs.begin(), errs.end());
    auto quantile = [](const std::vector<double>& v, double q) {
      if (v.empty()) return 0.0;
      // Nearest-rank quantile.
      size_t idx = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
      return v[std::min(idx, v.size() - 1)];
    };
    s.median_abs_rel_err = quantile(abs_errs, 0.5);
    s.p90_abs_rel_err = quantile(abs_errs, 0.9);
    s.max_abs_rel_err = abs_errs.empty() ? 0 : abs_errs.back();
    s.median_rel_err = quantile(errs, 0.5);
    out.metrics[name] = s;
  }
  return out;
}

}  // namespace fleetplan::estimator
