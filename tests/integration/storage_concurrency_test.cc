// Concurrency and crash safety of SqlStore:
//   - 8 threads, each with its own connection to one file, race to commit overlapping placements;
//   - 4 processes do the same on one file;
//   - a child committing in a loop is SIGKILLed at random moments >= 200 times; after each kill
//     the file opens, passes integrity_check, holds every commit the child reported, and no
//     placement is half-written.
// Afterwards no GPU is over-committed and every success is visible.

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "storage/sqlite.h"
#include "storage/sql_store.h"
#include "storage/store_test_util.h"
#include "tests/testing/subprocess.h"

namespace fleetplan::storage {
namespace {

using testing::MakeGpuType;
using testing::MakeModel;
using testing::MakeNode;

class ConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fleetplan::testing::MakeTempDir("storage_conc_");
    ASSERT_FALSE(dir_.empty());
    db_ = dir_ + "/fleet.db";
    auto store = SqlStore::Open({.path = db_});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).ok());
    for (int i = 0; i < 4; ++i)
      ASSERT_TRUE((*store)->CreateNode(MakeNode("n" + std::to_string(i), 4, "H100")).ok());
    ASSERT_TRUE((*store)->CreateModel(MakeModel("m")).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // No GPU over its memory; every placement whole; integrity ok. Returns active placements.
  int64_t CheckInvariants() {
    auto store = SqlStore::Open({.path = db_});
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return -1;
    EXPECT_TRUE((*store)->CheckIntegrity().ok());
    auto snap = (*store)->LoadSnapshot();
    EXPECT_TRUE(snap.ok());
    for (const auto& node : snap->nodes) {
      for (const auto& gpu : node.gpus) {
        EXPECT_LE(gpu.committed_bytes + gpu.reserved_bytes, 80 * kGiB)
            << node.name << "/" << gpu.index;
      }
    }
    auto db = SqliteDatabase::Open(db_);
    auto half = (*db)->Prepare(
        "SELECT COUNT(*) FROM placements p WHERE p.num_ranks != "
        "(SELECT COUNT(*) FROM placement_gpus g WHERE g.placement_id = p.id)");
    EXPECT_TRUE(*half->Step());
    EXPECT_EQ(half->ColumnInt(0), 0) << "half-written placements";
    auto active = (*store)->ListPlacements({});
    return active.ok() ? static_cast<int64_t>(active->size()) : -1;
  }

  std::string dir_;
  std::string db_;
};

TEST_F(ConcurrencyTest, EightThreadsWithOwnConnections) {
  constexpr size_t kThreads = 8;
  constexpr int kRounds = 300;
  std::vector<std::thread> threads;
  std::vector<int64_t> ok(kThreads, 0), aborted(kThreads, 0), released(kThreads, 0),
      errors(kThreads, 0);
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto store =
          SqlStore::Open({.path = db_, .busy_timeout = std::chrono::milliseconds(30000)});
      if (!store.ok()) {
        ++errors[t];
        return;
      }
      std::mt19937_64 rng(t * 7919);
      std::vector<int64_t> mine;
      for (int i = 0; i < kRounds; ++i) {
        auto snap = (*store)->LoadSnapshot();
        if (!snap.ok()) {
          ++errors[t];
          continue;
        }
        const int64_t first = static_cast<int64_t>(rng() % 4);
        std::vector<int64_t> gpus = {first, (first + 1) % 4};
        CommitRequest req{
            .request_id = "t" + std::to_string(t) + "-" + std::to_string(i),
            .snapshot_generation = snap->generation,
            .placements = {testing::MakePlacement("n" + std::to_string(rng() % 4), gpus,
                                                  static_cast<int64_t>(10 + rng() % 30) * kGiB)}};
        auto r = (*store)->CommitPlacements(req);
        if (r.ok()) {
          ++ok[t];
          mine.push_back(r->placement_ids[0]);
        } else if (r.status().code() == absl::StatusCode::kAborted ||
                   r.status().code() == absl::StatusCode::kResourceExhausted) {
          ++aborted[t];
        } else {
          ADD_FAILURE() << r.status();
          ++errors[t];
        }
        if (!mine.empty() && rng() % 3 == 0) {
          const size_t k = rng() % mine.size();
          if ((*store)->ReleasePlacement(mine[k]).ok()) ++released[t];
          mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(k));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  int64_t total_ok = 0, total_aborted = 0, total_released = 0;
  for (size_t t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], 0) << "thread " << t;
    total_ok += ok[t];
    total_aborted += aborted[t];
    total_released += released[t];
  }
  EXPECT_EQ(total_ok + total_aborted, static_cast<int64_t>(kThreads) * kRounds);
  EXPECT_GT(total_ok, 100);
  EXPECT_GT(total_aborted, 0);  // they did collide
  EXPECT_EQ(CheckInvariants(), total_ok - total_released);
}

TEST_F(ConcurrencyTest, FourProcessesOnOneFile) {
  std::vector<std::optional<fleetplan::testing::Process>> children;
  for (int i = 0; i < 4; ++i) {
    children.push_back(fleetplan::testing::Process::Start(
        {STORAGE_STRESS_PATH, "stress", db_, std::to_string(100 + i), "400"},
        dir_ + "/child" + std::to_string(i) + ".log"));
    ASSERT_TRUE(children.back().has_value());
  }
  int64_t ok = 0, aborted = 0;
  for (int i = 0; i < 4; ++i) {
    auto code = children[static_cast<size_t>(i)]->Wait(std::chrono::seconds(300));
    ASSERT_TRUE(code.has_value());
    std::ifstream log(dir_ + "/child" + std::to_string(i) + ".log");
    std::stringstream ss;
    ss << log.rdbuf();
    ASSERT_EQ(*code, 0) << ss.str();
    for (absl::string_view line : absl::StrSplit(ss.str(), '\n', absl::SkipEmpty())) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() == 2 && parts[0] == "ok") ok += std::stoll(parts[1]);
      if (parts.size() == 2 && parts[0] == "aborted") aborted += std::stoll(parts[1]);
    }
  }
  EXPECT_EQ(ok + aborted, 4 * 400);
  EXPECT_GT(ok, 50);
  EXPECT_GE(CheckInvariants(), 0);
  auto store = SqlStore::Open({.path = db_});
  auto all = (*store)->ListPlacements({.include_released = true});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(static_cast<int64_t>(all->size()), ok);  // every success is visible
}

TEST_F(ConcurrencyTest, SigkillAtRandomMomentsLosesNothingCommitted) {
  // FLEETPLAN_CRASH_KILLS raises the count for a manual soak.
  const char* env = std::getenv("FLEETPLAN_CRASH_KILLS");
  const int kKills = env != nullptr ? std::max(200, std::atoi(env)) : 200;
  std::mt19937_64 rng(42);
  std::map<std::string, int64_t> reported;  // request_id -> ranks
  for (int k = 0; k < kKills; ++k) {
    const std::string log = dir_ + "/crash.log";
    auto child = fleetplan::testing::Process::Start(
        {STORAGE_STRESS_PATH, "crash", db_, std::to_string(k)}, log);
    ASSERT_TRUE(child.has_value());
    // Kill while it commits: once it has reported a commit (start-up is slow under sanitizers),
    // after a further random 0-40 ms.
    const auto started = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - started < std::chrono::seconds(10)) {
      std::ifstream probe(log);
      std::string first;
      if (std::getline(probe, first) && first.rfind("done ", 0) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(rng() % 40000)));
    child->Signal(SIGKILL);
    ASSERT_TRUE(child->Wait(std::chrono::seconds(30)).has_value());
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    // Only complete lines count: the kill may cut the last one.
    const std::string complete =
        text.substr(0, text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
    for (absl::string_view line : absl::StrSplit(complete, '\n', absl::SkipEmpty())) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() == 3 && parts[0] == "done") reported[parts[1]] = std::stoll(parts[2]);
    }
    auto store = SqlStore::Open({.path = db_});
    ASSERT_TRUE(store.ok()) << "after kill " << k << ": " << store.status();
    ASSERT_TRUE((*store)->CheckIntegrity().ok()) << "after kill " << k;
  }
  EXPECT_GE(CheckInvariants(), 0);
  // Every commit the child reported is there, whole.
  auto db = SqliteDatabase::Open(db_);
  auto stmt = (*db)->Prepare(
      "SELECT p.num_ranks, (SELECT COUNT(*) FROM placement_gpus g WHERE g.placement_id = p.id) "
      "FROM placements p WHERE p.request_id = ?1");
  ASSERT_TRUE(stmt.ok());
  for (const auto& [id, ranks] : reported) {
    stmt->BindText(1, id);
    auto row = stmt->Step();
    ASSERT_TRUE(row.ok() && *row) << id << " was reported done but is missing";
    EXPECT_EQ(stmt->ColumnInt(0), ranks) << id;
    EXPECT_EQ(stmt->ColumnInt(1), ranks) << id;
    ASSERT_TRUE(stmt->Reset().ok());
  }
  EXPECT_GE(reported.size(), static_cast<size_t>(kKills))
      << "every child commits before it is killed";
  std::printf("crash test: %d kills, %zu reported commits verified\n", kKills, reported.size());
}

}  // namespace
}  // namespace fleetplan::storage
