#ifndef FLEETPLAN_SERVER_SIMULATION_H_
#define FLEETPLAN_SERVER_SIMULATION_H_

// Failure simulation on the live fleet (planner/placement/failure.h does the planning): the
// SimulateFailure RPC, `fleetplan nodes drain --plan`, and FailureWatch, which keeps a per-zone
// "could the rest of the fleet absorb this zone?" gauge current for alerting (N+1 headroom).

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "fleetplan/v1/planner.pb.h"
#include "planner/common/mutex.h"
#include "planner/placement/failure.h"
#include "server/estimator_service.h"
#include "server/handler.h"
#include "server/periodic.h"

namespace fleetplan::server {

// Simulates `scenario` on the current fleet view with the store's active placements and the
// deployments' stored specs (a deployment whose spec no longer resolves, e.g. its model was
// removed, is reported in without_spec rather than failing the simulation).
absl::StatusOr<placement::FailureImpact> SimulateOnFleet(const ServiceDeps& deps,
                                                         EstimateCache& cache,
                                                         const placement::FailureScenario& scenario,
                                                         placement::Strategy strategy);

void ToProto(const placement::FailureImpact& impact, v1::SimulateFailureResponse* p);

// Every `interval`, when the fleet changed, simulates the failure of each zone and records
// fleetplan_zone_failure_displaced_replicas / _absorbable_ratio{zone} (Metrics). Stops on
// Shutdown() or destruction.
class FailureWatch {
 public:
  FailureWatch(ServiceDeps deps, EstimateCache* cache, std::chrono::milliseconds interval);
  ~FailureWatch();
  void Shutdown();
  // Runs one round now (tests).
  void RunOnce();

 private:
  ServiceDeps deps_;
  EstimateCache* cache_;
  int64_t last_generation_ = -1;        // the task's thread only
  std::unique_ptr<Periodic> periodic_;  // last: stopped before the members it uses go
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_SIMULATION_H_
