#ifndef FLEETPLAN_SERVER_GRPC_STATUS_H_
#define FLEETPLAN_SERVER_GRPC_STATUS_H_

// absl::Status <-> grpc::Status. gRPC 1.51 has no built-in conversion. Both enums use the
// canonical codes of google.rpc.Code with the same numbers (0..16), so the conversion is a cast;
// grpc_status_test.cc checks every one of the 17 codes both ways so a future renumbering fails
// loudly. Errors are converted once, at the RPC edge.

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace fleetplan::server {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_GRPC_STATUS_H_
