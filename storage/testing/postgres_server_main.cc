// postgres_test_server start|stop DIR: the ctest fixture that runs one private PostgreSQL server
// for every test of a ctest run (storage/testing/postgres_server.h, tests only).

#include <cstdio>
#include <cstring>
#include <string>

#include "storage/testing/postgres_server.h"

int main(int argc, char** argv) {
  using fleetplan::storage::testing::PostgresServer;
  if (argc != 3 || (std::strcmp(argv[1], "start") != 0 && std::strcmp(argv[1], "stop") != 0)) {
    std::fprintf(stderr, "usage: postgres_test_server start|stop DIR\n");
    return 2;
  }
  const std::string dir = argv[2];
  if (std::strcmp(argv[1], "stop") == 0) {
    absl::Status stopped = PostgresServer::Stop(dir);
    if (!stopped.ok()) std::fprintf(stderr, "%s\n", stopped.ToString().c_str());
    return stopped.ok() ? 0 : 1;
  }
  if (PostgresServer::SkipRequested()) {
    std::printf("FLEETPLAN_SKIP_POSTGRES_TEST=1: no server started\n");
    return 0;
  }
  auto server = PostgresServer::Start(dir);
  if (!server.ok()) {
    std::fprintf(stderr, "cannot start PostgreSQL: %s\n", server.status().ToString().c_str());
    return 1;
  }
  (*server)->Detach();
  std::printf("PostgreSQL for tests running in %s\n", dir.c_str());
  return 0;
}
