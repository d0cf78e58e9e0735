// Fuzz target: a GGUF header (planner/estimator/gguf.h, what `fleetplan gguf` reads) and the KV
// cache it implies, then llama.cpp's estimate from it (planner/estimator/llama_cpp.h), on one GPU
// with everything offloaded and on two with --fit choosing the layers, and the same header read as
// an mmproj (clip) file beside a small model. Invariants: no crash or UB;
// errors are Status values; an accepted header's byte and element counts are positive and add up;
// the KV size per token is never negative; an estimate's bytes are never negative and each
// stage's band holds its point estimate.

#include <cstdint>
#include <string>
#include <vector>

#include "planner/estimator/gguf.h"
#include "planner/estimator/llama_cpp.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fleetplan;
  auto f = estimator::ParseGgufHeader(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!f.ok()) return 0;
  int64_t bytes = 0, elements = 0;
  for (const estimator::GgufTensor& t : f->tensors) {
    fuzz::Check(t.bytes > 0 && t.elements > 0, "tensor sizes are positive");
    bytes += t.bytes;
    elements += t.elements;
  }
  fuzz::Check(bytes == f->weights_bytes && elements == f->parameters, "totals add up");
  fuzz::Check(f->header_bytes >= 0, "header size >= 0");
  for (const char* type : {"f16", "q8_0", "q4_0"}) {
    auto kv = estimator::GgufKvCache(*f, type);
    if (kv.ok()) fuzz::Check(kv->bytes_per_token >= 0, "KV bytes per token >= 0");
  }
  // The header as an mmproj: refused by key, or sized without a negative byte.
  std::vector<std::string> notes;
  estimator::EstimateRequest mr;
  mr.engine = estimator::Engine::kLlamaCpp;
  mr.gpu_memory_bytes = int64_t{24} << 30;
  mr.llama_cpp.image_height = 682;
  mr.llama_cpp.image_width = 1024;
  auto mm = estimator::LlamaCppMmprojFromGguf(*f, mr, notes);
  if (mm.ok()) {
    fuzz::Check(mm->weights_bytes >= 0 && mm->compute_bytes >= 0 && mm->patches > 0,
                "mmproj parts >= 0");
  }
  for (int64_t gpus : {1, 2}) {
    estimator::EstimateRequest r;
    r.engine = estimator::Engine::kLlamaCpp;
    r.gpu_memory_bytes = int64_t{24} << 30;
    r.parallelism.pp = gpus;
    r.llama_cpp.n_ctx = 4096;
    r.llama_cpp.n_gpu_layers = gpus == 1 ? 1000 : -1;
    auto e = estimator::EstimateLlamaCpp(*f, r);
    if (!e.ok()) continue;
    fuzz::Check(e->memory.host_bytes >= 0, "host bytes >= 0");
    for (const estimator::StageMemory& s : e->memory.stages) {
      fuzz::Check(s.weights_bytes >= 0 && s.kv_cache_bytes >= 0 && s.activation_peak_bytes >= 0,
                  "stage parts >= 0");
      fuzz::Check(s.low_bytes >= 0 && s.low_bytes <= s.total_bytes && s.total_bytes <= s.high_bytes,
                  "the band holds the estimate");
    }
  }
  return 0;
}
