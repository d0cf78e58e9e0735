#include "storage/testing/postgres_server.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fleetplan::storage::testing {
namespace {

std::string FindBin() {
  if (const char* env = std::getenv("FLEETPLAN_POSTGRES_BIN"); env != nullptr && *env != '\0') {
    return env;
  }
  std::error_code ec;
  std::string best;
  int best_version = -1;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string version = entry.path().filename().string();
    const int v = std::atoi(version.c_str());
    if (v > best_version && std::filesystem::exists(entry.path() / "bin" / "pg_ctl", ec)) {
      best_version = v;
      best = (entry.path() / "bin").string();
    }
  }
  return best;
}

}  // namespace

bool PostgresServer::SkipRequested() {
  const char* skip = std::getenv("FLEETPLAN_SKIP_POSTGRES_TEST");
  return skip != nullptr && std::string(skip) == "1";
}

absl::Status PostgresServer::RunAsOwner(const std::string& command) const {
  const std::string line = run_as_.empty()
                               ? command
                               : absl::StrCat("runuser -u ", run_as_, " -- ", command);
  const int rc = std::system(absl::StrCat(line, " >>", dir_, "/setup.log 2>&1").c_str());
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("`", line, "` failed (status ", rc, "); see ", dir_,
                                            "/setup.log and ", dir_, "/server.log"));
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::Prepare(const std::string& dir) {
  bin_ = FindBin();
  if (bin_.empty()) {
    return absl::FailedPreconditionError(
        "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (Debian package "
        "postgresql; deploy/test.sh installs it) and FLEETPLAN_POSTGRES_BIN is not set");
  }
  dir_ = dir;
  if (::geteuid() == 0) run_as_ = "postgres";
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start(const std::string& dir) {
  auto server = std::unique_ptr<PostgresServer>(new PostgresServer());
  std::string where = dir;
  if (where.empty()) {
    // Short: a Unix socket path must fit in 107 bytes.
    char templ[] = "/tmp/fleetplan_pg_XXXXXX";
    if (mkdtemp(templ) == nullptr) return absl::InternalError("mkdtemp failed");
    where = templ;
  } else {
    std::error_code ec;
    std::filesystem::remove_all(where, ec);
    if (!std::filesystem::create_directories(where, ec)) {
      return absl::InternalError(absl::StrCat("cannot create ", where, ": ", ec.message()));
    }
  }
  if (absl::Status s = server->Prepare(where); !s.ok()) return s;
  if (!server->run_as_.empty()) {
    const passwd* pw = ::getpwnam(server->run_as_.c_str());
    if (pw == nullptr) {
      return absl::FailedPreconditionError(
          "running as root and there is no \"postgres\" user to run the test server as");
    }
    if (::chown(where.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return absl::InternalError(absl::StrCat("chown ", where, " failed"));
    }
  }
  const std::string data = server->dir_ + "/data";
  absl::Status init = server->RunAsOwner(
      absl::StrCat(server->bin_, "/initdb -D ", data,
                   " -U fleetplan --auth=trust -E UTF8 --locale=C --no-sync"));
  if (!init.ok()) return init;
  absl::Status started = server->StartServer();
  if (!started.ok()) return started;
  return server;
}

std::unique_ptr<PostgresServer> PostgresServer::Attach(const std::string& dir) {
  auto server = std::unique_ptr<PostgresServer>(new PostgresServer());
  server->Prepare(dir).IgnoreError();  // Restart() needs the binaries; Uri() and Query() do not
  server->owned_ = false;
  return server;
}

absl::Status PostgresServer::Stop(const std::string& dir) {
  std::unique_ptr<PostgresServer> server = Attach(dir);
  server->owned_ = true;
  server.reset();
  return absl::OkStatus();
}

absl::Status PostgresServer::StartServer() {
  // No TCP listener; the socket lives in our directory. Small memory so that several test
  // binaries can run side by side.
  return RunAsOwner(absl::StrCat(
      bin_, "/pg_ctl -D ", dir_, "/data -l ", dir_, "/server.log -w -t 60 -o \"-c listen_addresses=''",
      " -k ", dir_, " -c shared_buffers=16MB -c max_connections=100\" start"));
}

PostgresServer::~PostgresServer() {
  if (!owned_) return;
  RunAsOwner(absl::StrCat(bin_, "/pg_ctl -D ", dir_, "/data -m immediate -w stop")).IgnoreError();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

absl::Status PostgresServer::Restart() {
  absl::Status stopped =
      RunAsOwner(absl::StrCat(bin_, "/pg_ctl -D ", dir_, "/data -m immediate -w stop"));
  if (!stopped.ok()) return stopped;
  return StartServer();
}

absl::Status PostgresServer::Halt() {
  return RunAsOwner(absl::StrCat(bin_, "/pg_ctl -D ", dir_, "/data -m fast -w stop"));
}

std::string PostgresServer::Uri(const std::string& database) const {
  return absl::StrCat("postgresql:///", database, "?host=", dir_, "&user=fleetplan");
}

absl::StatusOr<std::string> PostgresServer::Query(const std::string& database,
                                                  const std::string& sql) {
  PGconn* conn = PQconnectdb(Uri(database).c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn);
    PQfinish(conn);
    return absl::UnavailableError(why);
  }
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  PGresult* result = PQexec(conn, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  std::string out;
  absl::Status error;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    error = absl::InternalError(absl::StrCat(sql, ": ", PQresultErrorMessage(result)));
  } else if (status == PGRES_TUPLES_OK && PQntuples(result) > 0 && PQnfields(result) > 0) {
    out = PQgetvalue(result, 0, 0);
  }
  PQclear(result);
  PQfinish(conn);
  if (!error.ok()) return error;
  return out;
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase(const std::string& name) {
  absl::StatusOr<std::string> created =
      Query("postgres", absl::StrCat("DROP DATABASE IF EXISTS \"", name, "\" WITH (FORCE)"));
  if (!created.ok()) return created.status();
  created = Query("postgres", absl::StrCat("CREATE DATABASE \"", name, "\" TEMPLATE template0"));
  if (!created.ok()) return created.status();
  return Uri(name);
}

PostgresServer* SharedPostgresServer(std::string* why) {
  static std::once_flag once;
  static PostgresServer* server = nullptr;
  static std::string* error = new std::string();
  std::call_once(once, [] {
    if (const char* dir = std::getenv("FLEETPLAN_TEST_POSTGRES_DIR"); dir != nullptr && *dir) {
      server = PostgresServer::Attach(dir).release();  // the ctest fixture's, left running
      return;
    }
    absl::StatusOr<std::unique_ptr<PostgresServer>> started = PostgresServer::Start();
    if (started.ok()) {
      server = started->release();
      // Stopped at exit, so that no server outlives the test binary.
      std::atexit([] { delete server; });
    } else {
      *error = started.status().ToString();
    }
  });
  if (why != nullptr) *why = *error;
  return server;
}

}  // namespace fleetplan::storage::testing
