#ifndef FLEETPLAN_CLIENTS_DEPLOYMENTS_FILE_H_
#define FLEETPLAN_CLIENTS_DEPLOYMENTS_FILE_H_

// Reads the files the CLI takes: deployments for `fleetplan plan --deployment=FILE` (a list of
// DeploymentSpec objects or {"deployments": [...]}) and inventories for `fleetplan nodes import`
// (a list of Node objects or {"nodes": [...]}, what `nodes list --output=json` and `nodes export`
// print), in the .proto field names, as JSON or as YAML of the same shape (yaml-cpp). YAML is
// turned into JSON and read by protobuf's JSON mapping, so both accept the same fields and refuse
// unknown ones by name. Never throws.

#include <string>

#include "absl/status/statusor.h"
#include "fleetplan/v1/inventory.pb.h"
#include "fleetplan/v1/planner.pb.h"
#include "google/protobuf/message.h"

namespace fleetplan::cli {

// `source` names the file in errors. YAML when the text does not start with '{' or '['.
absl::StatusOr<v1::PlanPlacementRequest> ParseDeployments(const std::string& text,
                                                          const std::string& source);

absl::StatusOr<v1::ListNodesResponse> ParseNodes(const std::string& text,
                                                 const std::string& source);

// The shared reader: JSON or YAML into `out`; a top-level list is read as {list_key: [...]}.
absl::Status ParseJsonOrYaml(const std::string& text, const std::string& source,
                             const std::string& list_key, google::protobuf::Message* out);

// INVALID_ARGUMENT when [ and { (outside strings) nest deeper than the readers allow (32), so no
// recursive parser runs out of stack on a hostile file.
absl::Status CheckJsonNesting(const std::string& text, const std::string& source);

// YAML text -> JSON text (mappings, sequences, scalars; scalars that read as numbers or booleans
// become them). INVALID_ARGUMENT with the YAML error's line and column.
absl::StatusOr<std::string> YamlToJson(const std::string& text, const std::string& source);

}  // namespace fleetplan::cli

#endif  // FLEETPLAN_CLIENTS_DEPLOYMENTS_FILE_H_
