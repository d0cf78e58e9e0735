// Everything at once against one real server: plans and commits, releases, inventory writes,
// headroom reads, WatchHeadroom streams and /metrics scrapes, each from its own threads. Built for
// ThreadSanitizer (deploy/test.sh runs it in build-tsan/) and useful without it: at the end no GPU
// is over-committed, every acknowledged placement is there, each watch saw generations only go up,
// and the store is sound. Every loop is bounded in count and time.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

using Clock = std::chrono::steady_clock;

grpc::ClientContext* Deadline(grpc::ClientContext& ctx, int seconds = 30) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return &ctx;
}

// Each worker stops after `rounds` iterations or when the shared time budget is spent.
struct Budget {
  Clock::time_point until;
  bool spent() const { return Clock::now() >= until; }
};

TEST(RpcConcurrencyTest, PlansCommitsWritesWatchesAndScrapesTogether) {
  const std::string dir = testing::MakeTempDir("concurrency_");
  ASSERT_EQ(testing::MakeSmallFleet(dir + "/fleet.db", 6), "");
  auto started =
      server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                      .metrics_listen = "127.0.0.1:0",
                                      .max_heavy_calls = 3,
                                      .heavy_call_wait = std::chrono::seconds(20),
                                      .headroom_poll_interval = std::chrono::milliseconds(20),
                                      .store = {.path = dir + "/fleet.db"}});
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<server::FleetplanServer> server = std::move(*started);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()),
                                     grpc::InsecureChannelCredentials());
  auto planner = v1::PlannerService::NewStub(channel);
  auto inventory = v1::InventoryService::NewStub(channel);
  auto headroom = v1::HeadroomService::NewStub(channel);
  const Budget budget{Clock::now() + std::chrono::seconds(60)};

  std::mutex mu;
  std::vector<int64_t> acknowledged;  // placements whose commit was answered OK
  std::set<int64_t> released;         // ... and later released
  std::atomic<int> commits{0}, scrapes{0}, watch_updates{0}, writes{0}, failures{0};
  std::vector<std::string> problems;
  auto problem = [&](std::string what) {
    std::lock_guard<std::mutex> lock(mu);
    if (problems.size() < 20) problems.push_back(std::move(what));
  };

  std::vector<std::thread> workers;
  // Planners: plan one or two replicas, commit, sometimes release an earlier placement.
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < 40 && !budget.spent(); ++i) {
        v1::PlanPlacementRequest req;
        v1::DeploymentSpec* d = req.add_deployments();
        d->set_name(absl::StrCat("t", t, "i", i));
        d->set_model("small");
        d->set_replicas(1 + i % 2);
        d->set_shared(true);
        d->set_context_tokens(4096);
        grpc::ClientContext pc;
        v1::Plan plan;
        grpc::Status s = planner->PlanPlacement(Deadline(pc), req, &plan);
        if (!s.ok()) {
          ++failures;
          if (s.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED)
            problem(absl::StrCat("plan: ", s.error_message()));
          continue;
        }
        if (plan.replicas_size() == 0) continue;
        grpc::ClientContext cc;
        v1::CommitPlanRequest commit;
        commit.set_plan_id(plan.plan_id());
        v1::CommitPlanResponse resp;
        s = planner->CommitPlan(Deadline(cc), commit, &resp);
        if (!s.ok()) {
          // A concurrent commit or inventory write changed a GPU the plan uses: the plan is stale
          // (ABORTED, re-plan), which is the optimistic check working.
          ++failures;
          if (s.error_code() != grpc::StatusCode::ABORTED &&
              s.error_code() != grpc::StatusCode::FAILED_PRECONDITION &&
              s.error_code() != grpc::StatusCode::NOT_FOUND)
            problem(absl::StrCat("commit: ", s.error_code(), " ", s.error_message()));
          continue;
        }
        ++commits;
        int64_t to_release = -1;
        {
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.insert(acknowledged.end(), resp.placement_ids().begin(),
                              resp.placement_ids().end());
          if (i % 3 == 2 && acknowledged.size() > released.size() + 2) {
            for (int64_t id : acknowledged) {
              if (!released.count(id)) {
                to_release = id;
                released.insert(id);
                break;
              }
            }
          }
        }
        if (to_release >= 0) {
          grpc::ClientContext rc;
          v1::ReleasePlacementRequest rel;
          rel.set_placement_id(to_release);
          v1::PlacementRecord record;
          s = planner->ReleasePlacement(Deadline(rc), rel, &record);
          if (!s.ok()) problem(absl::StrCat("release ", to_release, ": ", s.error_message()));
        }
      }
    });
  }
  // Inventory writer: add nodes, cordon and uncordon them, delete the empty ones.
  workers.emplace_back([&] {
    for (int i = 0; i < 30 && !budget.spent(); ++i) {
      const std::string name = absl::StrCat("extra", i);
      {
        grpc::ClientContext ctx;
        v1::CreateNodeRequest req;
        req.mutable_node()->set_name(name);
        req.mutable_node()->set_pool("p");
        for (int g = 0; g < 8; ++g) {
          v1::Gpu* gpu = req.mutable_node()->add_gpus();
          gpu->set_index(g);
          gpu->set_gpu_type("H100");
          gpu->set_healthy(true);
        }
        v1::Node node;
        grpc::Status s = inventory->CreateNode(Deadline(ctx), req, &node);
        if (!s.ok()) problem(absl::StrCat("create ", name, ": ", s.error_message()));
        ++writes;
      }
      {
        grpc::ClientContext ctx;
        v1::CordonNodeRequest req;
        req.set_name(absl::StrCat("n", i % 6));
        v1::Node node;
        grpc::Status s = inventory->CordonNode(Deadline(ctx), req, &node);
        if (!s.ok()) problem(absl::StrCat("cordon: ", s.error_message()));
        ++writes;
      }
      {
        grpc::ClientContext ctx;
        v1::UncordonNodeRequest req;
        req.set_name(absl::StrCat("n", i % 6));
        v1::Node node;
        grpc::Status s = inventory->UncordonNode(Deadline(ctx), req, &node);
        if (!s.ok()) problem(absl::StrCat("uncordon: ", s.error_message()));
        ++writes;
      }
      if (i % 2 == 1) {  // a node planners may have used: deletion may rightly be refused
        grpc::ClientContext ctx;
        v1::DeleteNodeRequest req;
        req.set_name(name);
        google::protobuf::Empty empty;
        grpc::Status s = inventory->DeleteNode(Deadline(ctx), req, &empty);
        if (!s.ok() && s.error_code() != grpc::StatusCode::FAILED_PRECONDITION)
          problem(absl::StrCat("delete ", name, ": ", s.error_code(), " ", s.error_message()));
        ++writes;
      }
    }
  });
  // Watchers: each reads updates for a while; generations never go down. Their streams are
  // cancelled once the other workers are done (a Read waits for the next fleet change).
  std::atomic<bool> others_done{false};
  std::set<grpc::ClientContext*> open_streams;
  std::vector<std::thread> watchers;
  for (int t = 0; t < 2; ++t) {
    watchers.emplace_back([&, t] {
      for (int stream = 0; stream < 3 && !budget.spent() && !others_done; ++stream) {
        grpc::ClientContext ctx;
        Deadline(ctx, 60);
        {
          std::lock_guard<std::mutex> lock(mu);
          if (others_done) break;
          open_streams.insert(&ctx);
        }
        v1::WatchHeadroomRequest req;
        req.set_include_gpus(t == 0);
        auto reader = headroom->WatchHeadroom(&ctx, req);
        v1::FleetHeadroom h;
        int64_t last = -1;
        for (int n = 0; n < 15 && !budget.spent() && reader->Read(&h); ++n) {
          if (h.generation() < last)
            problem(absl::StrCat("watch generation ", h.generation(), " after ", last));
          last = h.generation();
          ++watch_updates;
        }
        ctx.TryCancel();
        while (reader->Read(&h)) {
        }
        reader->Finish().IgnoreError();
        std::lock_guard<std::mutex> lock(mu);
        open_streams.erase(&ctx);
      }
    });
  }
  // Readers: headroom and node lists.
  workers.emplace_back([&] {
    for (int i = 0; i < 60 && !budget.spent(); ++i) {
      grpc::ClientContext hc;
      v1::GetFleetHeadroomRequest hreq;
      hreq.set_include_gpus(true);
      v1::FleetHeadroom h;
      grpc::Status s = headroom->GetFleetHeadroom(Deadline(hc), hreq, &h);
      if (!s.ok()) problem(absl::StrCat("headroom: ", s.error_message()));
      grpc::ClientContext lc;
      v1::ListNodesResponse nodes;
      s = inventory->ListNodes(Deadline(lc), {}, &nodes);
      if (!s.ok()) problem(absl::StrCat("list nodes: ", s.error_message()));
    }
  });
  // Scraper.
  workers.emplace_back([&] {
    for (int i = 0; i < 40 && !budget.spent(); ++i) {
      auto body = testing::HttpGet(server->metrics_port(), "/metrics");
      if (!body.has_value() || body->find("fleetplan_") == std::string::npos) {
        problem("a /metrics scrape failed");
      } else {
        ++scrapes;
      }
    }
  });
  for (auto& w : workers) w.join();
  {
    std::lock_guard<std::mutex> lock(mu);
    others_done = true;
    for (grpc::ClientContext* ctx : open_streams) ctx->TryCancel();
  }
  for (auto& w : watchers) w.join();

  std::printf("commits=%d refused_or_stale=%d writes=%d watch_updates=%d scrapes=%d\n",
              commits.load(), failures.load(), writes.load(), watch_updates.load(), scrapes.load());
  for (const std::string& p : problems) ADD_FAILURE() << p;
  EXPECT_GT(commits.load(), 0);
  EXPECT_GT(scrapes.load(), 0);
  EXPECT_GT(watch_updates.load(), 0);
  EXPECT_GT(writes.load(), 0);

  // Nothing over-committed, every acknowledged placement present (released ones released).
  grpc::ClientContext hc;
  v1::GetFleetHeadroomRequest hreq;
  hreq.set_include_gpus(true);
  v1::FleetHeadroom h;
  ASSERT_TRUE(headroom->GetFleetHeadroom(Deadline(hc), hreq, &h).ok());
  for (const v1::GpuHeadroom& g : h.gpus()) {
    EXPECT_LE(g.headroom().reserved_bytes() + g.headroom().committed_bytes(),
              g.headroom().total_bytes())
        << g.node() << "/" << g.index();
    EXPECT_GE(g.headroom().free_bytes(), 0) << g.node() << "/" << g.index();
  }
  auto placements = server->store().ListPlacements({.include_released = true});
  ASSERT_TRUE(placements.ok()) << placements.status();
  std::map<int64_t, bool> live;
  for (const auto& p : *placements) live[p.id] = p.state != placement::PlacementState::kReleased;
  for (int64_t id : acknowledged) {
    ASSERT_TRUE(live.count(id)) << "acknowledged placement " << id;
    EXPECT_EQ(live[id], !released.count(id)) << "placement " << id;
  }
  EXPECT_TRUE(server->store().CheckIntegrity().ok());
  server->Shutdown(std::chrono::milliseconds(200));
  server.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fleetplan
