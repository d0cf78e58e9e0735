#ifndef FLEETPLAN_SERVER_PLANNER_SERVICE_H_
#define FLEETPLAN_SERVER_PLANNER_SERVICE_H_

// fleetplan.v1.PlannerService. PlanPlacement loads a snapshot, resolves the deployments' catalog
// models, runs the planner (pure, nothing written) and keeps the plan for CommitPlan
// (PlanRegistry); with reserve_ttl_ms it also reserves the GPUs. CommitPlan commits placements and
// deployment records in one store transaction that checks nothing the plan touches changed since
// its snapshot (ABORTED otherwise: re-plan). Thread-safe.

#include "fleetplan/v1/planner.grpc.pb.h"
#include "server/estimator_service.h"
#include "server/handler.h"
#include "server/plan_registry.h"

namespace fleetplan::server {

class PlannerServiceImpl final : public v1::PlannerService::CallbackService {
 public:
  PlannerServiceImpl(ServiceDeps deps, EstimateCache* cache) : deps_(deps), cache_(cache) {}

  grpc::ServerUnaryReactor* PlanPlacement(grpc::CallbackServerContext* c,
                                          const v1::PlanPlacementRequest* req,
                                          v1::Plan* resp) override;
  grpc::ServerUnaryReactor* CommitPlan(grpc::CallbackServerContext* c,
                                       const v1::CommitPlanRequest* req,
                                       v1::CommitPlanResponse* resp) override;
  grpc::ServerUnaryReactor* ReleasePlacement(grpc::CallbackServerContext* c,
                                             const v1::ReleasePlacementRequest* req,
                                             v1::PlacementRecord* resp) override;
  grpc::ServerUnaryReactor* ListPlacements(grpc::CallbackServerContext* c,
                                           const v1::ListPlacementsRequest* req,
                                           v1::ListPlacementsResponse* resp) override;
  grpc::ServerUnaryReactor* ExplainPlacement(grpc::CallbackServerContext* c,
                                             const v1::ExplainPlacementRequest* req,
                                             v1::ExplainPlacementResponse* resp) override;
  grpc::ServerUnaryReactor* ListDeployments(grpc::CallbackServerContext* c,
                                            const v1::ListDeploymentsRequest* req,
                                            v1::ListDeploymentsResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteDeployment(grpc::CallbackServerContext* c,
                                             const v1::DeleteDeploymentRequest* req,
                                             google::protobuf::Empty* resp) override;
  grpc::ServerUnaryReactor* SimulateFailure(grpc::CallbackServerContext* c,
                                            const v1::SimulateFailureRequest* req,
                                            v1::SimulateFailureResponse* resp) override;
  grpc::ServerUnaryReactor* Recommend(grpc::CallbackServerContext* c,
                                      const v1::RecommendRequest* req,
                                      v1::RecommendResponse* resp) override;

 private:
  // Plans `req` and fills `resp`; `keep` stores the plan for CommitPlan. `context` is polled for
  // cancellation while planning.
  absl::Status Plan(const v1::PlanPlacementRequest& req, v1::Plan* resp, bool keep,
                    grpc::CallbackServerContext* context);

  ServiceDeps deps_;
  EstimateCache* cache_;
  PlanRegistry plans_;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_PLANNER_SERVICE_H_
