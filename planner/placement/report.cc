// Words for the planner's structured results, and its vocabularies.

#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "planner/common/units.h"
#include "planner/placement/plan.h"

namespace fleetplan::placement {

const Vocabulary<Spread>& SpreadNames() {
  static const auto* const kNames = new Vocabulary<Spread>(
      "spread",
      {{Spread::kNone, "none", {""}}, {Spread::kNodes, "nodes"}, {Spread::kZones, "zones"}});
  return *kNames;
}

const Vocabulary<Strategy>& StrategyNames() {
  static const auto* const kNames = new Vocabulary<Strategy>(
      "strategy",
      {{Strategy::kPack, "pack"}, {Strategy::kSpread, "spread"}, {Strategy::kExact, "exact"}});
  return *kNames;
}

const Vocabulary<Shortfall::Kind>& ShortfallKindNames() {
  using K = Shortfall::Kind;
  static const auto* const kNames =
      new Vocabulary<K>("shortfall kind", {{K::kNoEligibleType, "no_eligible_type"},
                                           {K::kInvalid, "invalid"},
                                           {K::kWorkload, "workload"},
                                           {K::kDomainTooSmall, "domain_too_small"},
                                           {K::kTooLarge, "too_large"},
                                           {K::kTooFewDomains, "too_few_domains"},
                                           {K::kSpread, "spread"},
                                           {K::kCapacity, "capacity"}});
  return *kNames;
}

bool Unplaced::retryable() const {
  for (const Shortfall& s : shortfalls) {
    if (s.retryable()) return true;
  }
  return false;
}

std::string Describe(const Shortfall& s) {
  switch (s.kind) {
    case Shortfall::Kind::kNoEligibleType:
      return "no allowed GPU type, pool or zone in the fleet";
    case Shortfall::Kind::kInvalid:
      return absl::StrFormat("%s: no valid parallelism (%s)", s.gpu_type, s.detail);
    case Shortfall::Kind::kWorkload:
      return absl::StrFormat("%s: %s", s.gpu_type, s.detail);
    case Shortfall::Kind::kDomainTooSmall:
      return absl::StrFormat(
          "needs tp >= %d on %s (%.1f GiB/GPU); its largest NVLink domain in the allowed pools has "
          "%d GPUs",
          s.tp, s.gpu_type, BytesToGiB(s.need_bytes_per_gpu), s.largest_domain);
    case Shortfall::Kind::kTooLarge:
      return absl::StrFormat("%s: even %d GPUs leave %.1f GiB per GPU, over %.1f GiB allowed",
                             s.gpu_type, s.gpus, BytesToGiB(s.need_bytes_per_gpu),
                             BytesToGiB(s.allowed_bytes_per_gpu));
    case Shortfall::Kind::kTooFewDomains:
      return absl::StrFormat(
          "needs tp=%d x pp=%d on %s (%.1f GiB/GPU): %d NVLink domains of %d GPUs in one pool; the "
          "allowed pools have at most %d",
          s.tp, s.pp, s.gpu_type, BytesToGiB(s.need_bytes_per_gpu), s.pp, s.tp, s.largest_domain);
    case Shortfall::Kind::kSpread:
      return absl::StrFormat(
          "spread over %s needs one %s per replica; the allowed pools have %d with a domain of %d "
          "%s GPUs",
          SpreadNames().Name(s.spread), s.spread == Spread::kZones ? "zone" : "node",
          s.spread_targets, s.tp, s.gpu_type);
    case Shortfall::Kind::kCapacity:
      return absl::StrFormat(
          "needs tp=%d x pp=%d on %s at %.1f GiB/GPU; the largest free NVLink domain of %s in the "
          "allowed pools has %d eligible GPUs%s",
          s.tp, s.pp, s.gpu_type, BytesToGiB(s.need_bytes_per_gpu), s.gpu_type,
          s.best_eligible_gpus, s.spread != Spread::kNone ? " (replicas must be spread)" : "");
  }
  return "?";
}

std::string Describe(const Unplaced& u) {
  std::vector<std::string> parts;
  parts.reserve(u.shortfalls.size());
  for (const Shortfall& s : u.shortfalls) parts.push_back(Describe(s));
  return absl::StrJoin(parts, "; ");
}

}  // namespace fleetplan::placement
