#ifndef FLEETPLAN_PLANNER_ESTIMATOR_CONFIG_FIELDS_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_CONFIG_FIELDS_H_

// Internal to the config parser and its family builders (families/): typed reads of one JSON
// object of a config.json that name the full field path in every error, and record which fields
// were read, so the parser can tell a config it did not fully understand (a memory-relevant field
// no builder consumed) from one it did.

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fleetplan::estimator::internal {

using json = nlohmann::json;

// Sanity limits: far beyond any published model, small enough that every byte count the estimator
// derives (elements x 4 bytes, summed over layers) stays well inside int64.
inline constexpr int64_t kMaxDim = int64_t{1} << 22;  // hidden / intermediate sizes
inline constexpr int64_t kMaxVocab = int64_t{1} << 24;
inline constexpr int64_t kMaxLayers = 4096;
inline constexpr int64_t kMaxHeads = 8192;
inline constexpr int64_t kMaxExperts = 65536;
inline constexpr int64_t kMaxPositions = int64_t{1} << 26;
inline constexpr double kMaxParams = 1e15;  // one quadrillion parameters

// A JSON value for an error message: scalars as written (cut at 64 characters), arrays and
// objects by their size — an error message never grows with the input.
std::string Shown(const json& v);

class Fields {
 public:
  // `consumed` collects the full paths read through this object and its children (may be shared by
  // the Fields of nested objects).
  Fields(const json& obj, std::string prefix, std::shared_ptr<std::set<std::string>> consumed)
      : obj_(obj), prefix_(std::move(prefix)), consumed_(std::move(consumed)) {}

  std::string Path(absl::string_view key) const { return prefix_ + std::string(key); }

  bool Has(const char* key) const;
  // A required integer in [min, max].
  absl::StatusOr<int64_t> Int(const char* key, int64_t min = 1, int64_t max = kMaxDim) const;
  // An optional integer: `fallback` when missing or null.
  absl::StatusOr<int64_t> IntOr(const char* key, int64_t fallback, int64_t min = 1,
                                int64_t max = kMaxDim) const;
  absl::StatusOr<bool> BoolOr(const char* key, bool fallback) const;
  absl::StatusOr<double> DoubleOr(const char* key, double fallback) const;
  std::string StringOr(const char* key, std::string fallback) const;
  const json* Object(const char* key) const;
  // An array field that may be absent or null (nullptr); any other type is an error.
  absl::StatusOr<const json*> OptionalArray(const char* key) const;
  // A field that is an array in some configs and a scalar in others: the array or nullptr.
  const json* ArrayIfArray(const char* key) const;
  // Marks `key` as understood without reading it (a field whose every value means the same memory).
  void Consume(const char* key) const;

  // The Fields of a nested object (`key` must hold one), sharing the consumed set.
  Fields Child(const json& obj, const char* key) const;

  const json& raw() const { return obj_; }
  const std::string& prefix() const { return prefix_; }
  const std::shared_ptr<std::set<std::string>>& consumed() const { return consumed_; }

 private:
  absl::StatusOr<int64_t> Check(const char* key, const json& v, int64_t min, int64_t max) const;
  const json* Find(const char* key) const;  // records the key as consumed

  const json& obj_;
  std::string prefix_;
  std::shared_ptr<std::set<std::string>> consumed_;
};

}  // namespace fleetplan::estimator::internal

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_CONFIG_FIELDS_H_
