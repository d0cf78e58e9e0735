#ifndef FLEETPLAN_PLANNER_COMMON_RISK_H_
#define FLEETPLAN_PLANNER_COMMON_RISK_H_

// Memory risk of a GPU: one type and one threshold table for every view — an estimate's verdict,
// fleet headroom, the planner's replicas, the Prometheus gauges and the CLI — so a GPU exactly 90 %
// full is "medium" everywhere.
//
//   used share of the GPU   risk
//   < 90 %                  low
//   [90 %, 97 %)            medium   (allocator growth or a longer prompt can OOM)
//   >= 97 %, or over        high     (one allocator hiccup away from OOM)
//
// The comparison is exact integer arithmetic on bytes (no floating-point boundary noise).

#include <cstdint>

#include "absl/numeric/int128.h"
#include "planner/common/names.h"

namespace fleetplan {

enum class Risk : uint8_t { kLow, kMedium, kHigh };

inline constexpr int64_t kMediumRiskUsedPercent = 90;
inline constexpr int64_t kHighRiskUsedPercent = 97;

// Risk of `used_bytes` promised on a GPU of `total_bytes`. A non-positive total is high.
inline Risk RiskOfUse(int64_t used_bytes, int64_t total_bytes) {
  if (total_bytes <= 0 || used_bytes >= total_bytes) return Risk::kHigh;
  const absl::int128 used = absl::int128(used_bytes) * 100;
  const absl::int128 total = absl::int128(total_bytes);
  if (used >= total * kHighRiskUsedPercent) return Risk::kHigh;
  if (used >= total * kMediumRiskUsedPercent) return Risk::kMedium;
  return Risk::kLow;
}

inline const Vocabulary<Risk>& RiskNames() {
  static const auto* const kNames = new Vocabulary<Risk>(
      "risk level", {{Risk::kLow, "low"}, {Risk::kMedium, "medium"}, {Risk::kHigh, "high"}});
  return *kNames;
}

inline const char* RiskName(Risk r) { return RiskNames().Name(r); }

}  // namespace fleetplan

#endif  // FLEETPLAN_PLANNER_COMMON_RISK_H_
