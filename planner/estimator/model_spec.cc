#include "planner/estimator/model_spec.h"

namespace fleetplan::estimator {
namespace {

int64_t Sum(const std::vector<Tensor>& tensors) {
  int64_t total = 0;
  for (const Tensor& t : tensors) total += t.elements();
  return total;
}

}  // namespace

int64_t ModelSpec::num_language_params() const {
  int64_t total = Sum(first_stage) + Sum(last_stage);
  for (int kind : layer_kind_of) total += Sum(layer_kinds[static_cast<size_t>(kind)].tensors);
  return total;
}

int64_t ModelSpec::num_vision_params() const {
  if (!vision) return 0;
  return Sum(vision->tower) + Sum(vision->projector);
}

int64_t ModelSpec::num_params() const { return num_language_params() + num_vision_params(); }

bool ModelSpec::is_moe() const {
  for (const LayerKind& k : layer_kinds) {
    if (k.mlp.num_experts > 0) return true;
  }
  return false;
}

bool ModelSpec::has_linear_attention() const {
  for (const LayerKind& k : layer_kinds) {
    if (k.attention.linear_attention) return true;
  }
  return false;
}

bool ModelSpec::has_cross_attention() const {
  for (const LayerKind& k : layer_kinds) {
    if (k.attention.cross_attention) return true;
  }
  return false;
}

}  // namespace fleetplan::estimator
