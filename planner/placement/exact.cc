// The exact strategy: an integer program solved by CBC (coinor-libcbc) over exclusive,
// single-stage placements. Variables x[r, c, k] = 1 when replica r runs candidate c in domain k;
// one slack per replica (left unplaced at a high price); rows: each replica once, each domain's
// free GPUs, one replica per node / zone when spread. Objective: GPUs, with cost per hour as a
// tie-break scaled below one GPU so the coefficients stay small whatever costs the fleet declares
// (CLP asserts |c| < 1e25).

#include <Cbc_C_Interface.h>

#include <algorithm>
#include <map>

#include "planner/placement/filters.h"
#include "planner/placement/packing.h"

namespace fleetplan::placement::internal {
namespace {

// Owns a Cbc_Model.
class CbcModel {
 public:
  CbcModel() : model_(Cbc_newModel()) {}
  ~CbcModel() { Cbc_deleteModel(model_); }
  CbcModel(const CbcModel&) = delete;
  CbcModel& operator=(const CbcModel&) = delete;
  Cbc_Model* get() const { return model_; }

 private:
  Cbc_Model* model_;
};

// The cost tie-break of all candidates together stays below one GPU.
constexpr double kCostWeight = 0.5;
// An unplaced replica costs more than any placement.
constexpr double kUnplacedGpuFactor = 1000.0;

}  // namespace

absl::StatusOr<Plan> Exact(const PackingState& base, const std::vector<Work>& work,
                           const PlannerOptions& o, bool* fallback) {
  *fallback = false;
  for (const Work& w : work) {
    if (w.d->shared) {
      *fallback = true;
      return Plan{};
    }
  }
  PackingState st = base;
  struct Var {
    size_t work;
    const Candidate* c;
    size_t domain;
  };
  std::vector<Var> vars;
  int64_t max_gpus = 1;
  double total_cost = 0;
  for (size_t wi = 0; wi < work.size(); ++wi) {
    const Work& w = work[wi];
    for (const Candidate& c : *w.candidates) {
      max_gpus = std::max(max_gpus, c.gpus);
      if (c.pp != 1) continue;
      for (size_t di : st.DomainsOfType(c.type->name)) {
        const DomainState& dom = st.domains()[di];
        // Spread counts what the base state already holds (the surviving replicas of a
        // failure simulation), as the packer's SpreadAllows does.
        if (!NodeAllowed(*w.d, st.node(dom)) || !SpreadAllows(st, *w.d, st.node(dom))) continue;
        if (static_cast<int64_t>(EligibleGpus(st, dom, *w.d, c.max_rank_bytes).size()) < c.tp)
          continue;
        vars.push_back(Var{wi, &c, di});
        total_cost += c.type->cost_per_hour * static_cast<double>(c.gpus);
        if (static_cast<int64_t>(vars.size()) > o.exact_max_variables) {
          *fallback = true;
          return Plan{};
        }
      }
    }
  }
  CbcModel model;
  Cbc_setLogLevel(model.get(), 0);
  Cbc_setMaximumSeconds(model.get(), o.exact_time_limit_seconds);
  if (o.exact_max_nodes > 0) {
    Cbc_setMaximumNodes(model.get(),
                        static_cast<int>(std::min<int64_t>(o.exact_max_nodes, 1 << 30)));
  }
  const double cost_scale = total_cost > 0 ? kCostWeight / total_cost : 0;
  for (const Var& v : vars) {
    const double gpus = static_cast<double>(v.c->gpus);
    Cbc_addCol(model.get(), "", 0, 1, gpus + cost_scale * v.c->type->cost_per_hour * gpus, 1, 0,
               nullptr, nullptr);
  }
  const double unplaced_cost = kUnplacedGpuFactor * static_cast<double>(max_gpus);
  const int slack0 = static_cast<int>(vars.size());
  for (size_t wi = 0; wi < work.size(); ++wi) {
    Cbc_addCol(model.get(), "", 0, 1, unplaced_cost, 1, 0, nullptr, nullptr);
  }
  std::vector<std::vector<int>> by_work(work.size());
  std::map<size_t, std::vector<std::pair<int, double>>> by_domain;
  std::map<std::pair<std::string, std::string>, std::vector<int>>
      by_spread;  // (deployment, node/zone)
  for (size_t i = 0; i < vars.size(); ++i) {
    by_work[vars[i].work].push_back(static_cast<int>(i));
    by_domain[vars[i].domain].push_back({static_cast<int>(i), static_cast<double>(vars[i].c->tp)});
    const DeploymentSpec& d = *work[vars[i].work].d;
    const Node& n = st.node(st.domains()[vars[i].domain]);
    if (d.spread == Spread::kNodes) by_spread[{d.name, n.name}].push_back(static_cast<int>(i));
    if (d.spread == Spread::kZones) by_spread[{d.name, n.zone}].push_back(static_cast<int>(i));
  }
  for (size_t wi = 0; wi < work.size(); ++wi) {
    std::vector<int> cols = by_work[wi];
    cols.push_back(slack0 + static_cast<int>(wi));
    std::vector<double> ones(cols.size(), 1.0);
    Cbc_addRow(model.get(), "", static_cast<int>(cols.size()), cols.data(), ones.data(), 'E', 1.0);
  }
  for (const auto& [di, entries] : by_domain) {
    std::vector<int> cols;
    std::vector<double> coefs;
    for (const auto& [col, tp] : entries) {
      cols.push_back(col);
      coefs.push_back(tp);
    }
    // Exclusive: whole free GPUs of the domain (all candidates of a domain share its type).
    const double free = static_cast<double>(st.free_exclusive(di));
    Cbc_addRow(model.get(), "", static_cast<int>(cols.size()), cols.data(), coefs.data(), 'L',
               free);
  }
  for (const auto& [key, cols] : by_spread) {
    std::vector<double> ones(cols.size(), 1.0);
    Cbc_addRow(model.get(), "", static_cast<int>(cols.size()), cols.data(), ones.data(), 'L', 1.0);
  }
  Cbc_solve(model.get());
  Plan plan;
  plan.snapshot_generation = st.snapshot().generation;
  plan.exact_optimal = Cbc_isProvenOptimal(model.get()) != 0;
  const double* x = Cbc_getColSolution(model.get());
  if (x == nullptr) {
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
      plan.unplaced.push_back(NotPlaced(st, w));
      continue;
    }
    const DomainState& dom = st.domains()[chosen->domain];
    std::vector<int64_t> el = EligibleGpus(st, dom, *w.d, chosen->c->max_rank_bytes);
    el.resize(static_cast<size_t>(chosen->c->tp));
    Choice ch;
    ch.stages.emplace_back(chosen->domain, el);
    plan.replicas.push_back(Apply(st, *w.d, w.replica, *chosen->c, ch));
  }
  return Finish(std::move(plan), work, st.snapshot());
}

}  // namespace fleetplan::placement::internal
