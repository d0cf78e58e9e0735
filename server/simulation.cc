#include "server/simulation.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "server/convert.h"
#include "server/metrics.h"

namespace fleetplan::server {

absl::StatusOr<placement::FailureImpact> SimulateOnFleet(const ServiceDeps& deps,
                                                         EstimateCache& cache,
                                                         const placement::FailureScenario& scenario,
                                                         placement::Strategy strategy) {
  ASSIGN_OR_RETURN(std::shared_ptr<const storage::FleetView> view, deps.fleet->Current());
  ASSIGN_OR_RETURN(std::vector<placement::Placement> active, deps.store->ListPlacements({}));
  ASSIGN_OR_RETURN(std::vector<placement::DeploymentRecord> records, deps.store->ListDeployments());
  // Only the deployments that have a placement on a failed node need their spec resolved.
  std::set<std::string> failed(scenario.nodes.begin(), scenario.nodes.end());
  for (const std::string& zone : scenario.zones) {
    for (const placement::Node& n : view->snapshot().nodes) {
      if (n.zone == zone) failed.insert(n.name);
    }
  }
  std::set<std::string> wanted;
  for (const placement::Placement& p : active) {
    for (const placement::PlacementRank& r : p.ranks) {
      if (failed.count(r.gpu.node) > 0) wanted.insert(p.deployment);
    }
  }
  std::vector<CatalogEntry> keep;                                   // alive while planning
  std::vector<std::shared_ptr<const estimator::ModelSpec>> drafts;  // likewise
  std::map<std::string, placement::DeploymentSpec> specs;
  for (const placement::DeploymentRecord& record : records) {
    if (wanted.count(record.name) == 0) continue;
    v1::DeploymentRecord proto;
    ToProto(record, &proto);
    if (!proto.has_spec()) continue;
    absl::StatusOr<placement::DeploymentSpec> d = FromProto(proto.spec(), 0);
    if (!d.ok()) continue;
    absl::StatusOr<CatalogEntry> model = CatalogLookup(deps, cache, d->model, "");
    if (!model.ok()) continue;
    UseCatalogModel(*model, proto.spec().engine() != v1::ENGINE_UNSPECIFIED, *d);
    // A speculative draft travels inline with the stored spec; without it the replan would size
    // the deployment without the draft's weights and KV.
    absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> draft =
        DraftModel(proto.spec().vllm(), proto.spec().sglang(), d->vllm, d->sglang);
    if (!draft.ok()) continue;
    if (*draft != nullptr) drafts.push_back(*std::move(draft));
    keep.push_back(*std::move(model));
    specs[record.name] = *std::move(d);
  }
  return placement::SimulateFailure(view->snapshot(), scenario, active, specs,
                                    placement::PlannerOptions{.strategy = strategy});
}

void ToProto(const placement::FailureImpact& impact, v1::SimulateFailureResponse* p) {
  for (const std::string& n : impact.failed_nodes) p->add_failed_nodes(n);
  for (const placement::Placement& d : impact.displaced) ToProto(d, p->add_displaced());
  ToProto(impact.replan, p->mutable_replan());
  p->set_absorbed(impact.absorbed);
  p->set_absorbed_ratio(impact.absorbed_ratio());
  for (const std::string& d : impact.without_spec) p->add_without_spec(d);
}

FailureWatch::FailureWatch(ServiceDeps deps, EstimateCache* cache,
                           std::chrono::milliseconds interval)
    : deps_(deps), cache_(cache) {
  if (interval.count() <= 0) return;
  // A round only when the fleet changed since the last one (tick runs on the task's thread).
  periodic_ = std::make_unique<Periodic>(interval, [this] {
    absl::StatusOr<int64_t> generation = deps_.store->FleetGeneration();
    if (!generation.ok() || *generation == last_generation_) return;
    last_generation_ = *generation;
    RunOnce();
  });
}

FailureWatch::~FailureWatch() { Shutdown(); }

void FailureWatch::Shutdown() {
  if (periodic_ != nullptr) periodic_->Stop();
}

void FailureWatch::RunOnce() {
  if (deps_.metrics == nullptr) return;
  absl::StatusOr<std::shared_ptr<const storage::FleetView>> view = deps_.fleet->Current();
  if (!view.ok()) return;
  std::set<std::string> zones;
  for (const placement::Node& n : (*view)->snapshot().nodes) {
    if (!n.zone.empty()) zones.insert(n.zone);
  }
  std::map<std::string, std::pair<int64_t, double>> by_zone;
  for (const std::string& zone : zones) {
    absl::StatusOr<placement::FailureImpact> impact =
        SimulateOnFleet(deps_, *cache_, {.zones = {zone}}, placement::Strategy::kPack);
    if (!impact.ok()) continue;
    by_zone[zone] = {static_cast<int64_t>(impact->displaced.size()), impact->absorbed_ratio()};
  }
  deps_.metrics->SetZoneFailure(by_zone);
}

}  // namespace fleetplan::server
