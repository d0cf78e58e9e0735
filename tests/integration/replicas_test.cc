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
#include "grpc/health/v1/health.grpc.pb.h"
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
  std::string target;  // 127.0.0.1:PORT
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::PlannerService::Stub> planner;
  std::unique_ptr<v1::HeadroomService::Stub> headroom;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;

  // The overall health status, or UNKNOWN when the call failed.
  grpc::health::v1::HealthCheckResponse::ServingStatus Health() const {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckResponse resp;
    if (!health->Check(&ctx, {}, &resp).ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
    return resp.status();
  }
  // Polls health until it is `want` (true) or `timeout` passed (false).
  bool WaitForHealth(grpc::health::v1::HealthCheckResponse::ServingStatus want,
                     std::chrono::seconds timeout) const {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (Health() != want) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return true;
  }
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
    if (PrivateServer()) {
      // This test stops its PostgreSQL: its own, not the one other tests share.
      auto own = storage::testing::PostgresServer::Start();
      ASSERT_TRUE(own.ok()) << own.status();
      own_ = std::move(*own);
      pg = own_.get();
    }
    ASSERT_NE(pg, nullptr) << "cannot start PostgreSQL: " << why;
    auto uri = pg->CreateDatabase(
        std::string("replicas_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(uri.ok()) << uri.status();
    db_ = *uri;
    ASSERT_EQ(testing::MakeSmallFleet(db_, 6), "");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  virtual bool PrivateServer() const { return false; }

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
    r.target = "127.0.0.1:" + std::string(absl::StripAsciiWhitespace(*port));
    r.channel = grpc::CreateChannel(r.target, grpc::InsecureChannelCredentials());
    r.planner = v1::PlannerService::NewStub(r.channel);
    r.headroom = v1::HeadroomService::NewStub(r.channel);
    r.health = grpc::health::v1::Health::NewStub(r.channel);
    return r;
  }

  std::string dir_, db_;
  std::unique_ptr<storage::testing::PostgresServer> own_;
};

class DatabaseOutageTest : public ReplicasTest {
 protected:
  bool PrivateServer() const override { return true; }
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
  // The CLI works unchanged against either replica: both list the placement made through a.
  for (const Replica* r : {&a, &b}) {
    testing::ProcessResult list = testing::RunProcess(
        {FLEETPLAN_CLI_PATH, "--server=" + r->target, "placements", "list", "--output=json"});
    EXPECT_EQ(list.exit_code, 0) << list.err;
    EXPECT_NE(list.out.find("\"on-a\""), std::string::npos) << r->target << ": " << list.out;
  }
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
      // Bounded in count and time; b's clients go on until they committed after the kill.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      for (int i = 0; i < 2000 && std::chrono::steady_clock::now() < deadline; ++i) {
        const bool after = a_killed.load();
        if (after && (&r == &a || b_after_kill.load() >= 20)) break;
        std::vector<int64_t> ids = PlanAndCommit(*r.planner, absl::StrCat("t", t, "i", i));
        if (ids.empty()) continue;
        if (after && &r == &b) ++b_after_kill;
        std::lock_guard<std::mutex> lock(mu);
        acknowledged.insert(acknowledged.end(), ids.begin(), ids.end());
      }
    });
  }
  // Kill a in the middle of the stream: once some commits are acknowledged (at most 10 s).
  const auto wait_until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < wait_until) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (acknowledged.size() >= 40) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
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

// 3 replicas, 32 schedulers spread over them, all after the same few GPUs (best fit, shared
// replicas on 2 nodes): no GPU is ever over-committed (checked by SQL on the database), every
// refusal is ABORTED, and every acknowledged placement is there.
TEST_F(ReplicasTest, ThirtyTwoSchedulersOnThreeReplicasNeverDoubleBook) {
  std::vector<Replica> replicas;
  for (const char* name : {"a", "b", "c"}) replicas.push_back(Start(name));
  for (const Replica& r : replicas) ASSERT_TRUE(r.planner);
  std::mutex mu;
  std::vector<int64_t> acknowledged;
  std::atomic<int> attempts{0}, committed{0}, aborted{0}, other{0};
  std::vector<std::thread> schedulers;
  for (int t = 0; t < 32; ++t) {
    schedulers.emplace_back([&, t] {
      v1::PlannerService::Stub& planner = *replicas[static_cast<size_t>(t % 3)].planner;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      for (int i = 0; i < 160 && std::chrono::steady_clock::now() < deadline; ++i) {
        grpc::ClientContext pc;
        v1::Plan plan;
        grpc::Status planned =
            planner.PlanPlacement(Deadline(pc), OneReplica(absl::StrCat("s", t, "i", i)), &plan);
        ++attempts;
        if (!planned.ok()) {
          ++other;
          ADD_FAILURE() << "plan: " << planned.error_message();
          continue;
        }
        if (plan.replicas_size() == 0) continue;  // full
        grpc::ClientContext cc;
        v1::CommitPlanRequest commit;
        commit.set_plan_id(plan.plan_id());
        v1::CommitPlanResponse resp;
        grpc::Status st = planner.CommitPlan(Deadline(cc), commit, &resp);
        if (st.ok()) {
          ++committed;
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.insert(acknowledged.end(), resp.placement_ids().begin(),
                              resp.placement_ids().end());
        } else if (st.error_code() == grpc::StatusCode::ABORTED) {
          ++aborted;
        } else {
          ++other;
          ADD_FAILURE() << "commit: " << st.error_code() << " " << st.error_message();
        }
        // Release a third of what we hold, so the GPUs stay contested instead of filling up.
        if (st.ok() && i % 3 == 0 && resp.placement_ids_size() > 0) {
          grpc::ClientContext rc;
          v1::ReleasePlacementRequest release;
          release.set_placement_id(resp.placement_ids(0));
          v1::PlacementRecord released;
          planner.ReleasePlacement(Deadline(rc), release, &released).IgnoreError();
        }
      }
    });
  }
  for (auto& s : schedulers) s.join();
  std::printf("%d attempts: %d committed, %d aborted, %d other\n", attempts.load(),
              committed.load(), aborted.load(), other.load());
  EXPECT_GE(attempts.load(), 5000);
  EXPECT_GT(committed.load(), 100);
  EXPECT_EQ(other.load(), 0);
  // By SQL on the database: no GPU holds more committed and reserved bytes than it has.
  storage::testing::PostgresServer* pg = storage::testing::SharedPostgresServer(nullptr);
  const std::string name =
      std::string("replicas_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  auto over = pg->Query(
      name,
      "SELECT COUNT(*) FROM (SELECT pg.node, pg.idx, SUM(pg.bytes) AS used, MAX(t.memory_bytes) "
      "AS cap FROM placement_gpus pg JOIN placements p ON p.id = pg.placement_id JOIN gpus g ON "
      "g.node = pg.node AND g.idx = pg.idx JOIN gpu_types t ON t.name = g.gpu_type WHERE "
      "p.state IN ('committed', 'reserved') GROUP BY pg.node, pg.idx) u WHERE used > cap");
  ASSERT_TRUE(over.ok()) << over.status();
  EXPECT_EQ(*over, "0") << "GPUs over-committed";
  auto store = storage::SqlStore::Open({.path = db_});
  ASSERT_TRUE(store.ok()) << store.status();
  auto placements = (*store)->ListPlacements({.include_released = true});
  ASSERT_TRUE(placements.ok());
  std::set<int64_t> present;
  for (const auto& p : *placements) present.insert(p.id);
  for (int64_t id : acknowledged) EXPECT_TRUE(present.count(id)) << "acknowledged " << id;
}

// PostgreSQL stops for a few seconds: the replica says NOT_SERVING, calls fail fast with
// UNAVAILABLE, and it serves again by itself once the database is back.
TEST_F(DatabaseOutageTest, ADatabaseOutageIsNotServingAndRecoversWithoutARestart) {
  Replica a = Start("a");
  ASSERT_TRUE(a.planner);
  ASSERT_EQ(a.Health(), grpc::health::v1::HealthCheckResponse::SERVING);
  ASSERT_FALSE(PlanAndCommit(*a.planner, "before").empty());
  ASSERT_TRUE(own_->Halt().ok());
  EXPECT_TRUE(a.WaitForHealth(grpc::health::v1::HealthCheckResponse::NOT_SERVING,
                              std::chrono::seconds(10)))
      << "health while the database is down";
  {
    grpc::ClientContext pc;
    v1::Plan plan;
    const auto start = std::chrono::steady_clock::now();
    grpc::Status st = a.planner->PlanPlacement(Deadline(pc, 10), OneReplica("during"), &plan);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6)) << "fails fast";
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_TRUE(own_->Resume().ok());
  EXPECT_TRUE(
      a.WaitForHealth(grpc::health::v1::HealthCheckResponse::SERVING, std::chrono::seconds(15)))
      << "health once the database is back";
  std::vector<int64_t> after;
  for (int i = 0; i < 5 && after.empty(); ++i) after = PlanAndCommit(*a.planner, "after");
  EXPECT_FALSE(after.empty()) << "commits again without a restart";
}

}  // namespace
}  // namespace fleetplan
