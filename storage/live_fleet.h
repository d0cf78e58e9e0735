#ifndef FLEETPLAN_STORAGE_LIVE_FLEET_H_
#define FLEETPLAN_STORAGE_LIVE_FLEET_H_

// The server's live fleet state (DESIGN.md "The live fleet state"): one in-memory read model of
// the fleet, current with every write to the store (this server's, another server's or the CLI's
// on the same database) and handed to readers as immutable views.
//
// How it stays current without re-reading the fleet: each Current() asks the store for its fleet
// generation (one small read). When it moved, or a reservation in the view has expired since,
// LoadChanges returns just the nodes written or expired since the view (the store's triggers note
// every node a write touches), and the next view is the last one with those nodes replaced: the
// other nodes are shared, not copied (placement::NodeList), and the planner's index is updated for
// the changed nodes only (placement::PackingState's incremental constructor). A burst of changes,
// or a GPU type change, is one full read instead.
//
// The store stays the only judge of a commit: staleness and over-commit are checked in its
// transaction, so a view that is a moment old can cost a retry (ABORTED), never a double-booking.
//
// Thread-safe. Views are immutable and may be held for as long as a reader needs; concurrent
// callers that find the view stale share one refresh.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "planner/common/mutex.h"
#include "planner/placement/fleet.h"
#include "planner/placement/headroom_index.h"
#include "planner/placement/packing_state.h"
#include "storage/placement_store.h"

namespace fleetplan::storage {

// One immutable picture of the fleet, the planner's index of it and its headroom sums.
class FleetView {
 public:
  // A view of `snapshot` (a full read).
  FleetView(placement::FleetSnapshot snapshot, int64_t as_of_unix_ms, int64_t next_expiry_unix_ms);
  // `snapshot` is `previous`'s with some nodes replaced, added or removed; `headroom` already
  // accounts for them. `changed`: the replaced positions when no node was added or removed (the
  // planner's index is then updated, not rebuilt); null otherwise.
  FleetView(placement::FleetSnapshot snapshot, const FleetView& previous,
            const std::vector<size_t>* changed, placement::HeadroomIndex headroom,
            int64_t as_of_unix_ms, int64_t next_expiry_unix_ms);
  FleetView(const FleetView&) = delete;
  FleetView& operator=(const FleetView&) = delete;

  const placement::FleetSnapshot& snapshot() const { return snapshot_; }
  const placement::PackingState& packing() const { return packing_; }
  const placement::HeadroomIndex& headroom() const { return headroom_; }
  int64_t generation() const { return snapshot_.generation; }
  int64_t as_of_unix_ms() const { return as_of_unix_ms_; }
  int64_t next_expiry_unix_ms() const { return next_expiry_unix_ms_; }

 private:
  const placement::FleetSnapshot snapshot_;
  const placement::PackingState packing_;  // points into snapshot_
  const placement::HeadroomIndex headroom_;
  const int64_t as_of_unix_ms_;
  const int64_t next_expiry_unix_ms_;
};

struct LiveFleetStats {
  int64_t full_reads = 0;         // views built from a whole-fleet read
  int64_t incremental_reads = 0;  // views built from the nodes that changed
  int64_t nodes_reread = 0;       // nodes re-read by incremental reads, in all
};

class LiveFleet {
 public:
  explicit LiveFleet(PlacementStore* store) : store_(store) {}

  // The current view (read on first use). Errors are the store's.
  absl::StatusOr<std::shared_ptr<const FleetView>> Current();

  LiveFleetStats stats();

 private:
  bool Fresh(const FleetView& v, int64_t generation, int64_t now) const;
  absl::StatusOr<std::shared_ptr<const FleetView>> Refresh(std::shared_ptr<const FleetView> old);

  PlacementStore* const store_;
  Mutex refresh_mu_;  // one refresh at a time; held while reading from the store
  Mutex mu_;          // guards view_ and stats_ (held briefly)
  std::shared_ptr<const FleetView> view_ ABSL_GUARDED_BY(mu_);
  LiveFleetStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_LIVE_FLEET_H_
