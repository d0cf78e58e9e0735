// LiveFleet: after any sequence of writes — by the store it reads, by a second store on the same
// file (another server or the CLI), with reservations expiring on the clock — its view equals a
// fresh LoadSnapshot, and it got there by re-reading only the changed nodes. Views never change
// once handed out.

#include "storage/live_fleet.h"

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "planner/common/units.h"
#include "planner/placement/headroom.h"
#include "planner/placement/planner.h"
#include "storage/sql_store.h"
#include "storage/store_test_util.h"
#include "storage/testing/postgres_server.h"

namespace fleetplan::storage {
namespace {

using placement::NodeState;
using testing::MakeGpuType;
using testing::MakeNode;
using testing::MakePlacement;

void ExpectSameNode(const Node& a, const Node& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.pool, b.pool);
  EXPECT_EQ(a.zone, b.zone);
  EXPECT_EQ(a.rack, b.rack);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.state, b.state) << a.name;
  EXPECT_EQ(a.version, b.version) << a.name;
  ASSERT_EQ(a.gpus.size(), b.gpus.size()) << a.name;
  for (size_t i = 0; i < a.gpus.size(); ++i) {
    const placement::Gpu& x = a.gpus[i];
    const placement::Gpu& y = b.gpus[i];
    EXPECT_EQ(x.index, y.index);
    EXPECT_EQ(x.gpu_type, y.gpu_type);
    EXPECT_EQ(x.nvlink_domain, y.nvlink_domain);
    EXPECT_EQ(x.healthy, y.healthy);
    EXPECT_EQ(x.committed_bytes, y.committed_bytes) << a.name << "/" << x.index;
    EXPECT_EQ(x.reserved_bytes, y.reserved_bytes) << a.name << "/" << x.index;
    EXPECT_EQ(x.changed_generation, y.changed_generation) << a.name << "/" << x.index;
  }
}

void ExpectSameFleet(const placement::FleetSnapshot& a, const placement::FleetSnapshot& b) {
  EXPECT_EQ(a.generation, b.generation);
  ASSERT_EQ(a.gpu_types.size(), b.gpu_types.size());
  for (size_t i = 0; i < a.gpu_types.size(); ++i) {
    EXPECT_EQ(a.gpu_types[i].name, b.gpu_types[i].name);
    EXPECT_EQ(a.gpu_types[i].memory_bytes, b.gpu_types[i].memory_bytes);
  }
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) ExpectSameNode(a.nodes[i], b.nodes[i]);
}

// Two stores on one database, as two servers would be: one SQLite file, or one PostgreSQL
// database (the replicas of issue "several fleetpland on PostgreSQL").
class LiveFleetTest : public ::testing::TestWithParam<bool> {
 protected:
  bool Postgres() const { return GetParam(); }
  void SetUp() override {
    dir_ =
        std::filesystem::path(::testing::TempDir()) / ("live_fleet_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    target_ = (dir_ / "fleet.db").string();
    if (Postgres()) {
      if (testing::PostgresServer::SkipRequested()) GTEST_SKIP() << "FLEETPLAN_SKIP_POSTGRES_TEST=1";
      std::string why;
      testing::PostgresServer* server = testing::SharedPostgresServer(&why);
      ASSERT_NE(server, nullptr) << "cannot start PostgreSQL: " << why;
      auto uri = server->CreateDatabase(
          std::string("live_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
      ASSERT_TRUE(uri.ok()) << uri.status();
      target_ = *uri;
    }
    a_ = Open();
    b_ = Open();
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<SqlStore> Open() {
    auto store = SqlStore::Open({.path = target_, .now_unix_ms = [this] { return now_.load(); }});
    EXPECT_TRUE(store.ok()) << store.status();
    return std::move(*store);
  }
  absl::StatusOr<CommitResult> Commit(SqlStore& s, const std::string& id,
                                      std::vector<Placement> placements, int64_t ttl_ms = 0) {
    auto gen = s.FleetGeneration();
    if (!gen.ok()) return gen.status();
    return s.CommitPlacements({.request_id = id,
                               .snapshot_generation = *gen,
                               .placements = std::move(placements),
                               .reserve_ttl_ms = ttl_ms});
  }
  void ExpectCurrent(LiveFleet& live) {
    auto view = live.Current();
    ASSERT_TRUE(view.ok()) << view.status();
    auto fresh = a_->LoadSnapshot();
    ASSERT_TRUE(fresh.ok());
    ExpectSameFleet((*view)->snapshot(), *fresh);
    // The planner's index matches one built from scratch.
    const placement::PackingState rebuilt((*view)->snapshot());
    ASSERT_EQ((*view)->packing().domains().size(), rebuilt.domains().size());
    for (size_t id = 0; id < rebuilt.domains().size(); ++id)
      EXPECT_EQ((*view)->packing().free_exclusive(id), rebuilt.free_exclusive(id));
    // Its headroom sums match a full computation.
    const placement::FleetHeadroom full = placement::ComputeHeadroom(*fresh, false);
    const placement::Headroom fleet = (*view)->headroom().Fleet();
    EXPECT_EQ(fleet.free_bytes, full.fleet.free_bytes);
    EXPECT_EQ(fleet.reserved_bytes, full.fleet.reserved_bytes);
    EXPECT_EQ(fleet.committed_bytes, full.fleet.committed_bytes);
    EXPECT_EQ(fleet.free_gpus, full.fleet.free_gpus);
    EXPECT_EQ(fleet.risk, full.fleet.risk);
    EXPECT_EQ(fleet.largest_free_nvlink_domain, full.fleet.largest_free_nvlink_domain);
    for (const placement::Headroom& p : full.pools) {
      EXPECT_EQ((*view)->headroom().Pool(p.key).free_bytes, p.free_bytes) << p.key;
      EXPECT_EQ((*view)->headroom().Pool(p.key).free_gpus, p.free_gpus) << p.key;
    }
  }

  std::filesystem::path dir_;
  std::string target_;
  std::atomic<int64_t> now_{1'700'000'000'000};
  std::unique_ptr<SqlStore> a_, b_;
};

TEST_P(LiveFleetTest, FollowsEveryKindOfWriteFromEitherStore) {
  ASSERT_TRUE(a_->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
  for (int i = 0; i < 12; ++i)
    ASSERT_TRUE(a_->CreateNode(MakeNode(absl::StrCat("n", i), 8, "H100")).ok());
  LiveFleet live(a_.get());
  ExpectCurrent(live);
  std::mt19937 rng(11);
  std::vector<int64_t> placed;
  int next_node = 12;
  for (int step = 0; step < 120; ++step) {
    SqlStore& s = rng() % 2 ? *a_ : *b_;  // half the writes come from "another process"
    const std::string node = absl::StrCat("n", rng() % 12);
    switch (rng() % 9) {
      case 0:
      case 1:
      case 2: {
        auto r = Commit(s, absl::StrCat("c", step),
                        {MakePlacement(node, {static_cast<int64_t>(rng() % 8)}, 5 * kGiB)});
        if (r.ok()) placed.insert(placed.end(), r->placement_ids.begin(), r->placement_ids.end());
        break;
      }
      case 3:  // a short reservation, expired by the clock later
        (void)Commit(s, absl::StrCat("r", step),
                     {MakePlacement(node, {static_cast<int64_t>(rng() % 8)}, 3 * kGiB)}, 500);
        break;
      case 4:
        if (!placed.empty()) {
          (void)s.ReleasePlacement(placed[rng() % placed.size()]);
        }
        break;
      case 5:
        (void)s.SetNodeState(node, rng() % 2 ? NodeState::kCordoned : NodeState::kActive, true);
        break;
      case 6:
        ASSERT_TRUE(s.CreateNode(MakeNode(absl::StrCat("n", next_node++), 4, "H100")).ok());
        break;
      case 7:
        (void)s.DeleteNode(absl::StrCat("n", 12 + rng() % 8), true);
        break;
      case 8:
        now_ += 300;  // reservations expire with no write at all
        break;
    }
    ExpectCurrent(live);
    if (HasFailure()) FAIL() << "at step " << step;
  }
  const LiveFleetStats stats = live.stats();
  EXPECT_EQ(stats.full_reads, 1) << "only the first read is whole";
  EXPECT_GT(stats.incremental_reads, 50);
  EXPECT_LT(stats.nodes_reread, stats.incremental_reads * 4) << "a few nodes per refresh";
}

TEST_P(LiveFleetTest, ReservationExpiresWithoutAWrite) {
  ASSERT_TRUE(a_->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
  ASSERT_TRUE(a_->CreateNode(MakeNode("n1", 8, "H100")).ok());
  ASSERT_TRUE(Commit(*a_, "r", {MakePlacement("n1", {0}, 10 * kGiB)}, 1000).ok());
  // Reserved through one store (server), expiring in the other's view: the expiry instant is in
  // the database, not in the memory of the server that reserved.
  LiveFleet live(b_.get());
  auto before = live.Current();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ((*before)->snapshot().nodes[0].gpus[0].reserved_bytes, 10 * kGiB);
  now_ += 999;
  EXPECT_EQ((*live.Current())->snapshot().nodes[0].gpus[0].reserved_bytes, 10 * kGiB);
  now_ += 2;
  auto after = live.Current();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)->snapshot().nodes[0].gpus[0].reserved_bytes, 0);
  EXPECT_EQ((*after)->generation(), (*before)->generation()) << "no write happened";
}

TEST_P(LiveFleetTest, ViewsNeverChangeAndShareUnchangedNodes) {
  ASSERT_TRUE(a_->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(a_->CreateNode(MakeNode(absl::StrCat("n", i), 8, "H100")).ok());
  LiveFleet live(a_.get());
  auto v1 = live.Current();
  ASSERT_TRUE(v1.ok());
  ASSERT_TRUE(Commit(*b_, "c", {MakePlacement("n2", {0, 1}, 20 * kGiB)}).ok());
  auto v2 = live.Current();
  ASSERT_TRUE(v2.ok());
  EXPECT_NE(v1->get(), v2->get());
  EXPECT_EQ((*v1)->snapshot().nodes[2].gpus[0].committed_bytes, 0) << "the old view is unchanged";
  EXPECT_EQ((*v2)->snapshot().nodes[2].gpus[0].committed_bytes, 20 * kGiB);
  // n4 was written by the write v1 was read at, which changes may be noted under (see the v5
  // migration): it may be re-read once. The others are shared.
  for (size_t i : {0u, 1u, 3u})
    EXPECT_TRUE((*v2)->snapshot().nodes.SameNode(i, (*v1)->snapshot().nodes, i)) << i;
  EXPECT_FALSE((*v2)->snapshot().nodes.SameNode(2, (*v1)->snapshot().nodes, 2));
  EXPECT_TRUE((*v2)->packing().SharesLayoutWith((*v1)->packing()))
      << "a usage change re-reads usage, not the layout";
  EXPECT_EQ(live.Current()->get(), v2->get()) << "no write: the same view";
}

TEST_P(LiveFleetTest, GpuTypeChangeIsAFullRead) {
  ASSERT_TRUE(a_->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
  ASSERT_TRUE(a_->CreateNode(MakeNode("n1", 8, "H100")).ok());
  LiveFleet live(a_.get());
  ASSERT_TRUE(live.Current().ok());
  ASSERT_TRUE(b_->CreateGpuType(MakeGpuType("L4", 24 * kGiB)).ok());
  ExpectCurrent(live);
  EXPECT_EQ(live.stats().full_reads, 2);
}

// Planners on views while writers commit from two stores: every view a reader gets is whole, and
// the last one equals the store.
TEST_P(LiveFleetTest, ConcurrentReadersAndWriters) {
  ASSERT_TRUE(a_->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
  for (int i = 0; i < 16; ++i)
    ASSERT_TRUE(a_->CreateNode(MakeNode(absl::StrCat("n", i), 8, "H100")).ok());
  LiveFleet live(a_.get());
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      SqlStore& s = w == 0 ? *a_ : *b_;
      for (int i = 0; i < 60; ++i) {
        (void)Commit(s, absl::StrCat("w", w, "-", i),
                     {MakePlacement(absl::StrCat("n", (i * 7 + w) % 16), {i % 8}, 2 * kGiB)});
      }
    });
  }
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&] {
      int64_t last = 0;
      for (int i = 0; i < 200 && !stop; ++i) {
        auto view = live.Current();
        ASSERT_TRUE(view.ok()) << view.status();
        EXPECT_GE((*view)->generation(), last);
        last = (*view)->generation();
        EXPECT_EQ((*view)->snapshot().nodes.size(), 16u);
        EXPECT_EQ((*view)->packing().domains().size(), 16u);
      }
    });
  }
  for (auto& t : threads) t.join();
  ExpectCurrent(live);
}

INSTANTIATE_TEST_SUITE_P(Backends, LiveFleetTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "Postgres" : "SqliteFile";
                         });

}  // namespace
}  // namespace fleetplan::storage
