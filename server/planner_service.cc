#include "server/planner_service.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "planner/common/units.h"
#include "planner/placement/headroom.h"
#include "planner/placement/planner.h"
#include "server/convert.h"
#include "server/metrics.h"

namespace fleetplan::server {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

namespace {

constexpr size_t kMaxKeptPlans = 1000;
constexpr auto kPlanLifetime = std::chrono::minutes(30);

struct Resolved {
  std::vector<std::shared_ptr<const estimator::ModelSpec>> specs;  // keep alive during planning
  placement::PlacementRequest request;
};

absl::StatusOr<Resolved> ResolveDeployments(const ServiceDeps& deps, EstimateCache& cache,
                                            const google::protobuf::RepeatedPtrField<v1::DeploymentSpec>& in) {
  Resolved out;
  if (in.empty()) return absl::InvalidArgumentError("deployments must not be empty");
  if (in.size() > 10000) return absl::InvalidArgumentError(absl::StrCat(in.size(), " deployments, more than 10000"));
  for (int i = 0; i < in.size(); ++i) {
    const v1::DeploymentSpec& p = in[i];
    const std::string where = absl::StrCat("deployments[", i, "] \"", p.name(), "\"");
    if (p.model().empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": model is empty"));
    if (p.replicas() < 0 || p.concurrency() < 0 || p.context_tokens() < 0 || p.max_tp() < 0 || p.max_pp() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": replicas=", p.replicas(), ", concurrency=",
                                                     p.concurrency(), ", context_tokens=", p.context_tokens(),
                                                     " must not be negative"));
    }
    placement::Spread spread = placement::Spread::kNone;
    if (p.spread() == "nodes") {
      spread = placement::Spread::kNodes;
    } else if (p.spread() == "zones") {
      spread = placement::Spread::kZones;
    } else if (!p.spread().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": spread=\"", p.spread(), "\" must be nodes or zones"));
    }
    if (!p.kv_cache_dtype().empty() && p.kv_cache_dtype() != "auto" && p.kv_cache_dtype() != "fp8") {
      return absl::InvalidArgumentError(absl::StrCat(where, ": kv_cache_dtype=\"", p.kv_cache_dtype(), "\" must be auto or fp8"));
    }
    auto spec = CatalogModel(deps, cache, p.model(), "");
    if (!spec.ok()) return absl::Status(spec.status().code(), absl::StrCat(where, ": ", spec.status().message()));
    out.specs.push_back(*spec);
    placement::DeploymentSpec d{
        .name = p.name(), .model = p.model(), .spec = spec->get(),
        .vllm = {.gpu_memory_utilization = 0.9, .max_model_len = p.vllm().max_model_len(),
                 .max_num_seqs = p.vllm().max_num_seqs(),
                 .max_num_batched_tokens = p.vllm().max_num_batched_tokens(),
                 .block_size = p.vllm().block_size() == 0 ? 16 : p.vllm().block_size(),
                 .enforce_eager = p.vllm().enforce_eager()},
        .kv_fp8 = p.kv_cache_dtype() == "fp8",
        .concurrency = p.concurrency() == 0 ? 1 : p.concurrency(),
        .context_tokens = p.context_tokens(),
        .replicas = p.replicas() == 0 ? 1 : p.replicas(),
        .gpu_types = {p.gpu_types().begin(), p.gpu_types().end()},
        .pools = {p.pools().begin(), p.pools().end()},
        .zones = {p.zones().begin(), p.zones().end()},
        .shared = p.shared(),
        .spread = spread,
        .min_free_ratio = p.min_free_ratio() == 0 ? 0.05 : p.min_free_ratio(),
        .max_tp = p.max_tp() == 0 ? 8 : p.max_tp(),
        .max_pp = p.max_pp() == 0 ? 4 : p.max_pp()};
    out.request.deployments.push_back(d);
  }
  return out;
}

placement::Strategy StrategyOf(v1::Strategy s) {
  switch (s) {
    case v1::STRATEGY_SPREAD:
      return placement::Strategy::kSpread;
    case v1::STRATEGY_EXACT:
      return placement::Strategy::kExact;
    default:
      return placement::Strategy::kPack;
  }
}

}  // namespace

absl::Status PlannerServiceImpl::Plan(const v1::PlanPlacementRequest& req, v1::Plan* resp, bool keep) {
  if (req.reserve_ttl_ms() < 0 || req.reserve_ttl_ms() > 24 * 3600 * 1000) {
    return absl::InvalidArgumentError(absl::StrCat("reserve_ttl_ms=", req.reserve_ttl_ms(), " must be in [0, 86400000]"));
  }
  if (!v1::Strategy_IsValid(req.strategy())) {
    return absl::InvalidArgumentError(absl::StrCat("strategy=", static_cast<int>(req.strategy()), " is not a Strategy"));
  }
  const auto started = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(Resolved resolved, ResolveDeployments(deps_, *cache_, req.deployments()));
  ASSIGN_OR_RETURN(placement::FleetSnapshot snap, deps_.store->LoadSnapshot());
  ASSIGN_OR_RETURN(placement::Plan plan,
                   placement::PlanPlacement(snap, resolved.request, {.strategy = StrategyOf(req.strategy())}));
  ToProto(plan, resp);
  if (deps_.metrics != nullptr) {
    deps_.metrics->RecordPlan(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), plan.gap);
  }

  StoredPlan stored;
  stored.commit.snapshot_generation = plan.snapshot_generation;
  for (const auto& r : plan.replicas) {
    stored.commit.placements.push_back(placement::Placement{
        .deployment = r.deployment, .model = r.model, .replica = r.replica, .tp = r.tp, .pp = r.pp,
        .ep = r.ep, .ranks = r.ranks});
  }
  for (int i = 0; i < req.deployments_size(); ++i) {
    std::string spec_json;
    (void)google::protobuf::util::MessageToJsonString(req.deployments(i), &spec_json);
    stored.deployments.push_back(placement::DeploymentRecord{
        .name = req.deployments(i).name(), .model = req.deployments(i).model(),
        .replicas = resolved.request.deployments[static_cast<size_t>(i)].replicas, .spec_json = spec_json});
  }
  // Headroom as it would be after committing this plan.
  for (const auto& r : plan.replicas) {
    for (const auto& rank : r.ranks) {
      for (auto& node : snap.nodes) {
        if (node.name != rank.gpu.node) continue;
        for (auto& g : node.gpus) {
          if (g.index == rank.gpu.index) g.reserved_bytes += rank.bytes;
        }
      }
    }
  }
  ToProto(placement::ComputeHeadroom(snap, false), resp->mutable_headroom_after());
  if (!keep) return absl::OkStatus();

  std::string plan_id;
  {
    absl::MutexLock lock(&mu_);
    plan_id = absl::StrCat("plan-", plan.snapshot_generation, "-", next_id_++);
  }
  resp->set_plan_id(plan_id);
  if (req.reserve_ttl_ms() > 0 && !stored.commit.placements.empty()) {
    storage::CommitRequest reserve = stored.commit;
    reserve.request_id = plan_id;
    reserve.reserve_ttl_ms = req.reserve_ttl_ms();
    ASSIGN_OR_RETURN(storage::CommitResult r, deps_.store->CommitPlacements(reserve));
    stored.reserved = true;
    resp->set_reserved(true);
    ASSIGN_OR_RETURN(placement::Placement first, deps_.store->GetPlacement(r.placement_ids.front()));
    resp->set_reservation_expires_unix_ms(first.expires_unix_ms);
  }
  stored.expires = std::chrono::steady_clock::now() + kPlanLifetime;
  absl::MutexLock lock(&mu_);
  plans_[plan_id] = std::move(stored);
  order_.push_back(plan_id);
  while (order_.size() > kMaxKeptPlans) {
    plans_.erase(order_.front());
    order_.pop_front();
  }
  return absl::OkStatus();
}

ServerUnaryReactor* PlannerServiceImpl::PlanPlacement(CallbackServerContext* c, const v1::PlanPlacementRequest* req,
                                                      v1::Plan* resp) {
  // Planning reads; reserving writes.
  return RunUnary(c, deps_, req->reserve_ttl_ms() > 0 ? Role::kWriter : Role::kReader,
                  [&] { return Plan(*req, resp, /*keep=*/true); });
}

ServerUnaryReactor* PlannerServiceImpl::CommitPlan(CallbackServerContext* c, const v1::CommitPlanRequest* req,
                                                   v1::CommitPlanResponse* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    StoredPlan plan;
    {
      absl::MutexLock lock(&mu_);
      auto it = plans_.find(req->plan_id());
      if (it == plans_.end() || it->second.expires < std::chrono::steady_clock::now()) {
        return absl::NotFoundError(absl::StrCat("plan \"", req->plan_id(), "\" not found (expired or never made): re-plan"));
      }
      plan = it->second;
    }
    if (plan.commit.placements.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("plan \"", req->plan_id(), "\" places nothing"));
    }
    for (const auto& d : plan.deployments) {
      absl::Status s = deps_.store->CreateDeployment(d);
      if (!s.ok() && s.code() != absl::StatusCode::kAlreadyExists) return s;
    }
    absl::StatusOr<storage::CommitResult> committed;
    if (plan.reserved) {
      committed = deps_.store->CommitReservation(req->plan_id());
    } else {
      plan.commit.request_id = req->request_id().empty() ? req->plan_id() : req->request_id();
      committed = deps_.store->CommitPlacements(plan.commit);
    }
    if (!committed.ok() && committed.status().code() == absl::StatusCode::kAborted && deps_.metrics != nullptr) {
      deps_.metrics->RecordCommitConflict();
    }
    ASSIGN_OR_RETURN(storage::CommitResult result, std::move(committed));
    for (int64_t id : result.placement_ids) resp->add_placement_ids(id);
    resp->set_generation(result.generation);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* PlannerServiceImpl::ReleasePlacement(CallbackServerContext* c,
                                                         const v1::ReleasePlacementRequest* req,
                                                         v1::PlacementRecord* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(placement::Placement p, deps_.store->ReleasePlacement(req->placement_id()));
    ToProto(p, resp);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* PlannerServiceImpl::ListPlacements(CallbackServerContext* c,
                                                       const v1::ListPlacementsRequest* req,
                                                       v1::ListPlacementsResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto list, deps_.store->ListPlacements({.deployment = req->deployment(), .model = req->model(),
                                                             .include_released = req->include_released()}));
    for (const auto& p : list) ToProto(p, resp->add_placements());
    return absl::OkStatus();
  });
}

ServerUnaryReactor* PlannerServiceImpl::ExplainPlacement(CallbackServerContext* c,
                                                         const v1::ExplainPlacementRequest* req,
                                                         v1::ExplainPlacementResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    v1::PlanPlacementRequest one;
    *one.add_deployments() = req->deployment();
    RETURN_IF_ERROR(Plan(one, resp->mutable_plan(), /*keep=*/false));
    for (const auto& r : resp->plan().replicas()) {
      resp->add_lines(absl::StrFormat("replica %d: %s tp=%d pp=%d ep=%d on %d GPUs, %.1f GiB on its fullest GPU, "
                                      "utilization %.2f, KV for %d tokens",
                                      r.replica(), r.gpu_type(), r.tp(), r.pp(), r.ep(), r.ranks_size(),
                                      [&] {
                                        int64_t m = 0;
                                        for (const auto& rank : r.ranks()) m = std::max(m, rank.bytes());
                                        return BytesToGiB(m);
                                      }(),
                                      r.gpu_memory_utilization(), r.kv_cache_tokens()));
    }
    for (const auto& u : resp->plan().unplaced()) {
      resp->add_lines(absl::StrFormat("replica %d not placed (%s): %s", u.replica(),
                                      u.code() == static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED)
                                          ? "RESOURCE_EXHAUSTED, fits when capacity frees"
                                          : "FAILED_PRECONDITION, cannot fit this fleet",
                                      u.reason()));
    }
    resp->add_lines(absl::StrFormat("%d GPUs, lower bound %d (gap %.1f%%)", resp->plan().gpus_used(),
                                    resp->plan().lower_bound_gpus(), 100 * resp->plan().gap()));
    return absl::OkStatus();
  });
}

}  // namespace fleetplan::server
