#ifndef FLEETPLAN_SERVER_HANDLER_H_
#define FLEETPLAN_SERVER_HANDLER_H_

// Shared plumbing of the unary handlers: every handler is
//   authorize -> validate and convert -> call the domain -> convert -> finish,
// with the absl::Status converted to grpc::Status exactly once, here. Deadlines already passed and
// cancelled calls finish without doing the work.

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "planner/common/status_macros.h"
#include "server/admission.h"
#include "server/auth.h"
#include "server/grpc_status.h"
#include "server/request_cache.h"
#include "storage/live_fleet.h"
#include "storage/placement_store.h"

namespace fleetplan::server {

// What every service needs; owned by FleetplanServer, outlives the services.
class Admission;
class EstimateCache;
class Metrics;
class ObservedUsageHolder;

struct ServiceDeps {
  storage::PlacementStore* store = nullptr;
  const Authorizer* auth = nullptr;
  RequestCache* requests = nullptr;
  // Dropped by catalog and GPU-type writes (may be null in tests of single services).
  EstimateCache* estimates = nullptr;
  // Planner and store counters (may be null in tests of single services).
  Metrics* metrics = nullptr;
  // Bounds the long calls (planning, budgets) in flight (may be null: unbounded).
  Admission* heavy = nullptr;
  // The live fleet state over `store` (required: planning, headroom, pools and metrics read it).
  storage::LiveFleet* fleet = nullptr;
  // The latest DCGM observation (null: observation off).
  const ObservedUsageHolder* observed = nullptr;
  std::chrono::milliseconds observed_max_age{0};
};

// Drops cached models and GPU sizes after a catalog or inventory write.
void InvalidateEstimates(const ServiceDeps& deps);

// True once the call was cancelled, its deadline passed, or the server began shutting down: long
// work (planning) polls it and stops.
inline bool CallGone(grpc::CallbackServerContext* context) {
  return context->IsCancelled() || context->deadline() < std::chrono::system_clock::now();
}

template <typename Body>
grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context, const ServiceDeps& deps,
                                   Role role, Body&& body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status;
  if (context->IsCancelled()) {
    status = absl::CancelledError("the call was cancelled");
  } else if (context->deadline() < std::chrono::system_clock::now()) {
    status = absl::DeadlineExceededError("the deadline passed before the call started");
  } else {
    status = deps.auth->Check(*context, role);
    if (status.ok()) status = std::forward<Body>(body)();
    // Work that outlived its caller is counted as what the caller saw, not as OK.
    if (status.ok() && context->deadline() < std::chrono::system_clock::now()) {
      status = absl::DeadlineExceededError("the call finished after its deadline");
    }
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A slot for a long call (see Admission), held while the returned value lives; nullopt-like empty
// slot when deps has no admission control.
std::optional<Admission::Slot> AdmitHeavy(const ServiceDeps& deps, grpc::CallbackServerContext* c,
                                          const char* what, absl::Status* refused);

// Runs `body` once per (method, request_id): a retry gets the first response.
template <typename Request, typename Response, typename Body>
absl::Status Idempotent(const ServiceDeps& deps, const char* method, const std::string& request_id,
                        const Request& request, Response* response, Body&& body) {
  ASSIGN_OR_RETURN(std::optional<std::string> cached,
                   deps.requests->Lookup(method, request_id, request));
  if (cached.has_value()) {
    response->ParseFromString(*cached);
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(std::forward<Body>(body)());
  deps.requests->Store(method, request_id, request, *response);
  return absl::OkStatus();
}

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_HANDLER_H_
