#ifndef FLEETPLAN_SERVER_PLAN_REGISTRY_H_
#define FLEETPLAN_SERVER_PLAN_REGISTRY_H_

// Plans PlanPlacement made, kept for CommitPlan: bounded in count, in bytes and in age (oldest
// evicted first), so a client that plans and never commits cannot grow the server's memory.
// What is kept is what a commit needs (placements and deployment records), not the answer sent.
// Thread-safe.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "planner/common/mutex.h"
#include "planner/placement/fleet.h"
#include "storage/placement_store.h"

namespace fleetplan::server {

struct StoredPlan {
  storage::CommitRequest commit;  // request_id empty until committed
  bool reserved = false;          // its GPUs are reserved under the plan id
};

struct PlanRegistryOptions {
  size_t max_plans = 1000;
  int64_t max_bytes = 64 << 20;
  std::chrono::milliseconds lifetime = std::chrono::minutes(30);
};

class PlanRegistry {
 public:
  explicit PlanRegistry(PlanRegistryOptions options = {});

  // Keeps `plan` under a new id ("plan-<generation>-<instance>-<n>") and returns the id. The
  // instance is random per registry: plan ids double as commit and reservation request ids in the
  // store, so two servers on one database must never make the same one.
  std::string Keep(StoredPlan plan);
  // Re-keys: stores `plan` under an id made before (a reservation's).
  void KeepAs(const std::string& id, StoredPlan plan);
  std::string NewId(int64_t generation);
  // nullopt when unknown or expired.
  std::optional<StoredPlan> Find(const std::string& id);

  size_t size();
  int64_t bytes();

 private:
  struct Entry {
    StoredPlan plan;
    int64_t bytes = 0;
    std::chrono::steady_clock::time_point expires;
  };
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PlanRegistryOptions options_;
  const std::string instance_;  // 16 random hex digits
  Mutex mu_;
  std::map<std::string, Entry> plans_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

// An estimate of the heap bytes a stored plan holds.
int64_t ApproximateBytes(const StoredPlan& plan);

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_PLAN_REGISTRY_H_
