// The server plans on its live fleet state (storage/live_fleet.h), not on a snapshot per call.
// These tests hold it to the store: a write by a second server on the same database is seen by
// the next plan; a plan made before another server's write is refused at commit; eight planners and
// committers never over-commit a GPU (checked in the store, not the cache); a restart rebuilds the
// same state; and a plan's answer is sized by what it touches unless FULL is asked for.

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "storage/testing/postgres_server.h"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

grpc::ClientContext* Deadline(grpc::ClientContext& ctx, int seconds = 30) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return &ctx;
}

// One server over the shared database file, with its stubs.
struct Server {
  std::unique_ptr<server::FleetplanServer> server;
  std::unique_ptr<v1::PlannerService::Stub> planner;
  std::unique_ptr<v1::InventoryService::Stub> inventory;
  std::unique_ptr<v1::HeadroomService::Stub> headroom;
};

Server StartOn(const std::string& db,
               std::chrono::milliseconds headroom_poll = std::chrono::milliseconds(250)) {
  auto started = server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                                 .metrics_listen = "",
                                                 .headroom_poll_interval = headroom_poll,
                                                 .store = {.path = db}});
  EXPECT_TRUE(started.ok()) << started.status();
  Server s{.server = std::move(*started)};
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(s.server->port()),
                                     grpc::InsecureChannelCredentials());
  s.planner = v1::PlannerService::NewStub(channel);
  s.inventory = v1::InventoryService::NewStub(channel);
  s.headroom = v1::HeadroomService::NewStub(channel);
  return s;
}

v1::PlanPlacementRequest Request(const std::string& name, int replicas, bool shared = false) {
  v1::PlanPlacementRequest req;
  v1::DeploymentSpec* d = req.add_deployments();
  d->set_name(name);
  d->set_model("small");
  d->set_replicas(replicas);
  d->set_shared(shared);
  d->set_context_tokens(4096);
  return req;
}

// Every test runs with the servers on one SQLite file and again on one PostgreSQL database (the
// replicas of a scaled-out deployment: no shared memory, only the database between them).
class LiveStateTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("live_state_");
    db_ = dir_ + "/fleet.db";
    if (GetParam()) {
      if (storage::testing::PostgresServer::SkipRequested()) {
        GTEST_SKIP() << "FLEETPLAN_SKIP_POSTGRES_TEST=1";
      }
      std::string why;
      storage::testing::PostgresServer* pg = storage::testing::SharedPostgresServer(&why);
      ASSERT_NE(pg, nullptr) << "cannot start PostgreSQL: " << why;
      const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
      auto uri = pg->CreateDatabase("live_state_" + name.substr(0, name.find('/')));
      ASSERT_TRUE(uri.ok()) << uri.status();
      db_ = *uri;
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, db_;
};

INSTANTIATE_TEST_SUITE_P(Backends, LiveStateTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "Postgres" : "SqliteFile";
                         });

TEST_P(LiveStateTest, AnotherServersWritesAreSeenAndStalePlansRefused) {
  ASSERT_EQ(testing::MakeSmallFleet(db_, 1), "");
  Server a = StartOn(db_);
  Server b = StartOn(db_);
  // b cordons the only node: a's next plan places nothing.
  {
    grpc::ClientContext ctx;
    v1::CordonNodeRequest req;
    req.set_name("n0");
    v1::Node node;
    ASSERT_TRUE(b.inventory->CordonNode(Deadline(ctx), req, &node).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::Plan plan;
    ASSERT_TRUE(a.planner->PlanPlacement(Deadline(ctx), Request("d", 1), &plan).ok());
    EXPECT_EQ(plan.replicas_size(), 0) << "a sees b's cordon";
  }
  {
    grpc::ClientContext ctx;
    v1::UncordonNodeRequest req;
    req.set_name("n0");
    v1::Node node;
    ASSERT_TRUE(b.inventory->UncordonNode(Deadline(ctx), req, &node).ok());
  }
  // a plans all 8 GPUs; b commits one of them first; a's commit is ABORTED.
  v1::Plan mine;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(a.planner->PlanPlacement(Deadline(ctx), Request("mine", 8), &mine).ok());
    ASSERT_EQ(mine.replicas_size(), 8);
  }
  {
    grpc::ClientContext pc;
    v1::Plan theirs;
    ASSERT_TRUE(b.planner->PlanPlacement(Deadline(pc), Request("theirs", 1), &theirs).ok());
    grpc::ClientContext cc;
    v1::CommitPlanRequest commit;
    commit.set_plan_id(theirs.plan_id());
    v1::CommitPlanResponse resp;
    ASSERT_TRUE(b.planner->CommitPlan(Deadline(cc), commit, &resp).ok());
  }
  {
    grpc::ClientContext cc;
    v1::CommitPlanRequest commit;
    commit.set_plan_id(mine.plan_id());
    v1::CommitPlanResponse resp;
    EXPECT_EQ(a.planner->CommitPlan(Deadline(cc), commit, &resp).error_code(),
              grpc::StatusCode::ABORTED);
  }
  // a's next plan sees b's commit: 7 GPUs left.
  {
    grpc::ClientContext ctx;
    v1::Plan plan;
    ASSERT_TRUE(a.planner->PlanPlacement(Deadline(ctx), Request("again", 8), &plan).ok());
    EXPECT_EQ(plan.replicas_size(), 7);
  }
  EXPECT_GT(a.server->fleet().stats().incremental_reads, 0);
  a.server->Shutdown(std::chrono::milliseconds(0));
  b.server->Shutdown(std::chrono::milliseconds(0));
}

// On PostgreSQL the database pushes every moved generation (LISTEN/NOTIFY): a watch on one server
// shows another server's commit at once, not at its next poll (here a minute away).
TEST_P(LiveStateTest, AWatchHearsAnotherServersCommitWithoutWaitingForItsPoll) {
  if (!GetParam()) GTEST_SKIP() << "SQLite cannot push changes; watches poll";
  ASSERT_EQ(testing::MakeSmallFleet(db_, 1), "");
  Server a = StartOn(db_);
  Server b = StartOn(db_, std::chrono::minutes(1));
  grpc::ClientContext wc;
  wc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = b.headroom->WatchHeadroom(&wc, v1::WatchHeadroomRequest());
  v1::FleetHeadroom h;
  ASSERT_TRUE(reader->Read(&h));
  const int64_t before = h.generation();
  {
    grpc::ClientContext pc;
    v1::Plan plan;
    ASSERT_TRUE(a.planner->PlanPlacement(Deadline(pc), Request("pushed", 1), &plan).ok());
    grpc::ClientContext cc;
    v1::CommitPlanRequest commit;
    commit.set_plan_id(plan.plan_id());
    v1::CommitPlanResponse resp;
    ASSERT_TRUE(a.planner->CommitPlan(Deadline(cc), commit, &resp).ok());
  }
  const auto committed = std::chrono::steady_clock::now();
  ASSERT_TRUE(reader->Read(&h)) << "the watch ended";
  EXPECT_GT(h.generation(), before);
  EXPECT_LT(std::chrono::steady_clock::now() - committed, std::chrono::seconds(10))
      << "heard by push, not by the one-minute poll";
  wc.TryCancel();
  while (reader->Read(&h)) {
  }
  reader->Finish().IgnoreError();
  a.server->Shutdown(std::chrono::milliseconds(0));
  b.server->Shutdown(std::chrono::milliseconds(0));
}

TEST_P(LiveStateTest, EightPlannersNeverOverCommitAndRestartRebuildsTheSameState) {
  ASSERT_EQ(testing::MakeSmallFleet(db_, 3), "");
  Server a = StartOn(db_);
  Server b = StartOn(db_);
  std::atomic<int> committed{0}, aborted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Server& s = t % 2 ? a : b;
      for (int i = 0; i < 25; ++i) {
        grpc::ClientContext pc;
        v1::Plan plan;
        if (!s.planner
                 ->PlanPlacement(Deadline(pc), Request(absl::StrCat("t", t, "i", i), 1, true),
                                 &plan)
                 .ok() ||
            plan.replicas_size() == 0) {
          continue;
        }
        grpc::ClientContext cc;
        v1::CommitPlanRequest commit;
        commit.set_plan_id(plan.plan_id());
        v1::CommitPlanResponse resp;
        grpc::Status st = s.planner->CommitPlan(Deadline(cc), commit, &resp);
        if (st.ok()) {
          ++committed;
        } else {
          EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
          ++aborted;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  // Best fit sends every planner to the same GPU, so most commits meet a GPU that changed since
  // their plan: ABORTED, re-plan (the per-GPU staleness check working, not a failure).
  EXPECT_GT(committed.load(), 8);
  // From the store, not the cache.
  auto snap = a.server->store().LoadSnapshot();
  ASSERT_TRUE(snap.ok());
  for (const auto& node : snap->nodes) {
    for (const auto& g : node.gpus) {
      EXPECT_LE(g.committed_bytes + g.reserved_bytes, testing::kSmallFleetGpuBytes)
          << node.name << "/" << g.index;
    }
  }
  // Each server's view equals the store; so does a restarted server's.
  grpc::ClientContext hc;
  v1::GetFleetHeadroomRequest hreq;
  hreq.set_include_gpus(true);
  v1::FleetHeadroom before;
  ASSERT_TRUE(a.headroom->GetFleetHeadroom(Deadline(hc), hreq, &before).ok());
  a.server->Shutdown(std::chrono::milliseconds(0));
  b.server->Shutdown(std::chrono::milliseconds(0));
  a = Server{};
  b = Server{};
  Server again = StartOn(db_);
  grpc::ClientContext hc2;
  v1::FleetHeadroom after;
  ASSERT_TRUE(again.headroom->GetFleetHeadroom(Deadline(hc2), hreq, &after).ok());
  EXPECT_EQ(before.SerializeAsString(), after.SerializeAsString())
      << "a restarted server rebuilds the same state";
  again.server->Shutdown(std::chrono::milliseconds(0));
}

TEST_P(LiveStateTest, PlanAnswersAreSizedByWhatTheyTouch) {
  ASSERT_EQ(testing::MakeSmallFleet(db_, 40), "");
  Server s = StartOn(db_);
  auto plan_with = [&](v1::HeadroomView view) {
    v1::PlanPlacementRequest req = Request("d", 1);
    req.set_headroom_view(view);
    grpc::ClientContext ctx;
    v1::Plan plan;
    EXPECT_TRUE(s.planner->PlanPlacement(Deadline(ctx), req, &plan).ok());
    return plan;
  };
  const v1::Plan touched = plan_with(v1::HEADROOM_VIEW_UNSPECIFIED);
  const v1::Plan full = plan_with(v1::HEADROOM_VIEW_FULL);
  const v1::Plan none = plan_with(v1::HEADROOM_VIEW_NONE);
  ASSERT_EQ(touched.replicas_size(), 1);
  EXPECT_EQ(touched.headroom_after().nodes_size(), 1) << "the node the replica is on";
  EXPECT_EQ(touched.headroom_after().nodes(0).key(), touched.replicas(0).ranks(0).node());
  EXPECT_EQ(touched.headroom_after().pools_size(), 1);
  EXPECT_EQ(full.headroom_after().nodes_size(), 40);
  EXPECT_FALSE(none.has_headroom_after());
  // The lines both carry agree.
  EXPECT_EQ(touched.headroom_after().fleet().SerializeAsString(),
            full.headroom_after().fleet().SerializeAsString());
  EXPECT_EQ(touched.headroom_after().pools(0).SerializeAsString(),
            full.headroom_after().pools(0).SerializeAsString());
  EXPECT_LT(touched.ByteSizeLong() * 4, full.ByteSizeLong()) << "40 nodes: FULL lists all";
  // An unknown view is an error naming the field.
  v1::PlanPlacementRequest bad = Request("d", 1);
  bad.set_headroom_view(static_cast<v1::HeadroomView>(42));
  grpc::ClientContext ctx;
  v1::Plan plan;
  grpc::Status st = s.planner->PlanPlacement(Deadline(ctx), bad, &plan);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("headroom_view"), std::string::npos);
  s.server->Shutdown(std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace fleetplan

namespace fleetplan {
namespace {

// Lists that can reach thousands of rows come in pages: every row once, in order, and bad page
// arguments named.
TEST_P(LiveStateTest, PlacementAndModelListsArePaged) {
  ASSERT_EQ(testing::MakeSmallFleet(db_, 4), "");
  Server s = StartOn(db_);
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext pc;
    v1::Plan plan;
    ASSERT_TRUE(
        s.planner->PlanPlacement(Deadline(pc), Request(absl::StrCat("d", i), 50, true), &plan)
            .ok());
    grpc::ClientContext cc;
    v1::CommitPlanRequest commit;
    commit.set_plan_id(plan.plan_id());
    v1::CommitPlanResponse resp;
    ASSERT_TRUE(s.planner->CommitPlan(Deadline(cc), commit, &resp).ok());
  }
  std::vector<int64_t> ids;
  std::string token;
  int pages = 0;
  do {
    v1::ListPlacementsRequest req;
    req.set_page_size(100);
    req.set_page_token(token);
    grpc::ClientContext ctx;
    v1::ListPlacementsResponse page;
    ASSERT_TRUE(s.planner->ListPlacements(Deadline(ctx), req, &page).ok());
    EXPECT_LE(page.placements_size(), 100);
    for (const auto& p : page.placements()) ids.push_back(p.id());
    token = page.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(ids.size(), 250u);
  EXPECT_EQ(pages, 3);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end()) << "no placement twice";
  for (const std::string& bad : {std::string("nope"), std::string("-5")}) {
    v1::ListPlacementsRequest req;
    req.set_page_token(bad);
    grpc::ClientContext ctx;
    v1::ListPlacementsResponse page;
    grpc::Status st = s.planner->ListPlacements(Deadline(ctx), req, &page);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("page_token"), std::string::npos) << st.error_message();
  }
  {
    v1::ListPlacementsRequest req;
    req.set_page_size(5000);
    grpc::ClientContext ctx;
    v1::ListPlacementsResponse page;
    grpc::Status st = s.planner->ListPlacements(Deadline(ctx), req, &page);
    EXPECT_NE(st.error_message().find("page_size=5000"), std::string::npos) << st.error_message();
  }

  // Models: summaries by default, configs with FULL, in pages.
  auto catalog = v1::CatalogService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(s.server->port()), grpc::InsecureChannelCredentials()));
  for (const char* name : {"a-model", "b-model"}) {
    grpc::ClientContext ctx;
    v1::ImportModelRequest req;
    req.set_name(name);
    req.set_config_json(testing::CalibrationModel("qwen2.5-0.5b"));
    v1::Model m;
    ASSERT_TRUE(catalog->ImportModel(Deadline(ctx), req, &m).ok());
  }
  std::vector<std::string> names;
  token.clear();
  do {
    v1::ListModelsRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    grpc::ClientContext ctx;
    v1::ListModelsResponse page;
    ASSERT_TRUE(catalog->ListModels(Deadline(ctx), req, &page).ok());
    for (const auto& m : page.models()) {
      names.push_back(m.name());
      EXPECT_TRUE(m.config_json().empty()) << "BASIC leaves the config out";
      EXPECT_GT(m.params(), 0);
    }
    token = page.next_page_token();
  } while (!token.empty() && names.size() < 10);
  EXPECT_EQ(names, (std::vector<std::string>{"a-model", "b-model", "small"}));
  v1::ListModelsRequest full;
  full.set_view(v1::MODEL_VIEW_FULL);
  grpc::ClientContext ctx;
  v1::ListModelsResponse all;
  ASSERT_TRUE(catalog->ListModels(Deadline(ctx), full, &all).ok());
  ASSERT_EQ(all.models_size(), 3);
  EXPECT_FALSE(all.models(0).config_json().empty());
  s.server->Shutdown(std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace fleetplan

namespace fleetplan {
namespace {

TEST_P(LiveStateTest, HeadroomGpuRowsArePaged) {
  ASSERT_EQ(testing::MakeSmallFleet(db_, 40), "");
  Server s = StartOn(db_);
  std::set<std::string> rows;
  std::string token;
  int pages = 0;
  do {
    v1::GetFleetHeadroomRequest req;
    req.set_include_gpus(true);
    req.set_page_size(100);
    req.set_page_token(token);
    grpc::ClientContext ctx;
    v1::FleetHeadroom page;
    ASSERT_TRUE(s.headroom->GetFleetHeadroom(Deadline(ctx), req, &page).ok());
    EXPECT_EQ(page.fleet().gpus(), 320) << "the fleet line comes with every page";
    EXPECT_LE(page.gpus_size(), 100);
    for (const auto& g : page.gpus()) rows.insert(absl::StrCat(g.node(), "/", g.index()));
    token = page.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(rows.size(), 320u);
  EXPECT_EQ(pages, 4);
  v1::GetFleetHeadroomRequest bad;
  bad.set_include_gpus(true);
  bad.set_page_token("no-slash");
  grpc::ClientContext ctx;
  v1::FleetHeadroom h;
  grpc::Status st = s.headroom->GetFleetHeadroom(Deadline(ctx), bad, &h);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("page_token"), std::string::npos);
  s.server->Shutdown(std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace fleetplan
