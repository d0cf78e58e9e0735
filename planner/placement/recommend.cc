#include "planner/placement/recommend.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "planner/estimator/gpu_catalog.h"

namespace fleetplan::placement {

Recommendation Recommend(const DeploymentSpec& d, const std::vector<GpuType>& types,
                         int64_t gpus_per_node, size_t per_type) {
  Recommendation out;
  for (const GpuType& type : types) {
    TypeVerdict verdict{.gpu_type = type.name};
    TypeCandidates tc = CandidatesOnType(d, type, gpus_per_node);
    if (tc.fitting.empty()) {
      verdict.none_fits = tc.shortfall;
      out.types.push_back(std::move(verdict));
      continue;
    }
    verdict.fewest = tc.fitting.front().gpus;
    if (verdict.fewest > 1) {
      // Half the GPUs, tensor parallel only: the planner would have chosen it if it fitted.
      DeploymentSpec fewer = d;
      fewer.max_tp = 1;
      while (fewer.max_tp * 2 <= verdict.fewest / 2) fewer.max_tp *= 2;  // tp: powers of two
      fewer.max_pp = 1;
      TypeCandidates smaller = CandidatesOnType(fewer, type, fewer.max_tp);
      verdict.fewer = fewer.max_tp;
      if (smaller.fitting.empty()) verdict.why_not_fewer = smaller.shortfall;
    }
    // The type's cheapest configurations: its fewest GPUs (other tp/pp/ep splits of them), not
    // the same model spread over more GPUs than it needs.
    for (size_t i = 0; i < tc.fitting.size() && i < per_type; ++i) {
      const Candidate& c = tc.fitting[i];
      if (c.gpus > verdict.fewest) break;
      out.configurations.push_back(Configuration{
          .candidate = c, .cost_per_hour = type.cost_per_hour * static_cast<double>(c.gpus)});
    }
    out.types.push_back(std::move(verdict));
  }
  std::stable_sort(out.configurations.begin(), out.configurations.end(),
                   [](const Configuration& a, const Configuration& b) {
                     const Candidate& x = a.candidate;
                     const Candidate& y = b.candidate;
                     return std::make_tuple(a.cost_per_hour <= 0, a.cost_per_hour, x.gpus,
                                            x.type->memory_bytes, x.pp, x.max_rank_bytes) <
                            std::make_tuple(b.cost_per_hour <= 0, b.cost_per_hour, y.gpus,
                                            y.type->memory_bytes, y.pp, y.max_rank_bytes);
                   });
  return out;
}

absl::StatusOr<std::vector<GpuType>> RecommendGpuTypes(std::vector<GpuType> registered,
                                                       bool builtin,
                                                       const std::vector<std::string>& only,
                                                       absl::string_view field,
                                                       std::vector<std::string>* notes) {
  std::vector<GpuType> types;
  if (!builtin) {
    types = std::move(registered);
    if (types.empty() && notes != nullptr) {
      notes->push_back("no GPU types are registered: the built-in table is used");
    }
  }
  if (types.empty()) {
    for (const estimator::GpuInfo& g : estimator::GpuCatalog()) {
      types.push_back(GpuType{.name = g.name, .memory_bytes = g.memory_bytes});
    }
  }
  auto by_name = [](const GpuType& a, const GpuType& b) { return a.name < b.name; };
  std::sort(types.begin(), types.end(), by_name);
  if (only.empty()) return types;
  std::vector<GpuType> kept;
  for (size_t i = 0; i < only.size(); ++i) {
    const std::string& name = only[i];
    auto it =
        std::find_if(types.begin(), types.end(), [&](const GpuType& t) { return t.name == name; });
    if (it == types.end()) {
      std::vector<std::string> known;
      for (const GpuType& t : types) known.push_back(t.name);
      return absl::NotFoundError(absl::StrCat(field, "[", i, "]=\"", name, "\" is not one of ",
                                              absl::StrJoin(known, ", ")));
    }
    if (std::none_of(kept.begin(), kept.end(), [&](const GpuType& t) { return t.name == name; })) {
      kept.push_back(*it);
    }
  }
  std::sort(kept.begin(), kept.end(), by_name);
  return kept;
}

}  // namespace fleetplan::placement
