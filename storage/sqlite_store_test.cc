#include "storage/sql_store.h"
#include "storage/sqlite.h"

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace fleetplan::storage {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("sqlite_store_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string DbPath() const { return (dir_ / "fleet.db").string(); }

  std::filesystem::path dir_;
};

TEST_F(SqliteStoreTest, OpensNewFileAtCurrentVersion) {
  auto store = SqlStore::Open({.path = DbPath()});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->SchemaVersion(), CurrentSchemaVersion());
  auto generation = (*store)->FleetGeneration();
  ASSERT_TRUE(generation.ok()) << generation.status();
  EXPECT_EQ(*generation, 0);
}

TEST_F(SqliteStoreTest, ReopenKeepsVersionAndSettings) {
  { ASSERT_TRUE(SqlStore::Open({.path = DbPath()}).ok()); }
  auto store = SqlStore::Open({.path = DbPath()});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->SchemaVersion(), CurrentSchemaVersion());

  auto db = SqliteDatabase::Open(DbPath());
  ASSERT_TRUE(db.ok());
  auto journal = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE(*journal->Step());
  EXPECT_EQ(journal->ColumnText(0), "wal");
}

TEST_F(SqliteStoreTest, OpensDatabaseAtEveryOlderVersion) {
  for (int64_t v = 0; v < CurrentSchemaVersion(); ++v) {
    const std::string path = (dir_ / ("v" + std::to_string(v) + ".db")).string();
    {
      auto db = SqliteDatabase::Open(path);
      ASSERT_TRUE(db.ok());
      auto reached = MigrateDatabase(**db, v);
      ASSERT_TRUE(reached.ok()) << reached.status();
      ASSERT_EQ(*reached, v);
    }
    auto store = SqlStore::Open({.path = path});
    ASSERT_TRUE(store.ok()) << "from version " << v << ": " << store.status();
    EXPECT_EQ((*store)->SchemaVersion(), CurrentSchemaVersion());
  }
}

// v6 marks the ranks of placements released before it, and every later release, so that what a
// GPU holds is read from live ranks only; the fleet's usage is what it was.
TEST_F(SqliteStoreTest, V6MarksReleasedRanksAndKeepsTheUsage) {
  {
    auto db = SqliteDatabase::Open(DbPath());
    ASSERT_TRUE(db.ok());
    ASSERT_EQ(*MigrateDatabase(**db, 5), 5);
    ASSERT_TRUE((*db)
                    ->Exec(R"sql(
      INSERT INTO gpu_types VALUES ('H100', 85899345920, 0, 0, 0, 0);
      INSERT INTO nodes VALUES ('n1', 'p', 'z', 'r', '{}', 'active', 0, 1);
      INSERT INTO gpus VALUES ('n1', 0, 'H100', 0, 1, '', 0);
      INSERT INTO placements VALUES (1, 'd', 'm', 0, 1, 1, 1, 1, 'released', 'a', 0, 0, 5);
      INSERT INTO placements VALUES (2, 'd', 'm', 1, 1, 1, 1, 1, 'committed', 'b', 0, 0, 0);
      INSERT INTO placement_gpus VALUES (1, 0, 'n1', 0, 1000);
      INSERT INTO placement_gpus VALUES (2, 0, 'n1', 0, 2000);
    )sql")
                    .ok());
  }
  auto store = SqlStore::Open({.path = DbPath()});
  ASSERT_TRUE(store.ok()) << store.status();
  auto count_released = [&] {
    auto db = SqliteDatabase::Open(DbPath());
    return (*db)->QueryInt("SELECT SUM(released) FROM placement_gpus");
  };
  EXPECT_EQ(*count_released(), 1) << "the placement released before v6";
  EXPECT_EQ((*store)->LoadSnapshot()->FindNode("n1")->gpus[0].committed_bytes, 2000);
  ASSERT_TRUE((*store)->ReleasePlacement(2).ok());
  EXPECT_EQ(*count_released(), 2) << "a release marks its ranks";
  EXPECT_EQ((*store)->LoadSnapshot()->FindNode("n1")->gpus[0].committed_bytes, 0);
}

TEST_F(SqliteStoreTest, RefusesNewerDatabase) {
  {
    auto db = SqliteDatabase::Open(DbPath());
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(
        (*db)->Exec("PRAGMA user_version=" + std::to_string(CurrentSchemaVersion() + 1)).ok());
  }
  auto store = SqlStore::Open({.path = DbPath()});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status();
}

TEST_F(SqliteStoreTest, BadOptionsAreInvalidArgument) {
  EXPECT_EQ(SqlStore::Open({.path = ""}).status().code(), absl::StatusCode::kInvalidArgument);
  auto negative =
      SqlStore::Open({.path = DbPath(), .busy_timeout = std::chrono::milliseconds(-1)});
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(negative.status().message().find("busy_timeout=-1"), std::string::npos);
}

TEST_F(SqliteStoreTest, UnopenablePathIsUnavailable) {
  auto store = SqlStore::Open({.path = (dir_ / "no" / "such" / "dir" / "x.db").string()});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
}

TEST_F(SqliteStoreTest, NotADatabaseIsDataLoss) {
  {
    FILE* f = std::fopen(DbPath().c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("this is not a sqlite database, just some text that is long enough to matter....\n",
               f);
    std::fclose(f);
  }
  auto store = SqlStore::Open({.path = DbPath()});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
}

TEST(SqliteTransactionTest, RollsBackUnlessCommitted) {
  auto db = SqliteDatabase::Open(":memory:");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t (x INTEGER)").ok());
  {
    auto txn = Transaction::Begin(**db, Transaction::Mode::kWrite);
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO t VALUES (1)").ok());
  }  // destroyed without Commit
  {
    auto txn = Transaction::Begin(**db, Transaction::Mode::kWrite);
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO t VALUES (2)").ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  auto stmt = (*db)->Prepare("SELECT COUNT(*), SUM(x) FROM t");
  ASSERT_TRUE(stmt.ok());
  ASSERT_TRUE(*stmt->Step());
  EXPECT_EQ(stmt->ColumnInt(0), 1);
  EXPECT_EQ(stmt->ColumnInt(1), 2);
}

TEST(SqliteStatusTest, MapsCodes) {
  EXPECT_TRUE(SqliteStatus(SQLITE_OK, nullptr, "x").ok());
  EXPECT_TRUE(SqliteStatus(SQLITE_DONE, nullptr, "x").ok());
  EXPECT_EQ(SqliteStatus(SQLITE_BUSY, nullptr, "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(SqliteStatus(SQLITE_CONSTRAINT_UNIQUE, nullptr, "x").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(SqliteStatus(SQLITE_CONSTRAINT_FOREIGNKEY, nullptr, "x").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(SqliteStatus(SQLITE_CORRUPT, nullptr, "x").code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(SqliteStatus(SQLITE_FULL, nullptr, "x").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(SqliteStatus(SQLITE_MISUSE, nullptr, "x").code(), absl::StatusCode::kInternal);
  EXPECT_NE(SqliteStatus(SQLITE_BUSY, nullptr, "step").message().find("sqlite step"),
            std::string::npos);
}

}  // namespace
}  // namespace fleetplan::storage
