#include "planner/estimator/inverse.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"

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
  if (request.engine == Engine::kVllm) {
    EstimateRequest req = request;
    req.context_tokens = context_tokens;
    req.concurrency = 0;
    ASSIGN_OR_RETURN(MemoryEstimate e, Estimate(spec, req));
    return e.max_concurrency;
  }
  if (request.engine == Engine::kHfTransformers) {
    return LargestTrue(1, 1 << 20, [&](int64_t batch) {
      return HfFits(spec, request, batch, context_tokens);
    });
  }
  return absl::InvalidArgumentError("max concurrency is a serving question: use vllm or hf-transformers");
}

absl::StatusOr<int64_t> MaxContext(const ModelSpec& spec, const EstimateRequest& request,
                                   int64_t concurrency) {
  if (concurrency < 1 || concurrency > (1 << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("concurrency=", concurrency, " must be in [1, 1048576]"));
  }
  if (request.engine == Engine::kVllm) {
    const int64_t limit = request.vllm.max_model_len > 0 ? request.vllm.max_model_len
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
  return absl::InvalidArgumentError("max context is a serving question: use vllm or hf-transformers");
}

absl::StatusOr<std::vector<BudgetCell>> Budget(const ModelSpec& spec, const EstimateRequest& request,
                                               const std::vector<int64_t>& contexts,
                                               const std::vector<int64_t>& concurrencies) {
  if (contexts.empty() || concurrencies.empty()) {
    return absl::InvalidArgumentError("budget needs at least one context and one concurrency");
  }
  if (contexts.size() * concurrencies.size() > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("budget of ", contexts.size(), " x ",
                                                   concurrencies.size(), " cells is too large (max 10000)"));
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
        // Memory needed = everything but the KV pool, plus the KV blocks of n sequences.
        req.context_tokens = context;
        req.concurrency = 0;
        req.vllm.gpu_memory_utilization = 1.0;
        ASSIGN_OR_RETURN(MemoryEstimate e, Estimate(spec, req));
        int64_t worst = 0;
        for (size_t s = 0; s < e.stages.size(); ++s) {
          const StageMemory& st = e.stages[s];
          const int64_t non_kv = st.total_bytes - st.kv_cache_bytes;
          // KV of n sequences: the stage's share per token, with whole blocks.
          const int64_t block = request.vllm.block_size;
          const int64_t tokens = (context + block - 1) / block * block;
          worst = std::max(worst, non_kv + n * tokens * st.kv_cache_bytes_per_token);
        }
        cell.bytes_per_gpu = worst;
      } else if (request.engine == Engine::kHfTransformers) {
        req.hf.batch = n;
        req.hf.prompt_tokens = context;
        ASSIGN_OR_RETURN(MemoryEstimate e, Estimate(spec, req));
        cell.bytes_per_gpu = e.max_total_bytes;
      } else {
        req.training.batch = n;
        req.training.seq_tokens = context;
        ASSIGN_OR_RETURN(MemoryEstimate e, Estimate(spec, req));
        cell.bytes_per_gpu = e.max_total_bytes;
      }
      cell.fits = cell.bytes_per_gpu <= request.gpu_memory_bytes;
      cells.push_back(cell);
    }
  }
  return cells;
}

absl::StatusOr<double> MinGpuMemoryUtilization(const ModelSpec& spec, const EstimateRequest& request,
                                               int64_t context_tokens, int64_t concurrency) {
  if (request.engine != Engine::kVllm) {
    return absl::InvalidArgumentError("gpu_memory_utilization is a vllm setting");
  }
  // Search in hundredths: 0.01 .. 0.99 (1.0 leaves nothing for CUDA graphs and the context).
  EstimateRequest req = request;
  req.context_tokens = context_tokens;
  req.concurrency = concurrency;
  for (int hundredths = 1; hundredths <= 99; ++hundredths) {
    req.vllm.gpu_memory_utilization = hundredths / 100.0;
    ASSIGN_OR_RETURN(MemoryEstimate e, Estimate(spec, req));
    if (e.fits && e.max_concurrency >= std::max<int64_t>(concurrency, 1)) return hundredths / 100.0;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "no gpu_memory_utilization up to 0.99 holds ", concurrency, " sequences of ", context_tokens,
      " tokens on a ", BytesToGiB(request.gpu_memory_bytes), " GiB GPU"));
}

}  // namespace fleetplan::estimator
