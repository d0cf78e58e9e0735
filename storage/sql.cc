#include "storage/sql.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace fleetplan::storage {

bool IsRetryable(const absl::Status& status) {
  return absl::IsAborted(status) && status.GetPayload(kRetryablePayload).has_value();
}

Statement& Statement::BindInt(int index, int64_t value) {
  Note(backend_->BindInt(index, value));
  return *this;
}

Statement& Statement::BindDouble(int index, double value) {
  Note(backend_->BindDouble(index, value));
  return *this;
}

Statement& Statement::BindText(int index, absl::string_view value) {
  Note(backend_->BindText(index, value));
  return *this;
}

Statement& Statement::BindNull(int index) {
  Note(backend_->BindNull(index));
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_status_.ok()) return bind_status_;
  return backend_->Step();
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

absl::Status Statement::Reset() {
  bind_status_ = absl::OkStatus();
  return backend_->Reset();
}

ScopedStatement::~ScopedStatement() {
  if (stmt_ != nullptr) stmt_->Reset().IgnoreError();
}

absl::StatusOr<ScopedStatement> Database::Cached(absl::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    absl::StatusOr<Statement> stmt = PrepareKept(sql);
    if (!stmt.ok()) return stmt.status();
    it = cache_.emplace(std::string(sql), std::make_unique<Statement>(std::move(*stmt))).first;
  }
  return ScopedStatement(it->second.get());
}

absl::StatusOr<int64_t> Database::QueryInt(absl::string_view sql) {
  absl::StatusOr<Statement> stmt = Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError(absl::StrCat("\"", sql, "\" returned no row"));
  return stmt->ColumnInt(0);
}

absl::StatusOr<Transaction> Transaction::Begin(Database& db, Mode mode) {
  if (db.in_outer_transaction()) {
    absl::Status status = db.Exec("SAVEPOINT inner_write");
    if (!status.ok()) return status;
    return Transaction(&db, /*savepoint=*/true);
  }
  absl::Status status = db.Exec(mode == Mode::kWrite ? db.BeginWriteSql() : db.BeginReadSql());
  if (!status.ok()) {
    // PostgreSQL: a BEGIN whose lock timed out left an aborted transaction open. (SQLite's failed
    // BEGIN opens nothing, and a ROLLBACK there could only hit someone else's transaction.)
    if (db.dialect() == Dialect::kPostgres) db.Exec("ROLLBACK").IgnoreError();
    return status;
  }
  return Transaction(&db, /*savepoint=*/false);
}

Transaction::~Transaction() {
  if (db_ == nullptr) return;
  if (savepoint_) {
    db_->Exec("ROLLBACK TO inner_write; RELEASE inner_write").IgnoreError();
  } else {
    db_->Exec("ROLLBACK").IgnoreError();
  }
}

absl::Status Transaction::Commit() {
  if (db_ == nullptr) return absl::FailedPreconditionError("transaction already finished");
  absl::Status status = db_->Exec(savepoint_ ? "RELEASE inner_write" : "COMMIT");
  if (status.ok()) db_ = nullptr;
  return status;
}

absl::Status InSavepoint(Database& db, const std::function<absl::Status()>& body) {
  if (absl::Status s = db.Exec("SAVEPOINT part"); !s.ok()) return s;
  absl::Status status = body();
  if (status.ok()) return db.Exec("RELEASE part");
  if (absl::Status s = db.Exec("ROLLBACK TO part; RELEASE part"); !s.ok()) return s;
  return status;
}

}  // namespace fleetplan::storage
