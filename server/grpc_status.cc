#include "server/grpc_status.h"

#include <string>

namespace fleetplan::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // Status messages travel in HTTP/2 trailers, which clients cap (8 KiB by default): keep them
  // well below, so a client always sees the error rather than a metadata-size failure.
  constexpr size_t kMaxMessage = 2048;
  std::string message(status.message().substr(0, kMaxMessage));
  if (status.message().size() > kMaxMessage) message += "... (truncated)";
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::move(message));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace fleetplan::server
