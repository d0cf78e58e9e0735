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

// The HTTP status of a gRPC code for the HTTP/JSON API (google.rpc.Code's documented mapping,
// as grpc-gateway uses it), except FAILED_PRECONDITION: 412, so that a stale plan or a deployment
// still in use reads as a precondition a client can re-check, not as a malformed request.
int HttpStatusFor(grpc::StatusCode code);
// The code's canonical name ("INVALID_ARGUMENT").
const char* CodeName(grpc::StatusCode code);

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_GRPC_STATUS_H_
