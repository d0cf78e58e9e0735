#include "server/planner_service.h"

#include <algorithm>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "planner/common/units.h"
#include "planner/estimator/gpu_catalog.h"
#include "planner/placement/headroom.h"
#include "planner/placement/headroom_index.h"
#include "planner/placement/planner.h"
#include "server/convert.h"
#include "server/metrics.h"
#include "server/simulation.h"
#include "storage/validation.h"

namespace fleetplan::server {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

namespace {

constexpr int64_t kMaxReserveTtlMs = int64_t{24} * 3600 * 1000;

struct Resolved {
  std::vector<CatalogEntry> models;                                 // keep alive during planning
  std::vector<std::shared_ptr<const estimator::ModelSpec>> drafts;  // likewise
  placement::PlacementRequest request;
};

absl::StatusOr<Resolved> ResolveDeployments(
    const ServiceDeps& deps, EstimateCache& cache,
    const google::protobuf::RepeatedPtrField<v1::DeploymentSpec>& in) {
  Resolved out;
  for (int i = 0; i < in.size(); ++i) {
    ASSIGN_OR_RETURN(placement::DeploymentSpec d, FromProto(in[i], static_cast<size_t>(i)));
    absl::StatusOr<CatalogEntry> model = CatalogLookup(deps, cache, d.model, "");
    if (!model.ok()) {
      return absl::Status(model.status().code(), absl::StrCat("deployments[", i, "] \"", d.name,
                                                              "\": ", model.status().message()));
    }
    UseCatalogModel(*model, in[i].engine() != v1::ENGINE_UNSPECIFIED, d);
    absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> draft =
        DraftModel(in[i].vllm(), in[i].sglang(), d.vllm, d.sglang);
    if (!draft.ok()) {
      return absl::Status(draft.status().code(), absl::StrCat("deployments[", i, "] \"", d.name,
                                                              "\": ", draft.status().message()));
    }
    if (*draft != nullptr) out.drafts.push_back(*std::move(draft));
    out.models.push_back(*std::move(model));
    out.request.deployments.push_back(std::move(d));
  }
  return out;
}

// What CommitPlan needs of a plan: its placements and the deployments' records.
StoredPlan ToStored(const placement::Plan& plan, const v1::PlanPlacementRequest& req,
                    const placement::PlacementRequest& resolved) {
  StoredPlan stored;
  stored.commit.snapshot_generation = plan.snapshot_generation;
  for (const auto& r : plan.replicas) {
    stored.commit.placements.push_back(placement::Placement{.deployment = r.deployment,
                                                            .model = r.model,
                                                            .replica = r.replica,
                                                            .tp = r.tp,
                                                            .pp = r.pp,
                                                            .ep = r.ep,
                                                            .ranks = r.ranks});
  }
  for (int i = 0; i < req.deployments_size(); ++i) {
    std::string spec_json;
    (void)google::protobuf::util::MessageToJsonString(req.deployments(i), &spec_json);
    stored.commit.deployments.push_back(placement::DeploymentRecord{
        .name = req.deployments(i).name(),
        .model = req.deployments(i).model(),
        .replicas = resolved.deployments[static_cast<size_t>(i)].replicas,
        .spec_json = spec_json});
  }
  return stored;
}

std::vector<placement::PlacementRank> AllRanks(const placement::Plan& plan) {
  std::vector<placement::PlacementRank> ranks;
  for (const auto& r : plan.replicas) ranks.insert(ranks.end(), r.ranks.begin(), r.ranks.end());
  return ranks;
}

}  // namespace

absl::Status PlannerServiceImpl::Plan(const v1::PlanPlacementRequest& req, v1::Plan* resp,
                                      bool keep, CallbackServerContext* context) {
  if (req.reserve_ttl_ms() < 0 || req.reserve_ttl_ms() > kMaxReserveTtlMs) {
    return absl::InvalidArgumentError(absl::StrCat("reserve_ttl_ms=", req.reserve_ttl_ms(),
                                                   " must be in [0, ", kMaxReserveTtlMs, "]"));
  }
  ASSIGN_OR_RETURN(placement::Strategy strategy, StrategyFromProto(req.strategy()));
  absl::Status refused;
  const auto slot = context != nullptr ? AdmitHeavy(deps_, context, "planning", &refused)
                                       : std::optional<Admission::Slot>();
  RETURN_IF_ERROR(refused);
  const auto started = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(Resolved resolved, ResolveDeployments(deps_, *cache_, req.deployments()));
  ASSIGN_OR_RETURN(std::shared_ptr<const storage::FleetView> view, deps_.fleet->Current());
  placement::PlannerOptions options{.strategy = strategy};
  if (context != nullptr) options.cancelled = [context] { return CallGone(context); };
  ASSIGN_OR_RETURN(placement::Plan plan,
                   placement::PlanPlacement(view->packing(), resolved.request, options));
  ToProto(plan, resp);
  if (deps_.metrics != nullptr) {
    deps_.metrics->RecordPlan(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
        plan.gap);
  }
  switch (req.headroom_view()) {
    case v1::HEADROOM_VIEW_NONE:
      break;
    case v1::HEADROOM_VIEW_FULL:
      ToProto(placement::HeadroomAfter(view->snapshot(), AllRanks(plan), false),
              resp->mutable_headroom_after());
      break;
    case v1::HEADROOM_VIEW_UNSPECIFIED:
    case v1::HEADROOM_VIEW_TOUCHED:
      ToProto(placement::TouchedHeadroomAfter(view->snapshot(), view->headroom(), AllRanks(plan)),
              resp->mutable_headroom_after());
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("headroom_view=", static_cast<int>(req.headroom_view()),
                       " is not NONE, TOUCHED or FULL"));
  }
  if (!keep) return absl::OkStatus();

  StoredPlan stored = ToStored(plan, req, resolved.request);
  const std::string plan_id = plans_.NewId(plan.snapshot_generation);
  resp->set_plan_id(plan_id);
  if (req.reserve_ttl_ms() > 0 && !stored.commit.placements.empty()) {
    storage::CommitRequest reserve = stored.commit;
    reserve.request_id = plan_id;
    reserve.reserve_ttl_ms = req.reserve_ttl_ms();
    reserve.deployments.clear();  // written when the reservation is committed
    ASSIGN_OR_RETURN(storage::CommitResult r, deps_.store->CommitPlacements(reserve));
    stored.reserved = true;
    resp->set_reserved(true);
    ASSIGN_OR_RETURN(placement::Placement first,
                     deps_.store->GetPlacement(r.placement_ids.front()));
    resp->set_reservation_expires_unix_ms(first.expires_unix_ms);
  }
  plans_.KeepAs(plan_id, std::move(stored));
  return absl::OkStatus();
}

ServerUnaryReactor* PlannerServiceImpl::PlanPlacement(CallbackServerContext* c,
                                                      const v1::PlanPlacementRequest* req,
                                                      v1::Plan* resp) {
  // Planning reads; reserving writes.
  return RunUnary(c, deps_, req->reserve_ttl_ms() > 0 ? Role::kWriter : Role::kReader,
                  [&] { return Plan(*req, resp, /*keep=*/true, c); });
}

ServerUnaryReactor* PlannerServiceImpl::CommitPlan(CallbackServerContext* c,
                                                   const v1::CommitPlanRequest* req,
                                                   v1::CommitPlanResponse* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    std::optional<StoredPlan> plan = plans_.Find(req->plan_id());
    if (!plan) {
      return absl::NotFoundError(
          absl::StrCat("plan \"", req->plan_id(), "\" not found (expired or never made): re-plan"));
    }
    if (plan->commit.placements.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("plan \"", req->plan_id(), "\" places nothing"));
    }
    absl::StatusOr<storage::CommitResult> committed;
    if (plan->reserved) {
      committed = deps_.store->CommitReservation(req->plan_id(), plan->commit.deployments);
    } else {
      plan->commit.request_id = req->request_id().empty() ? req->plan_id() : req->request_id();
      committed = deps_.store->CommitPlacements(plan->commit);
    }
    if (!committed.ok() && committed.status().code() == absl::StatusCode::kAborted &&
        deps_.metrics != nullptr) {
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
    ASSIGN_OR_RETURN(const int64_t page_size, PageSizeFromProto(req->page_size()));
    int64_t after = 0;
    if (!req->page_token().empty() && (!absl::SimpleAtoi(req->page_token(), &after) || after < 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "page_token=\"", storage::Shown(req->page_token()), "\" is not a placements page token"));
    }
    // One more than the page: whether there is a next one.
    ASSIGN_OR_RETURN(auto list,
                     deps_.store->ListPlacements({.deployment = req->deployment(),
                                                  .model = req->model(),
                                                  .include_released = req->include_released(),
                                                  .after_id = after,
                                                  .limit = page_size + 1}));
    if (static_cast<int64_t>(list.size()) > page_size) {
      list.resize(static_cast<size_t>(page_size));
      resp->set_next_page_token(absl::StrCat(list.back().id));
    }
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
    RETURN_IF_ERROR(Plan(one, resp->mutable_plan(), /*keep=*/false, c));
    ExplainLines(resp->plan(), resp->mutable_lines());
    return absl::OkStatus();
  });
}

ServerUnaryReactor* PlannerServiceImpl::ListDeployments(CallbackServerContext* c,
                                                        const v1::ListDeploymentsRequest* /*req*/,
                                                        v1::ListDeploymentsResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto list, deps_.store->ListDeployments());
    for (const auto& d : list) ToProto(d, resp->add_deployments());
    return absl::OkStatus();
  });
}

ServerUnaryReactor* PlannerServiceImpl::DeleteDeployment(CallbackServerContext* c,
                                                         const v1::DeleteDeploymentRequest* req,
                                                         google::protobuf::Empty* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    return Idempotent(deps_, "DeleteDeployment", req->request_id(), *req, resp,
                      [&] { return deps_.store->DeleteDeployment(req->name()); });
  });
}

ServerUnaryReactor* PlannerServiceImpl::SimulateFailure(CallbackServerContext* c,
                                                        const v1::SimulateFailureRequest* req,
                                                        v1::SimulateFailureResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(placement::Strategy strategy, StrategyFromProto(req->strategy()));
    placement::FailureScenario scenario;
    for (int i = 0; i < req->nodes_size(); ++i) {
      RETURN_IF_ERROR(storage::ValidateName(absl::StrCat("nodes[", i, "]"), req->nodes(i)));
      scenario.nodes.push_back(req->nodes(i));
    }
    for (int i = 0; i < req->zones_size(); ++i) {
      RETURN_IF_ERROR(storage::ValidateName(absl::StrCat("zones[", i, "]"), req->zones(i)));
      scenario.zones.push_back(req->zones(i));
    }
    absl::Status refused;
    const auto slot = AdmitHeavy(deps_, c, "failure simulation", &refused);
    RETURN_IF_ERROR(refused);
    ASSIGN_OR_RETURN(placement::FailureImpact impact,
                     SimulateOnFleet(deps_, *cache_, scenario, strategy));
    ToProto(impact, resp);
    return absl::OkStatus();
  });
}

namespace {

constexpr int64_t kMaxGpusPerNode = 64;

// The GPU types a recommendation considers (placement::RecommendGpuTypes: the same rule as the
// CLI's).
absl::StatusOr<std::vector<placement::GpuType>> RecommendTypes(const ServiceDeps& deps,
                                                               const v1::RecommendRequest& req,
                                                               std::vector<std::string>* notes) {
  std::vector<placement::GpuType> registered;
  if (!req.builtin_gpu_types()) {
    ASSIGN_OR_RETURN(registered, deps.store->ListGpuTypes());
  }
  const std::vector<std::string> only(req.deployment().gpu_types().begin(),
                                      req.deployment().gpu_types().end());
  return placement::RecommendGpuTypes(std::move(registered), req.builtin_gpu_types(), only,
                                      "deployment.gpu_types", notes);
}

}  // namespace

ServerUnaryReactor* PlannerServiceImpl::Recommend(CallbackServerContext* c,
                                                  const v1::RecommendRequest* req,
                                                  v1::RecommendResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    const int64_t gpus_per_node = req->has_gpus_per_node() ? req->gpus_per_node() : 8;
    if (gpus_per_node < 1 || gpus_per_node > kMaxGpusPerNode) {
      return absl::InvalidArgumentError(
          absl::StrCat("gpus_per_node=", gpus_per_node, " must be in [1, ", kMaxGpusPerNode, "]"));
    }
    if (req->limit() < 0) {
      return absl::InvalidArgumentError(absl::StrCat("limit=", req->limit(), " must be >= 0"));
    }
    v1::DeploymentSpec in = req->deployment();
    if (in.name().empty()) in.set_name("recommend");
    if (in.has_replicas() && in.replicas() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("deployment.replicas=", in.replicas(), ": recommend sizes one replica"));
    }
    ASSIGN_OR_RETURN(placement::DeploymentSpec d, FromProto(in, std::string("deployment")));
    if (!in.has_max_tp()) d.max_tp = gpus_per_node;
    CatalogEntry model;
    if (!req->config_json().empty()) {
      ASSIGN_OR_RETURN(model.spec, InlineModel(req->config_json(), req->quantization()));
    } else {
      auto found = CatalogLookup(deps_, *cache_, d.model, req->quantization());
      if (!found.ok()) {
        return absl::Status(found.status().code(),
                            absl::StrCat("deployment.model: ", found.status().message()));
      }
      model = *std::move(found);
    }
    UseCatalogModel(model, in.engine() != v1::ENGINE_UNSPECIFIED, d);
    absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> draft =
        DraftModel(in.vllm(), in.sglang(), d.vllm, d.sglang);
    if (!draft.ok()) {
      return absl::Status(draft.status().code(),
                          absl::StrCat("deployment: ", draft.status().message()));
    }
    std::vector<std::string> notes;
    ASSIGN_OR_RETURN(std::vector<placement::GpuType> types, RecommendTypes(deps_, *req, &notes));
    // The checks PlanPlacement runs (names, workload, engine fields, unverified models), against
    // the types considered.
    placement::FleetSnapshot considered{.gpu_types = types};
    absl::Status valid = placement::ValidatePlacementRequest(considered, {.deployments = {d}});
    if (!valid.ok()) {
      return absl::Status(
          valid.code(),
          absl::StrCat("deployment: ", absl::StripPrefix(valid.message(), "deployments[0] ")));
    }
    absl::Status refused;
    const auto slot = AdmitHeavy(deps_, c, "recommend", &refused);
    RETURN_IF_ERROR(refused);
    placement::Recommendation r = placement::Recommend(d, types, gpus_per_node);
    if (req->limit() > 0 && r.configurations.size() > static_cast<size_t>(req->limit())) {
      r.configurations.resize(static_cast<size_t>(req->limit()));
    }
    ToProto(r, resp);
    if (model.spec != nullptr) {
      resp->set_params(model.spec->num_params());
      resp->set_unverified(model.spec->unverified());
      for (const std::string& n : model.spec->notes) resp->add_notes(n);
    } else {
      resp->set_params(model.gguf->file.parameters);
    }
    for (const std::string& n : notes) resp->add_notes(n);
    return absl::OkStatus();
  });
}

}  // namespace fleetplan::server
