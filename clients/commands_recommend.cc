// `fleetplan recommend`: "what hardware does this model need?" -- the cheapest vLLM
// configurations that hold a workload, over the built-in GPU table or (with --server) the fleet's
// GPU types, ranked, each with its launch line, and why fewer GPUs do not do
// (planner/placement/recommend.h: the planner's own candidates).
//
//   fleetplan recommend --model=config.json --concurrency=32 --context=8192 [--gpu=H100-80GB,L4]

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <ostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/cli.h"
#include "clients/rpc_util.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/gpu_catalog.h"
#include "planner/placement/recommend.h"

namespace fleetplan::cli {
namespace {

using json = nlohmann::json;

// The GPU types to consider: the fleet's (--server; the built-in table when it has none) or the
// built-in table's, narrowed by --gpu (placement::RecommendGpuTypes, the Recommend RPC's rule),
// with --cost-per-hour filling in costs.
int GpuTypes(const Invocation& inv, std::vector<placement::GpuType>& out) {
  const FlagSet& f = inv.flags;
  std::vector<placement::GpuType> registered;
  const bool builtin = !f.IsSet("server");
  if (!builtin) {
    v1::ListGpuTypesResponse resp;
    int rc = CallRpc<v1::InventoryService>(inv, "recommend", [&](auto& stub, auto& ctx) {
      return stub.ListGpuTypes(&ctx, v1::ListGpuTypesRequest(), &resp);
    });
    if (rc != kExitOk) return rc;
    for (const v1::GpuType& t : resp.gpu_types()) {
      registered.push_back(placement::GpuType{
          .name = t.name(), .memory_bytes = t.memory_bytes(), .cost_per_hour = t.cost_per_hour()});
    }
  }
  const std::vector<std::string> only = absl::StrSplit(f.GetString("gpu"), ',', absl::SkipEmpty());
  std::vector<std::string> notes;
  auto types = placement::RecommendGpuTypes(std::move(registered), builtin, only, "--gpu", &notes);
  if (!types.ok()) return Usage(inv, "recommend", std::string(types.status().message()));
  for (const std::string& note : notes) inv.err << "fleetplan recommend: " << note << "\n";
  out = std::move(*types);
  auto costs = ParseKeyValues("cost-per-hour", f.GetString("cost-per-hour"));
  if (!costs.ok()) return Usage(inv, "recommend", std::string(costs.status().message()));
  for (const auto& entry : *costs) {
    const std::string& name = entry.first;
    const std::string& text = entry.second;
    double cost = 0;
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const placement::GpuType& t) { return t.name == name; });
    if (it == out.end() || !absl::SimpleAtod(text, &cost) || !std::isfinite(cost) || cost < 0) {
      return Usage(inv, "recommend",
                   absl::StrCat("--cost-per-hour: \"", name, "=", text,
                                "\" needs a GPU type considered and a cost >= 0"));
    }
    it->cost_per_hour = cost;
  }
  return kExitOk;
}

json ConfigurationJson(const placement::Configuration& c) {
  const placement::Candidate& k = c.candidate;
  json stages = json::array();
  for (int64_t b : k.stage_bytes) stages.push_back(std::to_string(b));
  return json{{"gpu_type", k.type->name},
              {"gpus", k.gpus},
              {"tp", k.tp},
              {"pp", k.pp},
              {"ep", k.ep},
              {"max_bytes_per_gpu", std::to_string(k.max_rank_bytes)},
              {"stage_bytes_per_gpu", stages},
              {"kv_cache_tokens", k.kv_tokens},
              {"gpu_memory_utilization", k.util},
              {"cost_per_hour", c.cost_per_hour > 0 ? json(c.cost_per_hour) : json(nullptr)},
              {"launch_command", k.launch_command}};
}

int RunRecommend(const Invocation& inv) {
  const FlagSet& f = inv.flags;
  if (f.GetString("engine") != "vllm") {
    return Usage(inv, "recommend",
                 absl::StrCat("--engine=", f.GetString("engine"),
                              ": recommend sizes vLLM serving (the engine the planner places)"));
  }
  const std::string path = f.GetString("model");
  if (path.empty()) return Usage(inv, "recommend", "--model=config.json is required");
  auto text = ReadFileText("model", path);
  if (!text.ok()) return ReportError(inv.err, "recommend", text.status());
  auto spec = estimator::ParseModelConfig(*text, {.quantization = f.GetString("quantization")});
  if (!spec.ok()) return ReportError(inv.err, "recommend", spec.status());
  for (const char* flag :
       {"concurrency", "context", "max-model-len", "gpus-per-node", "max-pp", "limit"}) {
    if (f.GetInt(flag) < 0)
      return Usage(inv, "recommend", absl::StrCat("--", flag, " must be >= 0"));
  }
  if (f.GetInt("gpus-per-node") < 1 || f.GetInt("concurrency") < 1) {
    return Usage(inv, "recommend", "--concurrency and --gpus-per-node must be >= 1");
  }
  const double min_free = f.GetDouble("min-free");
  if (!(min_free >= 0 && min_free < 1)) {
    return Usage(inv, "recommend", absl::StrCat("--min-free=", min_free, " must be in [0, 1)"));
  }
  auto kv = estimator::KvCacheDTypeNames().Parse("--kv-cache-dtype", f.GetString("kv-cache-dtype"));
  if (!kv.ok()) return Usage(inv, "recommend", std::string(kv.status().message()));
  std::vector<placement::GpuType> types;
  if (int rc = GpuTypes(inv, types); rc != kExitOk) return rc;
  if (spec->unverified() && !f.GetBool("allow-unverified")) {
    inv.err << "fleetplan recommend: the estimator did not fully understand this config ("
            << absl::StrJoin(spec->notes, "; ")
            << "); its numbers may be wrong: pass --allow-unverified to see them anyway\n";
    return kExitError;
  }
  std::string served = f.GetString("model-name");
  if (served.empty()) {
    std::filesystem::path p(path);
    served = p.filename() == "config.json" && p.has_parent_path() ? p.parent_path().string() : path;
  }
  placement::DeploymentSpec d{.name = "recommend",
                              .model = served,
                              .spec = &*spec,
                              .vllm = {.max_model_len = f.GetInt("max-model-len")},
                              .kv_cache_dtype = *kv,
                              .concurrency = f.GetInt("concurrency"),
                              .context_tokens = f.GetInt("context"),
                              .min_free_ratio = min_free,
                              .max_tp = f.GetInt("gpus-per-node"),
                              .max_pp = std::max<int64_t>(f.GetInt("max-pp"), 1),
                              .allow_unverified = f.GetBool("allow-unverified")};
  if (d.vllm.max_model_len == 0 && d.context_tokens > 0) d.vllm.max_model_len = d.context_tokens;
  placement::Recommendation r = placement::Recommend(d, types, f.GetInt("gpus-per-node"));
  const size_t limit = static_cast<size_t>(f.GetInt("limit"));
  if (limit > 0 && r.configurations.size() > limit) r.configurations.resize(limit);

  if (inv.output == OutputFormat::kJson) {
    json out{{"configurations", json::array()}, {"gpu_types", json::array()}};
    for (const auto& c : r.configurations) out["configurations"].push_back(ConfigurationJson(c));
    for (const placement::TypeVerdict& v : r.types) {
      json t{{"gpu_type", v.gpu_type}, {"fits", !v.none_fits.has_value()}};
      if (v.none_fits) t["why_not"] = placement::Describe(*v.none_fits);
      if (v.fewest > 0) t["fewest_gpus"] = v.fewest;
      if (v.why_not_fewer) {
        t["fewer_gpus"] = v.fewer;
        t["why_not_fewer"] = placement::Describe(*v.why_not_fewer);
      }
      out["gpu_types"].push_back(t);
    }
    inv.out << out.dump(2) << "\n";
  } else {
    const std::string workload =
        absl::StrCat(d.concurrency, " sequences x ",
                     d.context_tokens > 0 ? absl::StrCat(d.context_tokens, " tokens")
                                          : std::string("max-model-len"));
    if (r.configurations.empty()) {
      inv.out << "no configuration holds " << workload << " of " << served << "\n";
    } else {
      const placement::Candidate& best = r.configurations.front().candidate;
      inv.out << absl::StrFormat("%s for %s: use %d x %s (tp=%d%s%s)\n", served, workload,
                                 best.gpus, best.type->name, best.tp,
                                 best.pp > 1 ? absl::StrCat(", pp=", best.pp) : "",
                                 best.ep > 1 ? absl::StrCat(", ep=", best.ep) : "");
      inv.out << absl::StrFormat("%4s %4s %-12s %3s %3s %3s %9s %10s %5s %8s\n", "RANK", "GPUS",
                                 "GPU_TYPE", "TP", "PP", "EP", "GIB/GPU", "KV_TOKENS", "UTIL",
                                 "COST/H");
      for (size_t i = 0; i < r.configurations.size(); ++i) {
        const auto& c = r.configurations[i];
        const placement::Candidate& k = c.candidate;
        inv.out << absl::StrFormat(
            "%4d %4d %-12s %3d %3d %3d %9.1f %10d %5.2f %8s\n", i + 1, k.gpus, k.type->name, k.tp,
            k.pp, k.ep, BytesToGiB(k.max_rank_bytes), k.kv_tokens, k.util,
            c.cost_per_hour > 0 ? absl::StrFormat("%.2f", c.cost_per_hour) : "-");
      }
      for (size_t i = 0; i < r.configurations.size(); ++i) {
        inv.out << "  " << i + 1 << ": " << r.configurations[i].candidate.launch_command << "\n";
      }
    }
    // Describe() starts with the type's name; the line already does.
    auto reason = [](const placement::TypeVerdict& v, const placement::Shortfall& s) {
      return std::string(absl::StripPrefix(placement::Describe(s), v.gpu_type + ": "));
    };
    for (const placement::TypeVerdict& v : r.types) {
      if (v.none_fits) {
        inv.out << "  " << v.gpu_type << ": does not fit: " << reason(v, *v.none_fits) << "\n";
      } else if (v.why_not_fewer) {
        inv.out << "  " << v.gpu_type << ": " << v.fewest << " GPUs at least; " << v.fewer
                << " do not do: " << reason(v, *v.why_not_fewer) << "\n";
      }
    }
  }
  return r.configurations.empty() ? kExitError : kExitOk;
}

}  // namespace

std::vector<Command> RecommendCommands() {
  return {Command{
      .name = "recommend",
      .summary = "the cheapest GPU configurations that hold a workload (offline, or the fleet's "
                 "GPU types with --server)",
      .make_flags =
          [] {
            FlagSet f("recommend",
                      "--model=config.json --concurrency=N --context=C [--gpu=T1,T2] [--server]");
            AddOutputFlag(f);
            AddServerFlags(f);
            f.String("model", "", "path of a Hugging Face config.json");
            f.String("model-name", "", "the model `vllm serve` loads (default: its folder)");
            f.String("quantization", "", "override the config's quantization");
            f.String("engine", "vllm", "vllm (the engine the planner places)");
            f.Int("concurrency", 1, "sequences each replica's KV cache holds at once");
            f.Int("context", 0, "tokens per sequence (0: max-model-len)");
            f.Int("max-model-len", 0, "vLLM --max-model-len (0: --context, else the model's)");
            f.String("kv-cache-dtype", "auto", estimator::KvCacheDTypeNames().Choices());
            f.String("gpu", "", "only these GPU types, comma-separated");
            f.String("cost-per-hour", "", "TYPE=COST,...: cost per GPU hour for the ranking");
            f.Int("gpus-per-node", 8, "GPUs in one NVLink domain (the largest tp)");
            f.Int("max-pp", 4, "most pipeline stages (across nodes)");
            f.Double("min-free", 0.05, "keep at least this share of each GPU free");
            f.Int("limit", 10, "list at most this many configurations (0: all)");
            f.Bool("allow-unverified", false,
                   "recommend for a model the estimator did not fully understand");
            return f;
          },
      .run = RunRecommend}};
}

}  // namespace fleetplan::cli
