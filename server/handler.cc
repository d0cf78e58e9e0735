#include "server/handler.h"

namespace fleetplan::server {

std::optional<Admission::Slot> AdmitHeavy(const ServiceDeps& deps, grpc::CallbackServerContext* c,
                                          const char* what, absl::Status* refused) {
  if (deps.heavy == nullptr) return std::nullopt;
  *refused = deps.heavy->Acquire(what, c->deadline());
  if (!refused->ok()) return std::nullopt;
  return deps.heavy->Held();
}

}  // namespace fleetplan::server
