// The server's shared state under many threads, without gRPC in between: the store (one file, a
// write and a read connection, two stores on one file), the plan registry, the request-id cache,
// the estimate cache, admission control and the metrics exporter scraped while it is updated.
//
// Written for ThreadSanitizer (deploy/test.sh runs it in build-tsan/): TSan sees every
// synchronization used here (fleetplan::Mutex is annotated, SQLite, prometheus-cpp and civetweb
// lock through pthreads). The RPC layer is not run under TSan: Debian's gRPC is not instrumented,
// and TSan reports its internal hand-offs between threads as races by the thousand (see
// tests/tsan.supp); its concurrency is tested by concurrency_test in the Debug and ASan builds.
// Every loop is bounded in count.

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fleetplan/v1/inventory.pb.h"
#include "gtest/gtest.h"
#include "planner/estimator/config_parser.h"
#include "planner/placement/headroom.h"
#include "server/admission.h"
#include "server/auth.h"
#include "server/estimator_service.h"
#include "server/metrics.h"
#include "server/plan_registry.h"
#include "server/request_cache.h"
#include "storage/sql_store.h"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

constexpr int64_t kReplicaBytes = 6LL << 30;

class SharedStateTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("shared_state_"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

// A placement of one rank on node/index.
storage::CommitRequest OneRank(std::string request_id, const std::string& node, int64_t index,
                               int64_t bytes, int64_t generation, int64_t ttl_ms) {
  placement::Placement p{.deployment = "d", .model = "small"};
  p.ranks.push_back({.rank = 0, .gpu = {.node = node, .index = index}, .bytes = bytes});
  return {.request_id = std::move(request_id),
          .snapshot_generation = generation,
          .placements = {p},
          .reserve_ttl_ms = ttl_ms};
}

// Committers, reservers, releasers, inventory writers and readers on one store file, through two
// stores (as two servers would): no GPU ends over-committed, every acknowledged placement is
// there, the file is sound.
TEST_F(SharedStateTest, StoreUnderManyThreadsAndTwoOpeners) {
  const std::string path = dir_ + "/fleet.db";
  ASSERT_EQ(testing::MakeSmallFleet(path, 4), "");
  auto a = storage::SqlStore::Open({.path = path});
  auto b = storage::SqlStore::Open({.path = path});
  ASSERT_TRUE(a.ok() && b.ok());
  storage::SqlStore* stores[2] = {a->get(), b->get()};
  std::atomic<int> committed{0}, conflicts{0};
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<int64_t> acknowledged;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      storage::SqlStore& store = *stores[t % 2];
      std::vector<int64_t> mine;
      for (int i = 0; i < 60; ++i) {
        auto snap = store.LoadSnapshot();
        if (!snap.ok()) continue;
        // The GPU with the most free bytes that a replica fits, as a planner would pick.
        const placement::Node* best_node = nullptr;
        int64_t best_index = -1, best_free = 0;
        for (const auto& node : snap->nodes) {
          if (node.state != placement::NodeState::kActive) continue;
          for (const auto& gpu : node.gpus) {
            const int64_t free = snap->FreeBytes(gpu);
            if (free >= kReplicaBytes && free > best_free) {
              best_node = &node;
              best_index = gpu.index;
              best_free = free;
            }
          }
        }
        if (best_node == nullptr) continue;
        const storage::CommitRequest req =
            OneRank(absl::StrCat("t", t, "-", i), best_node->name, best_index, kReplicaBytes,
                    snap->generation, t == 3 ? 60000 : 0);
        auto r = store.CommitPlacements(req);
        if (!r.ok()) {
          ++conflicts;  // the GPU changed since the snapshot: ABORTED, re-plan
          EXPECT_TRUE(absl::IsAborted(r.status()) || absl::IsFailedPrecondition(r.status()))
              << r.status();
          continue;
        }
        ++committed;
        if (t == 3) {
          // The reserver commits its reservation (ABORTED if its node was cordoned meanwhile).
          auto c = store.CommitReservation(req.request_id, {});
          EXPECT_TRUE(c.ok() || absl::IsAborted(c.status())) << c.status();
        }
        mine.insert(mine.end(), r->placement_ids.begin(), r->placement_ids.end());
        if (i % 3 == 2) {
          EXPECT_TRUE(store.ReleasePlacement(mine.front()).ok());
          mine.erase(mine.begin());
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      acknowledged.insert(acknowledged.end(), mine.begin(), mine.end());
    });
  }
  threads.emplace_back([&] {  // inventory writer
    for (int i = 0; i < 30; ++i) {
      placement::Node node{.name = absl::StrCat("extra", i), .pool = "p"};
      for (int g = 0; g < 8; ++g) node.gpus.push_back({.index = g, .gpu_type = "H100"});
      EXPECT_TRUE(stores[i % 2]->CreateNode(node).ok());
      auto cordoned = stores[(i + 1) % 2]->SetNodeState(absl::StrCat("n", i % 4),
                                                        placement::NodeState::kCordoned, false);
      EXPECT_TRUE(cordoned.ok()) << cordoned.status();
      auto active = stores[i % 2]->SetNodeState(absl::StrCat("n", i % 4),
                                                placement::NodeState::kActive, false);
      EXPECT_TRUE(active.ok()) << active.status();
    }
  });
  threads.emplace_back([&] {  // readers
    for (int i = 0; i < 80; ++i) {
      auto snap = stores[i % 2]->LoadSnapshot();
      ASSERT_TRUE(snap.ok()) << snap.status();
      const placement::FleetHeadroom h = placement::ComputeHeadroom(*snap, true);
      EXPECT_GE(h.fleet.free_bytes, 0);
      EXPECT_TRUE(stores[i % 2]->FleetGeneration().ok());
      EXPECT_TRUE(stores[i % 2]->ListNodes({}, 100, "").ok());
    }
  });
  for (auto& t : threads) t.join();
  EXPECT_GT(committed.load(), 0);
  auto snap = (*a)->LoadSnapshot();
  ASSERT_TRUE(snap.ok());
  for (const auto& node : snap->nodes) {
    for (const auto& gpu : node.gpus) {
      EXPECT_LE(gpu.committed_bytes + gpu.reserved_bytes,
                snap->FindGpuType(gpu.gpu_type)->memory_bytes)
          << node.name << "/" << gpu.index;
    }
  }
  for (int64_t id : acknowledged) EXPECT_TRUE((*b)->GetPlacement(id).ok()) << id;
  EXPECT_TRUE((*a)->CheckIntegrity().ok());
}

TEST_F(SharedStateTest, PlanRegistryAndRequestCache) {
  server::PlanRegistry plans({.max_plans = 50, .max_bytes = 1 << 20});
  server::RequestCache requests({.max_entries = 40, .max_bytes = 64 << 10});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        server::StoredPlan plan;
        plan.commit = OneRank(absl::StrCat("p", t, "-", i), "n0", i % 8, 1 << 20, i, 0);
        const std::string id = plans.Keep(plan);
        if (auto found = plans.Find(id); found.has_value()) {
          EXPECT_EQ(found->commit.placements.size(), 1u);
        }
        v1::CreateNodeRequest req;
        req.mutable_node()->set_name(absl::StrCat("n", t, "-", i));
        v1::Node resp;
        resp.set_name(req.node().name());
        const std::string rid = absl::StrCat("r", t, "-", i % 60);
        auto seen = requests.Lookup("CreateNode", rid, req);
        if (seen.ok() && !seen->has_value()) requests.Store("CreateNode", rid, req, resp);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(plans.size(), 50u);
  EXPECT_LE(plans.bytes(), 1 << 20);
  EXPECT_LE(requests.size(), 40u);
  EXPECT_LE(requests.bytes(), 64 << 10);
}

// The cached GGUF conversion of a catalog config is returned only for the parsed config it was
// converted from: once the model is re-read (another parse), the old header is not used.
TEST_F(SharedStateTest, ConvertedHeaderFollowsItsSpec) {
  server::EstimateCache cache(std::chrono::hours(1));
  auto parsed = estimator::ParseModelConfig(testing::CalibrationModel("qwen2.5-0.5b"));
  ASSERT_TRUE(parsed.ok());
  auto a = std::make_shared<const estimator::ModelSpec>(*parsed);
  auto b = std::make_shared<const estimator::ModelSpec>(*parsed);
  auto file = std::make_shared<const estimator::GgufFile>();
  cache.PutConverted("small\n\nq8_0", a, file);
  EXPECT_EQ(cache.GetConverted("small\n\nq8_0", a), file);
  EXPECT_EQ(cache.GetConverted("small\n\nq8_0", b), nullptr) << "converted from another parse";
  EXPECT_EQ(cache.GetConverted("small\n\nq4_0", a), nullptr);
  cache.Invalidate();
  EXPECT_EQ(cache.GetConverted("small\n\nq8_0", a), nullptr);
}

TEST_F(SharedStateTest, EstimateCacheAndAdmission) {
  server::EstimateCache cache(std::chrono::milliseconds(5));
  auto spec = estimator::ParseModelConfig(testing::CalibrationModel("qwen2.5-0.5b"));
  ASSERT_TRUE(spec.ok());
  auto shared = std::make_shared<const estimator::ModelSpec>(*spec);
  server::Admission admission(2, std::chrono::milliseconds(50));
  std::atomic<int> inside{0}, most{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (i % 50 == 0 && t == 0) cache.Invalidate();
        if (auto m = cache.GetModel("small", ""); !m.has_value()) {
          cache.PutModel("small", "", {.spec = shared});
        }
        cache.PutGpuBytes("H100", testing::kSmallFleetGpuBytes);
        if (auto g = cache.GetGpuBytes("H100")) {
          EXPECT_EQ(*g, testing::kSmallFleetGpuBytes);
        }
        absl::Status got = admission.Acquire(
            "test", std::chrono::system_clock::now() + std::chrono::milliseconds(50));
        if (!got.ok()) {
          ++refused;
          continue;
        }
        auto slot = admission.Held();
        const int now = ++inside;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        --inside;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 2) << "admission let more than its limit in";
  EXPECT_EQ(admission.in_flight(), 0);
}

// Metrics updated from many threads while /metrics is scraped and the store changes under it.
TEST_F(SharedStateTest, MetricsScrapedDuringUpdatesAndCommits) {
  const std::string path = dir_ + "/fleet.db";
  ASSERT_EQ(testing::MakeSmallFleet(path, 2), "");
  auto store = storage::SqlStore::Open({.path = path});
  ASSERT_TRUE(store.ok());
  storage::LiveFleet fleet(store->get());
  auto metrics = server::Metrics::Start("127.0.0.1:0", &fleet);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        (*metrics)->RecordRpc(t == 0 ? "Estimate" : "PlanPlacement", i % 3, 0.001 * i);
        (*metrics)->RecordPlan(0.01, 0.001);
        if (i % 50 == 0) (*metrics)->RecordCommitConflict();
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 20; ++i) {
      auto snap = (*store)->LoadSnapshot();
      ASSERT_TRUE(snap.ok());
      auto r = (*store)->CommitPlacements(
          OneRank(absl::StrCat("m", i), "n0", i % 8, 1 << 30, snap->generation, 0));
      EXPECT_TRUE(r.ok()) << r.status();
    }
  });
  int scraped = 0;
  for (int i = 0; i < 20; ++i) {
    auto body = testing::HttpGet((*metrics)->port(), "/metrics");
    ASSERT_TRUE(body.has_value());
    if (body->find("fleetplan_gpu_memory_committed_bytes") != std::string::npos) ++scraped;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(scraped, 20);
}

}  // namespace
}  // namespace fleetplan
