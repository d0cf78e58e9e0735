// Greedy packing (the pack and spread strategies) and the plan's totals.

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "planner/placement/filters.h"
#include "planner/placement/packing.h"

namespace fleetplan::placement::internal {

bool FindPlace(const PackingState& st, const DeploymentSpec& d, const Candidate& c,
               const DomainScorer& scorer, Choice* out) {
  struct Option {
    int64_t score = 0;
    size_t domain = 0;
    std::vector<int64_t> gpus;
  };
  const std::vector<size_t>& ids = st.DomainsOfType(c.type->name);
  // Single-stage placements (the common case) keep only the best domain; pipelines collect the
  // options per pool (all stages of a replica live in one pool).
  const bool single = c.pp == 1;
  const bool prune = single && !d.shared && scorer.MonotoneInFreeGpus();
  bool have_best = false;
  Option best;
  std::map<std::string, std::vector<Option>> by_pool;
  for (size_t id : ids) {
    const DomainState& dom = st.domains()[id];
    if (!d.shared && st.free_exclusive(id) < c.tp) continue;  // O(1) reject
    const Node& n = st.node(dom);
    if (!NodeAllowed(d, n) || !SpreadAllows(st, d, n)) continue;
    // With a scorer monotone in free GPUs, a domain with more free GPUs cannot beat the best.
    if (prune && have_best && scorer.Score(st.free_exclusive(id), c.tp, 0) > best.score) continue;
    // Count first, build the GPU list only for a domain that would be kept.
    const Eligibility e = CountEligible(st, dom, d, c.max_rank_bytes);
    if (e.count < c.tp) continue;
    const int64_t free_sum = e.free_bytes;
    if (single && have_best && scorer.Score(e.count, c.tp, free_sum) >= best.score) continue;
    std::vector<int64_t> el = EligibleGpus(st, dom, d, c.max_rank_bytes);
    // Take the tp GPUs with the least free memory (shared) or the lowest indices (exclusive).
    if (d.shared) {
      std::stable_sort(el.begin(), el.end(), [&](int64_t a, int64_t b) {
        return st.free_bytes(dom.node, a) < st.free_bytes(dom.node, b);
      });
    }
    const int64_t eligible = static_cast<int64_t>(el.size());
    el.resize(static_cast<size_t>(c.tp));
    std::sort(el.begin(), el.end());
    Option option{scorer.Score(eligible, c.tp, free_sum), id, std::move(el)};
    if (single) {
      if (!have_best || option.score < best.score) {
        best = std::move(option);
        have_best = true;
      }
      continue;
    }
    by_pool[n.pool].push_back(std::move(option));
  }
  out->stages.clear();
  if (single) {
    if (!have_best) return false;
    out->stages.emplace_back(best.domain, best.gpus);
    return true;
  }
  bool found = false;
  int64_t best_total = 0;
  for (auto& [pool, options] : by_pool) {
    if (static_cast<int64_t>(options.size()) < c.pp) continue;
    std::stable_sort(options.begin(), options.end(),
                     [](const Option& a, const Option& b) { return a.score < b.score; });
    int64_t total = 0;
    for (int64_t i = 0; i < c.pp; ++i) total += options[static_cast<size_t>(i)].score;
    if (!found || total < best_total) {
      found = true;
      best_total = total;
      out->stages.clear();
      for (int64_t i = 0; i < c.pp; ++i) {
        const Option& o = options[static_cast<size_t>(i)];
        out->stages.emplace_back(o.domain, o.gpus);
      }
    }
  }
  return found;
}

ReplicaPlacement Apply(PackingState& st, const DeploymentSpec& d, int64_t replica,
                       const Candidate& c, const Choice& ch) {
  ReplicaPlacement out{.deployment = d.name,
                       .model = d.model,
                       .replica = replica,
                       .gpu_type = c.type->name,
                       .tp = c.tp,
                       .pp = c.pp,
                       .ep = c.ep,
                       .kv_cache_tokens = c.kv_tokens,
                       .gpu_memory_utilization = c.util,
                       .risk = RiskOfUse(c.max_rank_bytes, c.type->memory_bytes),
                       .launch_command = c.launch_command,
                       .host_bytes = c.host_bytes};
  std::map<std::string, std::vector<int64_t>> visible;
  for (size_t stage = 0; stage < ch.stages.size(); ++stage) {
    const auto& [domain_id, gpus] = ch.stages[stage];
    const Node& n = st.node(st.domains()[domain_id]);
    for (size_t r = 0; r < gpus.size(); ++r) {
      const Gpu& g = n.gpus[static_cast<size_t>(gpus[r])];
      const int64_t bytes = c.stage_bytes[stage];
      out.ranks.push_back(
          PlacementRank{.rank = static_cast<int64_t>(stage) * c.tp + static_cast<int64_t>(r),
                        .gpu = GpuRef{n.name, g.index},
                        .bytes = bytes});
      // An exclusive replica takes the whole GPU out of further use in this plan; a shared one
      // leaves the rest of its memory to others.
      const size_t node = st.domains()[domain_id].node;
      st.Place(domain_id, gpus[r], d.shared ? bytes : st.free_bytes(node, gpus[r]), d.name);
      visible[n.name].push_back(g.index);
    }
  }
  for (const auto& [node, idx] : visible) {
    out.cuda_visible_devices.push_back(absl::StrCat(node, ":", absl::StrJoin(idx, ",")));
  }
  return out;
}

Shortfall CapacityShortfall(const PackingState& st, const DeploymentSpec& d,
                            const std::vector<Candidate>& candidates) {
  const Candidate& c = candidates.front();
  Shortfall s{.kind = Shortfall::Kind::kCapacity,
              .gpu_type = c.type->name,
              .tp = c.tp,
              .pp = c.pp,
              .gpus = c.gpus,
              .need_bytes_per_gpu = c.max_rank_bytes,
              .allowed_bytes_per_gpu = AllowedBytesPerGpu(d, *c.type),
              .spread = d.spread};
  for (size_t id : st.DomainsOfType(c.type->name)) {
    const DomainState& dom = st.domains()[id];
    if (!NodeAllowed(d, st.node(dom))) continue;
    s.best_eligible_gpus =
        std::max(s.best_eligible_gpus,
                 static_cast<int64_t>(EligibleGpus(st, dom, d, c.max_rank_bytes).size()));
  }
  return s;
}

Unplaced NotPlaced(const PackingState& st, const Work& w) {
  Unplaced u{.deployment = w.d->name, .replica = w.replica};
  if (w.candidates->empty()) {
    u.shortfalls = *w.why_none;
    return u;
  }
  // A spread that needs more distinct nodes or zones than exist can never be satisfied.
  if (w.d->spread != Spread::kNone) {
    int64_t targets = 0;
    std::set<const GpuType*> types;
    for (const Candidate& c : *w.candidates) {
      if (types.insert(c.type).second) targets += SpreadTargets(st, *w.d, *c.type, c.tp);
    }
    if (w.replica >= targets) {
      const Candidate& c = w.candidates->front();
      u.shortfalls.push_back(Shortfall{.kind = Shortfall::Kind::kSpread,
                                       .gpu_type = c.type->name,
                                       .tp = c.tp,
                                       .pp = c.pp,
                                       .gpus = c.gpus,
                                       .spread_targets = targets,
                                       .spread = w.d->spread});
      return u;
    }
  }
  u.shortfalls.push_back(CapacityShortfall(st, *w.d, *w.candidates));
  return u;
}

absl::StatusOr<Plan> Pack(const PackingState& base, const std::vector<Work>& order,
                          const DomainScorer& scorer, const std::function<bool()>& cancelled) {
  PackingState st = base;
  Plan plan;
  plan.snapshot_generation = st.snapshot().generation;
  // Polled every so many replicas: a large request stops soon after its caller went away.
  constexpr size_t kCancelCheckEvery = 64;
  size_t done = 0;
  for (const Work& w : order) {
    if (cancelled && ++done % kCancelCheckEvery == 0 && cancelled()) {
      return absl::CancelledError(
          "planning was cancelled (the caller went away or the server is stopping)");
    }
    bool placed = false;
    for (const Candidate& c : *w.candidates) {
      Choice ch;
      if (!FindPlace(st, *w.d, c, scorer, &ch)) continue;
      plan.replicas.push_back(Apply(st, *w.d, w.replica, c, ch));
      placed = true;
      break;
    }
    if (!placed) plan.unplaced.push_back(NotPlaced(st, w));
  }
  return Finish(std::move(plan), order, st.snapshot());
}

Plan Finish(Plan plan, const std::vector<Work>& work, const FleetSnapshot& s) {
  // Lower bound per placed replica: its cheapest candidate's GPUs (exclusive), or the smallest
  // share of GPU memory any candidate needs (shared GPUs hold several replicas).
  std::map<std::pair<std::string, int64_t>, const Work*> by_replica;
  for (const Work& w : work) by_replica[{w.d->name, w.replica}] = &w;
  int64_t exclusive_bound = 0;
  double shared_gpus = 0;
  std::set<GpuRef> gpus;
  plan.cost_per_hour = 0;
  for (const ReplicaPlacement& r : plan.replicas) {
    const GpuType* t = s.FindGpuType(r.gpu_type);
    for (const PlacementRank& rank : r.ranks) {
      if (gpus.insert(rank.gpu).second && t != nullptr) plan.cost_per_hour += t->cost_per_hour;
    }
    auto it = by_replica.find({r.deployment, r.replica});
    if (it == by_replica.end() || it->second->candidates->empty()) continue;
    const Work& w = *it->second;
    if (!w.d->shared) {
      exclusive_bound += w.candidates->front().gpus;
      continue;
    }
    double least = -1;
    for (const Candidate& c : *w.candidates) {
      int64_t bytes = 0;
      for (int64_t b : c.stage_bytes) bytes += b * c.tp;
      const double share = static_cast<double>(bytes) / static_cast<double>(c.type->memory_bytes);
      least = least < 0 ? share : std::min(least, share);
    }
    shared_gpus += std::max(least, 0.0);
  }
  plan.gpus_used = static_cast<int64_t>(gpus.size());
  plan.lower_bound_gpus = exclusive_bound + static_cast<int64_t>(std::ceil(shared_gpus - 1e-9));
  plan.gap =
      plan.lower_bound_gpus > 0
          ? static_cast<double>(plan.gpus_used) / static_cast<double>(plan.lower_bound_gpus) - 1
          : 0;
  std::sort(plan.replicas.begin(), plan.replicas.end(),
            [](const ReplicaPlacement& a, const ReplicaPlacement& b) {
              return std::tie(a.deployment, a.replica) < std::tie(b.deployment, b.replica);
            });
  std::sort(plan.unplaced.begin(), plan.unplaced.end(), [](const Unplaced& a, const Unplaced& b) {
    return std::tie(a.deployment, a.replica) < std::tie(b.deployment, b.replica);
  });
  return plan;
}

bool Better(const Plan& a, const Plan& b) {
  return std::make_tuple(a.unplaced.size(), a.gpus_used, a.cost_per_hour) <
         std::make_tuple(b.unplaced.size(), b.gpus_used, b.cost_per_hour);
}

}  // namespace fleetplan::placement::internal
