#ifndef FLEETPLAN_PLANNER_PLACEMENT_SCORER_H_
#define FLEETPLAN_PLANNER_PLACEMENT_SCORER_H_

// How good it is to put one stage of a replica into a domain (policy separate from the loops, as
// Ray's scheduling policies are): smaller scores win. Best fit packs replicas onto the domains with
// the fewest free GPUs that still fit (limits fragmentation); worst fit picks the emptiest (spreads
// load). Stateless; thread-safe.

#include <cstdint>

#include "planner/common/units.h"

namespace fleetplan::placement {

class DomainScorer {
 public:
  virtual ~DomainScorer() = default;
  // `eligible` GPUs of the domain can take a rank, `needed` will, `free_bytes` are free on the
  // eligible ones.
  virtual int64_t Score(int64_t eligible, int64_t needed, int64_t free_bytes) const = 0;
  // True when Score never decreases as free GPUs grow, whatever the bytes: a search may then skip a
  // domain whose free-GPU count alone scores worse than the best found so far.
  virtual bool MonotoneInFreeGpus() const = 0;
};

// GPUs left free weigh far more than bytes: 2^40 per GPU dwarfs any free MiB count.
inline constexpr int64_t kScorePerFreeGpu = int64_t{1} << 40;

class BestFitScorer final : public DomainScorer {
 public:
  int64_t Score(int64_t eligible, int64_t needed, int64_t free_bytes) const override {
    return (eligible - needed) * kScorePerFreeGpu + free_bytes / kMiB;
  }
  bool MonotoneInFreeGpus() const override { return true; }
};

class WorstFitScorer final : public DomainScorer {
 public:
  int64_t Score(int64_t eligible, int64_t needed, int64_t free_bytes) const override {
    return -((eligible - needed) * kScorePerFreeGpu + free_bytes / kMiB);
  }
  bool MonotoneInFreeGpus() const override { return false; }
};

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_SCORER_H_
