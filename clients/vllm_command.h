#ifndef FLEETPLAN_CLIENTS_VLLM_COMMAND_H_
#define FLEETPLAN_CLIENTS_VLLM_COMMAND_H_

// Reads a `vllm serve MODEL_DIR [flags]` command line (what users actually run) into the flags of
// `fleetplan estimate`. Flags that change memory are translated (--tensor-parallel-size=2 becomes
// --tp=2); vLLM flags known not to change GPU memory are listed as ignored; anything else is listed
// as unknown (a typo, or an option fleetplan does not model yet), for a warning or, with --strict,
// a refusal. Pure; never throws.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fleetplan::cli {

struct VllmCommandLine {
  std::string model_dir;
  std::vector<std::string> flags;  // for FlagSet::Parse, e.g. "--tp=2"
  std::vector<std::string> ignored;
  std::vector<std::string> unknown;
};

// INVALID_ARGUMENT when there is no model or a value flag has no value.
absl::StatusOr<VllmCommandLine> ParseVllmCommandLine(const std::string& command);

}  // namespace fleetplan::cli

#endif  // FLEETPLAN_CLIENTS_VLLM_COMMAND_H_
