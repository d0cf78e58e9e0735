#include "planner/placement/candidates.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "planner/estimator/llama_cpp.h"
#include "planner/estimator/sglang.h"
#include "planner/estimator/vllm.h"

namespace fleetplan::placement {
namespace {

// The largest TP size considered when explaining how many GPUs a replica would need.
constexpr int64_t kLargestExplainedTp = 64;

struct Evaluated {
  std::optional<Candidate> candidate;
  bool invalid = false;  // the estimator refused the request (else: the workload does not fit)
  std::string reason;
};

// What a replica of `estimate` reserves, for every engine: the high end of each stage's band (a
// plan never counts on the estimate being right to the byte) and the KV pool's low end.
Candidate CandidateOf(const GpuType& type, const estimator::Parallelism& p,
                      const estimator::MemoryEstimate& estimate, double util,
                      std::string launch_command) {
  Candidate c{.type = &type, .tp = p.tp, .pp = p.pp, .ep = p.ep, .gpus = p.world()};
  for (const estimator::StageMemory& s : estimate.stages) {
    c.stage_bytes.push_back(s.high_bytes);
    c.max_rank_bytes = std::max(c.max_rank_bytes, s.high_bytes);
  }
  c.kv_tokens = estimate.kv_cache_tokens_low;
  c.util = util;
  c.launch_command = std::move(launch_command);
  return c;
}

Evaluated Evaluate(const DeploymentSpec& d, const GpuType& type, int64_t tp, int64_t pp, int64_t ep,
                   const estimator::GgufFile* converted = nullptr) {
  const estimator::EstimateRequest req = VllmRequestFor(d, type, tp, pp, ep);
  if (d.engine == estimator::Engine::kLlamaCpp) {
    // One llama-server over `tp` GPUs of one node, its layers split over them (-sm layer); each
    // GPU reserves the fullest one's high end (the first holds the mmproj, the last the output).
    // A GGUF catalog model: its own header; a config: the GGUF it converts to.
    absl::StatusOr<estimator::LlamaCppEstimate> est =
        d.gguf != nullptr ? estimator::EstimateLlamaCpp(*d.gguf, req)
                          : estimator::EstimateLlamaCppFromModel(*d.spec, req, converted);
    if (!est.ok()) return Evaluated{std::nullopt, true, std::string(est.status().message())};
    if (!est->memory.fits) return Evaluated{std::nullopt, false, est->memory.reason};
    if (est->mmproj) est->mmproj_path = absl::StrCat("mmproj-", d.model, "-f16.gguf");
    Candidate c{.type = &type, .tp = tp, .pp = 1, .ep = 1, .gpus = tp};
    c.max_rank_bytes = est->memory.max_high_bytes;
    c.stage_bytes = {c.max_rank_bytes};
    c.kv_tokens = est->memory.kv_cache_tokens_low;
    c.host_bytes = est->memory.host_bytes;
    c.launch_command = estimator::LlamaServerCommand(
        d.gguf != nullptr ? (d.gguf_path.empty() ? absl::StrCat(d.model, ".gguf") : d.gguf_path)
                          : absl::StrCat(d.model, "-", d.llama_cpp.file_type, ".gguf"),
        *est);
    return Evaluated{std::move(c), false, ""};
  }
  if (d.engine == estimator::Engine::kSglang) {
    // SGLang's own budget rule (sglang_model.cc) at SGLang's fraction.
    absl::StatusOr<estimator::MemoryEstimate> est = estimator::Estimate(*d.spec, req);
    if (!est.ok()) return Evaluated{std::nullopt, true, std::string(est.status().message())};
    if (!est->fits) return Evaluated{std::nullopt, false, est->reason};
    const double fraction = est->mem_fraction_static;
    return Evaluated{CandidateOf(type, req.parallelism, *est, fraction,
                                 estimator::SglangLaunchCommand(d.model, req, *est)),
                     false, ""};
  }
  absl::StatusOr<estimator::VllmFit> fit = estimator::FitVllm(
      *d.spec, req,
      d.utilization_given ? estimator::Utilization::kAsGiven : estimator::Utilization::kSmallest);
  if (!fit.ok()) return Evaluated{std::nullopt, true, std::string(fit.status().message())};
  if (!fit->fits) return Evaluated{std::nullopt, false, fit->reason};
  return Evaluated{CandidateOf(type, req.parallelism, fit->estimate, fit->gpu_memory_utilization,
                               estimator::VllmServeCommand(d.model, *fit)),
                   false, ""};
}

}  // namespace

int64_t ModelLayers(const DeploymentSpec& d) {
  if (d.spec != nullptr) return d.spec->num_layers;
  if (d.gguf == nullptr) return 0;
  absl::StatusOr<estimator::GgufKv> kv = estimator::GgufKvCache(*d.gguf, "f16");
  return kv.ok() ? kv->layers : 0;  // the estimate names the missing key
}

estimator::EstimateRequest VllmRequestFor(const DeploymentSpec& d, const GpuType& type, int64_t tp,
                                          int64_t pp, int64_t ep) {
  estimator::EstimateRequest req;
  req.engine = d.engine;
  req.parallelism = {.tp = tp, .pp = pp, .ep = ep};
  req.gpu_memory_bytes = type.memory_bytes;
  req.gpu_name = type.name;
  req.kv_cache_dtype = d.kv_cache_dtype;
  req.vllm = d.vllm;
  req.sglang = d.sglang;
  req.llama_cpp = d.llama_cpp;
  if (d.engine == estimator::Engine::kLlamaCpp) {
    // llama.cpp's GPUs are a layer split: parallelism.pp counts them (llama_cpp.h). A plan puts
    // every layer on them unless the deployment pins -ngl.
    req.parallelism = {.tp = 1, .pp = tp, .ep = 1};
    if (req.llama_cpp.n_gpu_layers < 0) req.llama_cpp.n_gpu_layers = ModelLayers(d) + 1;
  }
  req.concurrency = d.concurrency;
  req.context_tokens = d.context_tokens;
  return req;
}

int64_t AllowedBytesPerGpu(const DeploymentSpec& d, const GpuType& type) {
  return static_cast<int64_t>(
      std::floor((1.0 - d.min_free_ratio) * static_cast<double>(type.memory_bytes)));
}

void SortCandidates(std::vector<Candidate>& candidates) {
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) {
                     const double ca = a.type->cost_per_hour * static_cast<double>(a.gpus);
                     const double cb = b.type->cost_per_hour * static_cast<double>(b.gpus);
                     return std::tie(a.gpus, ca, a.max_rank_bytes, a.pp) <
                            std::tie(b.gpus, cb, b.max_rank_bytes, b.pp);
                   });
}

TypeCandidates CandidatesOnType(const DeploymentSpec& d, const GpuType& type,
                                int64_t largest_domain) {
  TypeCandidates out;
  const int64_t cap = AllowedBytesPerGpu(d, type);
  std::optional<Candidate> smallest;  // the least bytes per GPU of any valid candidate
  // When nothing is valid: the first refusal, and the workload's shortfall at the largest
  // parallelism tried (the one closest to holding it, so the reason a user reads is that one's).
  std::string invalid, unfit;
  // llama.cpp: the config's GGUF, converted once for every GPU count.
  std::optional<absl::StatusOr<estimator::GgufFile>> converted;
  if (d.engine == estimator::Engine::kLlamaCpp && d.gguf == nullptr) {
    converted = estimator::LlamaCppConvert(*d.spec, VllmRequestFor(d, type, 1, 1, 1));
    if (!converted->ok()) {
      out.shortfall = Shortfall{.kind = Shortfall::Kind::kInvalid,
                                .gpu_type = type.name,
                                .allowed_bytes_per_gpu = cap,
                                .largest_domain = largest_domain,
                                .detail = std::string(converted->status().message())};
      return out;
    }
  }
  const estimator::GgufFile* gguf = converted ? &**converted : nullptr;
  for (int64_t tp = 1; tp <= d.max_tp; tp *= 2) {
    const bool llama = d.engine == estimator::Engine::kLlamaCpp;  // one node: no pp, no ep
    for (int64_t pp = 1; pp <= (llama ? 1 : d.max_pp) && pp <= std::max<int64_t>(ModelLayers(d), 1);
         ++pp) {
      std::vector<int64_t> eps = {1};
      if (!llama && d.spec->is_moe() && tp > 1) eps.push_back(tp);
      for (int64_t ep : eps) {
        Evaluated e = Evaluate(d, type, tp, pp, ep, gguf);
        if (!e.candidate) {
          if (e.invalid && invalid.empty()) invalid = e.reason;
          if (!e.invalid) {
            unfit = absl::StrCat("tp=", tp, " pp=", pp, ep > 1 ? absl::StrCat(" ep=", ep) : "",
                                 ": ", e.reason);
          }
          continue;
        }
        if (!smallest || e.candidate->max_rank_bytes < smallest->max_rank_bytes) {
          smallest = e.candidate;
        }
        if (e.candidate->max_rank_bytes > cap) continue;
        if (tp > largest_domain) continue;  // a TP group lives in one NVLink domain
        out.fitting.push_back(std::move(*e.candidate));
      }
    }
  }
  const bool single_domain_fits = std::any_of(out.fitting.begin(), out.fitting.end(),
                                              [](const Candidate& c) { return c.pp == 1; });
  if (single_domain_fits) {
    out.fitting.erase(std::remove_if(out.fitting.begin(), out.fitting.end(),
                                     [](const Candidate& c) { return c.pp > 1; }),
                      out.fitting.end());
  }
  SortCandidates(out.fitting);
  if (!out.fitting.empty()) return out;

  Shortfall s{
      .gpu_type = type.name, .allowed_bytes_per_gpu = cap, .largest_domain = largest_domain};
  if (!smallest) {
    // Nothing valid: the estimator refused (bad parallelism) or the workload never fits.
    s.kind = unfit.empty() ? Shortfall::Kind::kInvalid : Shortfall::Kind::kWorkload;
    s.detail = unfit.empty() ? invalid : unfit;
    out.shortfall = s;
    return out;
  }
  // The smallest TP size whose ranks fit a GPU, ignoring topology.
  for (int64_t tp = 1; tp <= kLargestExplainedTp; tp *= 2) {
    Evaluated e = Evaluate(d, type, tp, 1, 1, gguf);
    if (e.candidate && e.candidate->max_rank_bytes <= cap) {
      s.kind = Shortfall::Kind::kDomainTooSmall;
      s.tp = tp;
      s.pp = 1;
      s.gpus = tp;
      s.need_bytes_per_gpu = e.candidate->max_rank_bytes;
      out.shortfall = s;
      return out;
    }
  }
  s.kind = Shortfall::Kind::kTooLarge;
  s.tp = smallest->tp;
  s.pp = smallest->pp;
  s.gpus = smallest->gpus;
  s.need_bytes_per_gpu = smallest->max_rank_bytes;
  out.shortfall = s;
  return out;
}

}  // namespace fleetplan::placement
