#include "planner/estimator/gguf.h"

#include <cstring>
#include <limits>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "planner/common/status_macros.h"

namespace fleetplan::estimator {
namespace {

// ggml types: name, elements per block, bytes per block (ggml/src/ggml.c type_traits; the
// numbers removed from the enum -- 4, 5, 31-33, 36-38 -- are not types any more).
struct TypeTraits {
  const char* name;
  int64_t block;
  int64_t bytes;
};
const TypeTraits* Traits(int64_t type) {
  static const std::map<int64_t, TypeTraits> kTypes = {
      {0, {"f32", 1, 4}},         {1, {"f16", 1, 2}},         {2, {"q4_0", 32, 18}},
      {3, {"q4_1", 32, 20}},      {6, {"q5_0", 32, 22}},      {7, {"q5_1", 32, 24}},
      {8, {"q8_0", 32, 34}},      {9, {"q8_1", 32, 36}},      {10, {"q2_K", 256, 84}},
      {11, {"q3_K", 256, 110}},   {12, {"q4_K", 256, 144}},   {13, {"q5_K", 256, 176}},
      {14, {"q6_K", 256, 210}},   {15, {"q8_K", 256, 292}},   {16, {"iq2_xxs", 256, 66}},
      {17, {"iq2_xs", 256, 74}},  {18, {"iq3_xxs", 256, 98}}, {19, {"iq1_s", 256, 50}},
      {20, {"iq4_nl", 32, 18}},   {21, {"iq3_s", 256, 110}},  {22, {"iq2_s", 256, 82}},
      {23, {"iq4_xs", 256, 136}}, {24, {"i8", 1, 1}},         {25, {"i16", 1, 2}},
      {26, {"i32", 1, 4}},        {27, {"i64", 1, 8}},        {28, {"f64", 1, 8}},
      {29, {"iq1_m", 256, 56}},   {30, {"bf16", 1, 2}},       {34, {"tq1_0", 256, 54}},
      {35, {"tq2_0", 256, 66}},   {39, {"mxfp4", 32, 17}}};
  auto it = kTypes.find(type);
  return it == kTypes.end() ? nullptr : &it->second;
}

constexpr int64_t kMaxTensors = 1 << 20;
constexpr int64_t kMaxMetadata = 1 << 20;
constexpr int64_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr int64_t kMaxKeptArray = 4096;

class Reader {
 public:
  explicit Reader(absl::string_view b) : b_(b) {}
  int64_t pos() const { return static_cast<int64_t>(pos_); }

  template <typename T>
  absl::StatusOr<T> Get(const char* what) {
    if (b_.size() - pos_ < sizeof(T)) return Truncated(what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));  // GGUF is little-endian, as is every host here
    pos_ += sizeof(T);
    return v;
  }
  absl::StatusOr<int64_t> Count(const char* what, bool wide, int64_t max) {
    uint64_t v = 0;
    if (wide) {
      ASSIGN_OR_RETURN(v, Get<uint64_t>(what));
    } else {
      ASSIGN_OR_RETURN(uint32_t n, Get<uint32_t>(what));
      v = n;
    }
    if (v > static_cast<uint64_t>(max)) {
      return absl::InvalidArgumentError(absl::StrCat("GGUF ", what, "=", v, " is more than ", max));
    }
    return static_cast<int64_t>(v);
  }
  absl::StatusOr<std::string> String(const char* what, bool wide) {
    ASSIGN_OR_RETURN(int64_t n, Count(what, wide, std::numeric_limits<int32_t>::max()));
    if (b_.size() - pos_ < static_cast<size_t>(n)) return Truncated(what);
    std::string s(b_.substr(pos_, static_cast<size_t>(n)));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  absl::Status Skip(int64_t n, const char* what) {
    if (n < 0 || b_.size() - pos_ < static_cast<size_t>(n)) return Truncated(what);
    pos_ += static_cast<size_t>(n);
    return absl::OkStatus();
  }
  absl::Status Truncated(const char* what) const {
    return absl::OutOfRangeError(absl::StrCat("GGUF header ends inside ", what, " at byte ", pos_,
                                              " (", b_.size(), " bytes read)"));
  }

 private:
  absl::string_view b_;
  size_t pos_ = 0;
};

// Size of one metadata value of a fixed-size type (0: not fixed).
int64_t FixedSize(uint32_t type) {
  switch (type) {
    case 0:
    case 1:
    case 7:
      return 1;
    case 2:
    case 3:
      return 2;
    case 4:
    case 5:
    case 6:
      return 4;
    case 10:
    case 11:
    case 12:
      return 8;
    default:
      return 0;
  }
}

absl::StatusOr<std::string> Scalar(Reader& r, uint32_t type, bool wide, int64_t* as_int) {
  *as_int = 0;
  switch (type) {
    case 0: {
      ASSIGN_OR_RETURN(uint8_t v, r.Get<uint8_t>("a u8"));
      *as_int = v;
      return absl::StrCat(v);
    }
    case 1: {
      ASSIGN_OR_RETURN(int8_t v, r.Get<int8_t>("an i8"));
      *as_int = v;
      return absl::StrCat(v);
    }
    case 2: {
      ASSIGN_OR_RETURN(uint16_t v, r.Get<uint16_t>("a u16"));
      *as_int = v;
      return absl::StrCat(v);
    }
    case 3: {
      ASSIGN_OR_RETURN(int16_t v, r.Get<int16_t>("an i16"));
      *as_int = v;
      return absl::StrCat(v);
    }
    case 4: {
      ASSIGN_OR_RETURN(uint32_t v, r.Get<uint32_t>("a u32"));
      *as_int = v;
      return absl::StrCat(v);
    }
    case 5: {
      ASSIGN_OR_RETURN(int32_t v, r.Get<int32_t>("an i32"));
      *as_int = v;
      return absl::StrCat(v);
    }
    case 6: {
      ASSIGN_OR_RETURN(float v, r.Get<float>("an f32"));
      return absl::StrCat(v);
    }
    case 7: {
      ASSIGN_OR_RETURN(uint8_t v, r.Get<uint8_t>("a bool"));
      *as_int = v;
      return std::string(v ? "true" : "false");
    }
    case 8:
      return r.String("a string", wide);
    case 10: {
      ASSIGN_OR_RETURN(uint64_t v, r.Get<uint64_t>("a u64"));
      *as_int = v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                    ? -1
                    : static_cast<int64_t>(v);
      return absl::StrCat(v);
    }
    case 11: {
      ASSIGN_OR_RETURN(int64_t v, r.Get<int64_t>("an i64"));
      *as_int = v;
      return absl::StrCat(v);
    }
    case 12: {
      ASSIGN_OR_RETURN(double v, r.Get<double>("an f64"));
      return absl::StrCat(v);
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("GGUF metadata value type ", type, " is unknown"));
  }
}

// Sizes `t` from its type and adds it to `out`'s tensors and totals.
absl::Status AddTensor(GgufTensor t, GgufFile& out) {
  const TypeTraits* traits = Traits(t.type);
  if (traits == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("GGUF tensor ", t.name, ": ggml type ", t.type, " is unknown"));
  }
  if (t.dims[0] % traits->block != 0) {
    return absl::InvalidArgumentError(absl::StrCat("GGUF tensor ", t.name, ": ne0=", t.dims[0],
                                                   " is not a multiple of ", traits->name,
                                                   "'s block of ", traits->block));
  }
  t.bytes = t.elements / traits->block * traits->bytes;
  if (out.weights_bytes > (int64_t{1} << 60) - t.bytes) {
    return absl::InvalidArgumentError("GGUF tensors add up to more than 1 EiB");
  }
  out.weights_bytes += t.bytes;
  out.parameters += t.elements;
  out.bytes_by_type[traits->name] += t.bytes;
  out.tensors.push_back(std::move(t));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GgufFile> GgufFromParts(std::map<std::string, std::string> metadata,
                                       std::map<std::string, std::vector<int64_t>> int_arrays,
                                       std::vector<GgufTensor> tensors) {
  if (static_cast<int64_t>(tensors.size()) > kMaxTensors) {
    return absl::InvalidArgumentError(
        absl::StrCat("GGUF tensor_count=", tensors.size(), " is more than ", kMaxTensors));
  }
  GgufFile out;
  out.version = 3;
  out.metadata = std::move(metadata);
  out.int_arrays = std::move(int_arrays);
  for (GgufTensor& t : tensors) {
    if (t.dims.empty() || static_cast<int64_t>(t.dims.size()) > kMaxDims) {
      return absl::InvalidArgumentError(
          absl::StrCat("GGUF tensor ", t.name, ": ", t.dims.size(), " dimensions (1 to 4)"));
    }
    t.elements = 1;
    for (size_t d = 0; d < t.dims.size(); ++d) {
      const int64_t ne = t.dims[d];
      if (ne <= 0 || ne > (int64_t{1} << 40) || t.elements > (int64_t{1} << 50) / ne) {
        return absl::InvalidArgumentError(
            absl::StrCat("GGUF tensor ", t.name, ": dimension ", d, " = ", ne, " is out of range"));
      }
      t.elements *= ne;
    }
    RETURN_IF_ERROR(AddTensor(std::move(t), out));
  }
  return out;
}

std::string GgmlTypeName(int64_t type) {
  const TypeTraits* t = Traits(type);
  return t != nullptr ? t->name : absl::StrCat("type ", type);
}

int64_t GgmlTypeByName(const std::string& name) {
  for (int64_t type = 0; type < 64; ++type) {
    const TypeTraits* t = Traits(type);
    if (t != nullptr && name == t->name) return type;
  }
  return -1;
}

int64_t GgmlRowBytes(int64_t type, int64_t elements) {
  const TypeTraits* t = Traits(type);
  if (t == nullptr) return -1;
  return (elements + t->block - 1) / t->block * t->bytes;
}

int64_t GgmlBlockElements(int64_t type) {
  const TypeTraits* t = Traits(type);
  return t == nullptr ? -1 : t->block;
}

bool GgmlTypeIsQuantized(int64_t type) {
  const TypeTraits* t = Traits(type);
  return t != nullptr && t->block > 1;
}

absl::StatusOr<int64_t> GgmlCacheType(const std::string& field, const std::string& name) {
  static const std::set<std::string> kCacheTypes = {"f32",  "f16",  "bf16", "q8_0",  "q4_0",
                                                    "q4_1", "q5_0", "q5_1", "iq4_nl"};
  if (kCacheTypes.count(name) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, "\"", name, "\": use f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1 or iq4_nl"));
  }
  return GgmlTypeByName(name);
}

absl::StatusOr<GgufFile> ParseGgufHeader(absl::string_view bytes) {
  Reader r(bytes);
  ASSIGN_OR_RETURN(uint32_t magic, r.Get<uint32_t>("the magic"));
  if (magic != 0x46554747) {  // "GGUF"
    return absl::InvalidArgumentError("not a GGUF file (no \"GGUF\" magic at byte 0)");
  }
  GgufFile out;
  ASSIGN_OR_RETURN(uint32_t version, r.Get<uint32_t>("the version"));
  if (version < 1 || version > 3) {
    return absl::InvalidArgumentError(absl::StrCat("GGUF version ", version, " (known: 1 to 3)"));
  }
  out.version = version;
  const bool wide = version >= 2;  // v1 counts and lengths were 32-bit
  ASSIGN_OR_RETURN(int64_t tensors, r.Count("tensor_count", wide, kMaxTensors));
  ASSIGN_OR_RETURN(int64_t kvs, r.Count("metadata_kv_count", wide, kMaxMetadata));
  for (int64_t i = 0; i < kvs; ++i) {
    ASSIGN_OR_RETURN(std::string key, r.String("a metadata key", wide));
    ASSIGN_OR_RETURN(uint32_t type, r.Get<uint32_t>("a metadata type"));
    int64_t as_int = 0;
    if (type == 9) {  // array: item type, count, items (no nested arrays in practice; refused)
      ASSIGN_OR_RETURN(uint32_t item, r.Get<uint32_t>("an array item type"));
      ASSIGN_OR_RETURN(int64_t n,
                       r.Count("an array length", wide, static_cast<int64_t>(bytes.size())));
      if (item == 9)
        return absl::InvalidArgumentError(absl::StrCat("GGUF key ", key, ": nested arrays"));
      const int64_t fixed = FixedSize(item);
      // Integer and boolean arrays (per-layer head counts, sliding-window patterns) are kept.
      const bool integer = item != 6 && item != 12 && item != 8 && fixed > 0;
      if (integer && n <= kMaxKeptArray) {
        std::vector<int64_t>& kept = out.int_arrays[key];
        for (int64_t k = 0; k < n; ++k) {
          ASSIGN_OR_RETURN(std::string s, Scalar(r, item, wide, &as_int));
          kept.push_back(as_int);
        }
      } else if (fixed > 0) {
        if (n > std::numeric_limits<int64_t>::max() / fixed) {
          return absl::InvalidArgumentError(absl::StrCat("GGUF key ", key, ": array too long"));
        }
        RETURN_IF_ERROR(r.Skip(n * fixed, "an array"));
      } else {
        for (int64_t k = 0; k < n; ++k) {
          ASSIGN_OR_RETURN(std::string s, Scalar(r, item, wide, &as_int));
        }
      }
      out.metadata[key] = absl::StrCat("[", n, " items]");
      continue;
    }
    ASSIGN_OR_RETURN(std::string value, Scalar(r, type, wide, &as_int));
    out.metadata[key] = std::move(value);
  }
  for (int64_t i = 0; i < tensors; ++i) {
    GgufTensor t;
    ASSIGN_OR_RETURN(t.name, r.String("a tensor name", wide));
    ASSIGN_OR_RETURN(uint32_t n_dims, r.Get<uint32_t>("a tensor's dimension count"));
    if (n_dims < 1 || n_dims > kMaxDims) {
      return absl::InvalidArgumentError(
          absl::StrCat("GGUF tensor ", t.name, ": ", n_dims, " dimensions (1 to 4)"));
    }
    t.elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = 0;
      if (wide) {
        ASSIGN_OR_RETURN(ne, r.Get<uint64_t>("a tensor dimension"));
      } else {
        ASSIGN_OR_RETURN(uint32_t v, r.Get<uint32_t>("a tensor dimension"));
        ne = v;
      }
      if (ne == 0 || ne > (uint64_t{1} << 40) ||
          static_cast<uint64_t>(t.elements) > (uint64_t{1} << 50) / ne) {
        return absl::InvalidArgumentError(
            absl::StrCat("GGUF tensor ", t.name, ": dimension ", d, " = ", ne, " is out of range"));
      }
      t.dims.push_back(static_cast<int64_t>(ne));
      t.elements *= static_cast<int64_t>(ne);
    }
    ASSIGN_OR_RETURN(uint32_t type, r.Get<uint32_t>("a tensor type"));
    ASSIGN_OR_RETURN(uint64_t offset, r.Get<uint64_t>("a tensor offset"));
    (void)offset;
    t.type = type;
    RETURN_IF_ERROR(AddTensor(std::move(t), out));
  }
  int64_t alignment = 32;
  if (auto it = out.metadata.find("general.alignment"); it != out.metadata.end()) {
    if (!absl::SimpleAtoi(it->second, &alignment) || alignment <= 0 || alignment > (1 << 20) ||
        (alignment & (alignment - 1)) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("GGUF general.alignment=", it->second, " is not a power of two"));
    }
  }
  out.header_bytes = (r.pos() + alignment - 1) / alignment * alignment;
  return out;
}

absl::StatusOr<GgufKv> GgufKvCache(const GgufFile& file, const std::string& cache_type) {
  auto meta = [&](const std::string& key) -> const std::string* {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? nullptr : &it->second;
  };
  GgufKv kv;
  const std::string* arch = meta("general.architecture");
  if (arch == nullptr) return absl::InvalidArgumentError("GGUF has no general.architecture");
  kv.architecture = *arch;
  auto integer = [&](const std::string& key, int64_t* out, bool required) -> absl::Status {
    const std::string* v = meta(kv.architecture + "." + key);
    if (v == nullptr) {
      if (!required) return absl::OkStatus();
      return absl::InvalidArgumentError(
          absl::StrCat("GGUF has no ", kv.architecture, ".", key, " (needed for the KV cache)"));
    }
    if (!absl::SimpleAtoi(*v, out) || *out < 0 || *out > (int64_t{1} << 32)) {
      return absl::InvalidArgumentError(
          absl::StrCat("GGUF ", kv.architecture, ".", key, "=", *v, " is not a count"));
    }
    return absl::OkStatus();
  };
  int64_t embedding = 0, heads = 0, heads_kv = 0, key_length = 0, value_length = 0;
  RETURN_IF_ERROR(integer("block_count", &kv.layers, true));
  RETURN_IF_ERROR(integer("context_length", &kv.context_length, false));
  RETURN_IF_ERROR(integer("embedding_length", &embedding, true));
  RETURN_IF_ERROR(integer("attention.head_count", &heads, true));
  RETURN_IF_ERROR(integer("attention.sliding_window", &kv.sliding_window, false));
  if (heads <= 0 || kv.layers <= 0 || kv.layers > 4096) {
    return absl::InvalidArgumentError("GGUF head_count and block_count must be positive");
  }
  key_length = value_length = embedding / heads;
  RETURN_IF_ERROR(integer("attention.key_length", &key_length, false));
  RETURN_IF_ERROR(integer("attention.value_length", &value_length, false));
  // head_count_kv: one number, or one per layer (0 for layers without attention, e.g. recurrent).
  std::vector<int64_t> per_layer(static_cast<size_t>(kv.layers), heads);
  const std::string kv_key = kv.architecture + ".attention.head_count_kv";
  if (auto arr = file.int_arrays.find(kv_key); arr != file.int_arrays.end()) {
    if (static_cast<int64_t>(arr->second.size()) != kv.layers) {
      return absl::InvalidArgumentError(absl::StrCat("GGUF ", kv_key, " has ", arr->second.size(),
                                                     " entries for ", kv.layers, " layers"));
    }
    per_layer = arr->second;
  } else {
    RETURN_IF_ERROR(integer("attention.head_count_kv", &heads_kv, false));
    if (meta(kv_key) != nullptr) per_layer.assign(static_cast<size_t>(kv.layers), heads_kv);
  }
  // The cache's ggml type, sized by the same table as tensors.
  ASSIGN_OR_RETURN(int64_t cache_ggml, GgmlCacheType("cache type ", cache_type));
  const TypeTraits* cache = Traits(cache_ggml);
  const int64_t block = cache->block;
  const int64_t block_bytes = cache->bytes;
  auto row = [&](int64_t n) { return (n + block - 1) / block * block_bytes; };
  for (int64_t h : per_layer) {
    if (h < 0 || h > 1 << 16) return absl::InvalidArgumentError("GGUF head_count_kv out of range");
    kv.bytes_per_token += row(h * key_length) + row(h * value_length);
    kv.k_elements.push_back(h * key_length);
    kv.v_elements.push_back(h * value_length);
  }
  return kv;
}

}  // namespace fleetplan::estimator
