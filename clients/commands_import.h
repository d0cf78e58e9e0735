#ifndef FLEETPLAN_CLIENTS_COMMANDS_IMPORT_H_
#define FLEETPLAN_CLIENTS_COMMANDS_IMPORT_H_

// `fleetplan nodes import` (a fleetplan inventory file, `kubectl get nodes -o json`, or nvidia-smi
// output, all through ImportNodes) and `fleetplan nodes export`.

#include <string>

#include "clients/cli.h"
#include "fleetplan/v1/inventory.pb.h"

namespace fleetplan::cli {

// The flags import adds to the `nodes` command (besides --name/--pool/--zone/--rack/--label).
void AddImportFlags(FlagSet& flags);

int NodesImport(const Invocation& inv);
int NodesExport(const Invocation& inv);

// Every page of ListNodes for `filter` (its page fields are set here) into `all`; an exit code.
int ListAllNodes(const Invocation& inv, const std::string& command, v1::ListNodesRequest filter,
                 v1::ListNodesResponse& all);

}  // namespace fleetplan::cli

#endif  // FLEETPLAN_CLIENTS_COMMANDS_IMPORT_H_
