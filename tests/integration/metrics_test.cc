// The Prometheus exporter of a real fleetpland: fleet series computed at scrape time (a commit is
// visible in the next scrape), RPC counters by method and code, commit conflicts, naming rules.

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "planner/common/units.h"
#include "server/server.h"
#include "storage/store_test_util.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

// The value of the first sample of `metric` whose labels contain every `want` pair.
std::optional<double> Sample(const std::string& text, const std::string& metric,
                             const std::vector<std::string>& want) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(metric + "{", 0) != 0 && line.rfind(metric + " ", 0) != 0) continue;
    bool ok = true;
    for (const std::string& w : want) ok = ok && line.find(w) != std::string::npos;
    if (!ok) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("metrics_");
    auto server = server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                                  .metrics_listen = "127.0.0.1:0",
                                                  .store = {.path = dir_ + "/fleet.db"}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto& store = server_->store();
    ASSERT_TRUE(store.CreateGpuType(storage::testing::MakeGpuType("H100", 80 * kGiB)).ok());
    ASSERT_TRUE(store.CreateNode(storage::testing::MakeNode("n1", 8, "H100", "pool-a")).ok());
    ASSERT_TRUE(store.CreateModel(storage::testing::MakeModel("m")).ok());
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string Scrape() {
    auto body = testing::HttpGet(server_->metrics_port(), "/metrics");
    EXPECT_TRUE(body.has_value());
    return body.value_or("");
  }

  std::string dir_;
  std::unique_ptr<server::FleetplanServer> server_;
};

TEST_F(MetricsTest, CommitIsVisibleInTheNextScrape) {
  std::string before = Scrape();
  EXPECT_EQ(Sample(before, "fleetplan_gpu_memory_committed_bytes", {"node=\"n1\"", "gpu=\"0\""}),
            0.0);
  EXPECT_EQ(Sample(before, "fleetplan_gpu_memory_total_bytes",
                   {"node=\"n1\"", "gpu=\"3\"", "gpu_type=\"H100\""}),
            static_cast<double>(80 * kGiB));
  EXPECT_EQ(Sample(before, "fleetplan_pool_free_gpus", {"pool=\"pool-a\""}), 8.0);
  EXPECT_EQ(Sample(before, "fleetplan_pool_largest_free_nvlink_domain_gpus", {"pool=\"pool-a\""}),
            8.0);
  auto& store = server_->store();
  ASSERT_TRUE(store
                  .CommitPlacements(
                      {.request_id = "r",
                       .snapshot_generation = *store.FleetGeneration(),
                       .placements = {storage::testing::MakePlacement("n1", {0, 1}, 78 * kGiB)}})
                  .ok());
  std::string after = Scrape();
  EXPECT_EQ(Sample(after, "fleetplan_gpu_memory_committed_bytes", {"node=\"n1\"", "gpu=\"0\""}),
            static_cast<double>(78 * kGiB));
  EXPECT_EQ(Sample(after, "fleetplan_gpu_memory_risk_level", {"node=\"n1\"", "gpu=\"1\""}),
            2.0);  // 97.5 %
  EXPECT_EQ(Sample(after, "fleetplan_pool_memory_committed_bytes", {"pool=\"pool-a\""}),
            static_cast<double>(156 * kGiB));
  EXPECT_EQ(Sample(after, "fleetplan_pool_free_gpus", {"pool=\"pool-a\""}), 6.0);
  EXPECT_EQ(Sample(after, "fleetplan_gpu_type_memory_risk_level", {"gpu_type=\"H100\""}), 2.0);
  EXPECT_GT(*Sample(after, "fleetplan_fleet_generation", {}),
            *Sample(before, "fleetplan_fleet_generation", {}));
  EXPECT_EQ(Sample(after, "fleetplan_build_info", {"version=\""}), 1.0);
}

TEST_F(MetricsTest, RpcCountersAndCommitConflicts) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto inventory = v1::InventoryService::NewStub(channel);
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    v1::ListGpuTypesResponse resp;
    ASSERT_TRUE(inventory->ListGpuTypes(&ctx, {}, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::GetNodeRequest req;
    req.set_name("nope");
    v1::Node resp;
    EXPECT_FALSE(inventory->GetNode(&ctx, req, &resp).ok());
  }
  // A stale commit through the planner service counts as a conflict.
  auto catalog = v1::CatalogService::NewStub(channel);
  auto planner = v1::PlannerService::NewStub(channel);
  {
    std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/qwen2.5-0.5b.json");
    std::stringstream ss;
    ss << in.rdbuf();
    grpc::ClientContext ctx;
    v1::ImportModelRequest req;
    req.set_name("q");
    req.set_config_json(ss.str());
    v1::Model m;
    ASSERT_TRUE(catalog->ImportModel(&ctx, req, &m).ok());
  }
  v1::PlanPlacementRequest plan_req;
  v1::DeploymentSpec* d = plan_req.add_deployments();
  d->set_name("d");
  d->set_model("q");
  d->mutable_vllm()->set_max_model_len(4096);
  v1::Plan a, b;
  {
    grpc::ClientContext c1, c2;
    ASSERT_TRUE(planner->PlanPlacement(&c1, plan_req, &a).ok());
    ASSERT_TRUE(planner->PlanPlacement(&c2, plan_req, &b).ok());
  }
  v1::CommitPlanResponse resp;
  v1::CommitPlanRequest ca, cb;
  ca.set_plan_id(a.plan_id());
  cb.set_plan_id(b.plan_id());
  grpc::ClientContext c3, c4;
  ASSERT_TRUE(planner->CommitPlan(&c3, ca, &resp).ok());
  EXPECT_EQ(planner->CommitPlan(&c4, cb, &resp).error_code(), grpc::StatusCode::ABORTED);

  const std::string text = Scrape();
  EXPECT_EQ(Sample(text, "fleetplan_rpc_requests_total",
                   {"method=\"InventoryService/ListGpuTypes\"", "code=\"OK\""}),
            3.0);
  EXPECT_EQ(Sample(text, "fleetplan_rpc_requests_total",
                   {"method=\"InventoryService/GetNode\"", "code=\"NOT_FOUND\""}),
            1.0);
  EXPECT_EQ(Sample(text, "fleetplan_rpc_requests_total",
                   {"method=\"PlannerService/CommitPlan\"", "code=\"ABORTED\""}),
            1.0);
  EXPECT_EQ(Sample(text, "fleetplan_commit_conflicts_total", {}), 1.0);
  EXPECT_EQ(Sample(text, "fleetplan_plan_duration_seconds_count", {}), 2.0);
  EXPECT_TRUE(Sample(text, "fleetplan_rpc_duration_seconds_bucket",
                     {"method=\"InventoryService/ListGpuTypes\"", "le=\"+Inf\""})
                  .has_value());
}

TEST_F(MetricsTest, NamesFollowPrometheusConventions) {
  const std::string text = Scrape();
  std::istringstream in(text);
  std::string line;
  const std::regex name_re("^# TYPE (fleetplan_[a-z_]+) (gauge|counter|histogram)$");
  int families = 0;
  while (std::getline(in, line)) {
    // Ours only: prometheus-cpp's exposer adds its own exposer_* series.
    if (line.rfind("# TYPE fleetplan_", 0) != 0) continue;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, name_re)) << line;
    const std::string name = m[1];
    const std::string type = m[2];
    ++families;
    if (type == "counter") {
      EXPECT_TRUE(name.size() > 6 && name.substr(name.size() - 6) == "_total") << name;
    }
    const bool unit =
        name.find("_bytes") != std::string::npos || name.find("_seconds") != std::string::npos ||
        name.find("_total") != std::string::npos || name.find("_ratio") != std::string::npos ||
        name.find("_info") != std::string::npos || name.find("_gpus") != std::string::npos ||
        name.find("_level") != std::string::npos || name.find("_generation") != std::string::npos;
    EXPECT_TRUE(unit) << name << " names no unit";
  }
  EXPECT_GE(families, 30);
}

// gunzip of a gzip body ("" when it is not one).
std::string Gunzip(const std::string& in) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return "";
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  char buf[1 << 16];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - z.avail_out);
  }
  inflateEnd(&z);
  return rc == Z_STREAM_END ? out : "";
}

// Without the series counters (they move between two scrapes).
std::string FleetLines(const std::string& text) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.rfind("fleetplan_gpu", 0) == 0 || line.rfind("fleetplan_pool", 0) == 0)
      out += line + "\n";
  }
  return out;
}

TEST_F(MetricsTest, GzipWhenAskedAndTheSameText) {
  auto plain = testing::HttpRequest(server_->metrics_port(), "/metrics");
  auto gz = testing::HttpRequest(server_->metrics_port(), "/metrics",
                                 "Accept-Encoding: deflate, gzip;q=0.8\r\n");
  ASSERT_TRUE(plain.has_value() && gz.has_value());
  EXPECT_EQ(plain->headers.count("content-encoding"), 0u);
  ASSERT_EQ(gz->headers["content-encoding"], "gzip");
  EXPECT_EQ(gz->headers["vary"], "Accept-Encoding");
  const std::string text = Gunzip(gz->body);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(FleetLines(text), FleetLines(plain->body));
  EXPECT_LT(gz->body.size() * 3, text.size()) << "the exposition compresses well";
  EXPECT_TRUE(Sample(Scrape(), "fleetplan_metrics_scrapes_total", {"encoding=\"gzip\""}) >= 1);
  // q=0 refuses gzip.
  auto refused = testing::HttpRequest(server_->metrics_port(), "/metrics",
                                      "Accept-Encoding: gzip;q=0, identity\r\n");
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->headers.count("content-encoding"), 0u);
}

TEST(AcceptsGzipTest, ParsesCodingsAndWeights) {
  EXPECT_TRUE(server::AcceptsGzip("gzip"));
  EXPECT_TRUE(server::AcceptsGzip("identity, GZIP"));
  EXPECT_TRUE(server::AcceptsGzip("*"));
  EXPECT_TRUE(server::AcceptsGzip("br;q=1.0, gzip;q=0.5"));
  EXPECT_FALSE(server::AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(server::AcceptsGzip("gzip;q=nonsense"));
  EXPECT_FALSE(server::AcceptsGzip("deflate, br"));
  EXPECT_FALSE(server::AcceptsGzip(""));
  EXPECT_FALSE(server::AcceptsGzip("gzipx"));
}

// Per node or per pool only: the series counts the header promises, and no per-GPU series.
TEST(MetricsDetailTest, NodeAndPoolDetailExportFewerSeries) {
  const std::string dir = testing::MakeTempDir("metrics_detail_");
  {
    auto store = storage::SqlStore::Open({.path = dir + "/fleet.db"});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->CreateGpuType(storage::testing::MakeGpuType("H100", 80 * kGiB)).ok());
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE((*store)
                      ->CreateNode(storage::testing::MakeNode("n" + std::to_string(i), 8, "H100",
                                                              i < 3 ? "pool-a" : "pool-b"))
                      .ok());
    }
  }
  auto count = [](const std::string& text, const std::string& prefix) {
    std::istringstream in(text);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) n += line.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  };
  for (server::MetricsDetail detail :
       {server::MetricsDetail::kGpu, server::MetricsDetail::kNode, server::MetricsDetail::kPool}) {
    auto s = server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                             .metrics_listen = "127.0.0.1:0",
                                             .metrics_detail = detail,
                                             .store = {.path = dir + "/fleet.db"}});
    ASSERT_TRUE(s.ok()) << s.status();
    auto text = testing::HttpGet((*s)->metrics_port(), "/metrics");
    ASSERT_TRUE(text.has_value());
    const int gpu = count(*text, "fleetplan_gpu_memory_") + count(*text, "fleetplan_gpu_headroom") +
                    count(*text, "fleetplan_gpu_estimated");
    const int node = count(*text, "fleetplan_node_");
    const int pool = count(*text, "fleetplan_pool_");
    const int type = count(*text, "fleetplan_gpu_type_");
    EXPECT_EQ(pool, 9 * 2) << server::MetricsDetailNames().Name(detail);
    EXPECT_EQ(type, 9 * 1);
    EXPECT_EQ(gpu, detail == server::MetricsDetail::kGpu ? 7 * 40 : 0);
    EXPECT_EQ(node, detail == server::MetricsDetail::kNode ? 9 * 5 : 0);
    EXPECT_EQ(count(*text, "fleetplan_fleet_generation "), 1);
    // The pool lines agree whatever the detail.
    EXPECT_NE(text->find("fleetplan_pool_memory_free_bytes{pool=\"pool-a\"} 2061584302080"),
              std::string::npos)
        << *text;
    (*s)->Shutdown(std::chrono::milliseconds(0));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fleetplan
