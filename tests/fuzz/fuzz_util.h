#ifndef FLEETPLAN_TESTS_FUZZ_FUZZ_UTIL_H_
#define FLEETPLAN_TESTS_FUZZ_FUZZ_UTIL_H_

// Shared by the libFuzzer targets: an invariant check that aborts (so libFuzzer records the input)
// with a message, and the non-negativity of every byte count of an estimate.

#include <cstdio>
#include <cstdlib>

#include "planner/estimator/estimator.h"

namespace fleetplan::fuzz {

inline void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

inline void CheckEstimate(const estimator::MemoryEstimate& e) {
  for (const estimator::StageMemory& s : e.stages) {
    Check(s.weights_bytes >= 0 && s.kv_cache_bytes >= 0 && s.activation_peak_bytes >= 0 &&
              s.cuda_context_bytes >= 0 && s.engine_overhead_bytes >= 0 &&
              s.cuda_graph_bytes >= 0 && s.gradient_bytes >= 0 && s.optimizer_bytes >= 0 &&
              s.fragmentation_bytes >= 0 && s.total_bytes >= 0 && s.kv_cache_tokens >= 0 &&
              s.workload_kv_bytes >= 0,
          "an estimate's byte counts are never negative");
  }
  Check(e.max_total_bytes >= 0, "max_total_bytes >= 0");
  Check(e.kv_cache_tokens >= 0 && e.max_concurrency >= 0, "capacities >= 0");
}

}  // namespace fleetplan::fuzz

#endif  // FLEETPLAN_TESTS_FUZZ_FUZZ_UTIL_H_
