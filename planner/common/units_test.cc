#include "planner/common/units.h"

#include "gtest/gtest.h"

namespace fleetplan {
namespace {

TEST(UnitsTest, BinaryPrefixes) {
  EXPECT_EQ(kKiB, 1024);
  EXPECT_EQ(kMiB, 1024 * 1024);
  EXPECT_EQ(kGiB, int64_t{1073741824});
  EXPECT_EQ(kTiB, int64_t{1099511627776});
}

TEST(UnitsTest, BytesToGiBIsDisplayOnly) {
  EXPECT_DOUBLE_EQ(BytesToGiB(80 * kGiB), 80.0);
  EXPECT_DOUBLE_EQ(BytesToGiB(kGiB / 2), 0.5);
  // H100 80GB HBM3 as the driver reports it.
  EXPECT_NEAR(BytesToGiB(85017493504), 79.18, 0.005);
}

}  // namespace
}  // namespace fleetplan
