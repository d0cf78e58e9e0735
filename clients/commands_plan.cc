// `fleetplan plan` and `fleetplan placements`: placement planning against a fleetpland.
//
//   fleetplan plan --model=llama-3.1-70b-instruct --replicas=2 --concurrency=32 --context=8192 [--commit]
//   fleetplan plan --deployment=deployments.json [--strategy=pack|spread|exact] [--reserve-ttl-ms=60000]
//   fleetplan placements list [--deployment=NAME] [--all] | release ID

#include <fstream>
#include <ostream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "clients/cli.h"
#include "clients/rpc_util.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/placement/plan.h"
#include "server/convert.h"

namespace fleetplan::cli {
namespace {

double GiB(int64_t b) { return BytesToGiB(b); }

std::vector<std::string> List(const std::string& text) {
  return absl::StrSplit(text, ',', absl::SkipEmpty());
}

// Deployments from --deployment=FILE (a JSON object {"deployments": [...]} or a JSON list, in the
// DeploymentSpec field names) or from the flags.
absl::StatusOr<v1::PlanPlacementRequest> BuildRequest(const FlagSet& f) {
  v1::PlanPlacementRequest req;
  const std::string file = f.GetString("deployment");
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return absl::NotFoundError(absl::StrCat("--deployment=\"", file, "\": cannot read file"));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '[') text = "{\"deployments\": " + text + "}";
    google::protobuf::util::JsonParseOptions options;
    auto status = google::protobuf::util::JsonStringToMessage(text, &req, options);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--deployment=\"", file, "\": ", status.message().as_string()));
    }
  } else {
    if (f.GetString("model").empty()) return absl::InvalidArgumentError("give --model=NAME or --deployment=FILE");
    v1::DeploymentSpec* d = req.add_deployments();
    d->set_name(f.GetString("name").empty() ? f.GetString("model") : f.GetString("name"));
    d->set_model(f.GetString("model"));
    d->set_replicas(f.GetInt("replicas"));
    d->set_concurrency(f.GetInt("concurrency"));
    d->set_context_tokens(f.GetInt("context"));
    d->mutable_vllm()->set_max_model_len(f.GetInt("max-model-len"));
    d->mutable_vllm()->set_max_num_seqs(f.GetInt("max-num-seqs"));
    d->set_kv_cache_dtype(f.GetString("kv-cache-dtype"));
    for (const auto& t : List(f.GetString("gpu-type"))) d->add_gpu_types(t);
    for (const auto& p : List(f.GetString("pool"))) d->add_pools(p);
    for (const auto& z : List(f.GetString("zone"))) d->add_zones(z);
    d->set_shared(f.GetBool("shared"));
    d->set_spread(f.GetString("spread"));
    d->set_min_free_ratio(f.GetDouble("min-free"));
    d->set_max_tp(f.GetInt("max-tp"));
    d->set_max_pp(f.GetInt("max-pp"));
    if (f.IsSet("gpu-memory-utilization")) {
      d->mutable_vllm()->set_gpu_memory_utilization(f.GetDouble("gpu-memory-utilization"));
    }
  }
  ASSIGN_OR_RETURN(placement::Strategy strategy,
                   placement::StrategyNames().Parse("--strategy", f.GetString("strategy")));
  req.set_strategy(server::ToProto(strategy));
  req.set_reserve_ttl_ms(f.GetInt("reserve-ttl-ms"));
  return req;
}

void PrintPlan(std::ostream& o, const v1::Plan& plan) {
  o << absl::StrFormat("plan %s (generation %d, strategy %s): %d replicas on %d GPUs, lower bound %d (gap %.1f%%)%s\n",
                       plan.plan_id(), plan.snapshot_generation(), plan.strategy(), plan.replicas_size(),
                       plan.gpus_used(), plan.lower_bound_gpus(), 100 * plan.gap(),
                       plan.reserved() ? ", reserved" : "");
  o << absl::StrFormat("%-24s %4s %-12s %3s %3s %3s %10s %7s %-6s %s\n", "DEPLOYMENT", "REP", "GPU_TYPE", "TP", "PP",
                       "EP", "MAX_GIB", "UTIL", "RISK", "GPUS");
  for (const auto& r : plan.replicas()) {
    int64_t max_bytes = 0;
    for (const auto& rank : r.ranks()) max_bytes = std::max(max_bytes, rank.bytes());
    o << absl::StrFormat("%-24s %4d %-12s %3d %3d %3d %10.1f %7.2f %-6s %s\n", r.deployment(), r.replica(),
                         r.gpu_type(), r.tp(), r.pp(), r.ep(), GiB(max_bytes), r.gpu_memory_utilization(),
                         RiskName(server::FromProto(r.risk())),
                         absl::StrJoin(r.cuda_visible_devices(), " "));
  }
  for (const auto& r : plan.replicas()) {
    o << "  " << r.deployment() << "#" << r.replica() << ": ";
    for (const auto& v : r.cuda_visible_devices()) {
      o << "[" << v.substr(0, v.find(':')) << "] CUDA_VISIBLE_DEVICES=" << v.substr(v.find(':') + 1) << " ";
    }
    o << r.launch_command() << "\n";
  }
  for (const auto& u : plan.unplaced()) {
    o << absl::StrFormat("NOT PLACED %s#%d (%s): %s\n", u.deployment(), u.replica(),
                         u.code() == static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED) ? "RESOURCE_EXHAUSTED"
                                                                                             : "FAILED_PRECONDITION",
                         u.reason());
  }
  o << absl::StrFormat("fleet after this plan: %.1f of %.1f GiB free (%.1f%%), %d wholly free GPUs\n",
                       GiB(plan.headroom_after().fleet().free_bytes()), GiB(plan.headroom_after().fleet().total_bytes()),
                       100 * plan.headroom_after().fleet().headroom_ratio(), plan.headroom_after().fleet().free_gpus());
}

int RunPlan(const Invocation& inv) {
  absl::StatusOr<v1::PlanPlacementRequest> req = BuildRequest(inv.flags);
  if (!req.ok()) {
    inv.err << "fleetplan plan: " << req.status().message() << "\n";
    return req.status().code() == absl::StatusCode::kNotFound ? kExitError : kExitUsage;
  }
  v1::Plan plan;
  int rc = CallRpc<v1::PlannerService>(inv, "plan", [&](auto& stub, auto& ctx) { return stub.PlanPlacement(&ctx, *req, &plan); });
  if (rc != kExitOk) return rc;
  v1::CommitPlanResponse committed;
  if (inv.flags.GetBool("commit")) {
    v1::CommitPlanRequest commit;
    commit.set_plan_id(plan.plan_id());
    commit.set_request_id(inv.flags.GetString("request-id"));
    rc = CallRpc<v1::PlannerService>(inv, "plan --commit", [&](auto& stub, auto& ctx) { return stub.CommitPlan(&ctx, commit, &committed); });
    if (rc != kExitOk) return rc;
  }
  if (inv.output == OutputFormat::kJson) {
    inv.out << ProtoJson(plan) << "\n";
    if (inv.flags.GetBool("commit")) inv.out << ProtoJson(committed) << "\n";
  } else {
    PrintPlan(inv.out, plan);
    if (inv.flags.GetBool("commit")) {
      inv.out << "committed placements " << absl::StrJoin(committed.placement_ids(), ", ") << " (generation "
              << committed.generation() << ")\n";
    }
  }
  return plan.unplaced().empty() ? kExitOk : kExitError;
}

int RunPlacements(const Invocation& inv) {
  if (inv.positional.empty()) {
    inv.err << "fleetplan placements: give list or release ID (see --help)\n";
    return kExitUsage;
  }
  const std::string verb = inv.positional[0];
  if (verb == "list") {
    v1::ListPlacementsRequest req;
    req.set_deployment(inv.flags.GetString("deployment"));
    req.set_include_released(inv.flags.GetBool("all"));
    v1::ListPlacementsResponse resp;
    int rc = CallRpc<v1::PlannerService>(inv, "placements list", [&](auto& stub, auto& ctx) { return stub.ListPlacements(&ctx, req, &resp); });
    if (rc != kExitOk) return rc;
    if (inv.output == OutputFormat::kJson) {
      inv.out << ProtoJson(resp) << "\n";
      return kExitOk;
    }
    inv.out << absl::StrFormat("%6s %-24s %-28s %4s %3s %3s %-10s %s\n", "ID", "DEPLOYMENT", "MODEL", "REP", "TP", "PP",
                               "STATE", "GPUS");
    for (const auto& p : resp.placements()) {
      std::vector<std::string> gpus;
      for (const auto& r : p.ranks()) gpus.push_back(absl::StrFormat("%s/%d(%.1fG)", r.node(), r.gpu_index(), GiB(r.bytes())));
      inv.out << absl::StrFormat("%6d %-24s %-28s %4d %3d %3d %-10s %s\n", p.id(), p.deployment(), p.model(),
                                 p.replica(), p.tp(), p.pp(), p.state(), absl::StrJoin(gpus, " "));
    }
    return kExitOk;
  }
  if (verb == "release") {
    int64_t id = 0;
    if (inv.positional.size() < 2 || !absl::SimpleAtoi(inv.positional[1], &id)) {
      inv.err << "fleetplan placements release: give a placement id\n";
      return kExitUsage;
    }
    v1::ReleasePlacementRequest req;
    req.set_placement_id(id);
    v1::PlacementRecord rec;
    int rc = CallRpc<v1::PlannerService>(inv, "placements release", [&](auto& stub, auto& ctx) { return stub.ReleasePlacement(&ctx, req, &rec); });
    if (rc == kExitOk) inv.out << "placement " << id << " " << rec.state() << "\n";
    return rc;
  }
  inv.err << "fleetplan placements: unknown verb \"" << verb << "\"\n";
  return kExitUsage;
}

}  // namespace

std::vector<Command> PlanCommands() {
  return {
      Command{.name = "plan",
              .summary = "plan where deployments run on the fleet (server); --commit to commit it",
              .make_flags =
                  [] {
                    const placement::DeploymentSpec d;
                    FlagSet f("plan", "(--model=NAME [--replicas=N ...] | --deployment=FILE.json) [--commit]");
                    AddOutputFlag(f);
                    AddServerFlags(f);
                    f.String("deployment", "", "JSON file: a list of DeploymentSpec objects (or {\"deployments\": [...]})");
                    f.String("model", "", "catalog model of a single deployment");
                    f.String("name", "", "deployment name (default: the model)");
                    f.Int("replicas", d.replicas, "replicas");
                    f.Int("concurrency", d.concurrency, "sequences each replica's KV cache holds");
                    f.Int("context", 0, "tokens per sequence (0: max-model-len)");
                    f.Int("max-model-len", 0, "vLLM --max-model-len (0: the model's)");
                    f.Int("max-num-seqs", 0, "vLLM --max-num-seqs");
                    f.String("kv-cache-dtype", "", estimator::KvCacheDTypeNames().Choices());
                    f.String("gpu-type", "", "allowed GPU types, comma-separated");
                    f.String("pool", "", "allowed pools, comma-separated");
                    f.String("zone", "", "allowed zones, comma-separated");
                    f.Bool("shared", false, "share GPUs with other instances by memory");
                    f.String("spread", "", "nodes | zones: one replica per node / zone");
                    f.Double("min-free", d.min_free_ratio, "keep at least this share of each GPU free");
                    f.Int("max-tp", d.max_tp, "largest tensor parallel size to consider");
                    f.Int("max-pp", d.max_pp, "largest pipeline parallel size to consider");
                    f.Double("gpu-memory-utilization", 0,
                             "run replicas at this vLLM --gpu-memory-utilization (default: sized to the workload)");
                    f.String("strategy", "pack", placement::StrategyNames().Choices());
                    f.Int("reserve-ttl-ms", 0, "reserve the GPUs for this long (until --commit or expiry)");
                    f.Bool("commit", false, "commit the plan right away");
                    f.String("request-id", "", "commit idempotency key (default: the plan id)");
                    return f;
                  },
              .run = RunPlan},
      Command{.name = "placements",
              .summary = "list or release placements (server)",
              .make_flags =
                  [] {
                    FlagSet f("placements", "list [--deployment=NAME] [--all] | release ID");
                    AddOutputFlag(f);
                    AddServerFlags(f);
                    f.String("deployment", "", "list: only this deployment");
                    f.Bool("all", false, "list: include released placements");
                    return f;
                  },
              .run = RunPlacements},
  };
}

}  // namespace fleetplan::cli
