#ifndef FLEETPLAN_SERVER_PERIODIC_H_
#define FLEETPLAN_SERVER_PERIODIC_H_

// A background task of the server: `tick` on its own thread, once at start and then every
// `interval`, until Stop() (or destruction), which wakes the wait and joins. Used by the failure
// simulation (FailureWatch) and the DCGM observer.

#include <chrono>
#include <functional>
#include <thread>

#include "planner/common/mutex.h"

namespace fleetplan::server {

class Periodic {
 public:
  Periodic(std::chrono::milliseconds interval, std::function<void()> tick)
      : interval_(interval), tick_(std::move(tick)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Periodic() { Stop(); }
  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;

  void Stop() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
      stop_changed_.SignalAll();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    for (bool first = true;; first = false) {
      {
        MutexLock lock(&mu_);
        auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
        if (!first) {
          mu_.WaitUntil(stop_changed_, stopping,
                        absl::Now() + absl::Milliseconds(interval_.count()));
        }
        if (stop_) return;
      }
      tick_();
    }
  }

  const std::chrono::milliseconds interval_;
  const std::function<void()> tick_;
  Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar stop_changed_;
  std::thread thread_;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_PERIODIC_H_
