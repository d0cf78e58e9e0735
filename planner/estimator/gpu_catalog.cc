#include "planner/estimator/gpu_catalog.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace fleetplan::estimator {
namespace {

// GiB with two decimals as PyTorch prints "total capacity" -> bytes (+-0.005 GiB).
constexpr int64_t FromPrintedGiB(int64_t hundredths) {
  return hundredths * (int64_t{1} << 30) / 100;
}

}  // namespace

const std::vector<GpuInfo>& GpuCatalog() {
  static const auto* const kCatalog = new std::vector<GpuInfo>{
      {"H100-80GB", "h100,h100-sxm,h100-80gb-hbm3,nvidia h100 80gb hbm3", 85017493504,
       "measured: cudaMemGetInfo total on H100 80GB HBM3, driver 580 (calibration README)"},
      {"A100-80GB", "a100,a100-sxm4-80gb,nvidia a100-sxm4-80gb", FromPrintedGiB(7935),
       "PyTorch 'total capacity' 79.35 GiB as printed in public OOM reports (+-0.005 GiB)"},
      {"A100-40GB", "a100-40,a100-sxm4-40gb,nvidia a100-sxm4-40gb", FromPrintedGiB(3959),
       "PyTorch 'total capacity' 39.59 GiB as printed in public OOM reports (+-0.005 GiB)"},
      {"L40S", "nvidia l40s", FromPrintedGiB(4442),
       "PyTorch 'total capacity' 44.42 GiB in a public OOM report (Step-Video-T2V issue 8)"},
      {"A10G", "nvidia a10g", FromPrintedGiB(2219),
       "PyTorch 'total capacity' 22.19 GiB as printed in public OOM reports (+-0.005 GiB)"},
      {"T4", "tesla t4,nvidia t4", FromPrintedGiB(1475),
       "PyTorch 'total capacity' 14.75 GiB in public OOM reports (Open-Sora issue 697)"},
      {"RTX-4090", "4090,geforce rtx 4090", FromPrintedGiB(2364),
       "PyTorch 'total capacity' 23.64 GiB in a public OOM report (varies +-0.04 GiB by driver)"},
      {"RTX-5090", "5090,geforce rtx 5090", FromPrintedGiB(3137),
       "PyTorch 'total capacity' 31.37 GiB in a public OOM report (Wan-Video/Wan2.1 issue 465)"},
      {"RTX-A4000", "a4000,nvidia rtx a4000", FromPrintedGiB(1561),
       "PyTorch 'total capacity' 15.61 GiB in a public OOM report (DengKaiCQ/VGGT-Long issue 6)"},
      {"A30", "nvidia a30", FromPrintedGiB(2353),
       "PyTorch 'total capacity' 23.53 GiB in a public OOM report (google/RB-Modulation issue 5)"},
      {"L4", "nvidia l4", FromPrintedGiB(2203),
       "unverified: 22.03 GiB recalled; register exact bytes for a real fleet"},
      {"H200", "h200-141gb,nvidia h200", FromPrintedGiB(13981),
       "unverified: 139.81 GiB recalled; register exact bytes for a real fleet"},
  };
  return *kCatalog;
}

std::string NormalizedGpuName(absl::string_view name) {
  std::string out;
  for (char c : absl::AsciiStrToLower(name)) {
    const char mapped = (c == ' ' || c == '_' || c == '\t') ? '-' : c;
    if (mapped == '-' && (out.empty() || out.back() == '-')) continue;
    out.push_back(mapped);
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return std::string(absl::StripPrefix(out, "nvidia-"));
}

absl::StatusOr<GpuInfo> FindGpu(absl::string_view name) {
  const std::string wanted = NormalizedGpuName(name);
  std::vector<std::string> known;
  for (const GpuInfo& gpu : GpuCatalog()) {
    known.push_back(gpu.name);
    if (NormalizedGpuName(gpu.name) == wanted) return gpu;
    for (absl::string_view alias : absl::StrSplit(gpu.aliases, ',')) {
      if (NormalizedGpuName(alias) == wanted) return gpu;
    }
  }
  return absl::NotFoundError(absl::StrCat("gpu \"", name, "\" is not in the built-in table (",
                                          absl::StrJoin(known, ", "),
                                          "); pass --gpu-memory-bytes instead"));
}

}  // namespace fleetplan::estimator
