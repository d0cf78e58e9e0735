#ifndef FLEETPLAN_SERVER_ESTIMATOR_SERVICE_H_
#define FLEETPLAN_SERVER_ESTIMATOR_SERVICE_H_

// fleetplan.v1.EstimatorService: the offline estimator behind RPCs. A model comes from the catalog
// or inline; a GPU from the registered types, the built-in table, or explicit bytes.

#include "fleetplan/v1/estimator.grpc.pb.h"
#include "planner/estimator/estimator.h"
#include "server/handler.h"

namespace fleetplan::server {

class EstimatorServiceImpl final : public v1::EstimatorService::CallbackService {
 public:
  explicit EstimatorServiceImpl(ServiceDeps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* Estimate(grpc::CallbackServerContext* c, const v1::EstimateRequest* req,
                                     v1::EstimateResponse* resp) override;
  grpc::ServerUnaryReactor* Budget(grpc::CallbackServerContext* c, const v1::BudgetRequest* req,
                                   v1::BudgetResponse* resp) override;
  grpc::ServerUnaryReactor* MaxConcurrency(grpc::CallbackServerContext* c,
                                           const v1::MaxConcurrencyRequest* req,
                                           v1::MaxConcurrencyResponse* resp) override;
  grpc::ServerUnaryReactor* MaxContext(grpc::CallbackServerContext* c, const v1::MaxContextRequest* req,
                                       v1::MaxContextResponse* resp) override;

 private:
  struct Resolved {
    estimator::ModelSpec spec;
    estimator::EstimateRequest request;
  };
  absl::StatusOr<Resolved> Resolve(const v1::EstimateRequest& req);

  ServiceDeps deps_;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_ESTIMATOR_SERVICE_H_
