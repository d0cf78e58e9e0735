#ifndef FLEETPLAN_PLANNER_COMMON_UNITS_H_
#define FLEETPLAN_PLANNER_COMMON_UNITS_H_

// Byte units. Inside fleetplan every quantity of memory is an int64_t count of bytes; GiB appear
// only at the edges (CLI tables, dashboards), and a GiB is always 2^30 bytes.

#include <cstdint>

namespace fleetplan {

inline constexpr int64_t kKiB = int64_t{1} << 10;
inline constexpr int64_t kMiB = int64_t{1} << 20;
inline constexpr int64_t kGiB = int64_t{1} << 30;
inline constexpr int64_t kTiB = int64_t{1} << 40;

// Bytes -> GiB for display only. Never feed the result back into accounting.
constexpr double BytesToGiB(int64_t bytes) {
  return static_cast<double>(bytes) / static_cast<double>(kGiB);
}

}  // namespace fleetplan

#endif  // FLEETPLAN_PLANNER_COMMON_UNITS_H_
