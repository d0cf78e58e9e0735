#ifndef FLEETPLAN_PLANNER_ESTIMATOR_GPU_CATALOG_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_GPU_CATALOG_H_

// Built-in table of common GPUs with the total memory the driver reports to CUDA
// (cudaMemGetInfo total, torch.cuda.mem_get_info()[1]), which is what engines budget against; it
// is below the marketing size (ECC, driver reserve). Each entry says where its number comes from.
// A fleet registers exact bytes per GPU type in the store; this table serves the offline CLI and
// defaults.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetplan::estimator {

struct GpuInfo {
  const char* name;      // canonical name, e.g. "H100-80GB"
  const char* aliases;   // comma-separated other spellings
  int64_t memory_bytes;  // total as the driver reports it
  const char* source;    // provenance of memory_bytes
};

const std::vector<GpuInfo>& GpuCatalog();

// Looks a GPU up by name or alias, case-insensitively ("h100", "H100-80GB-HBM3" ...).
absl::StatusOr<GpuInfo> FindGpu(absl::string_view name);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_GPU_CATALOG_H_
