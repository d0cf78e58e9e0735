// The Prometheus side for real: promtool checks the deploy files and a live scrape; a real
// Prometheus (Debian's package) scrapes a test fleetpland every second and evaluates the rules;
// every PromQL expression of the Grafana dashboard and of the recording rules returns data, every
// alert expression evaluates, and the committed bytes Prometheus sees equal what the API reports.
// The dashboard JSON is checked for structure (unique panel ids, datasource variable, targets).

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "CivetServer.h"
#include "absl/strings/str_cat.h"
#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/common/units.h"
#include "server/server.h"
#include "storage/store_test_util.h"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

using json = nlohmann::json;
const std::string kDeploy = std::string(FLEETPLAN_SOURCE_DIR) + "/deploy/";

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Expressions of the dashboard with its variables filled in.
std::vector<std::string> DashboardExprs(const json& dash) {
  std::vector<std::string> out;
  for (const json& p : dash["panels"]) {
    for (const json& t : p["targets"]) {
      std::string e = t["expr"];
      e = std::regex_replace(e, std::regex("\\$pool|\\$gpu_type"), ".*");
      out.push_back(e);
    }
  }
  return out;
}

TEST(DashboardTest, ValidGrafanaStructure) {
  const json dash = json::parse(testing::ReadText(kDeploy + "grafana/fleetplan-dashboard.json"));
  ASSERT_TRUE(dash.contains("panels") && dash["panels"].is_array());
  EXPECT_FALSE(dash["uid"].get<std::string>().empty());
  EXPECT_GE(dash["schemaVersion"].get<int>(), 30);
  std::set<int> ids;
  bool dcgm = false;
  for (const json& p : dash["panels"]) {
    EXPECT_TRUE(ids.insert(p["id"].get<int>()).second) << "duplicate panel id " << p["id"];
    EXPECT_EQ(p["datasource"]["uid"], "${DS_PROMETHEUS}") << p["title"];
    for (const char* k : {"title", "type", "gridPos", "targets"})
      EXPECT_TRUE(p.contains(k)) << p["title"] << " " << k;
    EXPECT_FALSE(p["targets"].empty());
    for (const json& t : p["targets"]) {
      EXPECT_FALSE(t["expr"].get<std::string>().empty());
      dcgm = dcgm || t["expr"].get<std::string>().find("DCGM_FI_DEV_FB_USED") != std::string::npos;
    }
  }
  EXPECT_TRUE(dcgm) << "a panel joins with DCGM";
  std::set<std::string> vars;
  for (const json& v : dash["templating"]["list"]) vars.insert(v["name"]);
  EXPECT_TRUE(vars.count("DS_PROMETHEUS") && vars.count("pool") && vars.count("gpu_type"));
}

TEST(PromtoolTest, ConfigAndRulesAreValid) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/promtool"))
      << "deploy/test.sh installs Debian's prometheus package";
  auto config = testing::RunProcess(
      {"/usr/bin/promtool", "check", "config", kDeploy + "prometheus/prometheus.yml"});
  EXPECT_EQ(config.exit_code, 0) << config.out << config.err;
  auto rules = testing::RunProcess(
      {"/usr/bin/promtool", "check", "rules", kDeploy + "prometheus/rules.yml"});
  EXPECT_EQ(rules.exit_code, 0) << rules.out << rules.err;
}

class LivePrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists("/usr/bin/prometheus"))
        << "deploy/test.sh installs Debian's prometheus package";
    dir_ = testing::MakeTempDir("prom_");
    auto server = server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                                  .metrics_listen = "127.0.0.1:0",
                                                  .store = {.path = dir_ + "/fleet.db"}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto& store = server_->store();
    ASSERT_TRUE(store.CreateGpuType(storage::testing::MakeGpuType("H100", 80 * kGiB)).ok());
    placement::Node n1 = storage::testing::MakeNode("n1", 8, "H100", "pool-a");
    for (auto& g : n1.gpus)
      g.uuid = "GPU-0000000" + std::to_string(g.index);  // as DCGM reports them
    ASSERT_TRUE(store.CreateNode(n1).ok());
    ASSERT_TRUE(store.CreateNode(storage::testing::MakeNode("n2", 8, "H100", "pool-b")).ok());
    ASSERT_TRUE(store.CreateModel(storage::testing::MakeModel("m")).ok());
    // A GPU at 97.5 %: high risk, headroom below policy, and pool-a's 8-GPU domain is gone.
    ASSERT_TRUE(store
                    .CommitPlacements(
                        {.request_id = "r",
                         .snapshot_generation = *store.FleetGeneration(),
                         .placements = {storage::testing::MakePlacement("n1", {0, 1}, 78 * kGiB)}})
                    .ok());
    // Some RPCs and a plan, so the service series have samples.
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    auto catalog = v1::CatalogService::NewStub(channel);
    grpc::ClientContext c1;
    v1::ImportModelRequest imp;
    imp.set_name("q");
    imp.set_config_json(
        testing::ReadText(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/qwen2.5-0.5b.json"));
    v1::Model model;
    ASSERT_TRUE(catalog->ImportModel(&c1, imp, &model).ok());
    auto planner = v1::PlannerService::NewStub(channel);
    v1::PlanPlacementRequest plan_req;
    v1::DeploymentSpec* d = plan_req.add_deployments();
    d->set_name("d");
    d->set_model("q");
    d->mutable_vllm()->set_max_model_len(4096);
    grpc::ClientContext c2;
    v1::Plan plan;
    ASSERT_TRUE(planner->PlanPlacement(&c2, plan_req, &plan).ok());
    ASSERT_EQ(plan.replicas_size(), 1);
    // Commit the plan through the API.
    grpc::ClientContext c3;
    v1::CommitPlanRequest commit;
    commit.set_plan_id(plan.plan_id());
    v1::CommitPlanResponse committed;
    ASSERT_TRUE(planner->CommitPlan(&c3, commit, &committed).ok());
    for (const auto& rank : plan.replicas(0).ranks()) planned_bytes_ += rank.bytes();

    prom_port_ = FreePort();
    std::ofstream(dir_ + "/prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "rule_files:\n  - " << kDeploy << "prometheus/rules.yml\n"
        << "scrape_configs:\n  - job_name: fleetplan\n    static_configs:\n      - targets: "
           "[\"127.0.0.1:"
        << server_->metrics_port() << "\"]\n";
    prometheus_ = testing::Process::Start(
        {"/usr/bin/prometheus", "--config.file=" + dir_ + "/prometheus.yml",
         "--storage.tsdb.path=" + dir_ + "/tsdb",
         "--web.listen-address=127.0.0.1:" + std::to_string(prom_port_), "--log.level=warn"},
        dir_ + "/prometheus.log");
    ASSERT_TRUE(prometheus_.has_value());
  }
  void TearDown() override {
    prometheus_.reset();
    if (server_) server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::optional<json> Query(const std::string& expr) {
    auto body = testing::HttpGet(prom_port_, "/api/v1/query?query=" + UrlEncode(expr));
    if (!body) return std::nullopt;
    json j = json::parse(*body, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

  // Waits until `expr` returns at least one sample (or times out).
  std::optional<json> Eventually(const std::string& expr,
                                 std::chrono::seconds timeout = std::chrono::seconds(60)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = Query(expr);
      if (r && (*r)["status"] == "success" && !(*r)["data"]["result"].empty()) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return std::nullopt;
  }

  std::string dir_;
  int64_t planned_bytes_ = 0;  // committed through the planner API
  int prom_port_ = 0;
  std::unique_ptr<server::FleetplanServer> server_;
  std::optional<testing::Process> prometheus_;
};

TEST_F(LivePrometheusTest, EveryDashboardAndRuleExpressionReturnsData) {
  // promtool lints a live scrape.
  auto scrape = testing::HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_TRUE(scrape.has_value());
  std::ofstream(dir_ + "/scrape.txt") << *scrape;
  auto lint = testing::RunProcess(
      {"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + dir_ + "/scrape.txt"});
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;

  ASSERT_TRUE(Eventually("up{job=\"fleetplan\"} == 1").has_value())
      << testing::ReadText(dir_ + "/prometheus.log");
  // Prometheus asks for gzip (Accept-Encoding: gzip) and reads what we send: its scrapes are
  // counted under encoding="gzip", and every other query below runs on them.
  EXPECT_TRUE(Eventually("fleetplan_metrics_scrapes_total{encoding=\"gzip\"} > 0").has_value())
      << testing::ReadText(dir_ + "/prometheus.log");
  // Two scrapes at least, so rate() has its points.
  std::this_thread::sleep_for(std::chrono::seconds(3));

  // Committed bytes in Prometheus equal the API's (once the scrape after the commit is in).
  auto committed =
      Eventually("sum(fleetplan_gpu_memory_committed_bytes) > " + std::to_string(156 * kGiB));
  ASSERT_TRUE(committed.has_value());
  const double prom_bytes =
      std::stod((*committed)["data"]["result"][0]["value"][1].get<std::string>());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto headroom = v1::HeadroomService::NewStub(channel);
  grpc::ClientContext ctx;
  v1::FleetHeadroom h;
  ASSERT_TRUE(headroom->GetFleetHeadroom(&ctx, {}, &h).ok());
  EXPECT_EQ(prom_bytes, static_cast<double>(h.fleet().committed_bytes()));
  EXPECT_EQ(prom_bytes, static_cast<double>(156 * kGiB + planned_bytes_));

  const json dash = json::parse(testing::ReadText(kDeploy + "grafana/fleetplan-dashboard.json"));
  for (const std::string& expr : DashboardExprs(dash)) {
    if (expr.find("DCGM_") != std::string::npos) continue;  // needs a DCGM exporter
    EXPECT_TRUE(Eventually(expr, std::chrono::seconds(20)).has_value()) << "dashboard: " << expr;
  }
  // Rules: recording rules produce data; alert expressions evaluate (and the three this fleet
  // should trigger do return data).
  const std::string rules = testing::ReadText(kDeploy + "prometheus/rules.yml");
  std::regex expr_re("expr: (.*)");
  int checked = 0;
  for (auto it = std::sregex_iterator(rules.begin(), rules.end(), expr_re);
       it != std::sregex_iterator(); ++it) {
    const std::string expr = (*it)[1];
    auto r = Query(expr);
    ASSERT_TRUE(r.has_value()) << expr;
    EXPECT_EQ((*r)["status"], "success") << expr << ": " << r->dump();
    ++checked;
  }
  EXPECT_GE(checked, 10);
  for (const char* name : {"fleetplan:pool_headroom_ratio", "fleetplan:pool_committed_ratio",
                           "fleetplan:gpu_type_free_bytes", "fleetplan:high_risk_gpus"}) {
    EXPECT_TRUE(Eventually(name, std::chrono::seconds(20)).has_value())
        << "recording rule " << name;
  }
  for (const char* expr :
       {"fleetplan_gpu_headroom_ratio < 0.05 and fleetplan_gpu_memory_committed_bytes > 0",
        "fleetplan:high_risk_gpus > 0",
        "fleetplan_pool_largest_free_nvlink_domain_gpus < 8 and on (pool) fleetplan_pool_gpus >= "
        "8"}) {
    EXPECT_TRUE(Eventually(expr, std::chrono::seconds(20)).has_value())
        << "alert should fire: " << expr;
  }
}

// A DCGM exporter's /metrics, served from a text the test sets (dcgm-exporter's format and labels).
class FakeDcgmExporter final : public CivetHandler {
 public:
  void Set(std::string text) {
    std::lock_guard<std::mutex> lock(mu_);
    text_ = std::move(text);
  }
  bool handleGet(CivetServer*, mg_connection* conn) override {
    std::string body;
    {
      std::lock_guard<std::mutex> lock(mu_);
      body = text_;
    }
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: "
              "%zu\r\nConnection: close\r\n\r\n",
              body.size());
    mg_write(conn, body.data(), body.size());
    return true;
  }

 private:
  std::mutex mu_;
  std::string text_;
};

std::string DcgmLine(int gpu, const std::string& uuid, const std::string& host, int64_t mib) {
  return absl::StrCat("DCGM_FI_DEV_FB_USED{gpu=\"", gpu, "\",UUID=\"", uuid,
                      "\",pci_bus_id=\"00000000:1", gpu, ":00.0\",device=\"nvidia", gpu,
                      "\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"", host,
                      "\",DCGM_FI_DRIVER_VERSION=\"570.124.06\"} ", mib, "\n");
}

// The production path: dcgm-exporter -> Prometheus -> fleetpland (--dcgm_prometheus_url) ->
// drift metrics scraped back by Prometheus, and the alerts on them.
TEST(DcgmDriftTest, UnplannedUsageAndIdlePlacementsShowAndAlert) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/prometheus"));
  const std::string dir = testing::MakeTempDir("dcgm_");
  FakeDcgmExporter exporter;
  std::vector<std::string> options = {"listening_ports", "127.0.0.1:0", "num_threads", "2"};
  CivetServer http(options);
  http.addHandler("/metrics", &exporter);
  const int exporter_port = http.getListeningPorts().at(0);
  const int prom_port = FreePort();
  auto started = server::FleetplanServer::Start(
      {.listen = "127.0.0.1:0",
       .metrics_listen = "127.0.0.1:0",
       .dcgm_prometheus_url = "http://127.0.0.1:" + std::to_string(prom_port),
       .dcgm_poll_interval = std::chrono::seconds(1),
       .store = {.path = dir + "/fleet.db"}});
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<server::FleetplanServer> server = std::move(*started);
  auto& store = server->store();
  ASSERT_TRUE(store.CreateGpuType(storage::testing::MakeGpuType("H100", 80 * kGiB)).ok());
  placement::Node n1 = storage::testing::MakeNode("n1", 4, "H100", "pool-a");
  for (auto& g : n1.gpus) g.uuid = "GPU-0000000" + std::to_string(g.index);
  ASSERT_TRUE(store.CreateNode(n1).ok());
  ASSERT_TRUE(store.CreateModel(storage::testing::MakeModel("m")).ok());
  // 60 GiB promised on GPUs 0 and 1.
  ASSERT_TRUE(store
                  .CommitPlacements(
                      {.request_id = "r",
                       .snapshot_generation = *store.FleetGeneration(),
                       .placements = {storage::testing::MakePlacement("n1", {0, 1}, 60 * kGiB)}})
                  .ok());
  // GPU 0 as planned, GPU 1 shows nothing (a dead replica), GPU 2 runs something unplanned.
  exporter.Set(
      "# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).\n"
      "# TYPE DCGM_FI_DEV_FB_USED gauge\n" +
      DcgmLine(0, "GPU-00000000", "dcgm-exporter-7x2k", 61440) +
      DcgmLine(1, "GPU-00000001", "dcgm-exporter-7x2k", 0) +
      DcgmLine(2, "GPU-00000002", "dcgm-exporter-7x2k", 30720) +
      DcgmLine(3, "GPU-00000003", "dcgm-exporter-7x2k", 0) +
      DcgmLine(0, "GPU-ffffffff", "some-other-node", 100));
  std::ofstream(dir + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "rule_files:\n  - " << kDeploy << "prometheus/rules.yml\n"
      << "scrape_configs:\n"
      << "  - job_name: fleetplan\n    static_configs:\n      - targets: [\"127.0.0.1:"
      << server->metrics_port() << "\"]\n"
      << "  - job_name: dcgm\n    static_configs:\n      - targets: [\"127.0.0.1:" << exporter_port
      << "\"]\n";
  std::optional<testing::Process> prometheus = testing::Process::Start(
      {"/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml",
       "--storage.tsdb.path=" + dir + "/tsdb",
       "--web.listen-address=127.0.0.1:" + std::to_string(prom_port), "--log.level=warn"},
      dir + "/prometheus.log");
  ASSERT_TRUE(prometheus.has_value());
  auto query = [&](const std::string& expr) -> std::optional<json> {
    auto body = testing::HttpGet(prom_port, "/api/v1/query?query=" + UrlEncode(expr));
    if (!body) return std::nullopt;
    json j = json::parse(*body, nullptr, false);
    if (j.is_discarded() || j["status"] != "success" || j["data"]["result"].empty()) {
      return std::nullopt;
    }
    return j;
  };
  auto eventually = [&](const std::string& expr) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto r = query(expr)) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return std::optional<json>();
  };
  // fleetpland read DCGM through Prometheus and exports the drift, which Prometheus scrapes back.
  auto drift = eventually("fleetplan_gpu_memory_drift_bytes{node=\"n1\",gpu=\"2\"}");
  ASSERT_TRUE(drift.has_value()) << testing::ReadText(dir + "/prometheus.log");
  EXPECT_EQ(std::stod((*drift)["data"]["result"][0]["value"][1].get<std::string>()),
            static_cast<double>(30 * kGiB));
  auto planned = eventually("fleetplan_gpu_memory_drift_bytes{node=\"n1\",gpu=\"0\"}");
  ASSERT_TRUE(planned.has_value());
  EXPECT_EQ(std::stod((*planned)["data"]["result"][0]["value"][1].get<std::string>()),
            static_cast<double>(0));
  EXPECT_TRUE(eventually("fleetplan_dcgm_unmatched_samples == 1").has_value());
  EXPECT_TRUE(eventually("fleetplan_pool_memory_drift_bytes{pool=\"pool-a\"}").has_value());
  // The alert expressions find exactly the GPUs they are about.
  const std::string rules = testing::ReadText(kDeploy + "prometheus/rules.yml");
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(rules, m, std::regex("alert: FleetplanGpuUnplannedUsage\\s+expr: (.*)")));
  auto unplanned = eventually(m[1]);
  ASSERT_TRUE(unplanned.has_value()) << m[1];
  EXPECT_EQ((*unplanned)["data"]["result"].size(), 1u);
  EXPECT_EQ((*unplanned)["data"]["result"][0]["metric"]["gpu"], "2");
  ASSERT_TRUE(
      std::regex_search(rules, m, std::regex("alert: FleetplanPlacementIdle\\s+expr: (.*)")));
  auto idle = eventually(m[1]);
  ASSERT_TRUE(idle.has_value()) << m[1];
  EXPECT_EQ((*idle)["data"]["result"].size(), 1u);
  EXPECT_EQ((*idle)["data"]["result"][0]["metric"]["gpu"], "1");
  // And Prometheus itself raises them (pending until their `for:` has passed).
  for (const char* alert : {"FleetplanGpuUnplannedUsage", "FleetplanPlacementIdle"}) {
    auto raised = eventually(absl::StrCat("ALERTS{alertname=\"", alert, "\"}"));
    ASSERT_TRUE(raised.has_value()) << alert;
    EXPECT_EQ((*raised)["data"]["result"].size(), 1u) << alert;
  }

  // The report through the API: per deployment and per anomalous GPU.
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()),
                                     grpc::InsecureChannelCredentials());
  auto headroom = v1::HeadroomService::NewStub(channel);
  grpc::ClientContext ctx;
  v1::ObservedUsage usage;
  ASSERT_TRUE(headroom->GetObservedUsage(&ctx, {}, &usage).ok());
  EXPECT_EQ(usage.observed_gpus(), 4);
  EXPECT_EQ(usage.unmatched_samples(), 1);
  ASSERT_EQ(usage.anomalies_size(), 2);
  EXPECT_EQ(usage.anomalies(0).kind(), v1::UsageAnomaly::IDLE);
  EXPECT_EQ(usage.anomalies(0).gpu_index(), 1);
  EXPECT_EQ(usage.anomalies(1).kind(), v1::UsageAnomaly::UNPLANNED);
  ASSERT_EQ(usage.deployments_size(), 1);
  EXPECT_EQ(usage.deployments(0).committed_bytes(), 120 * kGiB);
  EXPECT_EQ(usage.deployments(0).observed_bytes(), 60 * kGiB);
  EXPECT_DOUBLE_EQ(usage.deployments(0).drift_ratio(), -0.5);
  prometheus.reset();
  server->Shutdown(std::chrono::milliseconds(100));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fleetplan
