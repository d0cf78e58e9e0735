#ifndef FLEETPLAN_PLANNER_COMMON_LIMITS_H_
#define FLEETPLAN_PLANNER_COMMON_LIMITS_H_

// Limits on what a request or a stored record may hold: one table, used by the estimator's and the
// planner's validation, the store's and the server's. Each is far beyond any real fleet or model,
// and small enough that every byte product derived from them stays inside int64 (or is checked).

#include <cstdint>

#include "planner/common/units.h"

namespace fleetplan::limits {

// Workloads.
inline constexpr int64_t kMaxSequences = int64_t{1} << 20;       // concurrency, batch
inline constexpr int64_t kMaxContextTokens = int64_t{1} << 26;   // tokens per sequence
inline constexpr int64_t kMaxParallel = 4096;                    // tp, pp, ep, dp of one estimate
inline constexpr int64_t kMaxGpuMemoryBytes = int64_t{1} << 50;  // 1 PiB per GPU

// Planning.
inline constexpr int64_t kMaxReplicasPerDeployment = 10000;
inline constexpr int64_t kMaxReplicasPerRequest = 10000;  // summed over a request's deployments
inline constexpr int64_t kMaxDeploymentsPerRequest = 1000;
inline constexpr int64_t kMaxPlannedTp = 64;  // max_tp, max_pp of a deployment
inline constexpr int64_t kMaxPlannedPp = 64;

// Inventory and catalog.
inline constexpr int64_t kMaxGpusPerNode = 1024;
// Nodes in one ImportNodes batch (one transaction; the CLI splits bigger files).
inline constexpr int64_t kMaxNodesPerImport = 20000;
inline constexpr int64_t kMaxNameLength = 253;  // a DNS subdomain, like Kubernetes names
// A Kubernetes node with GPU and Node Feature Discovery carries about a hundred labels.
inline constexpr int64_t kMaxLabelsPerNode = 256;
inline constexpr int64_t kMaxLabelKeyLength = 253;
inline constexpr int64_t kMaxLabelValueLength = 1024;
inline constexpr int64_t kMaxConfigBytes = 16 * kMiB;  // a config.json or a deployment spec
inline constexpr double kMaxCostPerHour = 1e6;         // dollars per GPU hour
inline constexpr double kMaxTflops = 1e7;

// Listing.
inline constexpr int64_t kMaxPageSize = 1000;
inline constexpr int64_t kDefaultPageSize = 100;

}  // namespace fleetplan::limits

#endif  // FLEETPLAN_PLANNER_COMMON_LIMITS_H_
