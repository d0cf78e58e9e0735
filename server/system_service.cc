#include "server/system_service.h"

#include "planner/common/version.h"

namespace fleetplan::server {

grpc::ServerUnaryReactor* SystemServiceImpl::GetServerInfo(
    grpc::CallbackServerContext* context, const fleetplan::v1::GetServerInfoRequest* /*request*/,
    fleetplan::v1::ServerInfo* response) {
  return RunUnary(context, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(int64_t generation, deps_.store->FleetGeneration());
    response->set_version(kVersion);
    response->set_schema_version(deps_.store->SchemaVersion());
    response->set_fleet_generation(generation);
    return absl::OkStatus();
  });
}

}  // namespace fleetplan::server
