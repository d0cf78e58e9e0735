#ifndef FLEETPLAN_STORAGE_POSTGRES_H_
#define FLEETPLAN_STORAGE_POSTGRES_H_

// The PostgreSQL backend of the SQL layer (storage/sql.h), over libpq: one PGconn per Database.
//
// Statements are written in the SQLite-compatible subset both backends share, with ?N parameters
// (rewritten to $N here). Values travel as text and are typed by the server from their use, so
// binding is the same for both backends. A write transaction takes one transaction-scoped
// advisory lock (kWriteLockKey) right after BEGIN: every fleetplan writer on the database, in any
// replica, is serial, exactly as SQLite's BEGIN IMMEDIATE makes them, so a commit's
// read-check-write cannot interleave with another replica's. Reads run in REPEATABLE READ, READ
// ONLY transactions (one consistent snapshot per read, like SQLite's WAL readers) and never wait
// for writers.
//
// A connection that broke (server restart, failover) is re-established at the next transaction
// (PQreset; with a multi-host target and target_session_attrs=read-write that is the new
// primary); a transaction that was open on it fails with UNAVAILABLE and is never resumed.

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/sql.h"

namespace fleetplan::storage {

// True when `db` names a PostgreSQL database: a libpq URI (postgresql:// or postgres://). A file
// path is SQLite.
bool IsPostgresTarget(absl::string_view db);

// Maps a SQLSTATE (5 characters, may be empty for a client-side failure) to a Status:
//   08*, 57P01-57P03, 53300 (connection lost/refused, shutdown, too many connections), empty,
//   25006 (read-only transaction: connected to a standby)      -> UNAVAILABLE
//   23505 (unique violation)                                    -> ALREADY_EXISTS
//   23* (other integrity constraint)                            -> FAILED_PRECONDITION
//   40001, 40P01 (serialization failure, deadlock)              -> ABORTED, retryable
//   55P03 (lock not available), 57014 (statement timeout)       -> UNAVAILABLE
//   53100, 53200, 54* (disk full, out of memory, too complex)   -> RESOURCE_EXHAUSTED
//   22* (data exception: a value the column cannot hold)        -> INVALID_ARGUMENT
//   28* (authentication), 42501 (insufficient privilege)        -> PERMISSION_DENIED
//   XX001, XX002 (data or index corrupted)                      -> DATA_LOSS
//   anything else (42* syntax, ...)                             -> INTERNAL (a bug in our SQL)
absl::Status PostgresStatus(absl::string_view sqlstate, absl::string_view message,
                            absl::string_view context);

// Connects with a libpq connection string, failing within 5 s when the server does not answer
// (the target's own connect_timeout wins), with server notices silenced. Null when out of memory;
// otherwise the caller owns the connection and checks PQstatus.
PGconn* ConnectPostgres(const std::string& conninfo);

class PostgresDatabase final : public Database {
 public:
  // The advisory lock every write transaction holds (pg_advisory_xact_lock).
  static constexpr int64_t kWriteLockKey = 0x666c656574706c;  // "fleetpl"

  // Connects with a libpq connection string (URI or key=value). UNAVAILABLE when the server cannot
  // be reached or refuses, naming the target (never the password).
  static absl::StatusOr<std::unique_ptr<PostgresDatabase>> Open(const std::string& conninfo);
  ~PostgresDatabase() override;

  Dialect dialect() const override { return Dialect::kPostgres; }
  absl::Status Exec(absl::string_view sql) override;
  absl::StatusOr<Statement> Prepare(absl::string_view sql) override;
  // Prepared on the server (PQprepare) at its first run on each connection, then only executed:
  // the parse and plan are paid once per connection, not per call.
  absl::StatusOr<Statement> PrepareKept(absl::string_view sql) override;
  int Changes() const override { return changes_; }
  absl::string_view BeginWriteSql() const override;
  absl::string_view BeginReadSql() const override;

  // Runs `sql` (already in $N form) with text parameters (null where absent): the result, which
  // the caller owns, or the error as Status. Used by the statements.
  absl::StatusOr<PGresult*> Run(const std::string& sql, const char* const* values, int count);
  // The same for a kept statement: prepared under `name` on this connection first if it is not.
  absl::StatusOr<PGresult*> RunKept(const std::string& name, const std::string& sql,
                                    const char* const* values, int count);
  // Session settings (SET ...) run now and again after every reconnect.
  absl::Status SetSession(std::string sql);
  PGconn* raw() const { return conn_; }

 private:
  PostgresDatabase(PGconn* conn, std::string target) : Database(std::move(target)), conn_(conn) {}
  // Re-establishes a broken connection when no transaction was open on it.
  absl::Status EnsureConnected();
  absl::Status ResultStatus(const PGresult* result, absl::string_view context);
  // The result of a statement run for `sql`, or its error (the result freed); notes Changes().
  absl::StatusOr<PGresult*> Finish(PGresult* result, const std::string& sql);

  PGconn* conn_;
  std::string session_sql_ = "SET client_min_messages = warning";
  int64_t kept_statements_ = 0;       // names s1, s2, ... handed out
  int64_t connection_epoch_ = 0;      // bumped by every reconnect: prepared statements are gone
  std::map<std::string, int64_t, std::less<>> prepared_;  // name -> epoch it was prepared in
  int changes_ = 0;
  bool transaction_open_ = false;
};

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_POSTGRES_H_
