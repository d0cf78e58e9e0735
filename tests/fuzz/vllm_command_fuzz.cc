// Fuzz target: a `vllm serve ...` command line -> estimate flags -> the estimate command's flag
// parser. Invariants: no crash or UB; a parsed line yields a model directory and only flags the
// estimate command declares or refuses with a Status.

#include <cstdint>
#include <string>

#include "clients/cli.h"
#include "clients/vllm_command.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  auto parsed = fleetplan::cli::ParseVllmCommandLine(line);
  if (!parsed.ok()) {
    fleetplan::fuzz::Check(parsed.status().message().size() < 4096, "error messages are bounded");
    return 0;
  }
  fleetplan::fuzz::Check(!parsed->model_dir.empty(), "a parsed line names a model");
  static const auto* const kCommands = new std::vector<fleetplan::cli::Command>(fleetplan::cli::AllCommands());
  for (const fleetplan::cli::Command& c : *kCommands) {
    if (c.name != "estimate") continue;
    fleetplan::cli::FlagSet flags = c.make_flags();
    (void)flags.Parse(parsed->flags);  // a Status either way, never a crash
  }
  return 0;
}
