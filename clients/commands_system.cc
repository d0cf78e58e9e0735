// `fleetplan version` and `fleetplan health`: the client's version, the server's version, schema
// and fleet generation, and the grpc.health.v1 status.

#include <chrono>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "clients/cli.h"
#include "clients/rpc_util.h"
#include "fleetplan/v1/system.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "nlohmann/json.hpp"
#include "planner/common/version.h"

namespace fleetplan::cli {
namespace {

int RunVersion(const Invocation& inv) {
  nlohmann::json result = {{"client_version", kVersion}};
  if (inv.flags.IsSet("server")) {
    grpc::ClientContext context;
    if (auto s = PrepareContext(inv.flags, context); !s.ok()) {
      inv.err << "fleetplan version: " << s.message() << "\n";
      return kExitUsage;
    }
    auto channel = MakeChannel(inv.flags);
    if (!channel.ok()) return ReportError(inv.err, "version", channel.status());
    auto stub = fleetplan::v1::SystemService::NewStub(*channel);
    fleetplan::v1::ServerInfo info;
    grpc::Status status = stub->GetServerInfo(&context, {}, &info);
    if (!status.ok()) {
      return ReportError(inv.err, "version", StatusFromGrpc(status));
    }
    result["server_version"] = info.version();
    result["schema_version"] = info.schema_version();
    result["fleet_generation"] = info.fleet_generation();
  }
  if (inv.output == OutputFormat::kJson) {
    inv.out << result.dump(2) << "\n";
    return kExitOk;
  }
  inv.out << "fleetplan " << kVersion << "\n";
  if (result.contains("server_version")) {
    inv.out << "server " << inv.flags.GetString("server") << ": fleetpland "
            << result["server_version"].get<std::string>() << ", schema version "
            << result["schema_version"].get<int64_t>() << ", fleet generation "
            << result["fleet_generation"].get<int64_t>() << "\n";
  }
  return kExitOk;
}

int RunHealth(const Invocation& inv) {
  grpc::ClientContext context;
  if (auto s = PrepareContext(inv.flags, context); !s.ok()) {
    inv.err << "fleetplan health: " << s.message() << "\n";
    return kExitUsage;
  }
  auto channel = MakeChannel(inv.flags);
  if (!channel.ok()) return ReportError(inv.err, "health", channel.status());
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  if (inv.flags.GetBool("wait")) context.set_wait_for_ready(true);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(inv.flags.GetString("service"));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return ReportError(inv.err, "health", StatusFromGrpc(status));
  }
  const std::string name =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
  if (inv.output == OutputFormat::kJson) {
    inv.out << nlohmann::json{{"server", inv.flags.GetString("server")}, {"status", name}}.dump(2)
            << "\n";
  } else {
    inv.out << inv.flags.GetString("server") << ": " << name << "\n";
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk : kExitError;
}

}  // namespace

std::vector<Command> SystemCommands() {
  return {
      Command{
          .name = "version",
          .summary = "print the client's version, and the server's with --server",
          .make_flags =
              [] {
                FlagSet f("version", "[--server=HOST:PORT] [--output=table|json]");
                AddOutputFlag(f);
                AddServerFlags(f);
                return f;
              },
          .run = RunVersion,
      },
      Command{
          .name = "health",
          .summary = "check a fleetpland's grpc.health.v1 status (exit 0 when SERVING)",
          .make_flags =
              [] {
                FlagSet f("health", "[--server=HOST:PORT] [--service=NAME] [--wait]");
                AddOutputFlag(f);
                AddServerFlags(f);
                f.String("service", "", "service name to check; empty checks the whole server");
                f.Bool("wait", false, "wait for the server to come up until --timeout");
                return f;
              },
          .run = RunHealth,
      },
  };
}

}  // namespace fleetplan::cli
