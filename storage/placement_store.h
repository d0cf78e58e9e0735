#ifndef FLEETPLAN_STORAGE_PLACEMENT_STORE_H_
#define FLEETPLAN_STORAGE_PLACEMENT_STORE_H_

// PlacementStore: the narrow interface the server uses to read and change fleetplan's state
// (GPU inventory, model catalog, deployments, placements). Domain structs in and out, never
// protos. Implementations: SqliteStore (storage/sqlite_store.h).
//
// Thread safety: implementations are safe to call from many threads at once.

#include <cstdint>

#include "absl/status/statusor.h"

namespace fleetplan::storage {

class PlacementStore {
 public:
  virtual ~PlacementStore() = default;

  // Schema version of the open store (SQLite user_version).
  virtual int64_t SchemaVersion() const = 0;

  // The fleet generation: a counter bumped by every change that affects capacity. A plan made
  // from a snapshot at generation G is stale once this differs from G for a GPU it touches.
  virtual absl::StatusOr<int64_t> FleetGeneration() = 0;
};

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_PLACEMENT_STORE_H_
