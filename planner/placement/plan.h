#ifndef FLEETPLAN_PLANNER_PLACEMENT_PLAN_H_
#define FLEETPLAN_PLANNER_PLACEMENT_PLAN_H_

// The planner's request and result types: what a scheduler asks for (DeploymentSpec), how the
// planner should work (PlannerOptions), and what it answers (Plan: placed replicas with their
// launch lines, unplaced ones with a structured Shortfall that the edge renders into words).
// Plain values; the defaults written here are the only place they are written (DESIGN.md: the
// edge maps "unset" to these).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "planner/common/names.h"
#include "planner/common/risk.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/gguf.h"
#include "planner/estimator/model_spec.h"
#include "planner/placement/fleet.h"

namespace fleetplan::placement {

enum class Spread : uint8_t { kNone, kNodes, kZones };
// none (also ""), nodes, zones.
const Vocabulary<Spread>& SpreadNames();

struct DeploymentSpec {
  std::string name;
  std::string model;                           // catalog name (what `vllm serve` loads)
  const estimator::ModelSpec* spec = nullptr;  // resolved by the caller; must outlive the call
  // Or, for a catalog model imported from a GGUF file's header (engine llama.cpp only), that
  // header (spec is then null): its weights are the file's tensors. gguf_path is the file
  // llama-server loads (the launch line's -m).
  const estimator::GgufFile* gguf = nullptr;
  std::string gguf_path;
  // The serving engine: vllm (default) or sglang; each is planned by its own memory rule and
  // launched by its own command line.
  estimator::Engine engine = estimator::Engine::kVllm;
  estimator::VllmConfig vllm;      // engine profile (max_model_len, batched tokens ...)
  estimator::SglangConfig sglang;  // engine sglang
  // Engine llama.cpp: llama-server's settings; file_type (the GGUF the catalog config converts to,
  // gguf_convert.h) is required. n_gpu_layers -1 plans every layer on the GPUs; a smaller count
  // keeps the rest on the CPU (their host memory is reported per replica).
  estimator::LlamaCppConfig llama_cpp;
  estimator::KvCacheDType kv_cache_dtype = estimator::KvCacheDType::kAuto;
  // false: --gpu-memory-utilization is sized to the workload (the smallest that holds it);
  // true: vllm.gpu_memory_utilization is honoured, and a parallelism whose KV cache cannot hold
  // the workload at it is refused with the engine's reason.
  bool utilization_given = false;
  int64_t concurrency = 1;     // sequences the replica's KV cache must hold at once
  int64_t context_tokens = 0;  // tokens per sequence; 0: max_model_len
  int64_t replicas = 1;
  std::vector<std::string> gpu_types;  // allowed; empty: any
  std::vector<std::string> pools;      // allowed; empty: any
  std::vector<std::string> zones;      // allowed; empty: any
  bool shared = false;                 // share GPUs with other instances by memory
  Spread spread = Spread::kNone;       // replicas on distinct nodes / zones
  double min_free_ratio = 0.05;        // keep at least this share of each GPU free
  int64_t max_tp = 8;
  int64_t max_pp = 4;
  // Place even when spec->unverified() (the estimator did not fully understand the config).
  bool allow_unverified = false;
};

struct PlacementRequest {
  std::vector<DeploymentSpec> deployments;
};

enum class Strategy : uint8_t { kPack, kSpread, kExact };
// pack, spread, exact.
const Vocabulary<Strategy>& StrategyNames();

struct PlannerOptions {
  Strategy strategy = Strategy::kPack;
  // kPack re-pack passes (each an extra full packing in another order: smallest first, scarcest
  // first, request order, fewest bytes first). A pass budget, not a clock: the planner reads no
  // clock.
  int64_t improvement_passes = 4;
  // kExact: largest problem (replicas x candidates x domains variables) handed to CBC, and its
  // time limit (CBC's own clock).
  int64_t exact_max_variables = 20000;
  double exact_time_limit_seconds = 10;
  // Branch-and-bound nodes CBC may explore (0: no limit, only the clock). A node budget gives the
  // same plan for the same input on any machine and under any load; a clock does not, so the
  // clock is the safety net and the node budget the limit that normally binds (10000 nodes of a
  // 2000-variable program: about 2 s in Release, measured 2026-12 on the planner quality set).
  int64_t exact_max_nodes = 10000;
  // kPack: when the greedy passes leave replicas unplaced and the exclusive single-stage integer
  // program is at most this large, it is solved (CBC, within repair_max_nodes) and its plan taken
  // when it places more (strategy_used "pack (exact repair)"). Greedy orders miss the assignment
  // that fits everything in about one capacity-bound instance in five; on small tight fleets the
  // optimum is cheap. 0 turns the repair off.
  int64_t repair_max_variables = 4000;
  // The repair's budget is nodes, not seconds, so that pack stays deterministic: a clock made
  // the same request place different replica counts on a loaded machine (an ASan CI run placed
  // one fewer than an idle one). The clock is only a safety net for a pathological program.
  int64_t repair_max_nodes = 500;
  double repair_time_limit_seconds = 30;
  // Polled between deployments and packing passes; returning true stops planning with CANCELLED
  // (a client that went away, a server shutting down). The planner reads no clock itself.
  std::function<bool()> cancelled;
};

struct ReplicaPlacement {
  std::string deployment;
  std::string model;
  int64_t replica = 0;
  std::string gpu_type;
  int64_t tp = 1, pp = 1, ep = 1;
  std::vector<PlacementRank> ranks;   // rank = stage * tp + tp_rank
  int64_t kv_cache_tokens = 0;        // what the replica's KV cache holds at its utilization
  double gpu_memory_utilization = 0;  // for --gpu-memory-utilization
  Risk risk = Risk::kLow;
  std::string launch_command;  // estimator::VllmServeCommand
  int64_t host_bytes = 0;      // llama.cpp: host memory on the replica's node (CPU layers, buffers)
  std::vector<std::string> cuda_visible_devices;  // per node, "node:0,1,2,3"
};

// Why a replica was not placed, as data (Kubernetes' InsufficientResource style); Describe()
// renders it at the edge.
struct Shortfall {
  enum class Kind : uint8_t {
    kNoEligibleType,  // no allowed GPU type, pool or zone exists in the fleet
    kInvalid,         // the estimator refused every parallelism on this type (detail says why)
    kWorkload,        // the engine cannot hold the workload on this type at any parallelism
    kDomainTooSmall,  // fits with tp >= tp, but the largest NVLink domain has largest_domain GPUs
    kTooLarge,        // even `gpus` GPUs leave need_bytes_per_gpu > allowed_bytes_per_gpu
    kTooFewDomains,   // needs pp domains of >= tp GPUs in one pool; the pools have largest_domain
    kSpread,          // the spread needs more distinct nodes / zones than the allowed pools have
    kCapacity,        // fits the fleet, not its free capacity now: retry when capacity frees
  };
  Kind kind = Kind::kNoEligibleType;
  std::string gpu_type;
  int64_t tp = 0;
  int64_t pp = 0;
  int64_t gpus = 0;
  int64_t need_bytes_per_gpu = 0;
  int64_t allowed_bytes_per_gpu = 0;
  int64_t largest_domain = 0;      // kDomainTooSmall: GPUs of the largest allowed domain;
                                   // kTooFewDomains: most such domains in one allowed pool
  int64_t best_eligible_gpus = 0;  // kCapacity: most eligible GPUs in any free domain
  int64_t spread_targets = 0;      // kSpread: distinct nodes or zones available
  Spread spread = Spread::kNone;
  std::string detail;  // kInvalid / kWorkload: the estimator's reason

  // RESOURCE_EXHAUSTED (retry later) for kCapacity, FAILED_PRECONDITION (retry useless) else.
  bool retryable() const { return kind == Kind::kCapacity; }
};
// no_eligible_type, invalid, workload, domain_too_small, too_large, too_few_domains, spread,
// capacity.
const Vocabulary<Shortfall::Kind>& ShortfallKindNames();

struct Unplaced {
  std::string deployment;
  int64_t replica = 0;
  std::vector<Shortfall> shortfalls;  // one per GPU type considered (kCapacity: the best one)

  // Retryable when some GPU type would take it once capacity frees.
  bool retryable() const;
};

// Words for people (CLI, API reason strings): "needs tp >= 4 on H100 (71.3 GiB/GPU); its largest
// NVLink domain in the allowed pools has 2 GPUs".
std::string Describe(const Shortfall& s);
std::string Describe(const Unplaced& u);

struct Plan {
  int64_t snapshot_generation = 0;
  std::vector<ReplicaPlacement> replicas;
  std::vector<Unplaced> unplaced;
  int64_t gpus_used = 0;  // distinct GPUs the plan places ranks on
  double cost_per_hour = 0;
  int64_t lower_bound_gpus = 0;  // over the placed replicas
  double gap = 0;                // gpus_used / lower_bound_gpus - 1
  std::string strategy_used;     // "pack", "spread", "exact" (or "pack (exact fallback)")
  bool exact_optimal = false;
};

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_PLAN_H_
