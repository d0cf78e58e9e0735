#ifndef FLEETPLAN_STORAGE_VALIDATION_H_
#define FLEETPLAN_STORAGE_VALIDATION_H_

// What the store accepts, checked before anything is written (and, because validate_only calls run
// the same store transaction and roll it back, exactly what a validate-only request checks). Each
// error is INVALID_ARGUMENT naming the field and the value, bounded in length.
//
// Names (nodes, pools, zones, racks, GPU types, models, deployments, request ids) are like
// Kubernetes names: at most 253 characters of letters, digits, '.', '_' and '-', starting with a
// letter or digit — so they are safe in shell lines, CUDA_VISIBLE_DEVICES ("node:0,1") and file
// names. Model names may also hold '/' (Hugging Face ids such as meta-llama/Llama-3.1-8B).

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "planner/placement/fleet.h"
#include "storage/placement_store.h"

namespace fleetplan::storage {

enum class NameKind { kPlain, kModel };

absl::Status ValidateName(absl::string_view field, absl::string_view value,
                          NameKind kind = NameKind::kPlain);
absl::Status ValidateGpuType(const GpuType& t);
absl::Status ValidateNode(const Node& n);
absl::Status ValidateModel(const ModelRecord& m);
absl::Status ValidateDeployment(const DeploymentRecord& d);
absl::Status ValidateCommit(const CommitRequest& r);

// `value` for an error message: C-escaped and cut to a readable length.
std::string Shown(absl::string_view value);

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_VALIDATION_H_
