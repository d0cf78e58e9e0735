#include "planner/estimator/config_fields.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace fleetplan::estimator::internal {

namespace {

constexpr size_t kShown = 64;

// Compact JSON of `v`, stopping once `out` is longer than kShown (nesting is bounded by the
// parser's depth limit, so the recursion is too).
void AppendBounded(const json& v, std::string& out) {
  if (out.size() > kShown) return;
  if (v.is_array()) {
    out += '[';
    bool first = true;
    for (const json& e : v) {
      if (out.size() > kShown) return;
      if (!first) out += ',';
      first = false;
      AppendBounded(e, out);
    }
    out += ']';
  } else if (v.is_object()) {
    out += '{';
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (out.size() > kShown) return;
      if (!first) out += ',';
      first = false;
      out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace);
      out += ':';
      AppendBounded(it.value(), out);
    }
    out += '}';
  } else {
    out += v.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

}  // namespace

std::string Shown(const json& v) {
  std::string out;
  AppendBounded(v, out);
  if (out.size() > kShown) out = absl::StrCat(out.substr(0, kShown), "...");
  return out;
}

const json* Fields::Find(const char* key) const {
  if (consumed_) consumed_->insert(Path(key));
  auto it = obj_.find(key);
  if (it == obj_.end()) return nullptr;
  return &*it;
}

void Fields::Consume(const char* key) const {
  if (consumed_) consumed_->insert(Path(key));
}

bool Fields::Has(const char* key) const {
  const json* v = Find(key);
  return v != nullptr && !v->is_null();
}

absl::StatusOr<int64_t> Fields::Int(const char* key, int64_t min, int64_t max) const {
  const json* v = Find(key);
  if (v == nullptr || v->is_null()) {
    return absl::InvalidArgumentError(absl::StrCat(Path(key), " is missing"));
  }
  return Check(key, *v, min, max);
}

absl::StatusOr<int64_t> Fields::IntOr(const char* key, int64_t fallback, int64_t min,
                                      int64_t max) const {
  const json* v = Find(key);
  if (v == nullptr || v->is_null()) return fallback;
  return Check(key, *v, min, max);
}

absl::StatusOr<bool> Fields::BoolOr(const char* key, bool fallback) const {
  const json* v = Find(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_boolean()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Path(key), "=", Shown(*v), " must be true or false"));
  }
  return v->get<bool>();
}

absl::StatusOr<double> Fields::DoubleOr(const char* key, double fallback) const {
  const json* v = Find(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_number() || !std::isfinite(v->get<double>())) {
    return absl::InvalidArgumentError(absl::StrCat(Path(key), "=", Shown(*v), " must be a number"));
  }
  return v->get<double>();
}

std::string Fields::StringOr(const char* key, std::string fallback) const {
  const json* v = Find(key);
  if (v == nullptr || !v->is_string()) return fallback;
  return v->get<std::string>();
}

const json* Fields::Object(const char* key) const {
  const json* v = Find(key);
  if (v == nullptr || !v->is_object()) return nullptr;
  return v;
}

absl::StatusOr<const json*> Fields::OptionalArray(const char* key) const {
  const json* v = Find(key);
  if (v == nullptr || v->is_null()) return nullptr;
  if (!v->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(Path(key), "=", Shown(*v), " must be an array"));
  }
  return v;
}

const json* Fields::ArrayIfArray(const char* key) const {
  const json* v = Find(key);
  if (v == nullptr || !v->is_array()) return nullptr;
  return v;
}

Fields Fields::Child(const json& obj, const char* key) const {
  return Fields(obj, absl::StrCat(prefix_, key, "."), consumed_);
}

absl::StatusOr<int64_t> Fields::Check(const char* key, const json& v, int64_t min,
                                      int64_t max) const {
  int64_t value = 0;
  if (v.is_number_integer()) {
    // Unsigned values past INT64_MAX are "absurdly large", not wrapped negative.
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      value = INT64_MAX;
    } else {
      value = v.get<int64_t>();
    }
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
             std::fabs(v.get<double>()) < 9e15) {
    value = static_cast<int64_t>(v.get<double>());
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(Path(key), "=", Shown(v), " must be an integer"));
  }
  if (value < min) {
    return absl::InvalidArgumentError(absl::StrCat(Path(key), "=", value, " must be >= ", min));
  }
  if (value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(Path(key), "=", value, " is absurdly large (limit ", max, ")"));
  }
  return value;
}

}  // namespace fleetplan::estimator::internal
