#ifndef FLEETPLAN_CLIENTS_CLI_H_
#define FLEETPLAN_CLIENTS_CLI_H_

// The `fleetplan` command-line tool: subcommand dispatch and the shared plumbing every subcommand
// uses (--output table|json, --server and TLS flags, exit codes).
//
// Exit codes: 0 ok, 1 operational error (server unreachable, RPC failed, file unreadable),
// 2 usage error (unknown subcommand or flag, bad flag value).

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clients/flag_set.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace fleetplan::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

enum class OutputFormat { kTable, kJson };

// What a subcommand gets: its parsed flags, positional arguments and the streams to write to.
struct Invocation {
  const FlagSet& flags;
  const std::vector<std::string>& positional;
  OutputFormat output;
  std::ostream& out;
  std::ostream& err;
};

struct Command {
  std::string name;
  std::string summary;
  // Adds the subcommand's flags (and sets its usage line) to a fresh FlagSet.
  std::function<FlagSet()> make_flags;
  std::function<int(const Invocation&)> run;
};

// Runs `fleetplan args...` (args excludes the program name). Never throws, never exits.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

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
std::vector<Command> ServerCommands();
std::vector<Command> PlanCommands();

}  // namespace fleetplan::cli

#endif  // FLEETPLAN_CLIENTS_CLI_H_
