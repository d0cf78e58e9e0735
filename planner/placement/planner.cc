#include "planner/placement/planner.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "planner/common/limits.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/llama_cpp.h"
#include "planner/placement/candidates.h"
#include "planner/placement/filters.h"
#include "planner/placement/packing.h"
#include "planner/placement/packing_state.h"

namespace fleetplan::placement {

using internal::Work;

namespace {

// A GPU size to validate a deployment's engine fields against (any positive size will do: only
// malformed fields fail).
constexpr int64_t kValidationGpuBytes = 80 * kGiB;

absl::Status ValidateDeployment(const FleetSnapshot& s, const DeploymentSpec& d, size_t i) {
  const std::string where = absl::StrCat("deployments[", i, "] \"", d.name, "\"");
  auto range = [&](const char* field, int64_t v, int64_t lo, int64_t hi) -> absl::Status {
    if (v < lo || v > hi) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", field, "=", v, " must be in [", lo, ", ", hi, "]"));
    }
    return absl::OkStatus();
  };
  if (d.spec == nullptr && d.gguf == nullptr)
    return absl::InvalidArgumentError(absl::StrCat(where, ": model is not resolved"));
  // A GGUF file is what llama.cpp loads; no other engine serves it.
  if (d.gguf != nullptr && d.engine != estimator::Engine::kLlamaCpp) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": model \"", d.model, "\" was imported from a GGUF file: engine=",
                     estimator::EngineName(d.engine), " cannot serve it (engine llama.cpp only)"));
  }
  // A model the estimator did not fully understand gets no placement on its numbers unless the
  // deployment accepts the risk: an under-estimate is an OOM on a real GPU. (A GGUF header is
  // read by the same rules as llama.cpp's loader: an architecture it does not know is refused.)
  if (d.spec != nullptr && d.spec->unverified() && !d.allow_unverified) {
    std::string why =
        d.spec->generic_fallback
            ? absl::StrCat("model_type \"", d.spec->model_type, "\" is not a known family")
            : absl::StrCat("its config has fields the estimator does not read (",
                           absl::StrJoin(d.spec->unconsumed_fields, ", "), ")");
    return absl::FailedPreconditionError(absl::StrCat(
        where, ": model \"", d.model, "\" is unverified: ", why,
        "; its memory estimate may be wrong; set allow_unverified to place it anyway"));
  }
  if (d.engine != estimator::Engine::kVllm && d.engine != estimator::Engine::kSglang &&
      d.engine != estimator::Engine::kLlamaCpp) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": engine=", estimator::EngineName(d.engine),
                     " is not placed (plans serve vllm, sglang or llama.cpp)"));
  }
  if (d.engine == estimator::Engine::kSglang && d.shared) {
    return absl::InvalidArgumentError(absl::StrCat(
        where,
        ": engine=sglang cannot share GPUs: it takes mem_fraction_static of the free memory "
        "and its activations come out of the rest"));
  }
  RETURN_IF_ERROR(range("replicas", d.replicas, 0, limits::kMaxReplicasPerDeployment));
  RETURN_IF_ERROR(range("concurrency", d.concurrency, 1, limits::kMaxSequences));
  RETURN_IF_ERROR(range("context_tokens", d.context_tokens, 0, limits::kMaxContextTokens));
  RETURN_IF_ERROR(range("max_tp", d.max_tp, 1, limits::kMaxPlannedTp));
  RETURN_IF_ERROR(range("max_pp", d.max_pp, 1, limits::kMaxPlannedPp));
  if (!(d.min_free_ratio >= 0 && d.min_free_ratio < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": min_free_ratio=", d.min_free_ratio, " must be in [0, 1)"));
  }
  for (const std::string& t : d.gpu_types) {
    if (s.FindGpuType(t) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": gpu type \"", t, "\" is not in the fleet"));
    }
  }
  // The engine fields (max_model_len, block size, utilization ...): the estimator's own checks.
  GpuType probe{.name = "validation", .memory_bytes = kValidationGpuBytes};
  const absl::Status checked =
      d.gguf != nullptr
          ? estimator::EstimateLlamaCpp(*d.gguf, VllmRequestFor(d, probe, 1, 1, 1)).status()
          : estimator::Estimate(*d.spec, VllmRequestFor(d, probe, 1, 1, 1)).status();
  if (!checked.ok()) {
    return absl::Status(checked.code(), absl::StrCat(where, ": ", checked.message()));
  }
  return absl::OkStatus();
}

bool Cancelled(const PlannerOptions& o) { return o.cancelled && o.cancelled(); }

absl::Status CancelledError() {
  return absl::CancelledError(
      "planning was cancelled (the caller went away or the server is stopping)");
}

// Candidates of `d` on every allowed GPU type of the fleet, cheapest first; `why` explains an
// empty result, one shortfall per GPU type.
std::vector<Candidate> DeploymentCandidates(const PackingState& st, const DeploymentSpec& d,
                                            std::vector<Shortfall>* why) {
  std::vector<Candidate> out;
  const std::map<std::string, int64_t> largest = LargestDomains(st, d);
  for (const GpuType& type : st.snapshot().gpu_types) {
    auto it = largest.find(type.name);
    if (it == largest.end() || !Allowed(d.gpu_types, type.name)) continue;
    TypeCandidates tc = CandidatesOnType(d, type, it->second);
    if (tc.shortfall) why->push_back(*tc.shortfall);
    // A pipeline needs its stages in distinct domains of one pool: drop those the fleet's shape can
    // never hold (they would read as "no capacity now" forever).
    std::optional<Shortfall> too_few;
    for (Candidate& c : tc.fitting) {
      const int64_t domains = c.pp > 1 ? MostDomainsInOnePool(st, d, type, c.tp) : 1;
      if (domains < c.pp) {
        if (!too_few) {
          too_few = Shortfall{.kind = Shortfall::Kind::kTooFewDomains,
                              .gpu_type = type.name,
                              .tp = c.tp,
                              .pp = c.pp,
                              .gpus = c.gpus,
                              .need_bytes_per_gpu = c.max_rank_bytes,
                              .largest_domain = domains};
        }
        continue;
      }
      out.push_back(std::move(c));
    }
    if (too_few &&
        std::none_of(out.begin(), out.end(), [&](const Candidate& c) { return c.type == &type; })) {
      why->push_back(*too_few);
    }
  }
  SortCandidates(out);
  if (out.empty() && why->empty())
    why->push_back(Shortfall{.kind = Shortfall::Kind::kNoEligibleType});
  if (!out.empty()) why->clear();
  return out;
}

int64_t FrontGpus(const Work& w) { return w.candidates->empty() ? 0 : w.candidates->front().gpus; }
int64_t FrontBytes(const Work& w) {
  return w.candidates->empty() ? 0 : w.candidates->front().max_rank_bytes;
}

}  // namespace

absl::Status ValidatePlacementRequest(const FleetSnapshot& s, const PlacementRequest& r) {
  if (r.deployments.empty()) return absl::InvalidArgumentError("deployments must not be empty");
  if (static_cast<int64_t>(r.deployments.size()) > limits::kMaxDeploymentsPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(r.deployments.size(), " deployments, more than ",
                                                   limits::kMaxDeploymentsPerRequest));
  }
  std::set<std::string> names;
  int64_t replicas = 0;
  for (size_t i = 0; i < r.deployments.size(); ++i) {
    const DeploymentSpec& d = r.deployments[i];
    if (d.name.empty())
      return absl::InvalidArgumentError(absl::StrCat("deployments[", i, "].name is empty"));
    if (!names.insert(d.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("deployments[", i, "] \"", d.name, "\" appears twice"));
    }
    RETURN_IF_ERROR(ValidateDeployment(s, d, i));
    replicas += d.replicas;
  }
  if (replicas > limits::kMaxReplicasPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat("the request asks for ", replicas,
                                                   " replicas in all, more than ",
                                                   limits::kMaxReplicasPerRequest));
  }
  return absl::OkStatus();
}

absl::StatusOr<Plan> PlanPlacement(const FleetSnapshot& snapshot, const PlacementRequest& request,
                                   const PlannerOptions& options) {
  return PlanPlacement(PackingState(snapshot), request, options);
}

absl::StatusOr<Plan> PlanPlacement(const PackingState& base, const PlacementRequest& request,
                                   const PlannerOptions& options) {
  RETURN_IF_ERROR(ValidatePlacementRequest(base.snapshot(), request));
  // Candidates once per deployment.
  std::vector<std::vector<Candidate>> cands(request.deployments.size());
  std::vector<std::vector<Shortfall>> why(request.deployments.size());
  for (size_t i = 0; i < request.deployments.size(); ++i) {
    if (Cancelled(options)) return CancelledError();
    cands[i] = DeploymentCandidates(base, request.deployments[i], &why[i]);
  }
  std::vector<Work> work;
  for (size_t i = 0; i < request.deployments.size(); ++i) {
    for (int64_t r = 0; r < request.deployments[i].replicas; ++r) {
      work.push_back(Work{&request.deployments[i], r, &cands[i], &why[i]});
    }
  }
  if (options.strategy == Strategy::kExact) {
    bool fallback = false;
    ASSIGN_OR_RETURN(Plan plan, internal::Exact(base, work, options, &fallback));
    if (!fallback) {
      plan.strategy_used = "exact";
      return plan;
    }
  }
  if (Cancelled(options)) return CancelledError();
  // Orders: largest first (GPUs, then bytes), scarcest first (fewest candidate GPU types), and
  // the request's own order.
  auto by_size = [](const Work& a, const Work& b) {
    return std::make_tuple(-FrontGpus(a), -FrontBytes(a), a.d->name, a.replica) <
           std::make_tuple(-FrontGpus(b), -FrontBytes(b), b.d->name, b.replica);
  };
  auto types = [](const Work& w) {
    std::set<const GpuType*> t;
    for (const Candidate& c : *w.candidates) t.insert(c.type);
    return static_cast<int64_t>(t.size());
  };
  auto by_scarcity = [&](const Work& a, const Work& b) {
    return std::make_tuple(types(a), -FrontGpus(a), a.d->name, a.replica) <
           std::make_tuple(types(b), -FrontGpus(b), b.d->name, b.replica);
  };
  std::vector<Work> order = work;
  std::stable_sort(order.begin(), order.end(), by_size);
  const BestFitScorer best_fit;
  const WorstFitScorer worst_fit;
  const bool spread = options.strategy == Strategy::kSpread;
  const DomainScorer& scorer = spread ? static_cast<const DomainScorer&>(worst_fit) : best_fit;
  ASSIGN_OR_RETURN(Plan best, internal::Pack(base, order, scorer, options.cancelled));
  // A plan that places everything at the lower bound cannot be improved: skip the re-pack passes.
  const bool at_bound = best.unplaced.empty() && best.gpus_used == best.lower_bound_gpus;
  if (!spread && !at_bound) {
    std::vector<std::vector<Work>> others;
    // Smallest first places the most replicas when capacity binds.
    others.push_back(order);
    std::reverse(others.back().begin(), others.back().end());
    others.push_back(work);
    std::stable_sort(others.back().begin(), others.back().end(), by_scarcity);
    others.push_back(work);
    // Smallest first by bytes per GPU: small shards fill the gaps big ones leave.
    others.push_back(work);
    std::stable_sort(others.back().begin(), others.back().end(), [](const Work& a, const Work& b) {
      return std::make_tuple(FrontBytes(a), FrontGpus(a), a.d->name, a.replica) <
             std::make_tuple(FrontBytes(b), FrontGpus(b), b.d->name, b.replica);
    });
    for (int64_t pass = 0;
         pass < options.improvement_passes && pass < static_cast<int64_t>(others.size()); ++pass) {
      if (Cancelled(options)) return CancelledError();
      ASSIGN_OR_RETURN(Plan p, internal::Pack(base, others[static_cast<size_t>(pass)], scorer,
                                              options.cancelled));
      if (internal::Better(p, best)) best = std::move(p);
    }
  }
  best.strategy_used = spread                                 ? "spread"
                       : options.strategy == Strategy::kExact ? "pack (exact fallback)"
                                                              : "pack";
  if (options.strategy == Strategy::kPack && !best.unplaced.empty() &&
      options.repair_max_variables > 0) {
    if (Cancelled(options)) return CancelledError();
    PlannerOptions repair = options;
    repair.exact_max_variables = options.repair_max_variables;
    repair.exact_time_limit_seconds = options.repair_time_limit_seconds;
    repair.exact_max_nodes = options.repair_max_nodes;
    bool fallback = false;
    ASSIGN_OR_RETURN(Plan p, internal::Exact(base, work, repair, &fallback));
    if (!fallback && internal::Better(p, best)) {
      best = std::move(p);
      best.strategy_used = "pack (exact repair)";
    }
  }
  return best;
}

}  // namespace fleetplan::placement
