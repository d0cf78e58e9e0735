#include "planner/estimator/inverse.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/vllm.h"

namespace fleetplan::estimator {
namespace {

constexpr int64_t kMaxSearchTokens = int64_t{1} << 26;

// HF: does a batch of `batch` sequences of `tokens` fit?
absl::StatusOr<bool> HfFits(const ModelSpec& spec, EstimateRequest req, int64_t batch,
                            int64_t tokens) {
  req.hf.batch = batch;
  req.hf.prompt_tokens = tokens;
  ASSIGN_OR_RETURN(MemoryEstimate e, Estimate(spec, req));
  return e.fits;
}

// Largest x in [lo, hi] with pred(x) true, assuming pred is monotone decreasing; lo - 1 if none.
template <typename Pred>
absl::StatusOr<int64_t> LargestTrue(int64_t lo, int64_t hi, Pred pred) {
  int64_t best = lo - 1;
  while (lo <= hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    ASSIGN_OR_RETURN(bool ok, pred(mid));
    if (ok) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

}  // namespace

absl::StatusOr<int64_t> MaxConcurrency(const ModelSpec& spec, const EstimateRequest& request,
                                       int64_t context_tokens) {
  if (context_tokens < 1 || context_tokens > kMaxSearchTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("context_tokens=", context_tokens, " must be in [1, ", kMaxSearchTokens, "]"));
  }
  if (request.engine == Engine::kVllm || request.engine == Engine::kLlamaCpp) {
    EstimateRequest req = request;
    req.context_tokens = context_tokens;
    req.concurrency = 0;
    ASSIGN_OR_RETURN(MemoryEstimate e, Estimate(spec, req));
    // What the replica can be counted on to hold: the pool's low end, as the planner counts.
    return e.max_concurrency_low;
  }
  if (request.engine == Engine::kHfTransformers) {
    return LargestTrue(1, 1 << 20,
                       [&](int64_t batch) { return HfFits(spec, request, batch, context_tokens); });
  }
  return absl::InvalidArgumentError(
      "max concurrency is a serving question: use vllm, llama.cpp or hf-transformers");
}

absl::StatusOr<int64_t> MaxContext(const ModelSpec& spec, const EstimateRequest& request,
                                   int64_t concurrency) {
  if (concurrency < 1 || concurrency > (1 << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("concurrency=", concurrency, " must be in [1, 1048576]"));
  }
  if (request.engine == Engine::kVllm || request.engine == Engine::kLlamaCpp) {
    const int64_t limit = request.engine == Engine::kVllm && request.vllm.max_model_len > 0
                              ? request.vllm.max_model_len
                              : spec.max_position_embeddings;
    return LargestTrue(1, limit, [&](int64_t context) -> absl::StatusOr<bool> {
      ASSIGN_OR_RETURN(int64_t n, MaxConcurrency(spec, request, context));
      return n >= concurrency;
    });
  }
  if (request.engine == Engine::kHfTransformers) {
    return LargestTrue(1, spec.max_position_embeddings, [&](int64_t context) {
      return HfFits(spec, request, concurrency, context);
    });
  }
  return absl::InvalidArgumentError(
      "max context is a serving question: use vllm, llama.cpp or hf-transformers");
}

absl::StatusOr<std::vector<BudgetCell>> Budget(const ModelSpec& spec,
                                               const EstimateRequest& request,
                                               const std::vector<int64_t>& contexts,
                                               const std::vector<int64_t>& concurrencies) {
  if (contexts.empty() || concurrencies.empty()) {
    return absl::InvalidArgumentError("budget needs at least one context and one concurrency");
  }
  if (contexts.size() * concurrencies.size() > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("budget of ", contexts.size(), " x ",
                                                   concurrencies.size(),
                                                   " cells is too large (max 10000)"));
  }
  std::vector<BudgetCell> cells;
  cells.reserve(contexts.size() * concurrencies.size());
  for (int64_t context : contexts) {
    for (int64_t n : concurrencies) {
      if (context < 1 || n < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("budget context=", context, " and concurrency=", n, " must be >= 1"));
      }
      BudgetCell cell{.context_tokens = context, .concurrency = n};
      EstimateRequest req = request;
      if (request.engine == Engine::kVllm) {
        // What n sequences of `context` need: everything but the KV pool plus the workload's KV
        // blocks, from the same fit the planner makes (which then rounds the utilization up).
        req.context_tokens = context;
        req.concurrency = n;
        ASSIGN_OR_RETURN(VllmFit fit, FitVllm(spec, req));
        for (const StageMemory& st : fit.estimate.stages) {
          // The high end: the rest of the stage's band plus the non-KV margin the pool's low end
          // leaves for.
          const int64_t non_kv_margin =
              st.available_kv_cache_bytes - st.available_kv_cache_low_bytes;
          cell.bytes_per_gpu =
              std::max(cell.bytes_per_gpu,
                       st.high_bytes - st.kv_cache_bytes + non_kv_margin + st.workload_kv_bytes);
        }
        cell.fits = fit.fits;
        cells.push_back(cell);
        continue;
      } else if (request.engine == Engine::kLlamaCpp) {
        // n slots of `context` each: -np n and -c n x context, as the launch line would pin.
        req.context_tokens = context;
        req.concurrency = n;
        ASSIGN_OR_RETURN(MemoryEstimate e, Estimate(spec, req));
        cell.bytes_per_gpu = e.max_high_bytes;
        cell.fits = e.fits;
        cells.push_back(cell);
        continue;
      } else if (request.engine == Engine::kHfTransformers) {
        req.hf.batch = n;
        req.hf.prompt_tokens = context;
        ASSIGN_OR_RETURN(MemoryEstimate e, Estimate(spec, req));
        cell.bytes_per_gpu = e.max_high_bytes;
      } else {
        req.training.batch = n;
        req.training.seq_tokens = context;
        ASSIGN_OR_RETURN(MemoryEstimate e, Estimate(spec, req));
        cell.bytes_per_gpu = e.max_high_bytes;
      }
      cell.fits = cell.bytes_per_gpu <= request.gpu_memory_bytes;
      cells.push_back(cell);
    }
  }
  return cells;
}

absl::StatusOr<double> MinGpuMemoryUtilization(const ModelSpec& spec,
                                               const EstimateRequest& request,
                                               int64_t context_tokens, int64_t concurrency) {
  if (request.engine != Engine::kVllm) {
    return absl::InvalidArgumentError("gpu_memory_utilization is a vllm setting");
  }
  EstimateRequest req = request;
  req.context_tokens = context_tokens;
  req.concurrency = concurrency;
  ASSIGN_OR_RETURN(VllmFit fit, FitVllm(spec, req));
  if (!fit.fits) return absl::FailedPreconditionError(fit.reason);
  return fit.gpu_memory_utilization;
}

}  // namespace fleetplan::estimator
