#include "server/grpc_status.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace fleetplan::server {
namespace {

// Spelled out rather than cast so the test fails if either enum is ever renumbered.
const std::vector<std::pair<absl::StatusCode, grpc::StatusCode>>& AllCodes() {
  static const auto* const kCodes = new std::vector<std::pair<absl::StatusCode, grpc::StatusCode>>{
      {absl::StatusCode::kOk, grpc::StatusCode::OK},
      {absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
      {absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
      {absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
      {absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
      {absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
      {absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
      {absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED},
      {absl::StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {absl::StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION},
      {absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
      {absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
      {absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
      {absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL},
      {absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
      {absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
      {absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED},
  };
  return *kCodes;
}

TEST(GrpcStatusTest, CoversAllSeventeenCodes) { EXPECT_EQ(AllCodes().size(), 17u); }

TEST(GrpcStatusTest, ConvertsEveryCodeBothWays) {
  for (const auto& [absl_code, grpc_code] : AllCodes()) {
    const std::string message =
        absl_code == absl::StatusCode::kOk ? "" : "model \"m\": num_key_value_heads=0 must be >= 1";
    absl::Status a(absl_code, message);
    grpc::Status g = ToGrpcStatus(a);
    EXPECT_EQ(g.error_code(), grpc_code) << absl::StatusCodeToString(absl_code);
    EXPECT_EQ(g.error_message(), message);

    absl::Status back = FromGrpcStatus(grpc::Status(grpc_code, message));
    EXPECT_EQ(back.code(), absl_code) << absl::StatusCodeToString(absl_code);
    EXPECT_EQ(back.message(), message);
  }
}

TEST(GrpcStatusTest, OkHasNoMessage) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

}  // namespace
}  // namespace fleetplan::server
