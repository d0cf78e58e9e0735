#ifndef FLEETPLAN_PLANNER_ESTIMATOR_GGUF_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_GGUF_H_

// The GGUF header reader (llama.cpp's model files): metadata and tensor infos, so a GGUF model's
// weights are known exactly -- each tensor's bytes from its ggml type (block size and bytes per
// block: ggml/src/ggml.c type_traits) -- and its KV cache per token from the architecture's
// metadata (llama.cpp src/llama-kv-cache.cpp: per layer K = n_head_kv x key_length and V =
// n_head_kv x value_length elements per cell, of the cache type). Format: ggml/docs/gguf.md
// (magic "GGUF", version 1-3, tensor and metadata counts, typed key/values, tensor infos, data
// aligned to general.alignment, default 32). Pure: reads bytes handed to it; never throws; every
// count and length is checked against what remains, so a hostile header cannot make it allocate
// or loop without bound.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetplan::estimator {

struct GgufTensor {
  std::string name;
  std::vector<int64_t> dims;  // ne0 first
  int64_t type = 0;           // ggml_type
  int64_t elements = 0;
  int64_t bytes = 0;
};

struct GgufFile {
  int64_t version = 0;
  // Scalar metadata as text (numbers in decimal, booleans true/false); arrays as their length,
  // except integer arrays of at most 4096 items, kept whole in `int_arrays`.
  std::map<std::string, std::string> metadata;
  std::map<std::string, std::vector<int64_t>> int_arrays;
  std::vector<GgufTensor> tensors;
  int64_t header_bytes = 0;  // where the tensor data starts (aligned)
  int64_t weights_bytes = 0;
  int64_t parameters = 0;
  std::map<std::string, int64_t> bytes_by_type;  // ggml type name -> bytes
};

// OUT_OF_RANGE when `bytes` ends before the header does (read more of the file and retry);
// INVALID_ARGUMENT naming the field for anything malformed.
absl::StatusOr<GgufFile> ParseGgufHeader(absl::string_view bytes);

// A GgufFile from its parts (the API carries a header's metadata and tensor infos rather than its
// bytes): each tensor's elements and bytes are computed and checked as ParseGgufHeader does, so a
// hostile message is refused by the same rules; INVALID_ARGUMENT names the tensor.
absl::StatusOr<GgufFile> GgufFromParts(std::map<std::string, std::string> metadata,
                                       std::map<std::string, std::vector<int64_t>> int_arrays,
                                       std::vector<GgufTensor> tensors);

// ggml type name ("q4_K", "f16" ...) or "type N" for one this reader does not know.
std::string GgmlTypeName(int64_t type);
// The ggml type called `name` ("q8_0"); -1 when there is none.
int64_t GgmlTypeByName(const std::string& name);
// Bytes of one row of `elements` elements of `type` (whole blocks, ggml_row_size); -1 for a type
// this reader does not know.
int64_t GgmlRowBytes(int64_t type, int64_t elements);
// A block-quantized type (more than one element per block).
bool GgmlTypeIsQuantized(int64_t type);
// Elements per block of `type` (1 for f32/f16/bf16); -1 for a type this reader does not know.
int64_t GgmlBlockElements(int64_t type);

// The ggml type of a llama.cpp KV-cache type (-ctk/-ctv accept f32 f16 bf16 q8_0 q4_0 q4_1 q5_0
// q5_1 iq4_nl); INVALID_ARGUMENT naming the word after `field` ("llama_cpp.cache_type_k=")
// otherwise.
absl::StatusOr<int64_t> GgmlCacheType(const std::string& field, const std::string& name);

// What the KV cache of `file`'s architecture takes per token (all layers), for a cache of
// `cache_type` ("f16", "bf16", "f32", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"); and the
// layer count, heads and context the model declares. INVALID_ARGUMENT naming the metadata key it
// lacks.
struct GgufKv {
  std::string architecture;
  int64_t layers = 0;
  int64_t context_length = 0;
  int64_t bytes_per_token = 0;
  int64_t sliding_window = 0;  // 0: none declared
  // Per layer, the K and V elements one token takes (n_head_kv x key_length, x value_length).
  std::vector<int64_t> k_elements, v_elements;
};
absl::StatusOr<GgufKv> GgufKvCache(const GgufFile& file, const std::string& cache_type);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_GGUF_H_
