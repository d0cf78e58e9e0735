#ifndef FLEETPLAN_SERVER_SYSTEM_SERVICE_H_
#define FLEETPLAN_SERVER_SYSTEM_SERVICE_H_

// fleetplan.v1.SystemService: facts about the server itself (version, schema, fleet generation).
// Thread-safe: holds only a pointer to the store, which is thread-safe.

#include "fleetplan/v1/system.grpc.pb.h"
#include "storage/placement_store.h"

namespace fleetplan::server {

class SystemServiceImpl final : public fleetplan::v1::SystemService::CallbackService {
 public:
  explicit SystemServiceImpl(storage::PlacementStore* store) : store_(store) {}

  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* context,
                                          const fleetplan::v1::GetServerInfoRequest* request,
                                          fleetplan::v1::ServerInfo* response) override;

 private:
  storage::PlacementStore* store_;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_SYSTEM_SERVICE_H_
