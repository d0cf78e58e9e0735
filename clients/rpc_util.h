#ifndef FLEETPLAN_CLIENTS_RPC_UTIL_H_
#define FLEETPLAN_CLIENTS_RPC_UTIL_H_

// Helpers every server-talking subcommand shares: one RPC with the --server/TLS/--token-file/
// --timeout plumbing and error reporting, gRPC -> absl status, and proto JSON output.

#include <ostream>
#include <string>

#include "clients/cli.h"
#include "fleetplan/v1/planner.pb.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"
#include "nlohmann/json.hpp"

namespace fleetplan::cli {

absl::Status StatusFromGrpc(const grpc::Status& status);

// Proto JSON with the .proto field names; counts (tp, replicas, gpu_index ...) as JSON numbers,
// byte counts as proto3's exact int64 strings.
nlohmann::json ProtoToJson(const google::protobuf::Message& message);
std::string ProtoJson(const google::protobuf::Message& message);

// Prints "fleetplan <command>: <what> (see --help)" and returns kExitUsage.
inline int Usage(const Invocation& inv, const std::string& command, const std::string& what) {
  inv.err << "fleetplan " << command << ": " << what << " (see --help)\n";
  return kExitUsage;
}

// Prints `message` as JSON (one document), or `table(message)` for people.
template <typename Message, typename Table>
int Print(const Invocation& inv, const Message& message, Table&& table) {
  if (inv.output == OutputFormat::kJson) {
    inv.out << ProtoJson(message) << "\n";
  } else {
    table(message);
  }
  return kExitOk;
}

// SimulateFailure and its report (plan --simulate-failure, nodes drain --plan); `what` heads it
// ("failure of zone z1"). kExitError when some displaced replica cannot be re-placed.
int SimulateAndPrint(const Invocation& inv, const std::string& command,
                     const v1::SimulateFailureRequest& req, const std::string& what);

// Opens a channel, prepares a context and runs `call(stub, context)`, reporting failures as
// "fleetplan <command>: CODE: message". Returns an exit code.
template <typename Service, typename Call>
int CallRpc(const Invocation& inv, const std::string& command, Call&& call) {
  auto channel = MakeChannel(inv.flags);
  if (!channel.ok()) return ReportError(inv.err, command, channel.status());
  auto stub = Service::NewStub(*channel);
  grpc::ClientContext context;
  if (absl::Status s = PrepareContext(inv.flags, context); !s.ok()) {
    inv.err << "fleetplan " << command << ": " << s.message() << "\n";
    return s.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitError;
  }
  grpc::Status status = call(*stub, context);
  if (!status.ok()) return ReportError(inv.err, command, StatusFromGrpc(status));
  return kExitOk;
}

}  // namespace fleetplan::cli

#endif  // FLEETPLAN_CLIENTS_RPC_UTIL_H_
