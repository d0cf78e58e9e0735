#ifndef FLEETPLAN_CLIENTS_DEPLOYMENTS_FILE_H_
#define FLEETPLAN_CLIENTS_DEPLOYMENTS_FILE_H_

// Reads a deployments file for `fleetplan plan --deployment=FILE`: a list of DeploymentSpec objects
// or {"deployments": [...]} in the .proto field names, as JSON or as YAML of the same shape
// (yaml-cpp). YAML is turned into JSON and read by protobuf's JSON mapping, so both accept the
// same fields and refuse unknown ones by name. Never throws.

#include <string>

#include "absl/status/statusor.h"
#include "fleetplan/v1/planner.pb.h"

namespace fleetplan::cli {

// `source` names the file in errors. YAML when the text does not start with '{' or '['.
absl::StatusOr<v1::PlanPlacementRequest> ParseDeployments(const std::string& text,
                                                         const std::string& source);

// YAML text -> JSON text (mappings, sequences, scalars; scalars that read as numbers or booleans
// become them). INVALID_ARGUMENT with the YAML error's line and column.
absl::StatusOr<std::string> YamlToJson(const std::string& text, const std::string& source);

}  // namespace fleetplan::cli

#endif  // FLEETPLAN_CLIENTS_DEPLOYMENTS_FILE_H_
