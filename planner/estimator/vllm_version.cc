#include "planner/estimator/vllm_version.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "planner/estimator/engine_constants.h"
#include "planner/estimator/gpu_catalog.h"

namespace fleetplan::estimator {

std::string VllmVersion::ToString() const { return absl::StrCat(major, ".", minor, ".", patch); }

absl::StatusOr<VllmVersion> ParseVllmVersion(absl::string_view field, absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  if (t.empty()) return VllmVersion{};
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(field, "=\"", text.substr(0, 64),
                                                   "\" is not a vLLM version (", why,
                                                   "; e.g. 0.19.1 or v0.6.3.post1)"));
  };
  if (t.size() > 64) return bad("too long");
  absl::ConsumePrefix(&t, "v");
  // The release is the leading digits-and-dots; what follows (.post1, rc2, +cu128, .dev12) is a
  // build of it.
  size_t end = 0;
  while (end < t.size() && (std::isdigit(static_cast<unsigned char>(t[end])) || t[end] == '.')) {
    ++end;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(t.substr(0, end), '.', absl::SkipEmpty());
  if (parts.size() < 2) return bad("needs major.minor");
  int64_t n[3] = {0, 0, 0};
  for (size_t i = 0; i < 3 && i < parts.size(); ++i) {
    if (parts[i].size() > 6 || !absl::SimpleAtoi(parts[i], &n[i])) return bad("not a number");
  }
  if (n[0] > 99) return bad("major version out of range");
  return VllmVersion{n[0], n[1], n[2]};
}

VllmProfile VllmProfileFor(const VllmVersion& v) {
  VllmProfile p;
  p.version = v;
  p.v1 = v.AtLeast(0, 8);
  if (!p.v1) {
    // V0 (vllm/worker/worker.py). The memory_profiling snapshot arrived in 0.6.4; before it the
    // peak was the whole device's, and before PR #2031 (0.2.4) torch's alone.
    p.profiling = v.AtLeast(0, 6, 4)   ? VllmProfiling::kSnapshotIncrease
                  : v.AtLeast(0, 2, 4) ? VllmProfiling::kWholeDevicePeak
                                       : VllmProfiling::kTorchPeakOnly;
    p.large_gpu_batch_defaults = false;
    p.max_cudagraph_batch = 256;
  } else if (!v.AtLeast(0, 9)) {
    p.profiling = VllmProfiling::kWholeDevicePeak;  // V1 0.8.x gpu_worker.py
    p.large_gpu_batch_defaults = false;
  }
  p.default_utilization = v.AtLeast(0, 22) ? 0.92 : 0.9;
  p.calibrated = v.major == 0 && v.minor == 19;
  return p;
}

VllmBatchDefaults VllmSchedulerDefaults(const VllmProfile& profile, int64_t gpu_bytes,
                                        absl::string_view gpu_name, int64_t max_model_len,
                                        bool encoder_only) {
  if (encoder_only) {
    // No chunked prefill: a batch holds whole prompts.
    const VllmBatchDefaults usage =
        VllmSchedulerDefaults(profile, gpu_bytes, gpu_name, max_model_len, false);
    return {.max_num_seqs = std::min(usage.max_num_seqs, max_model_len),
            .max_num_batched_tokens = max_model_len};
  }
  if (!profile.v1) {
    // V0: chunked prefill on by default only above 32K tokens of context.
    const int64_t tokens = max_model_len > kVllmV0ChunkedPrefillAboveTokens
                               ? kVllmDefaultBatchedTokensSmall
                               : std::max(max_model_len, kVllmDefaultBatchedTokensSmall);
    return {.max_num_seqs = kVllmDefaultMaxSeqsSmall, .max_num_batched_tokens = tokens};
  }
  const bool a100 = absl::StrContains(NormalizedGpuName(gpu_name), "a100");
  if (profile.large_gpu_batch_defaults && gpu_bytes >= kVllmLargeGpuBytes && !a100) {
    return {.max_num_seqs = kVllmDefaultMaxSeqsLarge,
            .max_num_batched_tokens = kVllmDefaultBatchedTokensLarge};
  }
  return {.max_num_seqs = kVllmDefaultMaxSeqsSmall,
          .max_num_batched_tokens = kVllmDefaultBatchedTokensSmall};
}

std::string VllmProfile::Describe() const {
  const char* profiling_name = profiling == VllmProfiling::kTorchPeakOnly     ? "torch peak only"
                               : profiling == VllmProfiling::kWholeDevicePeak ? "whole-device peak"
                                                                              : "snapshot increase";
  return absl::StrCat("vLLM ", version.ToString(), " (", v1 ? "V1" : "V0", ", ", profiling_name,
                      " profiling, default gpu_memory_utilization ", default_utilization, ")");
}

}  // namespace fleetplan::estimator
