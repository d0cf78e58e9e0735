#ifndef FLEETPLAN_SERVER_SYSTEM_SERVICE_H_
#define FLEETPLAN_SERVER_SYSTEM_SERVICE_H_

// fleetplan.v1.SystemService: facts about the server itself (version, schema, fleet generation).
// A reader call like any other (a token when tokens are configured). Thread-safe.

#include "fleetplan/v1/system.grpc.pb.h"
#include "server/handler.h"

namespace fleetplan::server {

class SystemServiceImpl final : public fleetplan::v1::SystemService::CallbackService {
 public:
  explicit SystemServiceImpl(ServiceDeps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* context,
                                          const fleetplan::v1::GetServerInfoRequest* request,
                                          fleetplan::v1::ServerInfo* response) override;

 private:
  ServiceDeps deps_;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_SYSTEM_SERVICE_H_
