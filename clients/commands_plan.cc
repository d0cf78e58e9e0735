// `fleetplan plan` and `fleetplan placements`: placement planning against a fleetpland.
//
//   fleetplan plan --model=llama-3.1-70b-instruct --replicas=2 --concurrency=32 --context=8192
//   [--commit] fleetplan plan --deployment=deployments.json [--strategy=pack|spread|exact]
//   [--reserve-ttl-ms=60000] fleetplan placements list [--deployment=NAME] [--all] | release ID

#include <ostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "clients/cli.h"
#include "clients/deployments_file.h"
#include "clients/rpc_util.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "planner/common/limits.h"
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
    ASSIGN_OR_RETURN(std::string text, ReadFileText("--deployment", file));
    ASSIGN_OR_RETURN(req, ParseDeployments(text, absl::StrCat("--deployment=\"", file, "\"")));
  } else {
    if (f.GetString("model").empty())
      return absl::InvalidArgumentError("give --model=NAME or --deployment=FILE");
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
    d->set_allow_unverified(f.GetBool("allow-unverified"));
    if (f.IsSet("gpu-memory-utilization")) {
      d->mutable_vllm()->set_gpu_memory_utilization(f.GetDouble("gpu-memory-utilization"));
    }
    d->mutable_vllm()->set_version(f.GetString("vllm-version"));
    // No --engine: the model's own (llama.cpp for a model imported from a GGUF file, else vllm).
    if (f.IsSet("engine")) {
      ASSIGN_OR_RETURN(estimator::Engine engine,
                       estimator::EngineNames().Parse("--engine", f.GetString("engine")));
      d->set_engine(server::ToProto(engine));
    }
    d->mutable_llama_cpp()->set_file_type(f.GetString("gguf-type"));
  }
  ASSIGN_OR_RETURN(placement::Strategy strategy,
                   placement::StrategyNames().Parse("--strategy", f.GetString("strategy")));
  req.set_strategy(server::ToProto(strategy));
  req.set_reserve_ttl_ms(f.GetInt("reserve-ttl-ms"));
  return req;
}

// `what_if`: a failure simulation's replan (no plan id, no headroom line).
void PrintPlan(std::ostream& o, const v1::Plan& plan, bool what_if = false) {
  if (!what_if) {
    o << absl::StrFormat(
        "plan %s (generation %d, strategy %s): %d replicas on %d GPUs, lower bound %d (gap "
        "%.1f%%)%s\n",
        plan.plan_id(), plan.snapshot_generation(), plan.strategy(), plan.replicas_size(),
        plan.gpus_used(), plan.lower_bound_gpus(), 100 * plan.gap(),
        plan.reserved() ? ", reserved" : "");
  }
  o << absl::StrFormat("%-24s %4s %-12s %3s %3s %3s %10s %7s %-6s %s\n", "DEPLOYMENT", "REP",
                       "GPU_TYPE", "TP", "PP", "EP", "MAX_GIB", "UTIL", "RISK", "GPUS");
  for (const auto& r : plan.replicas()) {
    int64_t max_bytes = 0;
    for (const auto& rank : r.ranks()) max_bytes = std::max(max_bytes, rank.bytes());
    o << absl::StrFormat("%-24s %4d %-12s %3d %3d %3d %10.1f %7.2f %-6s %s\n", r.deployment(),
                         r.replica(), r.gpu_type(), r.tp(), r.pp(), r.ep(), GiB(max_bytes),
                         r.gpu_memory_utilization(), RiskName(server::FromProto(r.risk())),
                         absl::StrJoin(r.cuda_visible_devices(), " "));
  }
  for (const auto& r : plan.replicas()) {
    o << "  " << r.deployment() << "#" << r.replica() << ": ";
    for (const auto& v : r.cuda_visible_devices()) {
      o << "[" << v.substr(0, v.find(':')) << "] CUDA_VISIBLE_DEVICES=" << v.substr(v.find(':') + 1)
        << " ";
    }
    o << r.launch_command() << "\n";
  }
  for (const auto& u : plan.unplaced()) {
    o << absl::StrFormat("NOT PLACED %s#%d (%s): %s\n", u.deployment(), u.replica(),
                         u.code() == static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED)
                             ? "RESOURCE_EXHAUSTED"
                             : "FAILED_PRECONDITION",
                         u.reason());
  }
  if (what_if) return;
  o << absl::StrFormat(
      "fleet after this plan: %.1f of %.1f GiB free (%.1f%%), %d wholly free GPUs\n",
      GiB(plan.headroom_after().fleet().free_bytes()),
      GiB(plan.headroom_after().fleet().total_bytes()),
      100 * plan.headroom_after().fleet().headroom_ratio(),
      plan.headroom_after().fleet().free_gpus());
}

// Commits `plan_id` and prints nothing; the response in `committed`.
int CommitPlanId(const Invocation& inv, const std::string& plan_id, const std::string& request_id,
                 v1::CommitPlanResponse* committed) {
  v1::CommitPlanRequest commit;
  commit.set_plan_id(plan_id);
  commit.set_request_id(request_id);
  return CallRpc<v1::PlannerService>(inv, "commit", [&](auto& stub, auto& ctx) {
    return stub.CommitPlan(&ctx, commit, committed);
  });
}

// --simulate-failure=zone=Z,node=N,...
absl::StatusOr<v1::SimulateFailureRequest> FailureScenario(const FlagSet& f) {
  v1::SimulateFailureRequest req;
  const std::string text = f.GetString("simulate-failure");
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (kv.first == "zone" && !kv.second.empty()) {
      req.add_zones(kv.second);
    } else if (kv.first == "node" && !kv.second.empty()) {
      req.add_nodes(kv.second);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--simulate-failure=\"", text, "\": \"", part,
                                                     "\" is not zone=NAME or node=NAME"));
    }
  }
  if (req.zones_size() + req.nodes_size() == 0) {
    return absl::InvalidArgumentError("--simulate-failure needs zone=NAME or node=NAME");
  }
  ASSIGN_OR_RETURN(placement::Strategy strategy,
                   placement::StrategyNames().Parse("--strategy", f.GetString("strategy")));
  req.set_strategy(server::ToProto(strategy));
  return req;
}

}  // namespace

int SimulateAndPrint(const Invocation& inv, const std::string& command,
                     const v1::SimulateFailureRequest& req, const std::string& what) {
  v1::SimulateFailureResponse resp;
  int rc = CallRpc<v1::PlannerService>(
      inv, command, [&](auto& stub, auto& ctx) { return stub.SimulateFailure(&ctx, req, &resp); });
  if (rc != kExitOk) return rc;
  const int64_t displaced = resp.displaced_size();
  const bool all = resp.absorbed() == displaced;
  Print(inv, resp, [&](const v1::SimulateFailureResponse& r) {
    inv.out << absl::StrFormat(
        "%s (nodes %s): %d placements displaced, %d re-placed on the rest of the fleet "
        "(%.0f%%)%s\n",
        what, absl::StrJoin(r.failed_nodes(), ", "), displaced, r.absorbed(),
        100 * r.absorbed_ratio(),
        all ? "" : absl::StrCat(", ", displaced - r.absorbed(), " cannot be"));
    for (const v1::PlacementRecord& p : r.displaced()) {
      inv.out << absl::StrFormat("  displaced: placement %d %s#%d (tp=%d pp=%d)\n", p.id(),
                                 p.deployment(), p.replica(), p.tp(), p.pp());
    }
    if (displaced > 0) PrintPlan(inv.out, r.replan(), /*what_if=*/true);
    for (const std::string& d : r.without_spec()) {
      inv.out << "NOT RE-PLANNED " << d << ": its deployment has no stored spec\n";
    }
  });
  return all ? kExitOk : kExitError;
}

namespace {

int RunPlan(const Invocation& inv) {
  if (inv.flags.IsSet("simulate-failure")) {
    absl::StatusOr<v1::SimulateFailureRequest> req = FailureScenario(inv.flags);
    if (!req.ok()) return Usage(inv, "plan", std::string(req.status().message()));
    std::vector<std::string> parts;
    for (const std::string& z : req->zones()) parts.push_back("zone " + z);
    for (const std::string& n : req->nodes()) parts.push_back("node " + n);
    return SimulateAndPrint(inv, "plan", *req, "failure of " + absl::StrJoin(parts, " and "));
  }
  absl::StatusOr<v1::PlanPlacementRequest> req = BuildRequest(inv.flags);
  if (!req.ok()) {
    inv.err << "fleetplan plan: " << req.status().message() << "\n";
    return req.status().code() == absl::StatusCode::kNotFound ? kExitError : kExitUsage;
  }
  v1::Plan plan;
  int rc = CallRpc<v1::PlannerService>(
      inv, "plan", [&](auto& stub, auto& ctx) { return stub.PlanPlacement(&ctx, *req, &plan); });
  if (rc != kExitOk) return rc;
  const bool commit = inv.flags.GetBool("commit");
  const bool partial = !plan.unplaced().empty();
  // A partial plan is committed only when asked: a retrying script must not place more and more.
  const bool commit_refused = commit && partial && !inv.flags.GetBool("allow-partial");
  v1::CommitPlanResponse committed;
  bool did_commit = false;
  if (commit && !commit_refused && plan.replicas_size() > 0) {
    rc = CommitPlanId(inv, plan.plan_id(), inv.flags.GetString("request-id"), &committed);
    if (rc != kExitOk) return rc;
    did_commit = true;
  }
  if (inv.output == OutputFormat::kJson) {
    nlohmann::json out = ProtoToJson(plan);
    if (commit) {
      out["committed"] = did_commit;
      out["commit"] = did_commit ? ProtoToJson(committed) : nlohmann::json(nullptr);
      out["partial"] = partial;
    }
    inv.out << out.dump(2) << "\n";
  } else {
    PrintPlan(inv.out, plan);
    if (did_commit) {
      inv.out << "committed placements " << absl::StrJoin(committed.placement_ids(), ", ")
              << " (generation " << committed.generation() << ")" << (partial ? ", in part" : "")
              << "\n";
    }
  }
  if (commit_refused) {
    inv.err << "fleetplan plan: not committing: " << plan.unplaced_size() << " of "
            << plan.replicas_size() + plan.unplaced_size()
            << " replicas could not be placed (see above); nothing was committed. Pass "
               "--allow-partial to commit the placed ones\n";
    return kExitError;
  }
  if (did_commit && partial) return kExitPartial;
  return partial ? kExitError : kExitOk;
}

int RunCommit(const Invocation& inv) {
  v1::CommitPlanResponse committed;
  int rc = CommitPlanId(inv, inv.positional[0], inv.flags.GetString("request-id"), &committed);
  if (rc != kExitOk) return rc;
  if (inv.output == OutputFormat::kJson) {
    inv.out << ProtoJson(committed) << "\n";
  } else {
    inv.out << "committed placements " << absl::StrJoin(committed.placement_ids(), ", ")
            << " (generation " << committed.generation() << ")\n";
  }
  return kExitOk;
}

int PlacementsList(const Invocation& inv) {
  v1::ListPlacementsResponse resp;
  std::string token;
  do {
    v1::ListPlacementsRequest req;
    req.set_deployment(inv.flags.GetString("deployment"));
    req.set_include_released(inv.flags.GetBool("all"));
    req.set_page_size(limits::kMaxPageSize);
    req.set_page_token(token);
    v1::ListPlacementsResponse page;
    int rc = CallRpc<v1::PlannerService>(inv, "placements list", [&](auto& stub, auto& ctx) {
      return stub.ListPlacements(&ctx, req, &page);
    });
    if (rc != kExitOk) return rc;
    for (auto& p : *page.mutable_placements()) *resp.add_placements() = std::move(p);
    token = page.next_page_token();
  } while (!token.empty());
  if (inv.output == OutputFormat::kJson) {
    inv.out << ProtoJson(resp) << "\n";
    return kExitOk;
  }
  inv.out << absl::StrFormat("%6s %-24s %-28s %4s %3s %3s %-10s %s\n", "ID", "DEPLOYMENT", "MODEL",
                             "REP", "TP", "PP", "STATE", "GPUS");
  for (const auto& p : resp.placements()) {
    std::vector<std::string> gpus;
    for (const auto& r : p.ranks())
      gpus.push_back(absl::StrFormat("%s/%d(%.1fG)", r.node(), r.gpu_index(), GiB(r.bytes())));
    inv.out << absl::StrFormat("%6d %-24s %-28s %4d %3d %3d %-10s %s\n", p.id(), p.deployment(),
                               p.model(), p.replica(), p.tp(), p.pp(), p.state(),
                               absl::StrJoin(gpus, " "));
  }
  return kExitOk;
}

int DeploymentsList(const Invocation& inv) {
  v1::ListDeploymentsResponse resp;
  int rc = CallRpc<v1::PlannerService>(inv, "deployments list", [&](auto& stub, auto& ctx) {
    return stub.ListDeployments(&ctx, v1::ListDeploymentsRequest(), &resp);
  });
  if (rc != kExitOk) return rc;
  if (inv.output == OutputFormat::kJson) {
    inv.out << ProtoJson(resp) << "\n";
    return kExitOk;
  }
  inv.out << absl::StrFormat("%-28s %-36s %8s\n", "NAME", "MODEL", "REPLICAS");
  for (const auto& d : resp.deployments()) {
    inv.out << absl::StrFormat("%-28s %-36s %8d\n", d.name(), d.model(), d.replicas());
  }
  return kExitOk;
}

int DeploymentsRemove(const Invocation& inv) {
  v1::DeleteDeploymentRequest req;
  req.set_name(inv.positional[0]);
  google::protobuf::Empty empty;
  int rc = CallRpc<v1::PlannerService>(inv, "deployments remove", [&](auto& stub, auto& ctx) {
    return stub.DeleteDeployment(&ctx, req, &empty);
  });
  if (rc == kExitOk && inv.output == OutputFormat::kTable)
    inv.out << "removed deployment " << req.name() << "\n";
  if (rc == kExitOk && inv.output == OutputFormat::kJson)
    inv.out << "{\"removed\": \"" << req.name() << "\"}\n";
  return rc;
}

int PlacementsRelease(const Invocation& inv) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(inv.positional[0], &id) || id < 1) {
    inv.err << "fleetplan placements release: \"" << inv.positional[0]
            << "\" is not a placement id\n";
    return kExitUsage;
  }
  v1::ReleasePlacementRequest req;
  req.set_placement_id(id);
  v1::PlacementRecord rec;
  int rc = CallRpc<v1::PlannerService>(inv, "placements release", [&](auto& stub, auto& ctx) {
    return stub.ReleasePlacement(&ctx, req, &rec);
  });
  if (rc != kExitOk) return rc;
  if (inv.output == OutputFormat::kJson) {
    inv.out << ProtoJson(rec) << "\n";
  } else {
    inv.out << "placement " << id << " " << rec.state() << "\n";
  }
  return kExitOk;
}

}  // namespace

std::vector<Command> PlanCommands() {
  return {
      Command{
          .name = "plan",
          .summary = "plan where deployments run on the fleet (server); --commit to commit it",
          .make_flags =
              [] {
                const placement::DeploymentSpec d;
                FlagSet f("plan",
                          "(--model=NAME [--replicas=N ...] | --deployment=FILE.json) [--commit]");
                AddOutputFlag(f);
                AddServerFlags(f);
                f.String("deployment", "",
                         "JSON or YAML file: a list of DeploymentSpec objects (or "
                         "{\"deployments\": [...]})");
                f.String("model", "", "catalog model of a single deployment");
                f.String("engine", "vllm",
                         "vllm | sglang | llama.cpp (default: llama.cpp for a GGUF catalog "
                         "model, else vllm)");
                f.String("gguf-type", "",
                         "engine llama.cpp from a config.json: the GGUF file type it is "
                         "converted to (q4_K_M, q8_0 ...)");
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
                f.Bool("allow-unverified", false,
                       "place a model the estimator did not fully understand (its numbers may "
                       "be wrong)");
                f.Double("min-free", d.min_free_ratio, "keep at least this share of each GPU free");
                f.Int("max-tp", d.max_tp, "largest tensor parallel size to consider");
                f.Int("max-pp", d.max_pp, "largest pipeline parallel size to consider");
                f.Double("gpu-memory-utilization", 0,
                         "run replicas at this vLLM --gpu-memory-utilization (default: sized to "
                         "the workload)");
                f.String("vllm-version", "",
                         "the vLLM version the replicas run (its memory semantics; default "
                         "0.19)");
                f.String("strategy", "pack", placement::StrategyNames().Choices());
                f.Int("reserve-ttl-ms", 0,
                      "reserve the GPUs for this long (until --commit or expiry)");
                f.Bool("commit", false,
                       "commit the plan right away (all replicas placed, or --allow-partial)");
                f.Bool("allow-partial", false,
                       "--commit: commit the placed replicas of a partial plan (exit 3)");
                f.String("request-id", "", "commit idempotency key (default: the plan id)");
                f.String("simulate-failure", "",
                         "zone=NAME,node=NAME,...: re-plan what those nodes run onto the rest of "
                         "the fleet and report what cannot be re-placed (nothing is written; exit "
                         "1 when something cannot)");
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
              .verbs = {{"list", "list placements", PlacementsList},
                        {"release", "release a placement", PlacementsRelease, 1, "ID"}}},
      Command{.name = "deployments",
              .summary = "list or remove the deployments committed plans recorded (server)",
              .make_flags =
                  [] {
                    FlagSet f("deployments", "list | remove NAME");
                    AddOutputFlag(f);
                    AddServerFlags(f);
                    return f;
                  },
              .verbs = {{"list", "list deployments", DeploymentsList},
                        {"remove", "delete a deployment without placements", DeploymentsRemove, 1,
                         "NAME"}}},
      Command{.name = "commit",
              .summary = "commit a plan made earlier (a reservation, or a plan kept by the server)",
              .make_flags =
                  [] {
                    FlagSet f("commit", "PLAN_ID [--request-id=K]");
                    AddOutputFlag(f);
                    AddServerFlags(f);
                    f.String("request-id", "", "idempotency key (default: the plan id)");
                    return f;
                  },
              .run =
                  [](const Invocation& inv) {
                    if (inv.positional.size() != 1) {
                      inv.err << "fleetplan commit: give one PLAN_ID\n";
                      return kExitUsage;
                    }
                    return RunCommit(inv);
                  }},
  };
}

}  // namespace fleetplan::cli
