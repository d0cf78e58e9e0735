// SqlStore: opening, the fleet generation, integrity and the snapshot. The repositories are in
// sql_inventory.cc (GPU types, nodes), sql_catalog.cc (models, deployments) and
// sql_placements.cc (commits, reservations, releases).

#include "storage/sql_store.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "planner/common/status_macros.h"
#include "storage/postgres.h"
#include "storage/schema.h"
#include "storage/sql_rows.h"
#include "storage/sqlite.h"

namespace fleetplan::storage {

using internal::CurrentGeneration;
using internal::ReadOne;
using internal::ReadRows;

namespace {

struct Connections {
  std::unique_ptr<Database> db;
  std::vector<std::unique_ptr<Database>> readers;  // empty: reads share db
  int64_t version = 0;
};

// Read connections per PostgreSQL store: a small pool (each is a server process; a replica's
// reads are short, so a few keep concurrent plans from queueing without loading the database).
constexpr int kPostgresReaders = 4;

absl::StatusOr<Connections> OpenSqlite(const StoreOptions& options) {
  auto open = [&]() -> absl::StatusOr<std::unique_ptr<Database>> {
    ASSIGN_OR_RETURN(std::unique_ptr<SqliteDatabase> db, SqliteDatabase::Open(options.path));
    RETURN_IF_ERROR(SqliteStatus(
        sqlite3_busy_timeout(db->raw(), static_cast<int>(options.busy_timeout.count())), db->raw(),
        "busy_timeout"));
    return std::unique_ptr<Database>(std::move(db));
  };
  Connections out;
  ASSIGN_OR_RETURN(out.db, open());
  ASSIGN_OR_RETURN(out.version, MigrateDatabase(*out.db, CurrentSchemaVersion()));
  if (options.path != ":memory:") {
    ASSIGN_OR_RETURN(std::unique_ptr<Database> reader, open());
    RETURN_IF_ERROR(ConfigureConnection(*reader));
    out.readers.push_back(std::move(reader));
  }
  return out;
}

absl::StatusOr<Connections> OpenPostgres(const StoreOptions& options) {
  if (options.max_database_bytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_database_bytes=", options.max_database_bytes,
        " is for SQLite files; a PostgreSQL database's size is its server's to limit"));
  }
  // A writer waits this long for another replica's write (0 would mean forever in PostgreSQL).
  const std::string session = absl::StrCat(
      "SET lock_timeout = ", std::max<int64_t>(1, options.busy_timeout.count()));
  auto open = [&]() -> absl::StatusOr<std::unique_ptr<Database>> {
    ASSIGN_OR_RETURN(std::unique_ptr<PostgresDatabase> db, PostgresDatabase::Open(options.path));
    RETURN_IF_ERROR(db->SetSession(session));
    return std::unique_ptr<Database>(std::move(db));
  };
  Connections out;
  ASSIGN_OR_RETURN(out.db, open());
  ASSIGN_OR_RETURN(out.version, MigrateDatabase(*out.db, CurrentSchemaVersion()));
  for (int i = 0; i < kPostgresReaders; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Database> reader, open());
    out.readers.push_back(std::move(reader));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqlStore>> SqlStore::Open(const StoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("store path must not be empty");
  if (options.max_database_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_database_bytes=", options.max_database_bytes, " must be >= 0"));
  }
  if (options.busy_timeout.count() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("busy_timeout=", options.busy_timeout.count(), "ms must be >= 0"));
  }
  const bool postgres = IsPostgresTarget(options.path);
  ASSIGN_OR_RETURN(Connections connections,
                   postgres ? OpenPostgres(options) : OpenSqlite(options));
  std::function<int64_t()> clock = options.now_unix_ms;
  if (!clock) {
    clock = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  // The clock floor the database remembers (raised by every commit, release and reservation).
  int64_t floor = 0;
  {
    ASSIGN_OR_RETURN(Statement stmt, connections.db->Prepare(internal::kSelectClockFloor));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (row) floor = stmt.ColumnInt(0);
  }
  // Messages name the database without a password.
  std::string path = postgres ? connections.db->path() : options.path;
  auto store = std::unique_ptr<SqlStore>(
      new SqlStore(std::move(connections.db), std::move(connections.readers),
                   connections.version, std::move(path), std::move(clock)));
  store->clock_floor_ = floor;
  {
    MutexLock lock(&store->pool_mu_);
    for (const auto& reader : store->readers_) store->idle_readers_.push_back(reader.get());
  }
  if (postgres) store->conninfo_ = options.path;
  if (!postgres) RETURN_IF_ERROR(store->SetMaxDatabaseBytes(options.max_database_bytes));
  return store;
}

SqlStore::ReadLease SqlStore::AcquireRead() {
  if (readers_.empty()) {
    mu_.Lock();
    return ReadLease(this, db_.get(), /*write_connection=*/true);
  }
  MutexLock lock(&pool_mu_);
  pool_mu_.WaitUntil(
      pool_freed_,
      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool_mu_) { return !idle_readers_.empty(); },
      absl::InfiniteFuture());
  Database* db = idle_readers_.back();
  idle_readers_.pop_back();
  return ReadLease(this, db, /*write_connection=*/false);
}

void SqlStore::Release(Database* db, bool write_connection) {
  if (write_connection) {
    mu_.Unlock();
    return;
  }
  MutexLock lock(&pool_mu_);
  idle_readers_.push_back(db);
  pool_freed_.Signal();
}

int64_t SqlStore::SubscribeToChanges(std::function<void()> on_change) {
  if (dialect_ != Dialect::kPostgres) return 0;
  MutexLock lock(&subscribers_mu_);
  if (listener_ == nullptr) {
    absl::StatusOr<std::unique_ptr<PostgresListener>> listener =
        PostgresListener::Start(conninfo_, "fleetplan_fleet", [this] {
          MutexLock inner(&subscribers_mu_);
          for (const auto& [id, callback] : subscribers_) callback();
        });
    if (!listener.ok()) return 0;
    listener_ = std::move(*listener);
  }
  const int64_t id = ++next_subscriber_;
  subscribers_.emplace(id, std::move(on_change));
  return id;
}

void SqlStore::Unsubscribe(int64_t id) {
  MutexLock lock(&subscribers_mu_);
  subscribers_.erase(id);
}

absl::Status SqlStore::InWriteGroup(std::function<absl::Status()> write) {
  GroupWrite mine{.write = std::move(write)};
  {
    MutexLock lock(&group_mu_);
    group_queue_.push_back(&mine);
    // Wait for a leader to run this write, or to become the leader.
    group_mu_.WaitUntil(
        group_changed_,
        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(group_mu_) { return mine.done || !group_leading_; },
        absl::InfiniteFuture());
    if (mine.done) return mine.status;
    group_leading_ = true;
  }
  // The leader: every write queued now is one transaction (this one's among them).
  std::vector<GroupWrite*> batch;
  {
    MutexLock lock(&group_mu_);
    batch.swap(group_queue_);
  }
  {
    MutexLock lock(&mu_);
    absl::StatusOr<Transaction> txn = Transaction::Begin(*db_, Transaction::Mode::kWrite);
    if (!txn.ok()) {
      for (GroupWrite* w : batch) w->status = txn.status();
    } else {
      db_->set_in_outer_transaction(true);
      for (GroupWrite* w : batch) {
        // A write that met a serialization failure or deadlock (PostgreSQL) rolled back its
        // savepoint alone; it runs again, a bounded number of times, then answers ABORTED.
        // (Writers hold the database's writers' lock, so this is a safety net, not a path.)
        constexpr int kAttempts = 3;
        for (int attempt = 0; attempt < kAttempts; ++attempt) {
          w->status = w->write();
          if (!IsRetryable(w->status)) break;
        }
      }
      db_->set_in_outer_transaction(false);
      absl::Status committed = txn->Commit();
      if (!committed.ok()) {
        for (GroupWrite* w : batch) {
          if (w->status.ok()) w->status = committed;
        }
      }
    }
  }
  group_batches_.fetch_add(1);
  group_writes_.fetch_add(static_cast<int64_t>(batch.size()));
  MutexLock lock(&group_mu_);
  for (GroupWrite* w : batch) w->done = true;
  group_leading_ = false;  // the next waiter with a queued write leads the next batch
  group_changed_.SignalAll();
  return mine.status;
}

int64_t SqlStore::Now() {
  const int64_t now = clock_();
  int64_t floor = clock_floor_.load();
  while (now > floor && !clock_floor_.compare_exchange_weak(floor, now)) {
  }
  return std::max(now, floor);
}

absl::Status SqlStore::SetMaxDatabaseBytes(int64_t bytes) {
  if (bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_database_bytes=", bytes, " must be >= 0"));
  }
  MutexLock lock(&mu_);
  if (db_->dialect() != Dialect::kSqlite) {
    return absl::FailedPreconditionError(
        "max_database_bytes is for SQLite files; a PostgreSQL database's size is its server's "
        "to limit");
  }
  ASSIGN_OR_RETURN(int64_t page_size, db_->QueryInt("PRAGMA page_size"));
  // 4294967294 pages: SQLite's own maximum, i.e. no cap.
  const int64_t pages = bytes == 0 ? int64_t{4294967294} : std::max<int64_t>(1, bytes / page_size);
  return db_->Exec(absl::StrCat("PRAGMA max_page_count=", pages));
}

absl::StatusOr<int64_t> SqlStore::FleetGeneration() {
  const ReadLease read = AcquireRead();
  return CurrentGeneration(read.db());
}

absl::Status SqlStore::CheckIntegrity() {
  MutexLock lock(&mu_);
  // PostgreSQL checks its pages itself (data checksums, amcheck are its operators' tools).
  if (db_->dialect() != Dialect::kSqlite) return absl::OkStatus();
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare("PRAGMA integrity_check"));
  ASSIGN_OR_RETURN(std::vector<std::string> rows,
                   ReadRows(stmt, [](const Statement& s) { return s.ColumnText(0); }));
  std::vector<std::string> problems;
  for (std::string& row : rows) {
    if (row != "ok") problems.push_back(std::move(row));
  }
  if (!problems.empty()) {
    return absl::DataLossError(absl::StrCat("integrity_check: ", absl::StrJoin(problems, "; ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<FleetSnapshot> SqlStore::ReadSnapshot(Database& db, int64_t now) {
  static const std::string* const kNodes =
      new std::string(absl::StrCat("SELECT ", internal::kNodeColumns, " FROM nodes ORDER BY name"));
  static const std::string* const kGpus = new std::string(
      absl::StrCat("SELECT ", internal::kGpuColumns, " FROM gpus ORDER BY node, idx"));
  static const std::string* const kUsage = new std::string(
      absl::StrCat("SELECT pg.node, pg.idx, p.state, SUM(pg.bytes) FROM placement_gpus pg "
                   "JOIN placements p ON p.id = pg.placement_id WHERE ",
                   internal::ActiveRankPredicate("pg", "p"),
                   " GROUP BY pg.node, pg.idx, p.state ORDER BY pg.node, pg.idx"));
  FleetSnapshot snap;
  ASSIGN_OR_RETURN(snap.generation, CurrentGeneration(db));
  {
    ASSIGN_OR_RETURN(ScopedStatement types, db.Cached(internal::kSelectGpuTypes));
    ASSIGN_OR_RETURN(snap.gpu_types, ReadRows(*types, internal::ReadGpuType));
  }
  std::vector<Node> nodes;
  {
    ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(*kNodes));
    ASSIGN_OR_RETURN(nodes, ReadRows(*stmt, internal::ReadNode));
  }
  {
    ASSIGN_OR_RETURN(ScopedStatement gpus, db.Cached(*kGpus));
    RETURN_IF_ERROR(internal::AttachGpus(*gpus, nodes, /*every_node_listed=*/true));
  }
  {
    ASSIGN_OR_RETURN(ScopedStatement usage, db.Cached(*kUsage));
    usage->BindInt(1, now);
    RETURN_IF_ERROR(internal::FillUsage(*usage, nodes));
  }
  snap.nodes = placement::NodeList(std::move(nodes));
  return snap;
}

absl::StatusOr<FleetSnapshot> SqlStore::LoadSnapshot() {
  const ReadLease read = AcquireRead();
  Database& db = read.db();
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db, Transaction::Mode::kRead));
  ASSIGN_OR_RETURN(FleetSnapshot snap, ReadSnapshot(db, now));
  RETURN_IF_ERROR(txn.Commit());
  return snap;
}

absl::StatusOr<FleetChanges> SqlStore::LoadChanges(int64_t since_generation,
                                                      int64_t since_unix_ms) {
  // Beyond this many changed nodes one full read is cheaper than three queries per node.
  constexpr size_t kMaxNodesReadOneByOne = 256;
  static constexpr absl::string_view kChanged =
      "SELECT node FROM node_changes WHERE generation >= ?1";
  static constexpr absl::string_view kExpired =
      "SELECT DISTINCT pg.node FROM placements p JOIN placement_gpus pg ON pg.placement_id = p.id "
      "WHERE p.state = 'reserved' AND p.expires_unix_ms > ?1 AND p.expires_unix_ms <= ?2";
  static constexpr absl::string_view kNextExpiry =
      "SELECT MIN(expires_unix_ms) FROM placements WHERE state = 'reserved' AND "
      "expires_unix_ms > ?1";
  const ReadLease read = AcquireRead();
  Database& db = read.db();
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db, Transaction::Mode::kRead));
  FleetChanges out{.as_of_unix_ms = now};
  ASSIGN_OR_RETURN(out.generation, CurrentGeneration(db));
  {
    ASSIGN_OR_RETURN(ScopedStatement next, db.Cached(kNextExpiry));
    next->BindInt(1, now);
    ASSIGN_OR_RETURN(out.next_expiry_unix_ms,
                     ReadOne(
                         *next, [](const Statement& st) { return st.ColumnInt(0); },
                         absl::InternalError("MIN() returned no row")));
  }
  std::set<std::string> names;
  bool full = since_generation <= 0;
  if (!full) {
    ASSIGN_OR_RETURN(ScopedStatement changed, db.Cached(kChanged));
    changed->BindInt(1, since_generation);
    ASSIGN_OR_RETURN(std::vector<std::string> rows,
                     ReadRows(*changed, [](const Statement& st) { return st.ColumnText(0); }));
    names.insert(rows.begin(), rows.end());
    if (since_unix_ms > 0 && since_unix_ms < now) {
      ASSIGN_OR_RETURN(ScopedStatement expired, db.Cached(kExpired));
      expired->BindInt(1, since_unix_ms).BindInt(2, now);
      ASSIGN_OR_RETURN(rows,
                       ReadRows(*expired, [](const Statement& st) { return st.ColumnText(0); }));
      names.insert(rows.begin(), rows.end());
    }
    full = names.count("") > 0 || names.size() > kMaxNodesReadOneByOne;
  }
  if (full) {
    ASSIGN_OR_RETURN(out.snapshot, ReadSnapshot(db, now));
    out.full = true;
  } else {
    out.snapshot.generation = out.generation;
    ASSIGN_OR_RETURN(ScopedStatement types, db.Cached(internal::kSelectGpuTypes));
    ASSIGN_OR_RETURN(out.snapshot.gpu_types, ReadRows(*types, internal::ReadGpuType));
    for (const std::string& name : names) {  // ordered
      absl::StatusOr<Node> node = internal::ReadNodeWithGpus(db, name, now);
      if (absl::IsNotFound(node.status())) {
        out.removed.push_back(name);
        continue;
      }
      if (!node.ok()) return node.status();
      out.snapshot.nodes.push_back(std::move(*node));
    }
  }
  RETURN_IF_ERROR(txn.Commit());
  return out;
}

}  // namespace fleetplan::storage
