#include "planner/common/status_macros.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace fleetplan {
namespace {

int g_evaluations = 0;

absl::Status CountedStatus(absl::Status s) {
  ++g_evaluations;
  return s;
}

absl::Status Outer(absl::Status inner, bool* reached_end) {
  RETURN_IF_ERROR(CountedStatus(inner));
  *reached_end = true;
  return absl::OkStatus();
}

TEST(StatusMacrosTest, ReturnIfErrorPassesOkAndEvaluatesOnce) {
  g_evaluations = 0;
  bool reached = false;
  EXPECT_TRUE(Outer(absl::OkStatus(), &reached).ok());
  EXPECT_TRUE(reached);
  EXPECT_EQ(g_evaluations, 1);
}

TEST(StatusMacrosTest, ReturnIfErrorReturnsTheErrorUnchanged) {
  g_evaluations = 0;
  bool reached = false;
  absl::Status s = Outer(absl::NotFoundError("gpu type \"X\" not found"), &reached);
  EXPECT_FALSE(reached);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "gpu type \"X\" not found");
  EXPECT_EQ(g_evaluations, 1);
}

absl::StatusOr<std::unique_ptr<std::string>> MakeValue(bool ok) {
  if (!ok) return absl::InvalidArgumentError("num_key_value_heads=0 must be >= 1");
  return std::make_unique<std::string>("value");
}

absl::StatusOr<size_t> UseValue(bool ok) {
  // Move-only type: ASSIGN_OR_RETURN must move, not copy.
  ASSIGN_OR_RETURN(std::unique_ptr<std::string> v, MakeValue(ok));
  ASSIGN_OR_RETURN(auto again, MakeValue(ok));  // two uses on different lines
  return v->size() + again->size();
}

TEST(StatusMacrosTest, AssignOrReturnMovesTheValue) {
  auto r = UseValue(true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 10u);
}

TEST(StatusMacrosTest, AssignOrReturnPropagatesTheError) {
  auto r = UseValue(false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "num_key_value_heads=0 must be >= 1");
}

}  // namespace
}  // namespace fleetplan
