#include "server/estimator_service.h"

#include "absl/strings/str_cat.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/gpu_catalog.h"
#include "planner/estimator/inverse.h"
#include "server/convert.h"

namespace fleetplan::server {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

absl::StatusOr<EstimatorServiceImpl::Resolved> EstimatorServiceImpl::Resolve(const v1::EstimateRequest& req) {
  std::string config;
  std::string quantization = req.quantization();
  switch (req.model_case()) {
    case v1::EstimateRequest::kModelName: {
      ASSIGN_OR_RETURN(placement::ModelRecord m, deps_.store->GetModel(req.model_name()));
      config = m.config_json;
      if (quantization.empty()) quantization = m.quantization;
      break;
    }
    case v1::EstimateRequest::kConfigJson:
      config = req.config_json();
      break;
    default:
      return absl::InvalidArgumentError("model: give model_name (catalog) or config_json (inline)");
  }
  absl::StatusOr<estimator::ModelSpec> spec =
      estimator::ParseModelConfig(config, {.quantization = quantization});
  if (!spec.ok()) return absl::InvalidArgumentError(absl::StrCat("config_json: ", spec.status().message()));
  ASSIGN_OR_RETURN(estimator::EstimateRequest request, FromProto(req));
  switch (req.gpu_case()) {
    case v1::EstimateRequest::kGpuType: {
      absl::StatusOr<placement::GpuType> registered = deps_.store->GetGpuType(req.gpu_type());
      if (registered.ok()) {
        request.gpu_memory_bytes = registered->memory_bytes;
      } else {
        absl::StatusOr<estimator::GpuInfo> builtin = estimator::FindGpu(req.gpu_type());
        if (!builtin.ok()) {
          return absl::NotFoundError(absl::StrCat("gpu_type \"", req.gpu_type(),
                                                  "\" is neither registered nor in the built-in table"));
        }
        request.gpu_memory_bytes = builtin->memory_bytes;
      }
      break;
    }
    case v1::EstimateRequest::kGpuMemoryBytes:
      request.gpu_memory_bytes = req.gpu_memory_bytes();
      break;
    default:
      return absl::InvalidArgumentError("gpu: give gpu_type or gpu_memory_bytes");
  }
  return Resolved{std::move(*spec), request};
}

ServerUnaryReactor* EstimatorServiceImpl::Estimate(CallbackServerContext* c, const v1::EstimateRequest* req,
                                                   v1::EstimateResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Resolved r, Resolve(*req));
    ASSIGN_OR_RETURN(estimator::MemoryEstimate e, estimator::Estimate(r.spec, r.request));
    ToProto(e, r.spec.num_params(), resp);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* EstimatorServiceImpl::Budget(CallbackServerContext* c, const v1::BudgetRequest* req,
                                                 v1::BudgetResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Resolved r, Resolve(req->base()));
    ASSIGN_OR_RETURN(auto cells, estimator::Budget(r.spec, r.request,
                                                   {req->context_tokens().begin(), req->context_tokens().end()},
                                                   {req->concurrencies().begin(), req->concurrencies().end()}));
    for (const auto& cell : cells) ToProto(cell, resp->add_cells());
    return absl::OkStatus();
  });
}

ServerUnaryReactor* EstimatorServiceImpl::MaxConcurrency(CallbackServerContext* c,
                                                         const v1::MaxConcurrencyRequest* req,
                                                         v1::MaxConcurrencyResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Resolved r, Resolve(req->base()));
    ASSIGN_OR_RETURN(int64_t n, estimator::MaxConcurrency(r.spec, r.request, req->context_tokens()));
    resp->set_max_concurrency(n);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* EstimatorServiceImpl::MaxContext(CallbackServerContext* c, const v1::MaxContextRequest* req,
                                                     v1::MaxContextResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Resolved r, Resolve(req->base()));
    ASSIGN_OR_RETURN(int64_t n, estimator::MaxContext(r.spec, r.request, req->concurrency()));
    resp->set_max_context_tokens(n);
    return absl::OkStatus();
  });
}

}  // namespace fleetplan::server
