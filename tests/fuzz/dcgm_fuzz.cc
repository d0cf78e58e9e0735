// Fuzz target: a Prometheus instant-query answer as fleetpland reads it for DCGM usage
// (server/observed_usage.h) -> samples -> matched to a fixed fleet -> the usage report.
// Invariants: no crash or UB; samples never negative; every match is a GPU of the fleet.

#include <cstdint>
#include <string>

#include "server/observed_usage.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fleetplan;
  static const auto* const kFleet = [] {
    auto* s = new placement::FleetSnapshot{
        .gpu_types = {placement::GpuType{.name = "H100", .memory_bytes = int64_t{80} << 30}}};
    std::vector<placement::Node> nodes;
    for (const char* name : {"n1", "n2.example.com"}) {
      placement::Node n{.name = name, .pool = "p"};
      for (int64_t i = 0; i < 2; ++i) {
        n.gpus.push_back(placement::Gpu{.index = i,
                                        .gpu_type = "H100",
                                        .uuid = "GPU-" + std::string(name) + std::to_string(i)});
      }
      nodes.push_back(n);
    }
    s->nodes = nodes;
    return s;
  }();
  auto samples = server::ParseDcgmQuery(std::string(reinterpret_cast<const char*>(data), size));
  if (!samples.ok()) return 0;
  for (const server::DcgmSample& s : *samples) fuzz::Check(s.used_bytes >= 0, "used bytes >= 0");
  const server::ObservedUsage u = server::MatchDcgm(*kFleet, *samples, 1);
  fuzz::Check(u.unmatched + static_cast<int64_t>(u.used_bytes.size()) <= u.samples,
              "every sample matched at most once");
  for (const auto& [ref, bytes] : u.used_bytes) {
    fuzz::Check(kFleet->FindNode(ref.node) != nullptr, "matches are GPUs of the fleet");
  }
  (void)server::BuildUsageReport(*kFleet, {}, u, int64_t{2} << 30, int64_t{1} << 30);
  return 0;
}
