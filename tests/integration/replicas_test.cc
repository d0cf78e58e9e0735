// Several fleetpland replicas on one PostgreSQL database, as real processes (the binary a user
// runs, --db=postgresql://...), on a PostgreSQL server this test starts: each replica sees the
// others' writes (plans, watches), none double-books a GPU, and losing one (SIGKILL in the middle
// of a stream of commits) stops nothing: the other keeps planning and committing, and every commit
// either replica acknowledged is in the database, whole.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "storage/sql_store.h"
#include "storage/testing/postgres_server.h"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

grpc::ClientContext* Deadline(grpc::ClientContext& ctx, int seconds = 10) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return &ctx;
}

v1::PlanPlacementRequest OneReplica(const std::string& name) {
  v1::PlanPlacementRequest req;
  v1::DeploymentSpec* d = req.add_deployments();
  d->set_name(name);
  d->set_model("small");
  d->set_replicas(1);
  d->set_shared(true);
  d->set_context_tokens(4096);
  req.set_headroom_view(v1::HEADROOM_VIEW_NONE);
  return req;
}

struct Replica {
  std::optional<testing::Process> process;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::PlannerService::Stub> planner;
  std::unique_ptr<v1::HeadroomService::Stub> headroom;
};

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (storage::testing::PostgresServer::SkipRequested()) {
      GTEST_SKIP() << "FLEETPLAN_SKIP_POSTGRES_TEST=1";
    }
    dir_ = testing::MakeTempDir("replicas_");
    std::string why;
    storage::testing::PostgresServer* pg = storage::testing::SharedPostgresServer(&why);
    ASSERT_NE(pg, nullptr) << "cannot start PostgreSQL: " << why;
    auto uri = pg->CreateDatabase(
        std::string("replicas_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(uri.ok()) << uri.status();
    db_ = *uri;
    ASSERT_EQ(testing::MakeSmallFleet(db_, 6), "");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Replica Start(const std::string& name) {
    Replica r;
    const std::string port_file = dir_ + "/" + name + ".port";
    r.process = testing::Process::Start(
        {FLEETPLAND_PATH, "--listen=127.0.0.1:0", "--metrics_listen=", "--http_listen=",
         "--db=" + db_, "--port_file=" + port_file},
        dir_ + "/" + name + ".log");
    EXPECT_TRUE(r.process.has_value());
    auto port = testing::WaitForFile(port_file, std::chrono::seconds(30));
    EXPECT_TRUE(port.has_value()) << name << " did not start; see " << dir_ << "/" << name
                                  << ".log";
    if (!port) return r;
    r.channel = grpc::CreateChannel("127.0.0.1:" + std::string(absl::StripAsciiWhitespace(*port)),
                                    grpc::InsecureChannelCredentials());
    r.planner = v1::PlannerService::NewStub(r.channel);
    r.headroom = v1::HeadroomService::NewStub(r.channel);
    return r;
  }

  std::string dir_, db_;
};

// One plan-and-commit; the placement ids when acknowledged.
std::vector<int64_t> PlanAndCommit(v1::PlannerService::Stub& planner, const std::string& name) {
  grpc::ClientContext pc;
  v1::Plan plan;
  if (!planner.PlanPlacement(Deadline(pc), OneReplica(name), &plan).ok() ||
      plan.replicas_size() == 0) {
    return {};
  }
  grpc::ClientContext cc;
  v1::CommitPlanRequest commit;
  commit.set_plan_id(plan.plan_id());
  v1::CommitPlanResponse resp;
  if (!planner.CommitPlan(Deadline(cc), commit, &resp).ok()) return {};
  return {resp.placement_ids().begin(), resp.placement_ids().end()};
}

TEST_F(ReplicasTest, AWatchOnOneReplicaSeesACommitOnAnother) {
  Replica a = Start("a");
  Replica b = Start("b");
  ASSERT_TRUE(a.planner && b.headroom);
  grpc::ClientContext wc;
  wc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::WatchHeadroomRequest req;
  auto reader = b.headroom->WatchHeadroom(&wc, req);
  v1::FleetHeadroom h;
  ASSERT_TRUE(reader->Read(&h)) << "the first message is the current state";
  const int64_t before = h.generation();
  const int64_t committed_before = h.fleet().committed_bytes();
  ASSERT_FALSE(PlanAndCommit(*a.planner, "on-a").empty());
  bool seen = false;
  while (!seen && reader->Read(&h)) {
    seen = h.generation() > before && h.fleet().committed_bytes() > committed_before;
  }
  EXPECT_TRUE(seen) << "b's watch never showed a's commit";
  wc.TryCancel();
  while (reader->Read(&h)) {
  }
  reader->Finish().IgnoreError();
}

TEST_F(ReplicasTest, LosingOneReplicaStopsNothingAndLosesNoAcknowledgedCommit) {
  Replica a = Start("a");
  Replica b = Start("b");
  ASSERT_TRUE(a.planner && b.planner);
  std::mutex mu;
  std::vector<int64_t> acknowledged;
  std::atomic<bool> a_killed{false};
  std::atomic<int> b_after_kill{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      Replica& r = t % 2 == 0 ? a : b;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      for (int i = 0; i < 150 && std::chrono::steady_clock::now() < deadline; ++i) {
        const bool after = a_killed.load();
        std::vector<int64_t> ids = PlanAndCommit(*r.planner, absl::StrCat("t", t, "i", i));
        if (ids.empty()) continue;
        if (after && &r == &b) ++b_after_kill;
        std::lock_guard<std::mutex> lock(mu);
        acknowledged.insert(acknowledged.end(), ids.begin(), ids.end());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  a.process->Signal(SIGKILL);
  a.process->Wait(std::chrono::seconds(10));
  a_killed = true;
  for (auto& c : clients) c.join();
  EXPECT_GT(b_after_kill.load(), 0) << "the surviving replica kept committing";

  auto store = storage::SqlStore::Open({.path = db_});
  ASSERT_TRUE(store.ok()) << store.status();
  auto placements = (*store)->ListPlacements({.include_released = true});
  ASSERT_TRUE(placements.ok()) << placements.status();
  std::set<int64_t> present;
  for (const auto& p : *placements) {
    EXPECT_EQ(static_cast<int64_t>(p.ranks.size()), p.tp * p.pp) << "placement " << p.id;
    present.insert(p.id);
  }
  ASSERT_GT(acknowledged.size(), 0u);
  for (int64_t id : acknowledged) EXPECT_TRUE(present.count(id)) << "acknowledged " << id;
  auto snap = (*store)->LoadSnapshot();
  ASSERT_TRUE(snap.ok());
  for (const auto& node : snap->nodes) {
    for (const auto& g : node.gpus) {
      EXPECT_LE(g.committed_bytes + g.reserved_bytes, testing::kSmallFleetGpuBytes)
          << node.name << "/" << g.index;
    }
  }
  // A replacement replica starts on the same database and serves at once.
  Replica c = Start("c");
  ASSERT_TRUE(c.planner);
  EXPECT_FALSE(PlanAndCommit(*c.planner, "after").empty());
}

}  // namespace
}  // namespace fleetplan
