#include "server/system_service.h"

#include "planner/common/version.h"
#include "server/grpc_status.h"

namespace fleetplan::server {

grpc::ServerUnaryReactor* SystemServiceImpl::GetServerInfo(
    grpc::CallbackServerContext* context, const fleetplan::v1::GetServerInfoRequest* /*request*/,
    fleetplan::v1::ServerInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<int64_t> generation = store_->FleetGeneration();
  if (!generation.ok()) {
    reactor->Finish(ToGrpcStatus(generation.status()));
    return reactor;
  }
  response->set_version(kVersion);
  response->set_schema_version(store_->SchemaVersion());
  response->set_fleet_generation(*generation);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace fleetplan::server
