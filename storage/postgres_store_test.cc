// What only the PostgreSQL backend has to guarantee, on a real PostgreSQL server this test starts
// (storage/testing/postgres_server.h): replicas racing for one GPU, the schema's own capacity
// check, migrations by replicas starting together, a newer schema refused, the writers' lock
// timing out instead of hanging, a broken connection re-established, and the SQLSTATE map. The
// behaviour every backend shares is in placement_store_test.cc and live_fleet_test.cc.

#include <libpq-fe.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/postgres.h"
#include "storage/sql_store.h"
#include "storage/store_test_util.h"
#include "storage/testing/postgres_server.h"

namespace fleetplan::storage {
namespace {

using testing::MakeGpuType;
using testing::MakeModel;
using testing::MakeNode;
using testing::MakePlacement;

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::PostgresServer::SkipRequested()) GTEST_SKIP() << "FLEETPLAN_SKIP_POSTGRES_TEST=1";
    std::string why;
    server_ = testing::SharedPostgresServer(&why);
    ASSERT_NE(server_, nullptr) << "cannot start PostgreSQL: " << why;
    name_ = std::string("pg_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto uri = server_->CreateDatabase(name_);
    ASSERT_TRUE(uri.ok()) << uri.status();
    uri_ = *uri;
  }
  std::unique_ptr<SqlStore> Open(std::chrono::milliseconds busy = std::chrono::milliseconds(5000)) {
    auto store = SqlStore::Open({.path = uri_, .busy_timeout = busy});
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }
  // An H100 node "n1" with 8 GPUs of 80 GiB and model "m".
  static void Fleet(SqlStore& store) {
    ASSERT_TRUE(store.CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
    ASSERT_TRUE(store.CreateNode(MakeNode("n1", 8, "H100")).ok());
    ASSERT_TRUE(store.CreateModel(MakeModel("m")).ok());
  }

  testing::PostgresServer* server_ = nullptr;
  std::string name_, uri_;
};

TEST_F(PostgresStoreTest, TwoReplicasRacingForOneGpuNeverBothCommit) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a && b);
  Fleet(*a);
  // Rounds: both plan on the same generation and commit 50 GiB of the same 80 GiB GPU at once.
  for (int round = 0; round < 6; ++round) {
    auto gen = a->FleetGeneration();
    ASSERT_TRUE(gen.ok());
    std::atomic<int> ok{0}, aborted{0};
    auto commit = [&](SqlStore& s, const std::string& id) {
      auto r = s.CommitPlacements({.request_id = id,
                                   .snapshot_generation = *gen,
                                   .placements = {MakePlacement("n1", {round}, 50 * kGiB)}});
      if (r.ok()) {
        ++ok;
      } else {
        EXPECT_TRUE(absl::IsAborted(r.status())) << r.status();
        ++aborted;
      }
    };
    std::thread ta([&] { commit(*a, absl::StrCat("a", round)); });
    std::thread tb([&] { commit(*b, absl::StrCat("b", round)); });
    ta.join();
    tb.join();
    EXPECT_EQ(ok.load(), 1) << "round " << round;
    EXPECT_EQ(aborted.load(), 1) << "round " << round;
  }
  auto snap = b->LoadSnapshot();
  ASSERT_TRUE(snap.ok());
  for (const auto& g : snap->FindNode("n1")->gpus) EXPECT_LE(g.committed_bytes, 80 * kGiB);
}

TEST_F(PostgresStoreTest, TheSchemaRefusesAnOverCommitWrittenBehindTheServersBack) {
  auto store = Open();
  ASSERT_TRUE(store);
  Fleet(*store);
  ASSERT_TRUE(store->CommitPlacements({.request_id = "r",
                                       .snapshot_generation = *store->FleetGeneration(),
                                       .placements = {MakePlacement("n1", {0}, 60 * kGiB)}})
                  .ok());
  // A buggy writer adds 30 GiB more to GPU 0 (80 GiB): the database itself refuses.
  auto raw = server_->Query(
      name_,
      "WITH p AS (INSERT INTO placements (deployment, model, replica, tp, pp, ep, num_ranks, "
      "state, request_id, created_unix_ms, expires_unix_ms, released_unix_ms) VALUES ('x', 'm', "
      "0, 1, 1, 1, 1, 'committed', 'raw', 0, 0, 0) RETURNING id) INSERT INTO placement_gpus "
      "SELECT id, 0, 'n1', 0, 32212254720 FROM p");
  ASSERT_FALSE(raw.ok());
  EXPECT_NE(raw.status().message().find("more than its 85899345920 bytes"), std::string::npos)
      << raw.status();
  // A reservation turned into a commit is checked too.
  auto reserved = server_->Query(
      name_,
      "WITH p AS (INSERT INTO placements (deployment, model, replica, tp, pp, ep, num_ranks, "
      "state, request_id, created_unix_ms, expires_unix_ms, released_unix_ms) VALUES ('x', 'm', "
      "0, 1, 1, 1, 1, 'reserved', 'raw2', 0, 1, 0) RETURNING id) INSERT INTO placement_gpus "
      "SELECT id, 0, 'n1', 0, 32212254720 FROM p");
  ASSERT_TRUE(reserved.ok()) << reserved.status();
  auto promote =
      server_->Query(name_, "UPDATE placements SET state = 'committed' WHERE request_id = 'raw2'");
  ASSERT_FALSE(promote.ok());
  EXPECT_NE(promote.status().message().find("more than its 85899345920 bytes"), std::string::npos)
      << promote.status();
  auto snap = store->LoadSnapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->FindNode("n1")->gpus[0].committed_bytes, 60 * kGiB);
}

TEST_F(PostgresStoreTest, ReplicasStartingTogetherMigrateOnceAndANewerSchemaIsRefused) {
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto store = SqlStore::Open({.path = uri_});
      EXPECT_TRUE(store.ok()) << store.status();
      if (store.ok() && (*store)->SchemaVersion() == CurrentSchemaVersion()) ++opened;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
  EXPECT_EQ(*server_->Query(name_, "SELECT COUNT(*) FROM fleetplan_schema"), "1");
  ASSERT_TRUE(server_->Query(name_, "UPDATE fleetplan_schema SET version = 99").ok());
  auto store = SqlStore::Open({.path = uri_});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("schema version 99"), std::string::npos)
      << store.status();
}

TEST_F(PostgresStoreTest, AWriterWaitsForAnotherReplicasLockOnlyAsLongAsItsBusyTimeout) {
  auto store = Open(std::chrono::milliseconds(300));
  ASSERT_TRUE(store);
  Fleet(*store);
  // Another replica is in the middle of a write (it holds the writers' lock).
  PGconn* other = PQconnectdb(uri_.c_str());
  ASSERT_EQ(PQstatus(other), CONNECTION_OK);
  PGresult* held = PQexec(other, absl::StrCat("BEGIN; SELECT pg_advisory_xact_lock(",
                                              PostgresDatabase::kWriteLockKey, ")")
                                     .c_str());
  ASSERT_EQ(PQresultStatus(held), PGRES_TUPLES_OK) << PQresultErrorMessage(held);
  PQclear(held);
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = store->CreateGpuType(MakeGpuType("A100", 80 * kGiB));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_LT(waited, std::chrono::seconds(5));
  // Reads never wait for writers.
  EXPECT_TRUE(store->LoadSnapshot().ok());
  PQclear(PQexec(other, "ROLLBACK"));
  PQfinish(other);
  EXPECT_TRUE(store->CreateGpuType(MakeGpuType("A100", 80 * kGiB)).ok());
  EXPECT_TRUE(store->GetGpuType("A100").ok());
}

TEST_F(PostgresStoreTest, ABrokenConnectionIsReestablishedAndNothingIsHalfWritten) {
  // This test restarts its PostgreSQL: its own, not the one other tests share.
  auto own = testing::PostgresServer::Start();
  ASSERT_TRUE(own.ok()) << own.status();
  auto uri = (*own)->CreateDatabase("restarted");
  ASSERT_TRUE(uri.ok()) << uri.status();
  uri_ = *uri;
  auto store = Open();
  ASSERT_TRUE(store);
  Fleet(*store);
  ASSERT_TRUE((*own)->Restart().ok());
  // The first calls may meet the broken connections (UNAVAILABLE, nothing written); then the
  // store reconnects by itself.
  absl::Status last;
  bool created = false;
  for (int i = 0; i < 5 && !created; ++i) {
    last = store->CreateGpuType(MakeGpuType("L40S", 48 * kGiB));
    created = last.ok() || absl::IsAlreadyExists(last);
    if (!created) {
      EXPECT_EQ(last.code(), absl::StatusCode::kUnavailable) << last;
    }
  }
  ASSERT_TRUE(created) << last;
  absl::StatusOr<FleetSnapshot> snap;
  for (int i = 0; i < 3; ++i) {
    snap = store->LoadSnapshot();
    if (snap.ok()) break;
  }
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->gpu_types.size(), 2u);
  EXPECT_NE(snap->FindNode("n1"), nullptr);
}

TEST_F(PostgresStoreTest, UnreachableOrMalformedTargetsAreNamed) {
  auto refused = SqlStore::Open({.path = "postgresql:///nodb?host=/nonexistent-dir&user=x"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("/nonexistent-dir"), std::string::npos)
      << refused.status();
  auto malformed = SqlStore::Open({.path = "postgresql://host/db?nosuchoption=1"});
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(malformed.status().message().find("nosuchoption"), std::string::npos)
      << malformed.status();
  auto negative = SqlStore::Open({.path = uri_, .busy_timeout = std::chrono::milliseconds(-1)});
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(negative.status().message().find("busy_timeout=-1"), std::string::npos);
  auto capped = SqlStore::Open({.path = uri_, .max_database_bytes = 1 << 20});
  ASSERT_FALSE(capped.ok());
  EXPECT_NE(capped.status().message().find("max_database_bytes"), std::string::npos);
  // The password never appears in what the store says about itself.
  auto store = SqlStore::Open({.path = uri_ + "&password=s3cret"});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->path().find("s3cret"), std::string::npos) << (*store)->path();
}

TEST(PostgresStatusTest, MapsSqlStates) {
  EXPECT_EQ(PostgresStatus("23505", "dup", "x").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(PostgresStatus("23503", "fk", "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(PostgresStatus("23514", "check", "x").code(), absl::StatusCode::kFailedPrecondition);
  const absl::Status serialization = PostgresStatus("40001", "ser", "x");
  EXPECT_EQ(serialization.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(IsRetryable(serialization));
  EXPECT_TRUE(IsRetryable(PostgresStatus("40P01", "deadlock", "x")));
  EXPECT_FALSE(IsRetryable(absl::AbortedError("stale plan")));
  EXPECT_EQ(PostgresStatus("08006", "gone", "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PostgresStatus("", "no server", "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PostgresStatus("57P01", "shutdown", "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PostgresStatus("25006", "read only", "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PostgresStatus("55P03", "lock", "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PostgresStatus("53100", "disk full", "x").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(PostgresStatus("22021", "bad utf8", "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PostgresStatus("28P01", "password", "x").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(PostgresStatus("XX001", "corrupt", "x").code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(PostgresStatus("42601", "syntax", "x").code(), absl::StatusCode::kInternal);
  EXPECT_NE(PostgresStatus("42601", "syntax error\n", "prepare").message().find(
                "postgresql prepare: syntax error (SQLSTATE 42601)"),
            std::string::npos);
  EXPECT_TRUE(IsPostgresTarget("postgresql://db.example/fleet"));
  EXPECT_TRUE(IsPostgresTarget("postgres://db.example/fleet"));
  EXPECT_FALSE(IsPostgresTarget("fleetplan.db"));
  EXPECT_FALSE(IsPostgresTarget(":memory:"));
}

}  // namespace
}  // namespace fleetplan::storage
