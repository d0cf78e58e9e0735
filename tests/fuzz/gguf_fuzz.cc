// Fuzz target: a GGUF header (planner/estimator/gguf.h, what `fleetplan gguf` reads) and the KV
// cache it implies. Invariants: no crash or UB; errors are Status values; an accepted header's
// byte and element counts are positive and add up; the KV size per token is never negative.

#include <cstdint>
#include <string>

#include "planner/estimator/gguf.h"
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
  return 0;
}
