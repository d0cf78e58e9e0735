#ifndef FLEETPLAN_SERVER_METRICS_DETAIL_H_
#define FLEETPLAN_SERVER_METRICS_DETAIL_H_

#include <cstdint>

#include "planner/common/names.h"

namespace fleetplan::server {

// How finely the fleet families are exported. Series per scrape, for G GPUs, N nodes, P pools and
// T GPU types (9 families per aggregate, 7 per GPU, plus the generation):
//   kGpu   7 G + 9 (P + T) + 1   per GPU, per pool, per GPU type (80k GPUs: 560,091 series)
//   kNode  9 N + 9 (P + T) + 1   per node instead of per GPU        (10k nodes: 90,091)
//   kPool  9 (P + T) + 1         pools and GPU types only           (8 pools, 2 types: 91)
enum class MetricsDetail : uint8_t { kGpu, kNode, kPool };
// gpu | node | pool.
inline const Vocabulary<MetricsDetail>& MetricsDetailNames() {
  static const auto* const kNames =
      new Vocabulary<MetricsDetail>("metrics detail", {{MetricsDetail::kGpu, "gpu"},
                                                       {MetricsDetail::kNode, "node"},
                                                       {MetricsDetail::kPool, "pool"}});
  return *kNames;
}

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_METRICS_DETAIL_H_
