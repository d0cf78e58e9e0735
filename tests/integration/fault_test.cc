// Fault injection: a full disk, a database lock held by another process, a server killed in the
// middle of commits, more heavy calls than the server runs at once, watch streams past their
// bound. Each fault must end in a clear, retryable error and nothing half-written, and the server
// must recover without a restart where the fault goes away.

#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "server/server.h"
#include "storage/sql_store.h"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

// A fleet of `nodes` x 8 H100 and the model "small" in a database file, written directly.
void MakeFleet(const std::string& path, int nodes) {
  ASSERT_EQ(testing::MakeSmallFleet(path, nodes), "");
}

grpc::ClientContext* Deadline(grpc::ClientContext& ctx, int seconds = 20) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return &ctx;
}

// One replica of the small model sharing GPUs by memory (many fit a GPU, so rounds of commits do
// not run out of room).
v1::PlanPlacementRequest OneReplica(const std::string& name) {
  v1::PlanPlacementRequest req;
  v1::DeploymentSpec* d = req.add_deployments();
  d->set_name(name);
  d->set_model("small");
  d->set_shared(true);
  d->set_context_tokens(2048);
  return req;
}

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("fault_"); }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Start(server::ServerOptions options) {
    options.listen = "127.0.0.1:0";
    options.metrics_listen = "";
    if (options.store.path.empty() || options.store.path == "fleetplan.db")
      options.store.path = dir_ + "/fleet.db";
    auto server = server::FleetplanServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
    inventory_ = v1::InventoryService::NewStub(channel_);
    planner_ = v1::PlannerService::NewStub(channel_);
    headroom_ = v1::HeadroomService::NewStub(channel_);
  }
  grpc::Status AddNode(const std::string& name, int label_bytes = 0) {
    grpc::ClientContext ctx;
    v1::CreateNodeRequest req;
    req.mutable_node()->set_name(name);
    req.mutable_node()->set_pool("p");
    if (label_bytes > 0)
      (*req.mutable_node()->mutable_labels())["note"] =
          std::string(static_cast<size_t>(label_bytes), 'x');
    for (int g = 0; g < 8; ++g) {
      v1::Gpu* gpu = req.mutable_node()->add_gpus();
      gpu->set_index(g);
      gpu->set_gpu_type("H100");
      gpu->set_healthy(true);
    }
    v1::Node resp;
    return inventory_->CreateNode(Deadline(ctx), req, &resp);
  }

  std::string dir_;
  std::unique_ptr<server::FleetplanServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InventoryService::Stub> inventory_;
  std::unique_ptr<v1::PlannerService::Stub> planner_;
  std::unique_ptr<v1::HeadroomService::Stub> headroom_;
};

// A full disk: writes fail with RESOURCE_EXHAUSTED and write nothing, reads keep serving, the file
// stays sound, and writes resume when space returns — without a restart.
TEST_F(FaultTest, FullDiskFailsWritesCleanlyAndRecovers) {
  MakeFleet(dir_ + "/fleet.db", 1);
  Start({.store = {.path = dir_ + "/fleet.db", .max_database_bytes = 256 << 10}});
  grpc::Status full;
  int added = 0;
  for (int i = 0; i < 5000 && full.ok(); ++i) {
    full = AddNode(absl::StrCat("big", i), 1000);
    if (full.ok()) ++added;
  }
  ASSERT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << full.error_message();
  EXPECT_NE(full.error_message().find("full"), std::string::npos) << full.error_message();
  grpc::ClientContext ctx;
  v1::FleetHeadroom h;
  ASSERT_TRUE(headroom_->GetFleetHeadroom(Deadline(ctx), {}, &h).ok()) << "reads keep serving";
  EXPECT_EQ(h.fleet().gpus(), 8 * (1 + added)) << "the refused node left nothing behind";
  EXPECT_TRUE(server_->store().CheckIntegrity().ok());
  ASSERT_TRUE(server_->store().SetMaxDatabaseBytes(0).ok());  // space returns
  EXPECT_TRUE(AddNode("after").ok());
  EXPECT_TRUE(server_->store().CheckIntegrity().ok());
}

// Another process holds the database lock longer than busy_timeout: writes fail fast with
// UNAVAILABLE (retryable), never past their deadline; reads go on; the lock gone, writes work.
TEST_F(FaultTest, ForeignLockGivesUnavailableFast) {
  MakeFleet(dir_ + "/fleet.db", 1);
  Start({.store = {.path = dir_ + "/fleet.db", .busy_timeout = std::chrono::milliseconds(200)}});
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/fleet.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto start = std::chrono::steady_clock::now();
  grpc::Status locked = AddNode("blocked");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(locked.error_code(), grpc::StatusCode::UNAVAILABLE) << locked.error_message();
  EXPECT_LT(took, std::chrono::seconds(3));
  grpc::ClientContext ctx;
  v1::FleetHeadroom h;
  EXPECT_TRUE(headroom_->GetFleetHeadroom(Deadline(ctx), {}, &h).ok()) << "reads are not blocked";
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE(AddNode("blocked").ok());
}

// More heavy calls than the server runs at once: each is answered (OK or RESOURCE_EXHAUSTED) within
// its deadline, and health answers meanwhile.
TEST_F(FaultTest, OverloadIsAnsweredNotQueuedForever) {
  MakeFleet(dir_ + "/fleet.db", 40);
  Start({.max_heavy_calls = 1, .heavy_call_wait = std::chrono::milliseconds(1)});
  v1::PlanPlacementRequest heavy;
  for (int i = 0; i < 300; ++i) {
    v1::DeploymentSpec* d = heavy.add_deployments();
    d->set_name(absl::StrCat("d", i));
    d->set_model("small");
    d->set_replicas(3);
    d->set_shared(true);
  }
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 6; ++t) {
    callers.emplace_back([&] {
      grpc::ClientContext ctx;
      v1::Plan plan;
      grpc::Status s = planner_->PlanPlacement(Deadline(ctx, 60), heavy, &plan);
      (s.ok() ? ok : s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ? refused : other)++;
    });
  }
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckResponse resp;
    EXPECT_TRUE(health->Check(&ctx, {}, &resp).ok()) << "health answers during heavy plans";
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load() + refused.load(), 6);
  EXPECT_GE(ok.load(), 1);
}

// WatchHeadroom streams are bounded per client and free their slot when they close.
TEST_F(FaultTest, WatchStreamsAreBoundedAndFreed) {
  MakeFleet(dir_ + "/fleet.db", 1);
  Start({.max_watches_per_client = 3});
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::FleetHeadroom>>> readers;
  for (int i = 0; i < 3; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    Deadline(*contexts.back(), 30);
    readers.push_back(headroom_->WatchHeadroom(contexts.back().get(), {}));
    v1::FleetHeadroom first;
    ASSERT_TRUE(readers.back()->Read(&first));
  }
  {
    grpc::ClientContext ctx;
    auto fourth = headroom_->WatchHeadroom(Deadline(ctx), {});
    v1::FleetHeadroom h;
    EXPECT_FALSE(fourth->Read(&h));
    EXPECT_EQ(fourth->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  contexts[0]->TryCancel();
  v1::FleetHeadroom h;
  while (readers[0]->Read(&h)) {
  }
  readers[0]->Finish().IgnoreError();
  for (int i = 0; i < 100; ++i) {  // the server frees the slot as the stream completes
    grpc::ClientContext ctx;
    auto again = headroom_->WatchHeadroom(Deadline(ctx), {});
    if (again->Read(&h)) {
      ctx.TryCancel();
      while (again->Read(&h)) {
      }
      again->Finish().IgnoreError();
      break;
    }
    again->Finish().IgnoreError();
    ASSERT_LT(i, 99) << "a closed stream's slot came back";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (size_t i = 1; i < readers.size(); ++i) {
    contexts[i]->TryCancel();
    while (readers[i]->Read(&h)) {
    }
    readers[i]->Finish().IgnoreError();
  }
}

// SIGKILL of the server in the middle of a stream of CommitPlan calls: after a restart every
// acknowledged commit is there, whole, and nothing else is half there.
TEST_F(FaultTest, KilledServerKeepsEveryAcknowledgedCommit) {
  MakeFleet(dir_ + "/fleet.db", 20);
  for (int round = 0; round < 3; ++round) {
    auto server = testing::Process::Start(
        {FLEETPLAND_PATH, "--listen=127.0.0.1:0", "--metrics_listen=", "--http_listen=", "--db=" + dir_ + "/fleet.db",
         "--port_file=" + dir_ + "/port"},
        dir_ + "/server.log");
    ASSERT_TRUE(server.has_value());
    auto port = testing::WaitForFile(dir_ + "/port", std::chrono::seconds(20));
    ASSERT_TRUE(port.has_value());
    std::filesystem::remove(dir_ + "/port");
    auto channel =
        grpc::CreateChannel("127.0.0.1:" + std::string(absl::StripAsciiWhitespace(*port)),
                            grpc::InsecureChannelCredentials());
    auto planner = v1::PlannerService::NewStub(channel);
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<int64_t> acknowledged;
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t) {
      clients.emplace_back([&, t] {
        for (int i = 0; i < 400 && !stop; ++i) {
          grpc::ClientContext pc;
          v1::Plan plan;
          if (!planner
                   ->PlanPlacement(Deadline(pc, 5),
                                   OneReplica(absl::StrCat("r", round, "t", t, "i", i)), &plan)
                   .ok() ||
              plan.replicas_size() == 0) {
            continue;
          }
          grpc::ClientContext cc;
          v1::CommitPlanRequest commit;
          commit.set_plan_id(plan.plan_id());
          v1::CommitPlanResponse resp;
          if (planner->CommitPlan(Deadline(cc, 5), commit, &resp).ok()) {
            std::lock_guard<std::mutex> lock(mu);
            acknowledged.insert(acknowledged.end(), resp.placement_ids().begin(),
                                resp.placement_ids().end());
          }
        }
      });
    }
    std::mt19937 rng(static_cast<unsigned>(round) + 7);
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 700));
    server->Signal(SIGKILL);
    server->Wait(std::chrono::seconds(10));
    stop = true;
    for (auto& c : clients) c.join();
    auto store = storage::SqlStore::Open({.path = dir_ + "/fleet.db"});
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->CheckIntegrity().ok());
    auto placements = (*store)->ListPlacements({.include_released = true});
    ASSERT_TRUE(placements.ok());
    std::set<int64_t> present;
    for (const auto& p : *placements) {
      EXPECT_EQ(static_cast<int64_t>(p.ranks.size()), p.tp * p.pp)
          << "placement " << p.id << " is whole";
      present.insert(p.id);
    }
    for (int64_t id : acknowledged)
      EXPECT_TRUE(present.count(id)) << "acknowledged placement " << id;
    EXPECT_GT(acknowledged.size(), 0u)
        << "round " << round << " committed something before the kill";
  }
}

}  // namespace
}  // namespace fleetplan
