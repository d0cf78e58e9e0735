#ifndef FLEETPLAN_CLIENTS_CLI_H_
#define FLEETPLAN_CLIENTS_CLI_H_

// The `fleetplan` command-line tool: subcommand dispatch and the shared plumbing every subcommand
// uses (--output table|json, --server and TLS flags, exit codes).
//
//   fleetplan [GLOBAL FLAGS] COMMAND [VERB] [ARGS] [FLAGS]
//
// Global flags (--server, --token-file, --timeout, --tls-*, --output) may stand before the command
// and apply to it; FLEETPLAN_SERVER, FLEETPLAN_TOKEN_FILE, FLEETPLAN_TLS_CA, FLEETPLAN_TLS_CERT and
// FLEETPLAN_TLS_KEY give their defaults. Commands with verbs (nodes add|list|...) register them;
// there are no `if (verb == ...)` chains. --output=json prints exactly one JSON document.
//
// Exit codes: 0 ok, 1 operational error (server unreachable, RPC failed, file unreadable, a plan
// with unplaced replicas), 2 usage error (unknown subcommand or flag, bad flag value), 3 a plan
// committed in part (--allow-partial).

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clients/flag_set.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "planner/estimator/gguf.h"

namespace fleetplan::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitPartial = 3;

enum class OutputFormat { kTable, kJson };

// What a subcommand gets: its parsed flags, positional arguments and the streams to write to.
struct Invocation {
  const FlagSet& flags;
  const std::vector<std::string>& positional;
  OutputFormat output;
  std::ostream& out;
  std::ostream& err;
};

// A verb of a command (`nodes drain NODE`): its positional arguments follow it.
struct Verb {
  std::string name;
  std::string summary;
  std::function<int(const Invocation&)> run;  // Invocation::positional excludes the verb
  int64_t min_args = 0;                       // positional arguments it needs
  std::string args_usage;                     // e.g. "NODE"
};

struct Command {
  std::string name;
  std::string summary;
  // Adds the subcommand's flags (and sets its usage line) to a fresh FlagSet.
  std::function<FlagSet()> make_flags;
  std::function<int(const Invocation&)> run;  // commands without verbs
  std::vector<Verb> verbs;                    // commands with verbs
};

// Every registered subcommand (for dispatch, help and shell completion).
std::vector<Command> AllCommands();

// Runs `fleetplan args...` (args excludes the program name). Never throws, never exits.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The one file reader: the whole file, NOT_FOUND naming `what` and the path when unreadable,
// RESOURCE_EXHAUSTED past `max_bytes`.
absl::StatusOr<std::string> ReadFileText(const std::string& what, const std::string& path,
                                         int64_t max_bytes = int64_t{256} << 20);

// A GGUF file's header: reads the first 16 MiB and more only when the header needs it (a
// multi-GB file is never loaded). NOT_FOUND when unreadable; the parser's errors otherwise.
absl::StatusOr<estimator::GgufFile> ReadGgufHeaderFile(const std::string& path);

// Shared flag groups.
void AddOutputFlag(FlagSet& flags);
void AddServerFlags(FlagSet& flags);
// Opens a channel from --server/--tls-ca/--tls-cert/--tls-key/--tls-server-name.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const FlagSet& flags);

// A client context with the --timeout deadline and, with --token-file, the bearer token.
absl::Status PrepareContext(const FlagSet& flags, grpc::ClientContext& context);

// Prints `status` on err as "fleetplan <command>: <message>" and returns kExitError (or kExitUsage
// for INVALID_ARGUMENT raised by the client itself before any RPC).
int ReportError(std::ostream& err, const std::string& command, const absl::Status& status);

// Registered subcommands (commands_*.cc).
std::vector<Command> SystemCommands();
std::vector<Command> ValidateCommands();
std::vector<Command> EstimateCommands();
std::vector<Command> RecommendCommands();
std::vector<Command> GgufCommands();
std::vector<Command> ServerCommands();
std::vector<Command> PlanCommands();
std::vector<Command> CompletionCommands();

}  // namespace fleetplan::cli

#endif  // FLEETPLAN_CLIENTS_CLI_H_
