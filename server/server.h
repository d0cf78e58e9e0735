#ifndef FLEETPLAN_SERVER_SERVER_H_
#define FLEETPLAN_SERVER_SERVER_H_

// FleetplanServer: fleetpland's process-level object. Owns the store, the metrics exporter, the
// gRPC services and the grpc::Server. Start() returns a server that is already listening and
// reports SERVING on grpc.health.v1 (the store is open before the health status flips).
// Shutdown() flips health to NOT_SERVING, then drains in-flight RPCs up to a deadline.
//
// Thread safety: Shutdown() may be called from any thread, once or more; Wait() from one thread.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "server/admission.h"
#include "server/http_gateway.h"
#include "server/metrics.h"
#include "server/periodic.h"
#include "server/server_options.h"
#include "storage/live_fleet.h"
#include "storage/sql_store.h"

namespace fleetplan::server {

class SystemServiceImpl;
class InventoryServiceImpl;
class CatalogServiceImpl;
class EstimatorServiceImpl;
class EstimateCache;
class HeadroomServiceImpl;
class PlannerServiceImpl;
class FailureWatch;
class DcgmObserver;
class ObservedUsageHolder;
class Authorizer;
class RequestCache;

class FleetplanServer {
 public:
  static absl::StatusOr<std::unique_ptr<FleetplanServer>> Start(const ServerOptions& options);
  ~FleetplanServer();

  storage::SqlStore& store() { return *store_; }
  storage::LiveFleet& fleet() { return *fleet_; }
  // The gRPC port actually bound (useful with port 0).
  int port() const { return port_; }
  // The metrics port actually bound, or 0 when the exporter is off.
  int metrics_port() const { return metrics_ ? metrics_->port() : 0; }
  Metrics& metrics() { return *metrics_; }
  // The HTTP API's port, or 0 when it is off.
  int http_port() const { return http_ ? http_->port() : 0; }

  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));
  void Wait();

 private:
  FleetplanServer() = default;

  std::unique_ptr<storage::SqlStore> store_;
  std::unique_ptr<storage::LiveFleet> fleet_;  // over store_
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Authorizer> auth_;
  std::unique_ptr<RequestCache> requests_;
  std::unique_ptr<EstimateCache> estimates_;
  std::unique_ptr<Admission> heavy_;
  std::unique_ptr<ObservedUsageHolder> observed_;
  std::unique_ptr<SystemServiceImpl> system_service_;
  std::unique_ptr<InventoryServiceImpl> inventory_service_;
  std::unique_ptr<CatalogServiceImpl> catalog_service_;
  std::unique_ptr<EstimatorServiceImpl> estimator_service_;
  std::unique_ptr<HeadroomServiceImpl> headroom_service_;
  std::unique_ptr<PlannerServiceImpl> planner_service_;
  std::unique_ptr<FailureWatch> failure_watch_;
  std::unique_ptr<DcgmObserver> dcgm_;
  // Health follows the database (ServerOptions::store_probe_interval).
  std::unique_ptr<Periodic> store_probe_;
  std::atomic<bool> store_answers_{true};
  // Destroyed before the services it calls (only http_ goes earlier).
  std::unique_ptr<grpc::Server> server_;
  // Calls server_ in process: destroyed before it.
  std::unique_ptr<HttpGateway> http_;
  int port_ = 0;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_SERVER_H_
