#include "server/observed_usage.h"

#include "gtest/gtest.h"
#include "planner/common/units.h"

namespace fleetplan::server {
namespace {

// Two nodes of 2 GPUs; n1's GPUs have UUIDs, n2.example.com's do not.
placement::FleetSnapshot Fleet() {
  placement::FleetSnapshot s{
      .gpu_types = {placement::GpuType{.name = "H100", .memory_bytes = 80 * kGiB}}};
  std::vector<placement::Node> nodes;
  for (const char* name : {"n1", "n2.example.com"}) {
    placement::Node n{.name = name, .pool = "p"};
    for (int64_t i = 0; i < 2; ++i) {
      n.gpus.push_back(placement::Gpu{
          .index = i,
          .gpu_type = "H100",
          .uuid = std::string(name) == "n1" ? "GPU-aaaa-000" + std::to_string(i) : ""});
    }
    nodes.push_back(n);
  }
  s.nodes = nodes;
  return s;
}

constexpr char kAnswer[] = R"({"status":"success","data":{"resultType":"vector","result":[
 {"metric":{"__name__":"DCGM_FI_DEV_FB_USED","gpu":"0","UUID":"GPU-aaaa-0000","Hostname":"dcgm-pod-x","modelName":"NVIDIA H100 80GB HBM3"},"value":[1764590000.5,"61440"]},
 {"metric":{"__name__":"DCGM_FI_DEV_FB_USED","gpu":"1","UUID":"GPU-aaaa-0001","Hostname":"dcgm-pod-x"},"value":[1764590000.5,"0"]},
 {"metric":{"__name__":"DCGM_FI_DEV_FB_USED","gpu":"0","hostname":"n2"},"value":[1764590000.5,"20480"]},
 {"metric":{"__name__":"DCGM_FI_DEV_FB_USED","gpu":"1","Hostname":"n2.example.com"},"value":[1764590000.5,"512"]},
 {"metric":{"__name__":"DCGM_FI_DEV_FB_USED","gpu":"0","Hostname":"elsewhere"},"value":[1764590000.5,"100"]},
 {"metric":{"gpu":"3"},"value":[1764590000.5,"NaN"]},
 {"metric":{"gpu":"3"},"value":"oops"}
]}})";

TEST(ObservedUsage, ParsesPrometheusAnswersAndMatchesByUuidThenHost) {
  auto samples = ParseDcgmQuery(kAnswer);
  ASSERT_TRUE(samples.ok()) << samples.status();
  ASSERT_EQ(samples->size(), 5u) << "NaN and malformed samples dropped";
  EXPECT_EQ((*samples)[0].used_bytes, 61440 * kMiB);
  EXPECT_EQ((*samples)[2].hostname, "n2") << "the lower-case label of newer exporters";
  const ObservedUsage u = MatchDcgm(Fleet(), *samples, 1000);
  EXPECT_EQ(u.samples, 5);
  EXPECT_EQ(u.unmatched, 1);
  // n1 by UUID (its Hostname is the exporter pod's), n2 by hostname (short or full) and index.
  EXPECT_EQ(u.used_bytes.at({.node = "n1", .index = 0}), 61440 * kMiB);
  EXPECT_EQ(u.used_bytes.at({.node = "n2.example.com", .index = 0}), 20480 * kMiB);
  EXPECT_EQ(u.used_bytes.at({.node = "n2.example.com", .index = 1}), 512 * kMiB);
}

TEST(ObservedUsage, BadAnswersAreErrorsNotCrashes) {
  for (const char* bad : {"", "not json", "[]", R"({"status":"error","error":"bad query"})",
                          R"({"status":"success","data":{"resultType":"matrix","result":[]}})",
                          R"({"status":"success","data":{"resultType":"vector"}})"}) {
    auto s = ParseDcgmQuery(bad);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(ParseDcgmQuery(R"({"status":"error","error":"bad query"})")
                .status()
                .message()
                .find("bad query"),
            std::string::npos);
  EXPECT_FALSE(ParseDcgmQuery(std::string(100, '[')).ok());
  EXPECT_FALSE(ValidatePrometheusUrl("u", "ftp://x").ok());
  EXPECT_FALSE(ValidatePrometheusUrl("u", "http://x/?q=1").ok());
  EXPECT_TRUE(ValidatePrometheusUrl("u", "http://127.0.0.1:9090").ok());
}

TEST(ObservedUsage, ReportSplitsSharedGpusAndFlagsUnplannedAndIdle) {
  placement::FleetSnapshot s = Fleet();
  // n1/0: two placements (a: 40 GiB, b: 20 GiB); n2/1: one of 30 GiB that shows nothing.
  std::vector<placement::Placement> active = {
      placement::Placement{
          .id = 1,
          .deployment = "a",
          .model = "m",
          .ranks = {{.rank = 0, .gpu = {.node = "n1", .index = 0}, .bytes = 40 * kGiB}}},
      placement::Placement{
          .id = 2,
          .deployment = "b",
          .model = "m",
          .ranks = {{.rank = 0, .gpu = {.node = "n1", .index = 0}, .bytes = 20 * kGiB}}},
      placement::Placement{
          .id = 3,
          .deployment = "c",
          .model = "m",
          .ranks = {
              {.rank = 0, .gpu = {.node = "n2.example.com", .index = 1}, .bytes = 30 * kGiB}}}};
  ObservedUsage u{.observed_unix_ms = 1};
  u.used_bytes[{.node = "n1", .index = 0}] = 66 * kGiB;             // 6 GiB over: unplanned
  u.used_bytes[{.node = "n1", .index = 1}] = 0;                     // nothing placed, nothing used
  u.used_bytes[{.node = "n2.example.com", .index = 1}] = kGiB / 2;  // idle replica
  const UsageReport r = BuildUsageReport(s, active, u, 2 * kGiB, kGiB);
  ASSERT_EQ(r.deployments.size(), 3u);
  EXPECT_EQ(r.deployments[0].deployment, "a");
  EXPECT_EQ(r.deployments[0].observed_bytes, 44 * kGiB) << "66 GiB split 40:20";
  EXPECT_EQ(r.deployments[1].observed_bytes, 22 * kGiB);
  ASSERT_EQ(r.anomalies.size(), 2u);
  EXPECT_EQ(r.anomalies[0].kind, UsageAnomaly::Kind::kUnplanned);
  EXPECT_EQ(r.anomalies[0].gpu.node, "n1");
  EXPECT_EQ(r.anomalies[1].kind, UsageAnomaly::Kind::kIdle);
  // 4 GiB (5% of 80 GiB) is the floor of "unplanned": 3 GiB over is within it.
  u.used_bytes[{.node = "n1", .index = 0}] = 63 * kGiB;
  EXPECT_EQ(BuildUsageReport(s, active, u, 2 * kGiB, kGiB).anomalies.size(), 1u);
}

}  // namespace
}  // namespace fleetplan::server
