#include <algorithm>
#include <string>
#include <utility>

#include "absl/numeric/int128.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/vllm.h"
#include "planner/estimator/vllm_version.h"

namespace fleetplan::estimator {
namespace {

double Hundredths(int64_t h) { return static_cast<double>(h) / 100.0; }

// ceil(a / b) in hundredths for a, b > 0: the smallest h with h * b >= a * 100.
int64_t CeilHundredths(int64_t a, int64_t b) {
  const absl::int128 num = absl::int128(a) * 100;
  const absl::int128 den = absl::int128(b);
  return static_cast<int64_t>((num + den - 1) / den);
}

}  // namespace

absl::StatusOr<VllmFit> FitVllm(const ModelSpec& spec, const EstimateRequest& request,
                                Utilization mode) {
  if (request.engine != Engine::kVllm) {
    return absl::InvalidArgumentError(
        absl::StrCat("engine=", EngineName(request.engine), ": a vLLM fit needs engine=vllm"));
  }
  VllmFit fit;
  fit.request = request;
  EstimateRequest& req = fit.request;
  req.concurrency = std::max<int64_t>(req.concurrency, 1);
  if (req.vllm.max_model_len == 0 && req.context_tokens > 0) {
    req.vllm.max_model_len = req.context_tokens;
  }
  if (mode == Utilization::kSmallest) {
    // Everything but the KV pool is independent of the utilization, so one estimate at 1.0 tells
    // each stage's non-KV budget and the KV blocks of the workload; the utilization must cover
    // both (requested = utilization x GPU, vllm/v1/worker/gpu_worker.py).
    EstimateRequest probe = req;
    probe.vllm.gpu_memory_utilization = 1.0;
    ASSIGN_OR_RETURN(MemoryEstimate at_full, Estimate(spec, probe));
    const int64_t probe_requested = req.gpu_memory_bytes;  // utilization 1.0
    int64_t hundredths = 1;
    for (const StageMemory& s : at_full.stages) {
      // Non-KV memory at the high end of its band (requested - the pool's low end).
      const int64_t non_kv = probe_requested - s.available_kv_cache_low_bytes;
      const int64_t budget = non_kv + std::max(s.workload_kv_bytes, int64_t{0});
      hundredths = std::max(hundredths, CeilHundredths(budget, req.gpu_memory_bytes));
    }
    // Rounding of requested bytes and whole blocks can leave one hundredth short: step up (the
    // loop runs once or twice).
    for (; hundredths <= kVllmMaxUtilizationHundredths; ++hundredths) {
      req.vllm.gpu_memory_utilization = Hundredths(hundredths);
      ASSIGN_OR_RETURN(fit.estimate, Estimate(spec, req));
      if (fit.estimate.fits) break;
      if (fit.estimate.headroom_bytes < 0) break;  // more utilization only overflows the GPU
    }
    if (hundredths > kVllmMaxUtilizationHundredths) {
      req.vllm.gpu_memory_utilization = Hundredths(kVllmMaxUtilizationHundredths);
      ASSIGN_OR_RETURN(fit.estimate, Estimate(spec, req));
      if (fit.estimate.fits) {
        fit.estimate.fits = false;
        fit.estimate.reason = "needs more than gpu_memory_utilization=0.99";
      }
    }
  } else {
    ASSIGN_OR_RETURN(fit.estimate, Estimate(spec, req));
  }
  fit.gpu_memory_utilization =
      EffectiveUtilization(req.vllm.gpu_memory_utilization,
                           VllmProfileFor(*ParseVllmVersion("vllm.version", req.vllm.version)));
  fit.fits = fit.estimate.fits;
  if (!fit.fits) {
    fit.reason = fit.estimate.reason.empty()
                     ? absl::StrFormat(
                           "no gpu_memory_utilization up to 0.%02d holds %d sequences "
                           "of %d tokens on a %.2f GiB GPU",
                           kVllmMaxUtilizationHundredths, req.concurrency, req.context_tokens,
                           BytesToGiB(req.gpu_memory_bytes))
                     : absl::StrFormat("at gpu_memory_utilization=%.2f: %s",
                                       fit.gpu_memory_utilization, fit.estimate.reason);
  }
  return fit;
}

std::string ShellQuote(absl::string_view word) {
  if (word.empty()) return "''";
  const bool safe = std::all_of(word.begin(), word.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/' || c == ':' || c == '=' || c == '@' || c == '+' || c == ',';
  });
  if (safe) return std::string(word);
  return absl::StrCat("'", absl::StrReplaceAll(word, {{"'", "'\\''"}}), "'");
}

std::string VllmServeCommand(absl::string_view model, const VllmFit& fit) {
  const EstimateRequest& r = fit.request;
  const VllmConfig defaults;
  std::string line = absl::StrCat("vllm serve ", ShellQuote(model.empty() ? "MODEL" : model));
  if (r.parallelism.tp > 1) absl::StrAppend(&line, " --tensor-parallel-size ", r.parallelism.tp);
  if (r.parallelism.pp > 1) absl::StrAppend(&line, " --pipeline-parallel-size ", r.parallelism.pp);
  if (r.parallelism.ep > 1) absl::StrAppend(&line, " --enable-expert-parallel");
  absl::StrAppend(&line,
                  absl::StrFormat(" --gpu-memory-utilization %.2f", fit.gpu_memory_utilization));
  absl::StrAppend(&line, " --max-model-len ", fit.estimate.max_model_len);
  if (r.kv_cache_dtype != KvCacheDType::kAuto) {
    absl::StrAppend(&line, " --kv-cache-dtype ", KvCacheDTypeNames().Name(r.kv_cache_dtype));
  }
  if (r.dtype_set) absl::StrAppend(&line, " --dtype ", ComputeDTypeNames().Name(r.dtype));
  if (r.vllm.max_num_seqs > 0) absl::StrAppend(&line, " --max-num-seqs ", r.vllm.max_num_seqs);
  if (r.vllm.max_num_batched_tokens > 0) {
    absl::StrAppend(&line, " --max-num-batched-tokens ", r.vllm.max_num_batched_tokens);
  }
  if (r.vllm.block_size != defaults.block_size) {
    absl::StrAppend(&line, " --block-size ", r.vllm.block_size);
  }
  if (r.vllm.max_cudagraph_capture_size > 0) {
    absl::StrAppend(&line, " --max-cudagraph-capture-size ", r.vllm.max_cudagraph_capture_size);
  }
  if (r.vllm.enforce_eager) absl::StrAppend(&line, " --enforce-eager");
  if (r.vllm.cpu_offload_gb > 0)
    absl::StrAppend(&line, " --cpu-offload-gb ", r.vllm.cpu_offload_gb);
  for (const auto& [flag, value] : {std::pair<const char*, const std::string&>{
                                        " --mamba-cache-dtype ", r.vllm.mamba_cache_dtype},
                                    {" --mamba-ssm-cache-dtype ", r.vllm.mamba_ssm_cache_dtype}}) {
    if (!value.empty() && value != "auto") absl::StrAppend(&line, flag, ShellQuote(value));
  }
  if (IsEagleHead(r.vllm.speculative_method)) {
    const nlohmann::json config = {
        {"method", SpeculativeMethodNames().Name(r.vllm.speculative_method)},
        {"model", r.vllm.draft_model.empty() ? "EAGLE_HEAD" : r.vllm.draft_model},
        {"num_speculative_tokens", r.vllm.num_speculative_tokens}};
    absl::StrAppend(&line, " --speculative-config ", ShellQuote(config.dump()));
  } else if (r.vllm.speculative_method != SpeculativeMethod::kDraftModel) {
    // "mtp": vLLM's one name for every family's MTP drafter (deepseek_mtp, glm4_moe_mtp ... are
    // the older spellings it maps to it).
    const nlohmann::json config = {
        {"method", SpeculativeMethodNames().Name(r.vllm.speculative_method)},
        {"num_speculative_tokens", r.vllm.num_speculative_tokens}};
    absl::StrAppend(&line, " --speculative-config ", ShellQuote(config.dump()));
  } else if (r.vllm.draft != nullptr) {
    const nlohmann::json config = {
        {"model", r.vllm.draft_model.empty() ? "DRAFT" : r.vllm.draft_model},
        {"num_speculative_tokens", r.vllm.num_speculative_tokens}};
    absl::StrAppend(&line, " --speculative-config ", ShellQuote(config.dump()));
  }
  if (r.vllm.enable_lora) {
    absl::StrAppend(&line, " --enable-lora --max-loras ", r.vllm.max_loras, " --max-lora-rank ",
                    r.vllm.max_lora_rank);
    if (r.vllm.max_cpu_loras > 0) absl::StrAppend(&line, " --max-cpu-loras ", r.vllm.max_cpu_loras);
  }
  return line;
}

}  // namespace fleetplan::estimator
