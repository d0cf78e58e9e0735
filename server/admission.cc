#include "server/admission.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace fleetplan::server {

absl::Status Admission::Acquire(const char* what, std::chrono::system_clock::time_point deadline) {
  const auto now = std::chrono::system_clock::now();
  const auto wait = std::max(
      std::chrono::milliseconds(0),
      std::min(max_wait_, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)));
  MutexLock lock(&mu_);
  auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ < limit_; };
  if (!mu_.WaitUntil(freed_, free, absl::Now() + absl::Milliseconds(wait.count()))) {
    return absl::ResourceExhaustedError(absl::StrCat(
        limit_, " ", what, " calls are already running on this server; retry with backoff"));
  }
  ++in_flight_;
  return absl::OkStatus();
}

void Admission::Release() {
  MutexLock lock(&mu_);
  --in_flight_;
  freed_.Signal();
}

int64_t Admission::in_flight() {
  MutexLock lock(&mu_);
  return in_flight_;
}

}  // namespace fleetplan::server
