#ifndef FLEETPLAN_STORAGE_POSTGRES_LISTENER_H_
#define FLEETPLAN_STORAGE_POSTGRES_LISTENER_H_

// PostgresListener: a connection of its own that LISTENs on a channel and calls `on_notify` for
// every notification, on its own thread. The schema NOTIFYs fleetplan_fleet whenever the fleet
// generation moves (a trigger, so writes by any replica or tool are heard), delivered when the
// writing transaction commits. A broken connection is re-established every second until it works;
// notifications missed meanwhile are covered by the caller's periodic generation check, and a
// reconnect itself is reported as a notification (something may have changed).

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace fleetplan::storage {

class PostgresListener {
 public:
  static absl::StatusOr<std::unique_ptr<PostgresListener>> Start(std::string conninfo,
                                                                 std::string channel,
                                                                 std::function<void()> on_notify);
  ~PostgresListener();  // stops and joins (within a quarter of a second)
  PostgresListener(const PostgresListener&) = delete;
  PostgresListener& operator=(const PostgresListener&) = delete;

 private:
  PostgresListener(std::string conninfo, std::string channel, std::function<void()> on_notify)
      : conninfo_(std::move(conninfo)),
        channel_(std::move(channel)),
        on_notify_(std::move(on_notify)) {}
  void Loop();

  const std::string conninfo_;
  const std::string channel_;
  const std::function<void()> on_notify_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_POSTGRES_LISTENER_H_
