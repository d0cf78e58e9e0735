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

// A GPU name as every tool spells it, reduced to one form: lower case, runs of spaces, '_' and
// '-' as one '-', no "nvidia-" prefix ("NVIDIA-H100-80GB-HBM3" (GPU Feature Discovery), "NVIDIA
// H100 80GB HBM3" (nvidia-smi) and "h100-80gb-hbm3" are the same).
std::string NormalizedGpuName(absl::string_view name);

// Looks a GPU up by name or alias, compared in NormalizedGpuName form ("h100", "H100-80GB-HBM3",
// "NVIDIA A100-SXM4-40GB" ...).
absl::StatusOr<GpuInfo> FindGpu(absl::string_view name);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_GPU_CATALOG_H_
