#include "storage/postgres_listener.h"

#include <libpq-fe.h>
#include <poll.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "storage/postgres.h"

namespace fleetplan::storage {
namespace {

// Connects and LISTENs; null when the server cannot be reached now.
PGconn* Listen(const std::string& conninfo, const std::string& channel) {
  PGconn* conn = ConnectPostgres(conninfo);
  if (conn == nullptr) return nullptr;
  if (PQstatus(conn) != CONNECTION_OK) {
    PQfinish(conn);
    return nullptr;
  }
  char* quoted = PQescapeIdentifier(conn, channel.c_str(), channel.size());
  PGresult* result = PQexec(conn, absl::StrCat("LISTEN ", quoted != nullptr ? quoted : "x").c_str());
  PQfreemem(quoted);
  const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
  PQclear(result);
  if (!ok) {
    PQfinish(conn);
    return nullptr;
  }
  return conn;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresListener>> PostgresListener::Start(
    std::string conninfo, std::string channel, std::function<void()> on_notify) {
  auto listener = std::unique_ptr<PostgresListener>(
      new PostgresListener(std::move(conninfo), std::move(channel), std::move(on_notify)));
  listener->thread_ = std::thread([l = listener.get()] { l->Loop(); });
  return listener;
}

PostgresListener::~PostgresListener() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void PostgresListener::Loop() {
  constexpr int kWakeMs = 250;  // how soon a stop is noticed
  PGconn* conn = nullptr;
  auto next_try = std::chrono::steady_clock::now();
  while (!stop_) {
    if (conn == nullptr) {
      if (std::chrono::steady_clock::now() < next_try) {
        ::poll(nullptr, 0, kWakeMs);
        continue;
      }
      conn = Listen(conninfo_, channel_);
      if (conn == nullptr) {
        next_try = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        continue;
      }
      on_notify_();  // (re)connected: what happened while deaf is unknown
    }
    pollfd fd{.fd = PQsocket(conn), .events = POLLIN, .revents = 0};
    const int ready = ::poll(&fd, 1, kWakeMs);
    if (ready < 0) continue;  // EINTR
    if (ready > 0 && PQconsumeInput(conn) == 0) {  // the connection broke
      PQfinish(conn);
      conn = nullptr;
      next_try = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      continue;
    }
    bool heard = false;
    while (PGnotify* n = PQnotifies(conn)) {
      heard = true;
      PQfreemem(n);
    }
    if (heard) on_notify_();
  }
  if (conn != nullptr) PQfinish(conn);
}

}  // namespace fleetplan::storage
