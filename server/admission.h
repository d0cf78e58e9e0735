#ifndef FLEETPLAN_SERVER_ADMISSION_H_
#define FLEETPLAN_SERVER_ADMISSION_H_

// Admission control for the calls that can run long (planning, budget matrices): at most `limit`
// at once, so cheap calls (health, estimates, reads) always find a thread. A call over the limit
// waits for a slot until its deadline (at most `max_wait`), then gets RESOURCE_EXHAUSTED, which
// clients retry with backoff. Thread-safe.

#include <chrono>
#include <cstdint>

#include "absl/status/status.h"
#include "planner/common/mutex.h"

namespace fleetplan::server {

class Admission {
 public:
  Admission(int64_t limit, std::chrono::milliseconds max_wait)
      : limit_(limit), max_wait_(max_wait) {}

  // Holds a slot while alive (empty when refused).
  class Slot {
   public:
    explicit Slot(Admission* a) : admission_(a) {}
    Slot(Slot&& o) noexcept : admission_(o.admission_) { o.admission_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (admission_ != nullptr) admission_->Release();
    }

   private:
    Admission* admission_;
  };

  // A slot, waiting until `deadline` (or max_wait) for one; RESOURCE_EXHAUSTED naming `what`.
  absl::Status Acquire(const char* what, std::chrono::system_clock::time_point deadline);
  Slot Held() { return Slot(this); }  // after a successful Acquire

  int64_t in_flight();

 private:
  void Release();
  const int64_t limit_;
  const std::chrono::milliseconds max_wait_;
  Mutex mu_;
  absl::CondVar freed_;  // signalled when a slot is released
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_ADMISSION_H_
