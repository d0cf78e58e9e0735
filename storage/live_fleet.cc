#include "storage/live_fleet.h"

#include <algorithm>
#include <utility>

#include "planner/common/status_macros.h"

namespace fleetplan::storage {

FleetView::FleetView(placement::FleetSnapshot snapshot, int64_t as_of_unix_ms,
                     int64_t next_expiry_unix_ms)
    : snapshot_(std::move(snapshot)),
      packing_(snapshot_),
      headroom_(snapshot_),
      as_of_unix_ms_(as_of_unix_ms),
      next_expiry_unix_ms_(next_expiry_unix_ms) {}

FleetView::FleetView(placement::FleetSnapshot snapshot, const FleetView& previous,
                     const std::vector<size_t>* changed, placement::HeadroomIndex headroom,
                     int64_t as_of_unix_ms, int64_t next_expiry_unix_ms)
    : snapshot_(std::move(snapshot)),
      packing_(changed != nullptr ? placement::PackingState(snapshot_, previous.packing_, *changed)
                                  : placement::PackingState(snapshot_)),
      headroom_(std::move(headroom)),
      as_of_unix_ms_(as_of_unix_ms),
      next_expiry_unix_ms_(next_expiry_unix_ms) {}

bool LiveFleet::Fresh(const FleetView& v, int64_t generation, int64_t now) const {
  const bool expired = v.next_expiry_unix_ms() > 0 && now >= v.next_expiry_unix_ms();
  return v.generation() >= generation && !expired;
}

absl::StatusOr<std::shared_ptr<const FleetView>> LiveFleet::Current() {
  ASSIGN_OR_RETURN(const int64_t generation, store_->FleetGeneration());
  const int64_t now = store_->NowUnixMs();
  std::shared_ptr<const FleetView> v;
  {
    MutexLock lock(&mu_);
    v = view_;
  }
  if (v != nullptr && Fresh(*v, generation, now)) return v;
  MutexLock refresh(&refresh_mu_);
  {
    MutexLock lock(&mu_);
    v = view_;  // another caller may have refreshed while this one waited
  }
  if (v != nullptr && Fresh(*v, generation, now)) return v;
  return Refresh(std::move(v));
}

absl::StatusOr<std::shared_ptr<const FleetView>> LiveFleet::Refresh(
    std::shared_ptr<const FleetView> old) {
  ASSIGN_OR_RETURN(FleetChanges changes,
                   old == nullptr ? store_->LoadChanges(0, 0)
                                  : store_->LoadChanges(old->generation(), old->as_of_unix_ms()));
  std::shared_ptr<const FleetView> next;
  int64_t reread = 0;
  if (changes.full || old == nullptr) {
    next = std::make_shared<const FleetView>(std::move(changes.snapshot), changes.as_of_unix_ms,
                                             changes.next_expiry_unix_ms);
  } else {
    placement::FleetSnapshot snap = old->snapshot();  // shares every node
    snap.generation = changes.generation;
    const bool same_types = [&] {
      const auto& a = snap.gpu_types;
      const auto& b = changes.snapshot.gpu_types;
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].name != b[i].name || a[i].memory_bytes != b[i].memory_bytes) return false;
      }
      return true;
    }();
    snap.gpu_types = std::move(changes.snapshot.gpu_types);
    placement::HeadroomIndex headroom = old->headroom();
    bool moved = false;  // a node came or went: positions shift, the planner's index is rebuilt
    std::vector<size_t> changed;
    auto position = [&](const std::string& name) {
      return static_cast<size_t>(std::lower_bound(snap.nodes.begin(), snap.nodes.end(), name,
                                                  [](const placement::Node& n,
                                                     const std::string& s) { return n.name < s; }) -
                                 snap.nodes.begin());
    };
    for (const std::string& name : changes.removed) {
      const size_t i = position(name);
      if (i < snap.nodes.size() && snap.nodes[i].name == name) {
        headroom.Replace(&snap.nodes[i], nullptr, snap.gpu_types);
        snap.nodes.Erase(i);
        moved = true;
      }
    }
    const placement::NodeList& fresh = changes.snapshot.nodes;
    for (size_t k = 0; k < fresh.size(); ++k) {
      const size_t i = position(fresh[k].name);
      if (i < snap.nodes.size() && snap.nodes[i].name == fresh[k].name) {
        headroom.Replace(&snap.nodes[i], &fresh[k], snap.gpu_types);
        snap.nodes.Replace(i, fresh[k]);
        changed.push_back(i);
      } else {
        headroom.Replace(nullptr, &fresh[k], snap.gpu_types);
        snap.nodes.Insert(i, fresh[k]);
        moved = true;
      }
    }
    reread = static_cast<int64_t>(fresh.size() + changes.removed.size());
    if (!same_types) {  // the store sends a full read then; this is the safe path regardless
      next = std::make_shared<const FleetView>(std::move(snap), changes.as_of_unix_ms,
                                               changes.next_expiry_unix_ms);
    } else {
      next = std::make_shared<const FleetView>(std::move(snap), *old, moved ? nullptr : &changed,
                                               std::move(headroom), changes.as_of_unix_ms,
                                               changes.next_expiry_unix_ms);
    }
  }
  MutexLock lock(&mu_);
  view_ = next;
  if (changes.full || old == nullptr) {
    ++stats_.full_reads;
  } else {
    ++stats_.incremental_reads;
    stats_.nodes_reread += reread;
  }
  return next;
}

LiveFleetStats LiveFleet::stats() {
  MutexLock lock(&mu_);
  return stats_;
}

}  // namespace fleetplan::storage
