#ifndef FLEETPLAN_PLANNER_ESTIMATOR_UNCERTAINTY_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_UNCERTAINTY_H_

// Uncertainty bands. Every stage of an estimate carries [low_bytes, high_bytes]: the range the
// GPU's real use falls in, with the confidence the calibration files give. The planner reserves
// the high end (MemoryEstimate::BytesPerRank), so a model that is merely close never
// under-provisions a GPU.
//
// How a band is made: each component of a stage gets a margin, a fraction of its own bytes.
//   - Inside the calibrated domain the fractions are the calibrated ones below: for each engine
//     and component, the largest relative error the calibration files show for that component
//     (tests/data/calibration, scored by `fleetplan validate --per-case`), rounded up. The
//     error of a measured total the files do not split (the HF and training peaks) is put on
//     the component the estimator models rather than counts: the transient tensors.
//   - Outside it (a model, path or size the files do not exercise) the fractions widen, each
//     for a stated reason that the estimate's notes repeat (Margins::widened). These widenings
//     are judgements, not measurements: they say how far outside measured ground we are.
// CalibrationTest.BandsCoverTheMeasuredCases checks the result on every calibration file:
// measured <= high in >= 99 % of the cases and (high - point) / point <= 5 % in the median.

#include <cstdint>
#include <string>
#include <vector>

#include "planner/estimator/estimator.h"
#include "planner/estimator/model_spec.h"

namespace fleetplan::estimator {

// Fractions of each component of a stage by which the real bytes may exceed (high) or fall short
// of (low) the estimate.
struct Margins {
  // HF transformers and training: the weights (counted) and the transient part (modelled:
  // activation peak, engine inputs and workspaces, gradients).
  double weights = 0;
  double transient_high = 0, transient_low = 0;
  // vLLM: everything outside the KV pool (weights, profile peak, non-torch) may take this much
  // more, which the pool gives up; and the CUDA graphs, kept outside the budget.
  double vllm_non_kv = 0;
  double cuda_graph_high = 0, cuda_graph_low = 0;
  double total = 0;  // of the whole stage, either way (a model the estimator did not understand)
  std::vector<std::string> widened;  // why the margins are wider than calibrated
};

// The margins for `request` on `spec`: the calibrated ones of the engine, widened for what the
// calibration files do not cover.
Margins StageMargins(const ModelSpec& spec, const EstimateRequest& request);

// Bytes below and above the point estimate of `stage` for `m` (both >= 0). For vLLM the KV pool
// has no margin of its own: it is what the budget leaves, so an error elsewhere moves the pool,
// not the total (see VllmNonKvMarginBytes).
struct BandBytes {
  int64_t below = 0;
  int64_t above = 0;
};
BandBytes StageMarginBytes(const Margins& m, Engine engine, const StageMemory& stage);

// vLLM: how much more than estimated the memory outside the KV pool (weights, profile peak,
// non-torch) may take; the KV pool's low end is what the budget leaves then.
int64_t VllmNonKvMarginBytes(const Margins& m, const StageMemory& stage);

// llama.cpp's margins (no measured llama.cpp case yet: its compute buffer, CUDA pool and context
// are modelled from its source, so their band is wide; weights and KV come from the file).
Margins LlamaCppMargins();

// Every engine's last step, one rule: each stage's band from `margins`; max_total/high, headroom,
// fits (the high end within the GPU and no reason set) and risk from the high end.
void ConcludeEstimate(const Margins& margins, MemoryEstimate& out);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_UNCERTAINTY_H_
