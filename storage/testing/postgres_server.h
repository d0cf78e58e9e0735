#ifndef FLEETPLAN_STORAGE_TESTING_POSTGRES_SERVER_H_
#define FLEETPLAN_STORAGE_TESTING_POSTGRES_SERVER_H_

// A private PostgreSQL server for tests (tests only): initdb into a fresh temporary directory,
// started with pg_ctl on a Unix socket in that directory and no TCP listener at all, stopped and
// removed by the destructor. Debian's server binaries (package postgresql) are found under
// /usr/lib/postgresql/<version>/bin, or in $FLEETPLAN_POSTGRES_BIN. PostgreSQL refuses to run as
// root, so under root the server runs as the "postgres" system user the package creates.
//
// A test that needs it and cannot start it fails, naming why; FLEETPLAN_SKIP_POSTGRES_TEST=1
// skips instead (for a build machine without the server package). Under ctest one server serves
// every test of the run: the fixture `postgres` starts it with the postgres_test_server tool and
// passes its directory in FLEETPLAN_TEST_POSTGRES_DIR (storage/CMakeLists.txt).

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace fleetplan::storage::testing {

class PostgresServer {
 public:
  // A new server in a new temporary directory (`dir` empty) or in `dir` (created), owned: the
  // destructor stops it and removes the directory.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start(const std::string& dir = "");
  // A server another process started in `dir`; the destructor leaves it running.
  static std::unique_ptr<PostgresServer> Attach(const std::string& dir);
  // Stops the server in `dir` and removes the directory.
  static absl::Status Stop(const std::string& dir);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Creates an empty database and returns its libpq URI (postgresql:///name?host=SOCKETDIR&...).
  absl::StatusOr<std::string> CreateDatabase(const std::string& name);
  // The URI of an existing database.
  std::string Uri(const std::string& database) const;
  // Stops the server at once (pg_ctl -m immediate: as if it crashed) and starts it again; clients
  // see their connections break. Only on a server of one's own (Start), never the shared one.
  absl::Status Restart();
  // Stops the server (fast shutdown: clients are disconnected) and starts it again, separately.
  absl::Status Halt();
  absl::Status Resume() { return StartServer(); }
  // Runs SQL on `database` as the superuser (test set-up and checks), returning the first value
  // of the first row ("" when none).
  absl::StatusOr<std::string> Query(const std::string& database, const std::string& sql);

  static bool SkipRequested();
  // Leaves the server running when this object goes (the ctest fixture's start step).
  void Detach() { owned_ = false; }

 private:
  PostgresServer() = default;
  absl::Status RunAsOwner(const std::string& command) const;
  absl::Status Prepare(const std::string& dir);
  absl::Status StartServer();

  std::string bin_;
  std::string dir_;
  std::string run_as_;  // "" or the user the server runs as
  bool owned_ = true;
};

// One server for the whole test binary, started on first use (nullptr and `why` when it could
// not start).
PostgresServer* SharedPostgresServer(std::string* why);

}  // namespace fleetplan::storage::testing

#endif  // FLEETPLAN_STORAGE_TESTING_POSTGRES_SERVER_H_
