// SqlStore behaviour, every operation and its errors, on a real database file in a temp dir and
// on ":memory:" (the in-memory store server tests use: the same code, so it cannot drift from the
// real semantics the way a hand-written fake would).

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "planner/common/limits.h"
#include "planner/placement/fit.h"
#include "storage/sql_store.h"
#include "storage/store_test_util.h"
#include "storage/testing/postgres_server.h"

namespace fleetplan::storage {
namespace {

using placement::NodeState;
using placement::PlacementState;
using testing::MakeGpuType;
using testing::MakeModel;
using testing::MakeNode;
using testing::MakePlacement;

// Where the store under test keeps its data: a SQLite file, SQLite in memory, or a database on
// a PostgreSQL server this test binary started (storage/testing/postgres_server.h).
enum class Backend { kFile, kMemory, kPostgres };

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("store_test_" + std::to_string(::getpid()) + "_" +
            std::to_string(static_cast<int>(GetParam())));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (GetParam() == Backend::kPostgres && testing::PostgresServer::SkipRequested()) {
      GTEST_SKIP() << "FLEETPLAN_SKIP_POSTGRES_TEST=1";
    }
    target_ = Target();
    ASSERT_FALSE(target_.empty());
    auto store = Reopen();
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  std::string Target() {
    switch (GetParam()) {
      case Backend::kFile:
        return (dir_ / "fleet.db").string();
      case Backend::kMemory:
        return ":memory:";
      case Backend::kPostgres:
        break;
    }
    std::string why;
    testing::PostgresServer* server = testing::SharedPostgresServer(&why);
    if (server == nullptr) {
      ADD_FAILURE() << "cannot start PostgreSQL: " << why;
      return "";
    }
    auto uri = server->CreateDatabase(
        "store_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    EXPECT_TRUE(uri.ok()) << uri.status();
    return uri.ok() ? *uri : "";
  }
  absl::StatusOr<std::unique_ptr<SqlStore>> Reopen() {
    return SqlStore::Open({.path = target_, .now_unix_ms = [this] { return now_.load(); }});
  }
  bool InMemory() const { return GetParam() == Backend::kMemory; }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // An H100 node "n1" with 8 GPUs and model "m".
  void Fleet() {
    ASSERT_TRUE(store_->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
    ASSERT_TRUE(store_->CreateNode(MakeNode("n1", 8, "H100")).ok());
    ASSERT_TRUE(store_->CreateModel(MakeModel("m")).ok());
  }

  absl::StatusOr<CommitResult> Commit(const std::string& id, std::vector<Placement> placements,
                                      int64_t ttl_ms = 0) {
    auto gen = store_->FleetGeneration();
    if (!gen.ok()) return gen.status();
    return store_->CommitPlacements({.request_id = id,
                                     .snapshot_generation = *gen,
                                     .placements = placements,
                                     .reserve_ttl_ms = ttl_ms});
  }

  std::filesystem::path dir_;
  std::string target_;
  std::atomic<int64_t> now_{1'700'000'000'000};
  std::unique_ptr<SqlStore> store_;
};

TEST_P(StoreTest, GpuTypesCrud) {
  const GpuType h100{.name = "H100-80GB-HBM3",
                     .memory_bytes = 85017493504,
                     .memory_bandwidth_bytes_per_second = 3'350'000'000'000,
                     .bf16_tflops = 989,
                     .cost_per_hour = 2.5,
                     .nvlink_generation = 4};
  ASSERT_TRUE(store_->CreateGpuType(h100).ok());
  auto got = store_->GetGpuType("H100-80GB-HBM3");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->memory_bytes, 85017493504);
  EXPECT_DOUBLE_EQ(got->bf16_tflops, 989);
  EXPECT_EQ(got->nvlink_generation, 4);
  EXPECT_EQ(store_->CreateGpuType(h100).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->CreateGpuType(MakeGpuType("A100")).ok());
  auto all = store_->ListGpuTypes();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "A100");  // ordered by name
  ASSERT_TRUE(store_->CreateNode(MakeNode("n1", 1, "A100")).ok());
  EXPECT_EQ(store_->DeleteGpuType("A100").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->DeleteGpuType("H100-80GB-HBM3").ok());
  EXPECT_EQ(store_->DeleteGpuType("H100-80GB-HBM3").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetGpuType("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, BadInventoryInputWritesNothing) {
  ASSERT_TRUE(store_->CreateGpuType(MakeGpuType("H100")).ok());
  const int64_t gen = *store_->FleetGeneration();
  struct Case {
    const char* what;
    absl::Status status;
    absl::StatusCode code;
    const char* expect;
  };
  Node dup = MakeNode("dup", 2, "H100");
  dup.gpus[1].index = 0;
  Node bad_index = MakeNode("bi", 1, "H100");
  bad_index.gpus[0].index = 5000;
  Node negative_bw = MakeNode("bw", 1, "H100");
  negative_bw.inter_node_bandwidth_bytes_per_second = -1;
  Node bad_label = MakeNode("bl", 1, "H100");
  bad_label.labels["bad key"] = "x";
  const Case cases[] = {
      {"empty type name", store_->CreateGpuType(MakeGpuType("")),
       absl::StatusCode::kInvalidArgument, "gpu_type.name must not be empty"},
      {"negative memory", store_->CreateGpuType(MakeGpuType("X", -5)),
       absl::StatusCode::kInvalidArgument, "memory_bytes=-5 must be > 0"},
      {"zero memory", store_->CreateGpuType(MakeGpuType("X", 0)),
       absl::StatusCode::kInvalidArgument, "memory_bytes=0"},
      {"empty node", store_->CreateNode(MakeNode("", 1, "H100")).status(),
       absl::StatusCode::kInvalidArgument, "node.name must not be empty"},
      {"no pool", store_->CreateNode(MakeNode("np", 1, "H100", "")).status(),
       absl::StatusCode::kInvalidArgument, "pool must not be empty"},
      {"duplicate index", store_->CreateNode(dup).status(), absl::StatusCode::kInvalidArgument,
       "gpu index=0 appears twice"},
      {"index out of range", store_->CreateNode(bad_index).status(),
       absl::StatusCode::kInvalidArgument, "gpu index=5000 must be in [0, 1024)"},
      {"negative bandwidth", store_->CreateNode(negative_bw).status(),
       absl::StatusCode::kInvalidArgument, "inter_node_bandwidth_bytes_per_second=-1"},
      {"bad label", store_->CreateNode(bad_label).status(), absl::StatusCode::kInvalidArgument,
       "label key"},
      {"unknown gpu type", store_->CreateNode(MakeNode("ut", 2, "B200")).status(),
       absl::StatusCode::kNotFound, "unknown gpu_type \"B200\""},
      {"control chars", store_->CreateNode(MakeNode("a\nb", 1, "H100")).status(),
       absl::StatusCode::kInvalidArgument, "control characters"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.code(), c.code) << c.what << ": " << c.status;
    EXPECT_NE(c.status.message().find(c.expect), std::string::npos) << c.what << ": " << c.status;
  }
  EXPECT_EQ(*store_->FleetGeneration(), gen);
  EXPECT_TRUE(store_->ListNodes({}, 0, "")->nodes.empty());
}

TEST_P(StoreTest, NodesCrudPaginationAndFilters) {
  ASSERT_TRUE(store_->CreateGpuType(MakeGpuType("H100")).ok());
  ASSERT_TRUE(store_->CreateGpuType(MakeGpuType("L4", 22 * kGiB)).ok());
  for (int i = 0; i < 5; ++i) {
    Node n = MakeNode("h" + std::to_string(i), 8, "H100", "pool-a");
    n.labels["tier"] = i % 2 == 0 ? "gold" : "silver";
    ASSERT_TRUE(store_->CreateNode(n).ok());
  }
  ASSERT_TRUE(store_->CreateNode(MakeNode("l0", 1, "L4", "pool-b")).ok());
  EXPECT_EQ(store_->CreateNode(MakeNode("l0", 1, "L4")).status().code(),
            absl::StatusCode::kAlreadyExists);

  auto page1 = store_->ListNodes({}, 4, "");
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(page1->nodes.size(), 4u);
  EXPECT_EQ(page1->nodes[0].name, "h0");
  EXPECT_EQ(page1->nodes[0].gpus.size(), 8u);
  auto page2 = store_->ListNodes({}, 4, page1->next_page_token);
  ASSERT_TRUE(page2.ok());
  EXPECT_EQ(page2->nodes.size(), 2u);
  EXPECT_TRUE(page2->next_page_token.empty());

  EXPECT_EQ(store_->ListNodes({.pool = "pool-b"}, 0, "")->nodes.size(), 1u);
  EXPECT_EQ(store_->ListNodes({.gpu_type = "H100"}, 0, "")->nodes.size(), 5u);
  EXPECT_EQ(store_->ListNodes({.labels = {{"tier", "gold"}}}, 0, "")->nodes.size(), 3u);
  EXPECT_EQ(
      store_->ListNodes({.pool = "pool-a", .labels = {{"tier", "silver"}}}, 0, "")->nodes.size(),
      2u);
  EXPECT_EQ(store_->ListNodes({}, 5000, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListNodes({}, -1, "").status().code(), absl::StatusCode::kInvalidArgument);

  auto got = store_->GetNode("h2");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->labels.at("tier"), "gold");
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(store_->GetNode("zz").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, UpdateNodeWithEtag) {
  Fleet();
  Node n = *store_->GetNode("n1");
  n.zone = "zone-2";
  n.gpus.pop_back();  // remove GPU 7
  auto updated = store_->UpdateNode(n, /*expected_version=*/1);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version, 2);
  EXPECT_EQ(updated->zone, "zone-2");
  EXPECT_EQ(updated->gpus.size(), 7u);
  auto stale = store_->UpdateNode(n, 1);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(stale.status().message().find("etag"), std::string::npos);

  // A GPU with a placement cannot be removed.
  ASSERT_TRUE(Commit("r1", {MakePlacement("n1", {0}, 10 * kGiB)}).ok());
  Node shrink = *store_->GetNode("n1");
  shrink.gpus.erase(shrink.gpus.begin());
  auto refused = store_->UpdateNode(shrink, shrink.version);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_EQ(store_->GetNode("n1")->gpus.size(), 7u);
}

TEST_P(StoreTest, CommitSnapshotReleaseRoundTrip) {
  Fleet();
  auto r =
      Commit("r1", {MakePlacement("n1", {0, 1}, 30 * kGiB), MakePlacement("n1", {2}, 5 * kGiB)});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->placement_ids.size(), 2u);
  auto snap = store_->LoadSnapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->generation, r->generation);
  const auto& gpus = snap->FindNode("n1")->gpus;
  EXPECT_EQ(gpus[0].committed_bytes, 30 * kGiB);
  EXPECT_EQ(gpus[2].committed_bytes, 5 * kGiB);
  EXPECT_EQ(snap->FreeBytes(gpus[0]), 50 * kGiB);
  EXPECT_EQ(snap->FreeBytes(gpus[3]), 80 * kGiB);

  auto p = store_->GetPlacement(r->placement_ids[0]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->ranks.size(), 2u);
  EXPECT_EQ(p->state, PlacementState::kCommitted);
  EXPECT_EQ(p->request_id, "r1");

  auto released = store_->ReleasePlacement(r->placement_ids[0]);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->state, PlacementState::kReleased);
  auto again = store_->ReleasePlacement(r->placement_ids[0]);  // idempotent
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state, PlacementState::kReleased);
  EXPECT_EQ(store_->LoadSnapshot()->FindNode("n1")->gpus[0].committed_bytes, 0);
  EXPECT_EQ(store_->ReleasePlacement(9999).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ListPlacements({})->size(), 1u);
  EXPECT_EQ(store_->ListPlacements({.include_released = true})->size(), 2u);
}

TEST_P(StoreTest, CommitIsIdempotentByRequestId) {
  Fleet();
  const int64_t gen = *store_->FleetGeneration();
  CommitRequest req{.request_id = "same",
                    .snapshot_generation = gen,
                    .placements = {MakePlacement("n1", {0}, 10 * kGiB)}};
  auto first = store_->CommitPlacements(req);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->replayed);
  auto retry = store_->CommitPlacements(req);  // stale generation now, but a retry
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->placement_ids, first->placement_ids);
  EXPECT_EQ(store_->LoadSnapshot()->FindNode("n1")->gpus[0].committed_bytes, 10 * kGiB);
  req.placements[0].ranks[0].bytes = 11 * kGiB;
  EXPECT_EQ(store_->CommitPlacements(req).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_P(StoreTest, StaleOrOvercommittingPlansAreAborted) {
  Fleet();
  const int64_t snapshot = *store_->FleetGeneration();
  // Scheduler A commits on GPU 0.
  ASSERT_TRUE(store_
                  ->CommitPlacements({.request_id = "a",
                                      .snapshot_generation = snapshot,
                                      .placements = {MakePlacement("n1", {0}, 40 * kGiB)}})
                  .ok());
  // Scheduler B planned from the same snapshot onto GPU 0: stale.
  auto stale = store_->CommitPlacements({.request_id = "b",
                                         .snapshot_generation = snapshot,
                                         .placements = {MakePlacement("n1", {0, 1}, 10 * kGiB)}});
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(stale.status().message().find("n1/0 changed"), std::string::npos) << stale.status();
  // B's plan onto untouched GPUs 4 and 5 still commits.
  EXPECT_TRUE(store_
                  ->CommitPlacements({.request_id = "b2",
                                      .snapshot_generation = snapshot,
                                      .placements = {MakePlacement("n1", {4, 5}, 10 * kGiB)}})
                  .ok());
  // Over-commit from a fresh snapshot.
  auto over = Commit("c", {MakePlacement("n1", {0}, 41 * kGiB)});
  EXPECT_EQ(over.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(over.status().message().find("over-committed"), std::string::npos) << over.status();
  // Two placements of one request on one GPU count together.
  auto together =
      Commit("d", {MakePlacement("n1", {6}, 50 * kGiB), MakePlacement("n1", {6}, 31 * kGiB)});
  EXPECT_EQ(together.status().code(), absl::StatusCode::kAborted);
  // Nothing half-written.
  EXPECT_EQ(store_->LoadSnapshot()->FindNode("n1")->gpus[6].committed_bytes, 0);
  EXPECT_EQ(store_->ListPlacements({})->size(), 2u);
}

TEST_P(StoreTest, BadCommitsAreRejectedWithFieldAndValue) {
  Fleet();
  struct Case {
    const char* what;
    CommitRequest req;
    absl::StatusCode code;
    const char* expect;
  };
  const int64_t gen = *store_->FleetGeneration();
  auto base = [&](std::vector<Placement> p) {
    return CommitRequest{.request_id = "x", .snapshot_generation = gen, .placements = p};
  };
  Placement negative = MakePlacement("n1", {0}, -1);
  Placement dup_rank = MakePlacement("n1", {0, 1}, kGiB);
  dup_rank.ranks[1].rank = 0;
  Placement dup_gpu = MakePlacement("n1", {0, 0}, kGiB);
  Placement no_ranks = MakePlacement("n1", {}, kGiB);
  no_ranks.tp = 1;
  Placement zero_tp = MakePlacement("n1", {0}, kGiB);
  zero_tp.tp = 0;
  CommitRequest empty_id = base({MakePlacement("n1", {0}, kGiB)});
  empty_id.request_id = "";
  CommitRequest future = base({MakePlacement("n1", {0}, kGiB)});
  future.snapshot_generation = gen + 100;
  CommitRequest negative_ttl = base({MakePlacement("n1", {0}, kGiB)});
  negative_ttl.reserve_ttl_ms = -5;
  const Case cases[] = {
      {"empty request id", empty_id, absl::StatusCode::kInvalidArgument,
       "request_id must not be empty"},
      {"no placements", base({}), absl::StatusCode::kInvalidArgument,
       "placements must not be empty"},
      {"negative bytes", base({negative}), absl::StatusCode::kInvalidArgument,
       "bytes=-1 must be > 0"},
      {"duplicate rank", base({dup_rank}), absl::StatusCode::kInvalidArgument, "rank=0"},
      {"gpu twice", base({dup_gpu}), absl::StatusCode::kInvalidArgument, "holds two ranks"},
      {"no ranks", base({no_ranks}), absl::StatusCode::kInvalidArgument, "ranks must not be empty"},
      {"zero tp", base({zero_tp}), absl::StatusCode::kInvalidArgument, "tp=0"},
      {"unknown gpu", base({MakePlacement("n1", {8}, kGiB)}), absl::StatusCode::kNotFound,
       "gpu n1/8 not found"},
      {"unknown node", base({MakePlacement("n9", {0}, kGiB)}), absl::StatusCode::kNotFound,
       "gpu n9/0"},
      {"future snapshot", future, absl::StatusCode::kInvalidArgument, "is newer than the fleet's"},
      {"negative ttl", negative_ttl, absl::StatusCode::kInvalidArgument, "reserve_ttl_ms=-5"},
  };
  for (const Case& c : cases) {
    auto r = store_->CommitPlacements(c.req);
    EXPECT_EQ(r.status().code(), c.code) << c.what << ": " << r.status();
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.what << ": " << r.status();
  }
  EXPECT_EQ(*store_->FleetGeneration(), gen);
  EXPECT_TRUE(store_->ListPlacements({.include_released = true})->empty());
}

TEST_P(StoreTest, ReservationsExpireAndCanBeCommitted) {
  Fleet();
  auto res = Commit("res", {MakePlacement("n1", {0}, 70 * kGiB)}, /*ttl_ms=*/60'000);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(store_->GetPlacement(res->placement_ids[0])->state, PlacementState::kReserved);
  EXPECT_EQ(store_->LoadSnapshot()->FindNode("n1")->gpus[0].reserved_bytes, 70 * kGiB);
  // While reserved, the capacity is taken.
  EXPECT_EQ(Commit("other", {MakePlacement("n1", {0}, 20 * kGiB)}).status().code(),
            absl::StatusCode::kAborted);
  auto committed = store_->CommitReservation("res", {});
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(store_->GetPlacement(res->placement_ids[0])->state, PlacementState::kCommitted);
  EXPECT_TRUE(store_->CommitReservation("res", {})->replayed);  // idempotent

  // A second reservation expires after its TTL and stops counting.
  auto res2 = Commit("res2", {MakePlacement("n1", {1}, 70 * kGiB)}, 1000);
  ASSERT_TRUE(res2.ok());
  now_ += 1001;
  EXPECT_EQ(store_->LoadSnapshot()->FindNode("n1")->gpus[1].reserved_bytes, 0);
  EXPECT_EQ(store_->CommitReservation("res2", {}).status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(Commit("after", {MakePlacement("n1", {1}, 70 * kGiB)}).ok());
  EXPECT_EQ(store_->CommitReservation("nope", {}).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, DrainAndDeleteNodeWithPlacements) {
  Fleet();
  auto r = Commit("r", {MakePlacement("n1", {0, 1}, 10 * kGiB)});
  ASSERT_TRUE(r.ok());
  auto drain = store_->SetNodeState("n1", NodeState::kDraining, false);
  EXPECT_EQ(drain.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(drain.status().message().find(std::to_string(r->placement_ids[0])), std::string::npos)
      << drain.status();
  EXPECT_TRUE(store_->SetNodeState("n1", NodeState::kCordoned, false).ok());
  // Cordoned: nothing new lands there.
  EXPECT_EQ(Commit("x", {MakePlacement("n1", {3}, kGiB)}).status().code(),
            absl::StatusCode::kAborted);
  EXPECT_TRUE(store_->SetNodeState("n1", NodeState::kDraining, true).ok());
  auto del = store_->DeleteNode("n1", false);
  EXPECT_EQ(del.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->GetNode("n1").ok());
  EXPECT_TRUE(store_->DeleteNode("n1", true).ok());
  EXPECT_EQ(store_->GetNode("n1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetPlacement(r->placement_ids[0])->state, PlacementState::kReleased);
  EXPECT_EQ(store_->DeleteNode("n1", false).code(), absl::StatusCode::kNotFound);
}

// A model imported from a GGUF header keeps it in gguf_json (config_json empty); exactly one of
// the two is set, and a list marks such a model with "{}" instead of carrying the header.
TEST_P(StoreTest, GgufModelKeepsItsHeader) {
  ModelRecord m = MakeModel("q4");
  m.config_json.clear();
  m.gguf_json = R"({"metadata":{"general.architecture":"llama"}})";
  ASSERT_TRUE(store_->CreateModel(m).ok());
  auto got = store_->GetModel("q4");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->gguf_json, m.gguf_json);
  EXPECT_TRUE(got->config_json.empty());
  auto list = store_->ListModels();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].gguf_json, "{}");
  ModelRecord both = MakeModel("both");
  both.gguf_json = m.gguf_json;
  absl::Status s = store_->CreateModel(both);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("not both"), std::string::npos) << s;
  ModelRecord none = MakeModel("none");
  none.config_json.clear();
  EXPECT_EQ(store_->CreateModel(none).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetModel("both").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, ModelsCatalog) {
  ASSERT_TRUE(store_->CreateGpuType(MakeGpuType("H100")).ok());
  ASSERT_TRUE(store_->CreateNode(MakeNode("n1", 2, "H100")).ok());
  ASSERT_TRUE(store_->CreateModel(MakeModel("llama")).ok());
  EXPECT_EQ(store_->CreateModel(MakeModel("llama")).code(), absl::StatusCode::kAlreadyExists);
  ModelRecord bad = MakeModel("bad");
  bad.params = 0;
  EXPECT_EQ(store_->CreateModel(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = MakeModel("bad");
  bad.config_json = "";
  EXPECT_EQ(store_->CreateModel(bad).code(), absl::StatusCode::kInvalidArgument);
  auto got = store_->GetModel("llama");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->config_json, R"({"model_type": "llama"})");
  auto list = store_->ListModels();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].config_json.empty());  // listing is cheap
  EXPECT_EQ((*list)[0].params, 8'000'000'000);
  EXPECT_TRUE((*list)[0].gguf_json.empty());
  auto r = Commit("r", {MakePlacement("n1", {0}, kGiB, "llama")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(store_->DeleteModel("llama").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->ReleasePlacement(r->placement_ids[0]).ok());
  EXPECT_TRUE(store_->DeleteModel("llama").ok());
  EXPECT_EQ(store_->DeleteModel("llama").code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, DeploymentsCrud) {
  Fleet();
  ASSERT_TRUE(store_
                  ->CreateDeployment({.name = "chat",
                                      .model = "m",
                                      .replicas = 2,
                                      .spec_json = R"({"context_tokens": 8192})"})
                  .ok());
  EXPECT_EQ(store_->CreateDeployment({.name = "chat", .model = "m"}).code(),
            absl::StatusCode::kAlreadyExists);
  auto unknown = store_->CreateDeployment({.name = "x", .model = "nope"});
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound) << unknown;
  EXPECT_NE(unknown.message().find("model \"nope\""), std::string::npos);
  EXPECT_EQ(store_->CreateDeployment({.name = "y", .model = "m", .replicas = -1}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateDeployment({.name = "", .model = "m"}).code(),
            absl::StatusCode::kInvalidArgument);
  auto got = store_->GetDeployment("chat");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->replicas, 2);
  EXPECT_EQ(got->spec_json, R"({"context_tokens": 8192})");
  EXPECT_EQ(store_->ListDeployments()->size(), 1u);
  // The model it uses cannot go; a placed deployment cannot go.
  EXPECT_EQ(store_->DeleteModel("m").code(), absl::StatusCode::kFailedPrecondition);
  auto r = Commit("r", {MakePlacement("n1", {0}, kGiB, "m", "chat")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(store_->DeleteDeployment("chat").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->ReleasePlacement(r->placement_ids[0]).ok());
  EXPECT_TRUE(store_->DeleteDeployment("chat").ok());
  EXPECT_EQ(store_->GetDeployment("chat").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteDeployment("chat").code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, GenerationCountsEveryCapacityChange) {
  Fleet();
  int64_t g = *store_->FleetGeneration();
  auto r = Commit("r", {MakePlacement("n1", {0}, kGiB)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*store_->FleetGeneration(), ++g);
  ASSERT_TRUE(store_->ReleasePlacement(r->placement_ids[0]).ok());
  EXPECT_EQ(*store_->FleetGeneration(), ++g);
  ASSERT_TRUE(store_->SetNodeState("n1", NodeState::kCordoned, false).ok());
  EXPECT_EQ(*store_->FleetGeneration(), ++g);
  EXPECT_EQ(store_->LoadSnapshot()->FindNode("n1")->gpus[5].changed_generation, g);
}

// One rule for "fits": the store's commit check and the planner's FitsOnGpu are the same function;
// a GPU filled to exactly its memory commits, one byte more does not, and byte counts that would
// overflow a sum are refused before any arithmetic.
TEST_P(StoreTest, CommitFitsExactlyAsThePlannerDecides) {
  Fleet();
  const int64_t memory = 80 * kGiB;
  EXPECT_TRUE(Commit("half", {MakePlacement("n1", {0}, memory / 2)}).ok());
  EXPECT_EQ(placement::FitsOnGpu(placement::FreeBytes(memory, memory / 2), memory / 2 + 1), false);
  EXPECT_EQ(Commit("over", {MakePlacement("n1", {0}, memory / 2 + 1)}).status().code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(placement::FitsOnGpu(placement::FreeBytes(memory, memory / 2), memory / 2), true);
  auto exact = Commit("exact", {MakePlacement("n1", {0}, memory / 2)});
  EXPECT_TRUE(exact.ok()) << exact.status();
  // used + bytes would overflow int64 (the old check wrapped around and accepted it).
  auto huge = Commit("huge", {MakePlacement("n1", {1}, INT64_MAX - 10)});
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument) << huge.status();
  EXPECT_NE(huge.status().message().find("bytes="), std::string::npos) << huge.status();
  // A reservation does not commit onto a node drained after it was made.
  auto reserved = Commit("res", {MakePlacement("n1", {2}, kGiB)}, 60'000);
  ASSERT_TRUE(reserved.ok());
  ASSERT_TRUE(store_->SetNodeState("n1", NodeState::kDraining, /*force=*/true).ok());
  auto late = store_->CommitReservation("res", {});
  EXPECT_EQ(late.status().code(), absl::StatusCode::kAborted) << late.status();
  EXPECT_NE(late.status().message().find("not schedulable"), std::string::npos) << late.status();
}

// One limits table: the store and the planner refuse the same replica count with the same limit.
TEST_P(StoreTest, ReplicaLimitIsThePlannersLimit) {
  Fleet();
  auto d = store_->CreateDeployment({.name = "big", .model = "m", .replicas = 20000});
  EXPECT_EQ(d.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(d.message().find(absl::StrCat(limits::kMaxReplicasPerDeployment)), std::string::npos)
      << d;
  EXPECT_TRUE(store_
                  ->CreateDeployment(
                      {.name = "ok", .model = "m", .replicas = limits::kMaxReplicasPerDeployment})
                  .ok());
}

// Commits write their deployment records in the same transaction: a refused commit leaves none.
TEST_P(StoreTest, RefusedCommitWritesNoDeployment) {
  Fleet();
  const int64_t gen = *store_->FleetGeneration();
  CommitRequest stale{.request_id = "s",
                      .snapshot_generation = gen,
                      .placements = {MakePlacement("n1", {0}, kGiB)},
                      .deployments = {{.name = "chat", .model = "m", .replicas = 1}}};
  ASSERT_TRUE(Commit("first", {MakePlacement("n1", {0}, kGiB)}).ok());
  EXPECT_EQ(store_->CommitPlacements(stale).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store_->GetDeployment("chat").status().code(), absl::StatusCode::kNotFound);
  stale.snapshot_generation = *store_->FleetGeneration();
  stale.placements = {MakePlacement("n1", {3}, kGiB)};
  ASSERT_TRUE(store_->CommitPlacements(stale).ok());
  EXPECT_EQ(store_->GetDeployment("chat")->replicas, 1);
}

// Reservations expire at a wall-clock instant; the store's clock never runs backwards, so a clock
// stepped back neither extends a reservation nor revives an expired one.
TEST_P(StoreTest, ClockStepsNeitherExtendNorReviveReservations) {
  Fleet();
  const int64_t t0 = now_.load();
  auto res = Commit("res", {MakePlacement("n1", {0}, 10 * kGiB)}, /*ttl_ms=*/60'000);
  ASSERT_TRUE(res.ok());
  now_ = t0 - 3'600'000;  // stepped back an hour
  EXPECT_EQ(store_->LoadSnapshot()->FindNode("n1")->gpus[0].reserved_bytes, 10 * kGiB);
  now_ = t0 + 61'000;  // past the expiry
  EXPECT_EQ(store_->LoadSnapshot()->FindNode("n1")->gpus[0].reserved_bytes, 0);
  now_ = t0;  // stepped back again: stays expired
  EXPECT_EQ(store_->LoadSnapshot()->FindNode("n1")->gpus[0].reserved_bytes, 0);
  EXPECT_EQ(store_->CommitReservation("res", {}).status().code(), absl::StatusCode::kAborted);
}

TEST_P(StoreTest, ImportNodesCreatesUpdatesAndLeavesUnchanged) {
  ASSERT_TRUE(store_->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
  ASSERT_TRUE(store_->CreateGpuType(MakeGpuType("L4", 24 * kGiB)).ok());
  ASSERT_TRUE(store_->CreateNode(MakeNode("a", 8, "H100")).ok());
  ASSERT_TRUE(store_->CreateNode(MakeNode("b", 8, "H100")).ok());
  Node b2 = MakeNode("b", 4, "L4", "pool-b");
  Node c = MakeNode("c", 8, "H100");
  c.gpus[0].uuid = "GPU-c0";
  auto r = store_->ImportNodes({MakeNode("a", 8, "H100"), b2, c}, {});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].outcome, NodeImportResult::Outcome::kUnchanged);
  EXPECT_EQ((*r)[1].outcome, NodeImportResult::Outcome::kUpdated);
  EXPECT_EQ((*r)[2].outcome, NodeImportResult::Outcome::kCreated);
  auto b = store_->GetNode("b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->pool, "pool-b");
  EXPECT_EQ(b->gpus.size(), 4u);
  EXPECT_EQ(b->version, 2);
  EXPECT_EQ(store_->GetNode("a")->version, 1) << "unchanged is not rewritten";
  // Importing the same again changes nothing.
  auto again = store_->ImportNodes({MakeNode("a", 8, "H100"), b2, c}, {});
  ASSERT_TRUE(again.ok());
  for (const auto& res : *again) EXPECT_EQ(res.outcome, NodeImportResult::Outcome::kUnchanged);
}

TEST_P(StoreTest, ImportNodesRefusesTheWholeBatchNamingEachProblem) {
  ASSERT_TRUE(store_->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
  Node holder = MakeNode("holder", 8, "H100");
  holder.gpus[0].uuid = "GPU-x";
  ASSERT_TRUE(store_->CreateNode(holder).ok());
  const int64_t generation = *store_->FleetGeneration();
  Node bad_name = MakeNode("Bad Name", 8, "H100");
  Node unknown_type = MakeNode("u", 8, "H200");
  Node taken_uuid = MakeNode("t", 8, "H100");
  taken_uuid.gpus[3].uuid = "GPU-x";
  auto r =
      store_->ImportNodes({MakeNode("fine", 8, "H100"), bad_name, MakeNode("fine", 8, "H100")}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("nodes[1]"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("repeats nodes[0]"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("nothing was written"), std::string::npos);
  r = store_->ImportNodes({MakeNode("fine", 8, "H100"), unknown_type, taken_uuid}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("H200"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("GPU-x"), std::string::npos) << r.status();
  EXPECT_TRUE(absl::IsNotFound(store_->GetNode("fine").status())) << "nothing of the batch";
  EXPECT_EQ(*store_->FleetGeneration(), generation);
  // A UUID may move between nodes within one batch.
  Node moved = MakeNode("holder", 8, "H100");
  Node gets = MakeNode("gets", 8, "H100");
  gets.gpus[0].uuid = "GPU-x";
  EXPECT_TRUE(store_->ImportNodes({moved, gets}, {}).ok());
  // A GPU holding placements cannot be removed by an import.
  ASSERT_TRUE(store_->CreateModel(MakeModel("m")).ok());
  ASSERT_TRUE(Commit("p", {MakePlacement("gets", {7}, 10 * kGiB)}).ok());
  r = store_->ImportNodes({MakeNode("gets", 4, "H100")}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("gpu 7"), std::string::npos) << r.status();
}

TEST_P(StoreTest, ImportNodesValidateOnlyWritesNothing) {
  ASSERT_TRUE(store_->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
  auto r = store_->ImportNodes({MakeNode("x", 8, "H100")}, {.validate_only = true});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].outcome, NodeImportResult::Outcome::kCreated);
  EXPECT_TRUE(absl::IsNotFound(store_->GetNode("x").status()));
  EXPECT_FALSE(store_->ImportNodes({}, {}).ok());
}

// Concurrent commits share transactions (group commit): every acknowledged one is there, each
// refused one (an over-commit) rolls back alone, and fewer transactions than writes ran.
TEST_P(StoreTest, ConcurrentCommitsShareTransactionsAndFailAlone) {
  ASSERT_TRUE(store_->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
  for (int n = 0; n < 8; ++n)
    ASSERT_TRUE(store_->CreateNode(MakeNode(absl::StrCat("g", n), 8, "H100")).ok());
  ASSERT_TRUE(store_->CreateModel(MakeModel("m")).ok());
  const int64_t batches_before = store_->group_batches();
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        // Thread 0 asks for more than a GPU holds every third time: refused, alone.
        const int64_t bytes = t == 0 && i % 3 == 0 ? 90 * kGiB : 1 * kGiB;
        auto r = store_->CommitPlacements(
            {.request_id = absl::StrCat("t", t, "-", i),
             .snapshot_generation = *store_->FleetGeneration(),
             .placements = {MakePlacement(absl::StrCat("g", t), {i % 8}, bytes)}});
        if (r.ok()) {
          ++ok;
        } else {
          EXPECT_TRUE(absl::IsAborted(r.status())) << r.status();
          ++refused;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8 * 30 - 10);
  EXPECT_EQ(refused.load(), 10);
  auto placements = store_->ListPlacements({});
  ASSERT_TRUE(placements.ok());
  EXPECT_EQ(static_cast<int>(placements->size()), ok.load());
  const int64_t batches = store_->group_batches() - batches_before;
  // On a file every commit waits for its fsync, so writes queue behind it and batch.
  if (!InMemory()) {
    EXPECT_LT(batches, 8 * 30) << "writes shared transactions";
  }
  std::printf("%d writes in %lld group transactions\n", 8 * 30, static_cast<long long>(batches));
}

TEST_P(StoreTest, SurvivesReopen) {
  if (InMemory()) GTEST_SKIP() << "an in-memory store does not survive closing";
  Fleet();
  auto r = Commit("r", {MakePlacement("n1", {0, 1}, 10 * kGiB)});
  ASSERT_TRUE(r.ok());
  store_.reset();
  auto reopened = Reopen();
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->LoadSnapshot()->FindNode("n1")->gpus[1].committed_bytes, 10 * kGiB);
  EXPECT_TRUE((*reopened)->CheckIntegrity().ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(Backend::kFile, Backend::kMemory, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& param) {
                           switch (param.param) {
                             case Backend::kFile:
                               return "File";
                             case Backend::kMemory:
                               return "Memory";
                             case Backend::kPostgres:
                               return "Postgres";
                           }
                           return "Unknown";
                         });

}  // namespace
}  // namespace fleetplan::storage
