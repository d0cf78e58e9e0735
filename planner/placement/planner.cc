#include "planner/placement/planner.h"

#include <Cbc_C_Interface.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/placement/headroom.h"

namespace fleetplan::placement {
namespace {

// ---- Candidates ------------------------------------------------------------------------------

struct Candidate {
  const GpuType* type = nullptr;
  int64_t tp = 1, pp = 1, ep = 1;
  std::vector<int64_t> stage_bytes;  // per pipeline stage (its tp ranks are equal)
  int64_t max_rank_bytes = 0;
  int64_t gpus = 1;
  int64_t kv_tokens = 0;
  double util = 0;
};

bool Allowed(const std::vector<std::string>& allowed, const std::string& value) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

bool NodeAllowed(const DeploymentSpec& d, const Node& n) {
  return Allowed(d.pools, n.pool) && Allowed(d.zones, n.zone);
}


// The per-stage bytes a replica needs at `cand`'s parallelism: everything but the KV pool, plus the
// KV blocks of `concurrency` sequences of `context` tokens (as estimator::Budget accounts it).
absl::StatusOr<Candidate> Evaluate(const DeploymentSpec& d, const GpuType& type, int64_t tp,
                                   int64_t pp, int64_t ep) {
  estimator::EstimateRequest req;
  req.engine = estimator::Engine::kVllm;
  req.parallelism = {.tp = tp, .pp = pp, .ep = ep};
  req.gpu_memory_bytes = type.memory_bytes;
  req.kv_fp8 = d.kv_fp8;
  req.vllm = d.vllm;
  req.vllm.gpu_memory_utilization = 1.0;
  ASSIGN_OR_RETURN(estimator::MemoryEstimate e, estimator::Estimate(*d.spec, req));
  Candidate c{.type = &type, .tp = tp, .pp = pp, .ep = ep, .gpus = tp * pp};
  const int64_t context = d.context_tokens > 0 ? d.context_tokens : e.max_model_len;
  const int64_t block = d.vllm.block_size > 0 ? d.vllm.block_size : 16;
  const int64_t tokens = (context + block - 1) / block * block;
  double util = 0;
  for (const estimator::StageMemory& s : e.stages) {
    const int64_t kv = d.concurrency * tokens * s.kv_cache_bytes_per_token;
    const int64_t need = s.total_bytes - s.kv_cache_bytes + kv;
    c.stage_bytes.push_back(need);
    c.max_rank_bytes = std::max(c.max_rank_bytes, need);
    // --gpu-memory-utilization covers weights, activations, non-torch memory and this KV.
    const int64_t budget = need - s.cuda_context_bytes - s.cuda_graph_bytes;
    util = std::max(util, static_cast<double>(budget) / static_cast<double>(type.memory_bytes));
  }
  c.util = std::min(0.99, std::ceil(util * 100 + 1e-9) / 100);
  c.kv_tokens = d.concurrency * tokens;
  return c;
}

// Feasible candidates for `d` on every allowed GPU type, cheapest first; `why` explains an empty
// result.
struct State;
std::map<std::string, int64_t> LargestDomains(const State& st, const DeploymentSpec& d);

std::vector<Candidate> Candidates(const FleetSnapshot& s, const State& st, const DeploymentSpec& d,
                                  std::string* why) {
  std::vector<Candidate> out;
  const std::map<std::string, int64_t> largest = LargestDomains(st, d);
  std::vector<std::string> reasons;
  for (const GpuType& type : s.gpu_types) {
    auto it = largest.find(type.name);
    if (it == largest.end() || !Allowed(d.gpu_types, type.name)) continue;
    const int64_t cap = static_cast<int64_t>(std::floor((1.0 - d.min_free_ratio) * static_cast<double>(type.memory_bytes)));
    int64_t smallest_need = -1;
    int64_t smallest_gpus = 0;
    for (int64_t tp = 1; tp <= d.max_tp; tp *= 2) {
      for (int64_t pp = 1; pp <= d.max_pp; ++pp) {
        if (pp > d.spec->num_layers) break;
        std::vector<int64_t> eps = {1};
        if (d.spec->is_moe() && tp > 1) eps.push_back(tp);
        for (int64_t ep : eps) {
          absl::StatusOr<Candidate> c = Evaluate(d, type, tp, pp, ep);
          if (!c.ok()) continue;
          if (smallest_need < 0 || c->max_rank_bytes < smallest_need) {
            smallest_need = c->max_rank_bytes;
            smallest_gpus = c->gpus;
          }
          if (c->max_rank_bytes > cap) continue;
          if (tp > it->second) continue;  // a TP group lives in one NVLink domain
          out.push_back(std::move(*c));
        }
      }
    }
    // Pipeline stages only when no single NVLink domain of this type holds a replica: TP inside a
    // domain is faster than PP across domains, so PP is the fallback, not a GPU saver.
    const bool single_domain_fits = std::any_of(out.begin(), out.end(), [&](const Candidate& c) {
      return c.type == &type && c.pp == 1;
    });
    if (single_domain_fits) {
      out.erase(std::remove_if(out.begin(), out.end(),
                               [&](const Candidate& c) { return c.type == &type && c.pp > 1; }),
                out.end());
    }
    if (out.empty() || out.back().type != &type) {
      if (smallest_need < 0) {
        reasons.push_back(absl::StrCat(type.name, ": no valid parallelism"));
      } else {
        // Smallest GPU count whose ranks fit, ignoring topology.
        int64_t need_tp = 0;
        for (int64_t tp = 1; tp <= 64 && need_tp == 0; tp *= 2) {
          absl::StatusOr<Candidate> c = Evaluate(d, type, tp, 1, 1);
          if (c.ok() && c->max_rank_bytes <= cap) need_tp = tp;
        }
        reasons.push_back(need_tp > 0
                              ? absl::StrFormat("needs tp >= %d on %s (%.1f GiB/GPU); its largest NVLink domain in the allowed pools has %d GPUs",
                                                need_tp, type.name, BytesToGiB(Evaluate(d, type, need_tp, 1, 1)->max_rank_bytes),
                                                it->second)
                              : absl::StrFormat("%s: even %d GPUs leave %.1f GiB per GPU, over %.1f GiB allowed",
                                                type.name, smallest_gpus, BytesToGiB(smallest_need), BytesToGiB(cap)));
      }
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
    const double ca = a.type->cost_per_hour * static_cast<double>(a.gpus);
    const double cb = b.type->cost_per_hour * static_cast<double>(b.gpus);
    return std::tie(a.gpus, ca, a.max_rank_bytes, a.pp) < std::tie(b.gpus, cb, b.max_rank_bytes, b.pp);
  });
  if (out.empty()) {
    *why = reasons.empty() ? "no allowed GPU type, pool or zone in the fleet" : absl::StrJoin(reasons, "; ");
  }
  return out;
}

// ---- Fleet state during packing --------------------------------------------------------------

struct DomainState {
  int64_t node = 0;  // index into snapshot.nodes
  int64_t domain = 0;
  const GpuType* type = nullptr;
  std::vector<int64_t> gpus;  // indices into node.gpus (schedulable GPUs of this domain and type)
  int64_t size = 0;           // all GPUs of this domain and type, schedulable or not
  int64_t free_exclusive = 0; // schedulable GPUs nothing is placed on (maintained while packing)
};

struct State {
  const FleetSnapshot* snap = nullptr;
  std::vector<DomainState> domains;                  // ordered by node, domain, type
  std::map<std::string, std::vector<size_t>> by_type;  // GPU type -> domains
  std::vector<size_t> offset;      // node -> first slot of its GPUs in the flat arrays below
  std::vector<int64_t> free_bytes; // [offset[node] + gpu position]
  std::vector<char> untouched;     // [offset[node] + gpu position]: schedulable, nothing placed
  std::map<std::string, std::set<std::string>> used_nodes, used_zones;  // per deployment
};

State MakeState(const FleetSnapshot& s) {
  State st;
  st.snap = &s;
  size_t total = 0;
  st.offset.reserve(s.nodes.size());
  for (const Node& n : s.nodes) {
    st.offset.push_back(total);
    total += n.gpus.size();
  }
  st.free_bytes.resize(total);
  st.untouched.resize(total);
  const GpuType* last_type = nullptr;
  std::vector<DomainState> local;  // this node's domains (few): linear lookup, no map
  for (size_t ni = 0; ni < s.nodes.size(); ++ni) {
    const Node& n = s.nodes[ni];
    local.clear();
    for (size_t gi = 0; gi < n.gpus.size(); ++gi) {
      const Gpu& g = n.gpus[gi];
      if (last_type == nullptr || last_type->name != g.gpu_type) last_type = s.FindGpuType(g.gpu_type);
      const GpuType* type = last_type;
      const bool ok = n.state == NodeState::kActive && g.healthy && type != nullptr;
      const bool free = ok && g.committed_bytes + g.reserved_bytes == 0;
      const size_t slot = st.offset[ni] + gi;
      st.free_bytes[slot] = ok ? type->memory_bytes - g.committed_bytes - g.reserved_bytes : 0;
      st.untouched[slot] = free ? 1 : 0;
      if (type == nullptr) continue;
      DomainState* dom = nullptr;
      for (DomainState& d : local) {
        if (d.domain == g.nvlink_domain && d.type == type) dom = &d;
      }
      if (dom == nullptr) {
        local.push_back(DomainState{.node = static_cast<int64_t>(ni), .domain = g.nvlink_domain, .type = type});
        dom = &local.back();
      }
      ++dom->size;
      if (ok) dom->gpus.push_back(static_cast<int64_t>(gi));
      if (free) ++dom->free_exclusive;
    }
    std::sort(local.begin(), local.end(), [](const DomainState& a, const DomainState& b) {
      return std::tie(a.domain, a.type->name) < std::tie(b.domain, b.type->name);
    });
    for (DomainState& dom : local) {
      st.by_type[dom.type->name].push_back(st.domains.size());
      st.domains.push_back(std::move(dom));
    }
  }
  return st;
}

// Per GPU type, over the nodes a deployment may use: the largest NVLink domain (all its GPUs).
std::map<std::string, int64_t> LargestDomains(const State& st, const DeploymentSpec& d) {
  std::map<std::string, int64_t> out;
  for (const auto& [type, ids] : st.by_type) {
    for (size_t id : ids) {
      const DomainState& dom = st.domains[id];
      if (!NodeAllowed(d, st.snap->nodes[static_cast<size_t>(dom.node)])) continue;
      out[type] = std::max(out[type], dom.size);
    }
  }
  return out;
}

// GPUs of `dom` that can take a rank of `bytes` for `d`.
std::vector<int64_t> Eligible(const State& st, const DomainState& dom, const DeploymentSpec& d,
                              const GpuType& type, int64_t bytes) {
  std::vector<int64_t> out;
  const Node& n = st.snap->nodes[static_cast<size_t>(dom.node)];
  const int64_t keep = static_cast<int64_t>(std::ceil(d.min_free_ratio * static_cast<double>(type.memory_bytes)));
  for (int64_t gi : dom.gpus) {
    const Gpu& g = n.gpus[static_cast<size_t>(gi)];
    if (g.gpu_type != type.name) continue;
    const auto ni = static_cast<size_t>(dom.node);
    const auto gp = static_cast<size_t>(gi);
    if (d.shared) {
      if (st.free_bytes[st.offset[ni] + gp] - bytes >= keep) out.push_back(gi);
    } else if (st.untouched[st.offset[ni] + gp]) {
      out.push_back(gi);
    }
  }
  return out;
}

bool SpreadAllows(const State& st, const DeploymentSpec& d, const Node& n) {
  if (d.spread == Spread::kNodes) {
    auto it = st.used_nodes.find(d.name);
    return it == st.used_nodes.end() || !it->second.count(n.name);
  }
  if (d.spread == Spread::kZones) {
    auto it = st.used_zones.find(d.name);
    return it == st.used_zones.end() || !it->second.count(n.zone);
  }
  return true;
}

// The scorer: how good it is to put a stage of `need` GPUs into a domain with `eligible` GPUs
// (smaller is better). Separate from the strategy loops so the rule can change alone.
struct Scorer {
  Strategy strategy;
  int64_t operator()(int64_t eligible, int64_t need, int64_t free_bytes) const {
    const int64_t left = eligible - need;  // GPUs left free in the domain
    if (strategy == Strategy::kSpread) return -(left * (int64_t{1} << 40) + free_bytes / kMiB);
    return left * (int64_t{1} << 40) + free_bytes / kMiB;  // best fit
  }
};

struct Choice {
  std::vector<std::pair<const DomainState*, std::vector<int64_t>>> stages;  // domain, GPU positions
};

// Finds domains for each pipeline stage of `c` (pp > 1: distinct domains of one pool).
bool FindPlace(const State& st, const DeploymentSpec& d, const Candidate& c, const Scorer& score,
               Choice* out) {
  const FleetSnapshot& s = *st.snap;
  struct Option {
    int64_t score;
    const DomainState* dom;
    std::vector<int64_t> gpus;
  };
  std::map<std::string, std::vector<Option>> by_pool;
  auto type_it = st.by_type.find(c.type->name);
  if (type_it == st.by_type.end()) return false;
  // Single-stage exclusive placements (the common case) keep only the best domain.
  const bool single = c.pp == 1;
  Option best_single{0, nullptr, {}};
  for (size_t id : type_it->second) {
    const DomainState& dom = st.domains[id];
    if (!d.shared && dom.free_exclusive < c.tp) continue;  // O(1) reject
    const Node& n = s.nodes[static_cast<size_t>(dom.node)];
    if (!NodeAllowed(d, n) || !SpreadAllows(st, d, n)) continue;
    if (single && !d.shared && score.strategy == Strategy::kPack && best_single.dom != nullptr &&
        score(dom.free_exclusive, c.tp, 0) > best_single.score) {
      continue;  // best fit: a domain with more free GPUs cannot beat the best so far
    }
    std::vector<int64_t> el = Eligible(st, dom, d, *c.type, c.max_rank_bytes);
    if (static_cast<int64_t>(el.size()) < c.tp) continue;
    int64_t free_sum = 0;
    for (int64_t gi : el) free_sum += st.free_bytes[st.offset[static_cast<size_t>(dom.node)] + static_cast<size_t>(gi)];
    // Take the tp GPUs with the least free memory (shared) or the lowest indices (exclusive).
    if (d.shared) {
      std::stable_sort(el.begin(), el.end(), [&](int64_t a, int64_t b) {
        return st.free_bytes[st.offset[static_cast<size_t>(dom.node)] + static_cast<size_t>(a)] <
               st.free_bytes[st.offset[static_cast<size_t>(dom.node)] + static_cast<size_t>(b)];
      });
    }
    const int64_t eligible = static_cast<int64_t>(el.size());
    el.resize(static_cast<size_t>(c.tp));
    std::sort(el.begin(), el.end());
    const int64_t sc = score(eligible, c.tp, free_sum);
    if (single) {
      if (best_single.dom == nullptr || sc < best_single.score) best_single = Option{sc, &dom, el};
      continue;
    }
    by_pool[n.pool].push_back(Option{sc, &dom, el});
  }
  if (single) {
    if (best_single.dom == nullptr) return false;
    out->stages.clear();
    out->stages.emplace_back(best_single.dom, best_single.gpus);
    return true;
  }
  bool found = false;
  int64_t best = 0;
  for (auto& [pool, options] : by_pool) {
    if (static_cast<int64_t>(options.size()) < c.pp) continue;
    std::stable_sort(options.begin(), options.end(),
                     [](const Option& a, const Option& b) { return a.score < b.score; });
    int64_t total = 0;
    for (int64_t i = 0; i < c.pp; ++i) total += options[static_cast<size_t>(i)].score;
    if (!found || total < best) {
      found = true;
      best = total;
      out->stages.clear();
      for (int64_t i = 0; i < c.pp; ++i) {
        out->stages.emplace_back(options[static_cast<size_t>(i)].dom, options[static_cast<size_t>(i)].gpus);
      }
    }
  }
  return found;
}

std::string LaunchCommand(const DeploymentSpec& d, const Candidate& c, int64_t max_model_len) {
  std::string cmd = absl::StrCat("vllm serve ", d.model.empty() ? "MODEL" : d.model);
  if (c.tp > 1) absl::StrAppend(&cmd, " --tensor-parallel-size ", c.tp);
  if (c.pp > 1) absl::StrAppend(&cmd, " --pipeline-parallel-size ", c.pp);
  if (c.ep > 1) absl::StrAppend(&cmd, " --enable-expert-parallel");
  absl::StrAppend(&cmd, absl::StrFormat(" --gpu-memory-utilization %.2f", c.util));
  if (max_model_len > 0) absl::StrAppend(&cmd, " --max-model-len ", max_model_len);
  if (d.kv_fp8) absl::StrAppend(&cmd, " --kv-cache-dtype fp8");
  if (d.vllm.max_num_seqs > 0) absl::StrAppend(&cmd, " --max-num-seqs ", d.vllm.max_num_seqs);
  return cmd;
}

void Apply(State& st, const DeploymentSpec& d, int64_t replica, const Candidate& c, const Choice& ch,
           ReplicaPlacement* out) {
  const FleetSnapshot& s = *st.snap;
  *out = ReplicaPlacement{.deployment = d.name, .model = d.model, .replica = replica,
                          .gpu_type = c.type->name, .tp = c.tp, .pp = c.pp, .ep = c.ep,
                          .kv_cache_tokens = c.kv_tokens, .gpu_memory_utilization = c.util,
                          .risk = GpuRisk(c.max_rank_bytes, c.type->memory_bytes)};
  std::map<std::string, std::vector<int64_t>> visible;
  for (size_t stage = 0; stage < ch.stages.size(); ++stage) {
    const DomainState* dom = ch.stages[stage].first;
    const Node& n = s.nodes[static_cast<size_t>(dom->node)];
    for (size_t r = 0; r < ch.stages[stage].second.size(); ++r) {
      const int64_t gi = ch.stages[stage].second[r];
      const Gpu& g = n.gpus[static_cast<size_t>(gi)];
      // What a rank reserves is what it needs; an exclusive replica also takes the GPU out of
      // further use (untouched = false), a shared one leaves the rest to others.
      out->ranks.push_back(PlacementRank{.rank = static_cast<int64_t>(stage) * c.tp + static_cast<int64_t>(r),
                                         .gpu = GpuRef{n.name, g.index},
                                         .bytes = c.stage_bytes[stage]});
      st.free_bytes[st.offset[static_cast<size_t>(dom->node)] + static_cast<size_t>(gi)] -= c.stage_bytes[stage];
      if (st.untouched[st.offset[static_cast<size_t>(dom->node)] + static_cast<size_t>(gi)]) {
        st.untouched[st.offset[static_cast<size_t>(dom->node)] + static_cast<size_t>(gi)] = 0;
        --st.domains[static_cast<size_t>(dom - st.domains.data())].free_exclusive;
      }
      visible[n.name].push_back(g.index);
    }
    st.used_nodes[d.name].insert(n.name);
    st.used_zones[d.name].insert(n.zone);
  }
  for (const auto& [node, idx] : visible) {
    out->cuda_visible_devices.push_back(absl::StrCat(node, ":", absl::StrJoin(idx, ",")));
  }
  out->launch_command = LaunchCommand(d, c, d.vllm.max_model_len);
}

struct Work {
  const DeploymentSpec* d;
  int64_t replica;
  const std::vector<Candidate>* candidates;
  std::string why_none;  // when candidates is empty
};

Plan Finish(Plan plan, const std::vector<Work>& work, const FleetSnapshot& s) {
  std::map<std::pair<std::string, int64_t>, int64_t> min_gpus;
  for (const Work& w : work) {
    if (!w.candidates->empty()) min_gpus[{w.d->name, w.replica}] = w.candidates->front().gpus;
  }
  plan.gpus_used = 0;
  plan.cost_per_hour = 0;
  plan.lower_bound_gpus = 0;
  for (const ReplicaPlacement& r : plan.replicas) {
    plan.gpus_used += static_cast<int64_t>(r.ranks.size());
    const GpuType* t = s.FindGpuType(r.gpu_type);
    if (t != nullptr) plan.cost_per_hour += t->cost_per_hour * static_cast<double>(r.ranks.size());
    plan.lower_bound_gpus += min_gpus[{r.deployment, r.replica}];
  }
  plan.gap = plan.lower_bound_gpus > 0
                 ? static_cast<double>(plan.gpus_used) / static_cast<double>(plan.lower_bound_gpus) - 1
                 : 0;
  std::sort(plan.replicas.begin(), plan.replicas.end(), [](const ReplicaPlacement& a, const ReplicaPlacement& b) {
    return std::tie(a.deployment, a.replica) < std::tie(b.deployment, b.replica);
  });
  std::sort(plan.unplaced.begin(), plan.unplaced.end(), [](const Unplaced& a, const Unplaced& b) {
    return std::tie(a.deployment, a.replica) < std::tie(b.deployment, b.replica);
  });
  return plan;
}

std::string CapacityReason(const State& st, const DeploymentSpec& d, const std::vector<Candidate>& cands) {
  const Candidate& c = cands.front();
  int64_t best_free = 0;
  auto type_it = st.by_type.find(c.type->name);
  for (size_t id : type_it == st.by_type.end() ? std::vector<size_t>{} : type_it->second) {
    const DomainState& dom = st.domains[id];
    const Node& n = st.snap->nodes[static_cast<size_t>(dom.node)];
    if (!NodeAllowed(d, n)) continue;
    best_free = std::max(best_free, static_cast<int64_t>(Eligible(st, dom, d, *c.type, c.max_rank_bytes).size()));
  }
  return absl::StrFormat(
      "needs tp=%d x pp=%d on %s at %.1f GiB/GPU; the largest free NVLink domain of %s in the "
      "allowed pools has %d eligible GPUs%s",
      c.tp, c.pp, c.type->name, BytesToGiB(c.max_rank_bytes), c.type->name, best_free,
      d.spread != Spread::kNone ? " (replicas must be spread)" : "");
}

// Greedy packing of `order`.
Plan Pack(const FleetSnapshot& s, const State& base, const std::vector<Work>& order, Strategy strategy) {
  State st = base;
  Plan plan;
  plan.snapshot_generation = s.generation;
  const Scorer scorer{strategy};
  for (const Work& w : order) {
    if (w.candidates->empty()) {
      plan.unplaced.push_back(Unplaced{w.d->name, w.replica, false, w.why_none});
      continue;
    }
    bool placed = false;
    for (const Candidate& c : *w.candidates) {
      Choice ch;
      if (!FindPlace(st, *w.d, c, scorer, &ch)) continue;
      ReplicaPlacement r;
      Apply(st, *w.d, w.replica, c, ch, &r);
      plan.replicas.push_back(std::move(r));
      placed = true;
      break;
    }
    if (!placed) plan.unplaced.push_back(Unplaced{w.d->name, w.replica, true, CapacityReason(st, *w.d, *w.candidates)});
  }
  return Finish(std::move(plan), order, s);
}

bool Better(const Plan& a, const Plan& b) {
  return std::make_tuple(a.unplaced.size(), a.gpus_used, a.cost_per_hour) <
         std::make_tuple(b.unplaced.size(), b.gpus_used, b.cost_per_hour);
}

// ---- Exact (CBC) -----------------------------------------------------------------------------

absl::StatusOr<Plan> Exact(const FleetSnapshot& s, const State& base, const std::vector<Work>& work,
                           const PlannerOptions& o, bool* fallback) {
  *fallback = false;
  for (const Work& w : work) {
    if (w.d->shared) {
      *fallback = true;
      return Plan{};
    }
  }
  State st = base;
  struct Var {
    size_t work;
    const Candidate* c;
    size_t domain;
  };
  std::vector<Var> vars;
  for (size_t wi = 0; wi < work.size(); ++wi) {
    const Work& w = work[wi];
    for (const Candidate& c : *w.candidates) {
      if (c.pp != 1) continue;
      auto type_it = st.by_type.find(c.type->name);
      if (type_it == st.by_type.end()) continue;
      for (size_t di : type_it->second) {
        const DomainState& dom = st.domains[di];
        const Node& n = s.nodes[static_cast<size_t>(dom.node)];
        if (!NodeAllowed(*w.d, n)) continue;
        if (static_cast<int64_t>(Eligible(st, dom, *w.d, *c.type, c.max_rank_bytes).size()) < c.tp) continue;
        vars.push_back(Var{wi, &c, di});
        if (static_cast<int64_t>(vars.size()) > o.exact_max_variables) {
          *fallback = true;
          return Plan{};
        }
      }
    }
  }
  Cbc_Model* model = Cbc_newModel();
  Cbc_setLogLevel(model, 0);
  Cbc_setMaximumSeconds(model, o.exact_time_limit_seconds);
  int64_t max_gpus = 1;
  for (const Work& w : work) {
    for (const Candidate& c : *w.candidates) max_gpus = std::max(max_gpus, c.gpus);
  }
  const double unplaced_cost = 1000.0 * static_cast<double>(max_gpus);
  for (const Var& v : vars) {
    const double cost = static_cast<double>(v.c->gpus) + 1e-4 * v.c->type->cost_per_hour * static_cast<double>(v.c->gpus);
    Cbc_addCol(model, "", 0, 1, cost, 1, 0, nullptr, nullptr);
  }
  const int slack0 = static_cast<int>(vars.size());
  for (size_t wi = 0; wi < work.size(); ++wi) Cbc_addCol(model, "", 0, 1, unplaced_cost, 1, 0, nullptr, nullptr);
  // Each replica placed once (or left unplaced at a high price).
  std::vector<std::vector<int>> by_work(work.size());
  std::map<size_t, std::vector<std::pair<int, double>>> by_domain;
  std::map<std::pair<std::string, std::string>, std::vector<int>> by_spread;  // (deployment, node/zone)
  for (size_t i = 0; i < vars.size(); ++i) {
    by_work[vars[i].work].push_back(static_cast<int>(i));
    by_domain[vars[i].domain].push_back({static_cast<int>(i), static_cast<double>(vars[i].c->tp)});
    const DeploymentSpec& d = *work[vars[i].work].d;
    const Node& n = s.nodes[static_cast<size_t>(st.domains[vars[i].domain].node)];
    if (d.spread == Spread::kNodes) by_spread[{d.name, n.name}].push_back(static_cast<int>(i));
    if (d.spread == Spread::kZones) by_spread[{d.name, n.zone}].push_back(static_cast<int>(i));
  }
  for (size_t wi = 0; wi < work.size(); ++wi) {
    std::vector<int> cols = by_work[wi];
    cols.push_back(slack0 + static_cast<int>(wi));
    std::vector<double> ones(cols.size(), 1.0);
    Cbc_addRow(model, "", static_cast<int>(cols.size()), cols.data(), ones.data(), 'E', 1.0);
  }
  for (const auto& [di, entries] : by_domain) {
    std::vector<int> cols;
    std::vector<double> coefs;
    for (const auto& [col, tp] : entries) {
      cols.push_back(col);
      coefs.push_back(tp);
    }
    // Exclusive: whole free GPUs of the domain (all candidates of a domain share its type).
    const DomainState& dom = st.domains[di];
    const int64_t free = dom.free_exclusive;
    Cbc_addRow(model, "", static_cast<int>(cols.size()), cols.data(), coefs.data(), 'L', static_cast<double>(free));
  }
  for (const auto& [key, cols] : by_spread) {
    std::vector<double> ones(cols.size(), 1.0);
    Cbc_addRow(model, "", static_cast<int>(cols.size()), cols.data(), ones.data(), 'L', 1.0);
  }
  Cbc_solve(model);
  Plan plan;
  plan.snapshot_generation = s.generation;
  plan.exact_optimal = Cbc_isProvenOptimal(model) != 0;
  const double* x = Cbc_getColSolution(model);
  if (x == nullptr) {
    Cbc_deleteModel(model);
    *fallback = true;
    return Plan{};
  }
  for (size_t wi = 0; wi < work.size(); ++wi) {
    const Work& w = work[wi];
    const Var* chosen = nullptr;
    for (int col : by_work[wi]) {
      if (x[col] > 0.5) chosen = &vars[static_cast<size_t>(col)];
    }
    if (chosen == nullptr) {
      plan.unplaced.push_back(w.candidates->empty()
                                  ? Unplaced{w.d->name, w.replica, false, w.why_none}
                                  : Unplaced{w.d->name, w.replica, true, CapacityReason(st, *w.d, *w.candidates)});
      continue;
    }
    const DomainState& dom = st.domains[chosen->domain];
    std::vector<int64_t> el = Eligible(st, dom, *w.d, *chosen->c->type, chosen->c->max_rank_bytes);
    el.resize(static_cast<size_t>(chosen->c->tp));
    Choice ch;
    ch.stages.emplace_back(&dom, el);
    ReplicaPlacement r;
    Apply(st, *w.d, w.replica, *chosen->c, ch, &r);
    plan.replicas.push_back(std::move(r));
  }
  Cbc_deleteModel(model);
  return Finish(std::move(plan), work, s);
}

absl::Status Validate(const FleetSnapshot& s, const PlacementRequest& r) {
  std::set<std::string> names;
  for (size_t i = 0; i < r.deployments.size(); ++i) {
    const DeploymentSpec& d = r.deployments[i];
    const std::string where = absl::StrCat("deployments[", i, "] \"", d.name, "\"");
    if (d.name.empty()) return absl::InvalidArgumentError(absl::StrCat("deployments[", i, "].name is empty"));
    if (!names.insert(d.name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, " appears twice"));
    }
    if (d.spec == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, ": model is not resolved"));
    if (d.replicas < 0 || d.replicas > 10000) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": replicas=", d.replicas, " must be in [0, 10000]"));
    }
    if (d.concurrency < 1 || d.concurrency > (1 << 20)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": concurrency=", d.concurrency, " must be in [1, 1048576]"));
    }
    if (d.context_tokens < 0 || d.context_tokens > (int64_t{1} << 26)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": context_tokens=", d.context_tokens, " is out of range"));
    }
    if (!(d.min_free_ratio >= 0 && d.min_free_ratio < 1)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": min_free_ratio=", d.min_free_ratio, " must be in [0, 1)"));
    }
    if (d.max_tp < 1 || d.max_tp > 64 || d.max_pp < 1 || d.max_pp > 64) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": max_tp=", d.max_tp, " and max_pp=", d.max_pp,
                                                     " must be in [1, 64]"));
    }
    for (const std::string& t : d.gpu_types) {
      if (s.FindGpuType(t) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": gpu type \"", t, "\" is not in the fleet"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Plan> PlanPlacement(const FleetSnapshot& snapshot, const PlacementRequest& request,
                                   const PlannerOptions& options) {
  RETURN_IF_ERROR(Validate(snapshot, request));
  // Candidates once per deployment.
  std::vector<std::vector<Candidate>> cands(request.deployments.size());
  std::vector<std::string> why(request.deployments.size());
  const State base = MakeState(snapshot);
  for (size_t i = 0; i < request.deployments.size(); ++i) {
    cands[i] = Candidates(snapshot, base, request.deployments[i], &why[i]);
  }
  std::vector<Work> work;
  for (size_t i = 0; i < request.deployments.size(); ++i) {
    for (int64_t r = 0; r < request.deployments[i].replicas; ++r) {
      work.push_back(Work{&request.deployments[i], r, &cands[i], why[i]});
    }
  }
  if (options.strategy == Strategy::kExact) {
    bool fallback = false;
    ASSIGN_OR_RETURN(Plan plan, Exact(snapshot, base, work, options, &fallback));
    if (!fallback) {
      plan.strategy_used = "exact";
      return plan;
    }
  }
  // Orders: largest first (GPUs, then bytes), scarcest first (fewest candidate GPU types), and
  // the request's own order.
  auto by_size = [](const Work& a, const Work& b) {
    const int64_t ga = a.candidates->empty() ? 0 : a.candidates->front().gpus;
    const int64_t gb = b.candidates->empty() ? 0 : b.candidates->front().gpus;
    const int64_t ba = a.candidates->empty() ? 0 : a.candidates->front().max_rank_bytes;
    const int64_t bb = b.candidates->empty() ? 0 : b.candidates->front().max_rank_bytes;
    return std::make_tuple(-ga, -ba, a.d->name, a.replica) < std::make_tuple(-gb, -bb, b.d->name, b.replica);
  };
  auto by_scarcity = [](const Work& a, const Work& b) {
    auto types = [](const Work& w) {
      std::set<const GpuType*> t;
      for (const Candidate& c : *w.candidates) t.insert(c.type);
      return static_cast<int64_t>(t.size());
    };
    const int64_t ga = a.candidates->empty() ? 0 : a.candidates->front().gpus;
    const int64_t gb = b.candidates->empty() ? 0 : b.candidates->front().gpus;
    return std::make_tuple(types(a), -ga, a.d->name, a.replica) < std::make_tuple(types(b), -gb, b.d->name, b.replica);
  };
  std::vector<Work> order = work;
  std::stable_sort(order.begin(), order.end(), by_size);
  const Strategy strategy = options.strategy == Strategy::kSpread ? Strategy::kSpread : Strategy::kPack;
  Plan best = Pack(snapshot, base, order, strategy);
  // A plan that places everything at the lower bound cannot be improved: skip the re-pack passes.
  const bool at_bound = best.unplaced.empty() && best.gpus_used == best.lower_bound_gpus;
  if (options.strategy != Strategy::kSpread && !at_bound) {
    std::vector<std::vector<Work>> others;
    // Smallest first places the most replicas when capacity binds.
    others.push_back(order);
    std::reverse(others.back().begin(), others.back().end());
    others.push_back(work);
    std::stable_sort(others.back().begin(), others.back().end(), by_scarcity);
    others.push_back(work);
    for (int64_t pass = 0; pass < options.improvement_passes && pass < static_cast<int64_t>(others.size()); ++pass) {
      Plan p = Pack(snapshot, base, others[static_cast<size_t>(pass)], strategy);
      if (Better(p, best)) best = std::move(p);
    }
  }
  best.strategy_used = options.strategy == Strategy::kSpread ? "spread"
                       : options.strategy == Strategy::kExact ? "pack (exact fallback)"
                                                              : "pack";
  return best;
}

}  // namespace fleetplan::placement
