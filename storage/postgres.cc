#include "storage/postgres.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace fleetplan::storage {
namespace {

// ?N -> $N outside quoted strings and identifiers; a bare ? takes the next number (as in SQLite).
std::pair<std::string, int> ToDollarParameters(absl::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 8);
  int highest = 0;
  char quote = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote != 0) {
      out.push_back(c);
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      out.push_back(c);
      continue;
    }
    if (c != '?') {
      out.push_back(c);
      continue;
    }
    size_t j = i + 1;
    int n = 0;
    while (j < sql.size() && absl::ascii_isdigit(static_cast<unsigned char>(sql[j])) && n < 10000) {
      n = n * 10 + (sql[j] - '0');
      ++j;
    }
    if (j == i + 1) n = highest + 1;
    highest = std::max(highest, n);
    absl::StrAppend(&out, "$", n);
    i = j - 1;
  }
  return {out, highest};
}

class PostgresStatement final : public StatementBackend {
 public:
  // `name` non-empty: a kept statement, prepared on the server under that name.
  PostgresStatement(PostgresDatabase* db, std::string sql, int parameters, std::string name = "")
      : db_(db),
        sql_(std::move(sql)),
        name_(std::move(name)),
        values_(static_cast<size_t>(parameters)) {}
  PostgresStatement(const PostgresStatement&) = delete;
  PostgresStatement& operator=(const PostgresStatement&) = delete;
  ~PostgresStatement() override { PQclear(result_); }

  absl::Status BindInt(int index, int64_t value) override {
    return Bind(index, absl::StrCat(value));
  }
  absl::Status BindDouble(int index, double value) override {
    // 17 significant digits read back as the same double.
    char buffer[40];
    std::snprintf(buffer, sizeof(buffer), "%.17g", value);
    return Bind(index, buffer);
  }
  absl::Status BindText(int index, absl::string_view value) override {
    if (value.find('\0') != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter ", index, ": PostgreSQL text cannot hold a NUL byte"));
    }
    return Bind(index, std::string(value));
  }
  absl::Status BindNull(int index) override {
    if (absl::Status s = CheckIndex(index); !s.ok()) return s;
    values_[static_cast<size_t>(index - 1)].reset();
    return absl::OkStatus();
  }

  absl::StatusOr<bool> Step() override {
    if (result_ == nullptr) {
      std::vector<const char*> values;
      values.reserve(values_.size());
      for (const std::optional<std::string>& v : values_) {
        values.push_back(v.has_value() ? v->c_str() : nullptr);
      }
      absl::StatusOr<PGresult*> result =
          name_.empty() ? db_->Run(sql_, values.data(), static_cast<int>(values.size()))
                        : db_->RunKept(name_, sql_, values.data(), static_cast<int>(values.size()));
      if (!result.ok()) return result.status();
      result_ = *result;
      rows_ = PQntuples(result_);
      row_ = -1;
    }
    if (row_ < rows_) ++row_;
    return row_ < rows_;
  }
  absl::Status Reset() override {
    PQclear(result_);
    result_ = nullptr;
    rows_ = 0;
    row_ = -1;
    for (std::optional<std::string>& v : values_) v.reset();
    return absl::OkStatus();
  }

  int64_t ColumnInt(int column) const override {
    const char* text = Value(column);
    if (text == nullptr) return 0;
    if (text[0] == 't' && text[1] == '\0') return 1;  // boolean
    if (text[0] == 'f' && text[1] == '\0') return 0;
    return std::strtoll(text, nullptr, 10);
  }
  double ColumnDouble(int column) const override {
    const char* text = Value(column);
    return text == nullptr ? 0.0 : std::strtod(text, nullptr);
  }
  std::string ColumnText(int column) const override {
    const char* text = Value(column);
    if (text == nullptr) return {};
    return std::string(text, static_cast<size_t>(PQgetlength(result_, row_, column)));
  }
  bool ColumnIsNull(int column) const override { return Value(column) == nullptr; }

 private:
  absl::Status CheckIndex(int index) const {
    if (index < 1 || static_cast<size_t>(index) > values_.size()) {
      return absl::InternalError(absl::StrCat("bind: parameter ", index, " of ", values_.size(),
                                              " in \"", sql_.substr(0, 60), "\""));
    }
    return absl::OkStatus();
  }
  absl::Status Bind(int index, std::string value) {
    if (absl::Status s = CheckIndex(index); !s.ok()) return s;
    values_[static_cast<size_t>(index - 1)] = std::move(value);
    return absl::OkStatus();
  }
  // The current row's value, or null (SQL NULL, or no such row or column).
  const char* Value(int column) const {
    if (result_ == nullptr || row_ < 0 || row_ >= rows_ || column < 0 ||
        column >= PQnfields(result_) || PQgetisnull(result_, row_, column)) {
      return nullptr;
    }
    return PQgetvalue(result_, row_, column);
  }

  PostgresDatabase* db_;
  std::string sql_;
  std::string name_;
  std::vector<std::optional<std::string>> values_;
  PGresult* result_ = nullptr;
  int rows_ = 0;
  int row_ = -1;
};

void IgnoreNotice(void*, const char*) {}

// "postgresql://user@host:port/db" of a live connection (never the password).
std::string Describe(PGconn* conn) {
  const char* user = PQuser(conn);
  const char* host = PQhost(conn);
  const char* port = PQport(conn);
  const char* db = PQdb(conn);
  return absl::StrCat("postgresql://", user != nullptr ? user : "", "@",
                      host != nullptr ? host : "", ":", port != nullptr ? port : "", "/",
                      db != nullptr ? db : "");
}

}  // namespace

PGconn* ConnectPostgres(const std::string& conninfo) {
  // A server that does not answer fails the connection within seconds, not at TCP's timeout
  // (minutes); the target's own connect_timeout, if any, wins (it is expanded after ours).
  const char* const keywords[] = {"connect_timeout", "dbname", nullptr};
  const char* const values[] = {"5", conninfo.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn != nullptr) PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  return conn;
}

bool IsPostgresTarget(absl::string_view db) {
  return absl::StartsWith(db, "postgresql://") || absl::StartsWith(db, "postgres://");
}

absl::Status PostgresStatus(absl::string_view sqlstate, absl::string_view message,
                            absl::string_view context) {
  std::string text = absl::StrCat("postgresql ", context, ": ",
                                  absl::StripTrailingAsciiWhitespace(message));
  if (!sqlstate.empty()) absl::StrAppend(&text, " (SQLSTATE ", sqlstate, ")");
  const absl::string_view cls = sqlstate.substr(0, 2);
  if (sqlstate.empty() || cls == "08" || sqlstate == "57P01" || sqlstate == "57P02" ||
      sqlstate == "57P03" || sqlstate == "53300" || sqlstate == "25006" || sqlstate == "55P03" ||
      sqlstate == "57014") {
    return absl::UnavailableError(text);
  }
  if (sqlstate == "23505") return absl::AlreadyExistsError(text);
  if (cls == "23") return absl::FailedPreconditionError(text);
  if (sqlstate == "40001" || sqlstate == "40P01") {
    absl::Status status = absl::AbortedError(text);
    status.SetPayload(kRetryablePayload, absl::Cord("1"));
    return status;
  }
  if (sqlstate == "53100" || sqlstate == "53200" || cls == "54") {
    return absl::ResourceExhaustedError(text);
  }
  if (cls == "22") return absl::InvalidArgumentError(text);
  if (cls == "28" || sqlstate == "42501") return absl::PermissionDeniedError(text);
  if (sqlstate == "XX001" || sqlstate == "XX002") return absl::DataLossError(text);
  return absl::InternalError(text);
}

absl::StatusOr<std::unique_ptr<PostgresDatabase>> PostgresDatabase::Open(
    const std::string& conninfo) {
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (options == nullptr) {
    std::string why = parse_error != nullptr ? parse_error : "out of memory";
    PQfreemem(parse_error);
    return absl::InvalidArgumentError(absl::StrCat(
        "db: not a PostgreSQL connection string: ", absl::StripTrailingAsciiWhitespace(why)));
  }
  PQconninfoFree(options);
  PGconn* conn = ConnectPostgres(conninfo);
  if (conn == nullptr) return absl::ResourceExhaustedError("postgresql connect: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn);
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("postgresql connect: ",
                                               absl::StripTrailingAsciiWhitespace(why)));
  }
  auto db = std::unique_ptr<PostgresDatabase>(new PostgresDatabase(conn, Describe(conn)));
  // Text compares as in SQLite through the C collation the schema sets per column; times are
  // integers, so the session's time zone does not matter.
  if (absl::Status s = db->Exec(db->session_sql_); !s.ok()) return s;
  return db;
}

PostgresDatabase::~PostgresDatabase() {
  ClearCache();
  PQfinish(conn_);
}

absl::string_view PostgresDatabase::BeginWriteSql() const {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(", kWriteLockKey, ")"));
  return *kSql;
}

absl::string_view PostgresDatabase::BeginReadSql() const {
  return "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
}

absl::Status PostgresDatabase::EnsureConnected() {
  if (PQstatus(conn_) == CONNECTION_OK) return absl::OkStatus();
  if (transaction_open_) {
    return absl::UnavailableError(
        absl::StrCat("postgresql: the connection to ", path(), " broke inside a transaction"));
  }
  PQreset(conn_);
  ++connection_epoch_;  // the server forgot this connection's prepared statements
  if (PQstatus(conn_) != CONNECTION_OK) {
    return absl::UnavailableError(absl::StrCat(
        "postgresql reconnect: ", absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn_))));
  }
  PQsetNoticeProcessor(conn_, IgnoreNotice, nullptr);
  return Exec(session_sql_);
}

absl::Status PostgresDatabase::SetSession(std::string sql) {
  session_sql_ = absl::StrCat("SET client_min_messages = warning; ", sql);
  return Exec(session_sql_);
}

absl::Status PostgresDatabase::ResultStatus(const PGresult* result, absl::string_view context) {
  const ExecStatusType status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return absl::OkStatus();
  const char* sqlstate = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const char* message =
      result == nullptr ? PQerrorMessage(conn_) : PQresultErrorMessage(result);
  if (message == nullptr || message[0] == '\0') message = PQerrorMessage(conn_);
  return PostgresStatus(sqlstate != nullptr ? sqlstate : "", message, context);
}

absl::Status PostgresDatabase::Exec(absl::string_view sql) {
  const bool begin = absl::StartsWith(sql, "BEGIN");
  const bool end = sql == "COMMIT" || sql == "ROLLBACK";
  if (end && PQstatus(conn_) != CONNECTION_OK) {
    transaction_open_ = false;  // nothing to roll back on a dead connection
    return sql == "COMMIT" ? absl::UnavailableError("postgresql commit: the connection broke")
                           : absl::OkStatus();
  }
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  PGresult* result = PQexec(conn_, std::string(sql).c_str());
  absl::Status status = ResultStatus(result, "exec");
  if (result != nullptr) changes_ = std::atoi(PQcmdTuples(result));
  PQclear(result);
  if (begin) transaction_open_ = PQtransactionStatus(conn_) != PQTRANS_IDLE;
  if (end) transaction_open_ = false;
  return status;
}

absl::StatusOr<Statement> PostgresDatabase::Prepare(absl::string_view sql) {
  auto [text, parameters] = ToDollarParameters(sql);
  return Statement(std::make_unique<PostgresStatement>(this, std::move(text), parameters));
}

absl::StatusOr<Statement> PostgresDatabase::PrepareKept(absl::string_view sql) {
  auto [text, parameters] = ToDollarParameters(sql);
  return Statement(std::make_unique<PostgresStatement>(this, std::move(text), parameters,
                                                       absl::StrCat("s", ++kept_statements_)));
}

absl::StatusOr<PGresult*> PostgresDatabase::RunKept(const std::string& name,
                                                    const std::string& sql,
                                                    const char* const* values, int count) {
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  auto it = prepared_.find(name);
  if (it == prepared_.end() || it->second != connection_epoch_) {
    PGresult* prepared = PQprepare(conn_, name.c_str(), sql.c_str(), count, nullptr);
    absl::Status status = ResultStatus(prepared, absl::StrCat("prepare \"", sql.substr(0, 60), "\""));
    PQclear(prepared);
    if (!status.ok()) return status;
    prepared_[name] = connection_epoch_;
  }
  return Finish(
      PQexecPrepared(conn_, name.c_str(), count, values, nullptr, nullptr, /*text=*/0), sql);
}

absl::StatusOr<PGresult*> PostgresDatabase::Run(const std::string& sql, const char* const* values,
                                                int count) {
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  return Finish(
      PQexecParams(conn_, sql.c_str(), count, nullptr, values, nullptr, nullptr, /*text=*/0), sql);
}

absl::StatusOr<PGresult*> PostgresDatabase::Finish(PGresult* result, const std::string& sql) {
  absl::Status status = ResultStatus(result, absl::StrCat("\"", sql.substr(0, 60), "\""));
  if (!status.ok()) {
    PQclear(result);
    return status;
  }
  changes_ = std::atoi(PQcmdTuples(result));
  return result;
}

}  // namespace fleetplan::storage
