#include "storage/validation.h"

#include <cmath>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "planner/common/limits.h"
#include "planner/common/status_macros.h"

namespace fleetplan::storage {
namespace {

using placement::Gpu;
using placement::GpuRef;
using placement::PlacementRank;

bool NameChar(char c, NameKind kind) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
         (kind == NameKind::kModel && c == '/');
}

absl::Status Finite(absl::string_view field, double v, double max) {
  if (!std::isfinite(v) || v < 0 || v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "=", v, " must be a finite number in [0, ", max, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Shown(absl::string_view value) {
  constexpr size_t kShown = 80;
  std::string out = absl::CEscape(value.substr(0, kShown));
  if (value.size() > kShown) absl::StrAppend(&out, "...");
  return out;
}

absl::Status ValidateName(absl::string_view field, absl::string_view value, NameKind kind) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " must not be empty"));
  if (static_cast<int64_t>(value.size()) > limits::kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " is ", value.size(), " characters long, more than ", limits::kMaxNameLength));
  }
  bool ok = absl::ascii_isalnum(static_cast<unsigned char>(value.front()));
  for (char c : value) ok = ok && NameChar(c, kind);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, "=\"", Shown(value), "\" may hold only letters, digits, '.', '_', '-'",
        kind == NameKind::kModel ? " and '/'" : "",
        " (no whitespace, control characters or shell syntax), starting with a letter or digit"));
  }
  return absl::OkStatus();
}

absl::Status ValidateGpuType(const GpuType& t) {
  RETURN_IF_ERROR(ValidateName("gpu_type.name", t.name));
  const std::string where = absl::StrCat("gpu_type \"", t.name, "\": ");
  if (t.memory_bytes <= 0 || t.memory_bytes > limits::kMaxGpuMemoryBytes) {
    return absl::InvalidArgumentError(absl::StrCat(where, "memory_bytes=", t.memory_bytes,
                                                   " must be > 0 and at most ",
                                                   limits::kMaxGpuMemoryBytes, " (1 PiB)"));
  }
  if (t.memory_bandwidth_bytes_per_second < 0 || t.nvlink_generation < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "memory_bandwidth_bytes_per_second=", t.memory_bandwidth_bytes_per_second,
        " and nvlink_generation=", t.nvlink_generation, " must be >= 0"));
  }
  RETURN_IF_ERROR(Finite(absl::StrCat(where, "bf16_tflops"), t.bf16_tflops, limits::kMaxTflops));
  RETURN_IF_ERROR(
      Finite(absl::StrCat(where, "cost_per_hour"), t.cost_per_hour, limits::kMaxCostPerHour));
  return absl::OkStatus();
}

absl::Status ValidateNode(const Node& n) {
  RETURN_IF_ERROR(ValidateName("node.name", n.name));
  const std::string where = absl::StrCat("node \"", n.name, "\": ");
  RETURN_IF_ERROR(ValidateName(absl::StrCat(where, "pool"), n.pool));
  if (!n.zone.empty()) RETURN_IF_ERROR(ValidateName(absl::StrCat(where, "zone"), n.zone));
  if (!n.rack.empty()) RETURN_IF_ERROR(ValidateName(absl::StrCat(where, "rack"), n.rack));
  if (n.inter_node_bandwidth_bytes_per_second < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "inter_node_bandwidth_bytes_per_second=", n.inter_node_bandwidth_bytes_per_second,
        " must be >= 0"));
  }
  if (static_cast<int64_t>(n.labels.size()) > limits::kMaxLabelsPerNode) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, n.labels.size(), " labels, more than ", limits::kMaxLabelsPerNode));
  }
  for (const auto& [key, value] : n.labels) {
    if (key.empty() || static_cast<int64_t>(key.size()) > limits::kMaxLabelKeyLength) {
      return absl::InvalidArgumentError(absl::StrCat(where, "label key \"", Shown(key),
                                                     "\" must be 1 to ", limits::kMaxLabelKeyLength,
                                                     " characters"));
    }
    for (char c : key) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
          c != '/') {
        return absl::InvalidArgumentError(absl::StrCat(
            where, "label key \"", Shown(key), "\" may hold only letters, digits, . - _ /"));
      }
    }
    if (static_cast<int64_t>(value.size()) > limits::kMaxLabelValueLength) {
      return absl::InvalidArgumentError(absl::StrCat(where, "label \"", key, "\" value is ",
                                                     value.size(), " characters, more than ",
                                                     limits::kMaxLabelValueLength));
    }
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, "label \"", key, "\" value \"", Shown(value), "\" contains control characters"));
      }
    }
  }
  if (static_cast<int64_t>(n.gpus.size()) > limits::kMaxGpusPerNode) {
    return absl::InvalidArgumentError(absl::StrCat("node \"", n.name, "\" has ", n.gpus.size(),
                                                   " GPUs, more than ", limits::kMaxGpusPerNode));
  }
  std::set<int64_t> seen;
  std::set<std::string> uuids;
  for (const Gpu& g : n.gpus) {
    if (g.index < 0 || g.index >= limits::kMaxGpusPerNode) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "gpu index=", g.index, " must be in [0, ", limits::kMaxGpusPerNode, ")"));
    }
    if (!seen.insert(g.index).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "gpu index=", g.index, " appears twice"));
    }
    if (g.nvlink_domain < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "gpu ", g.index, " nvlink_domain=", g.nvlink_domain, " must be >= 0"));
    }
    RETURN_IF_ERROR(ValidateName(absl::StrCat(where, "gpu ", g.index, " gpu_type"), g.gpu_type));
    if (!g.uuid.empty()) {
      RETURN_IF_ERROR(ValidateName(absl::StrCat(where, "gpu ", g.index, " uuid"), g.uuid));
      if (!uuids.insert(g.uuid).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "gpu uuid \"", g.uuid, "\" appears twice"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateModel(const ModelRecord& model) {
  RETURN_IF_ERROR(ValidateName("model.name", model.name, NameKind::kModel));
  // Exactly one source document: a config.json, or a GGUF header (as JSON).
  const bool gguf = !model.gguf_json.empty();
  if (gguf && !model.config_json.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", model.name, "\": give config_json or gguf_json, not both"));
  }
  const std::string& document = gguf ? model.gguf_json : model.config_json;
  if (document.empty() || static_cast<int64_t>(document.size()) > limits::kMaxConfigBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", model.name, "\": ", gguf ? "gguf_json" : "config_json", " is ",
                     document.size(), " bytes; it must be 1 byte to 16 MiB"));
  }
  if (model.params <= 0 || model.weights_bytes <= 0 || model.kv_bytes_per_token < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", model.name, "\": params=", model.params,
                     " and weights_bytes=", model.weights_bytes,
                     " must be > 0, kv_bytes_per_token=", model.kv_bytes_per_token, " >= 0"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDeployment(const DeploymentRecord& d) {
  RETURN_IF_ERROR(ValidateName("deployment.name", d.name));
  RETURN_IF_ERROR(
      ValidateName(absl::StrCat("deployment \"", d.name, "\": model"), d.model, NameKind::kModel));
  if (d.replicas < 0 || d.replicas > limits::kMaxReplicasPerDeployment) {
    return absl::InvalidArgumentError(absl::StrCat("deployment \"", d.name,
                                                   "\": replicas=", d.replicas, " must be in [0, ",
                                                   limits::kMaxReplicasPerDeployment, "]"));
  }
  if (static_cast<int64_t>(d.spec_json.size()) > limits::kMaxConfigBytes) {
    return absl::InvalidArgumentError(absl::StrCat("deployment \"", d.name, "\": spec_json is ",
                                                   d.spec_json.size(), " bytes, more than 16 MiB"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCommit(const CommitRequest& r) {
  RETURN_IF_ERROR(ValidateName("request_id", r.request_id));
  if (r.placements.empty()) return absl::InvalidArgumentError("placements must not be empty");
  if (r.snapshot_generation < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot_generation=", r.snapshot_generation, " must be >= 0"));
  }
  if (r.reserve_ttl_ms < 0 || r.reserve_ttl_ms > int64_t{24} * 3600 * 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("reserve_ttl_ms=", r.reserve_ttl_ms, " must be in [0, 86400000]"));
  }
  for (const DeploymentRecord& d : r.deployments) RETURN_IF_ERROR(ValidateDeployment(d));
  for (size_t i = 0; i < r.placements.size(); ++i) {
    const Placement& p = r.placements[i];
    const std::string where = absl::StrCat("placements[", i, "]");
    RETURN_IF_ERROR(ValidateName(absl::StrCat(where, ".deployment"), p.deployment));
    RETURN_IF_ERROR(ValidateName(absl::StrCat(where, ".model"), p.model, NameKind::kModel));
    if (p.tp < 1 || p.pp < 1 || p.ep < 1 || p.replica < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": tp=", p.tp, " pp=", p.pp, " ep=", p.ep,
                       " must be >= 1 and replica=", p.replica, " >= 0"));
    }
    if (p.ranks.empty())
      return absl::InvalidArgumentError(absl::StrCat(where, ".ranks must not be empty"));
    std::set<int64_t> ranks;
    std::set<GpuRef> gpus;
    for (const PlacementRank& rank : p.ranks) {
      if (rank.rank < 0 || !ranks.insert(rank.rank).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": rank=", rank.rank, " is negative or appears twice"));
      }
      if (rank.bytes <= 0 || rank.bytes > limits::kMaxGpuMemoryBytes) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " rank ", rank.rank, ": bytes=", rank.bytes,
                         " must be > 0 and at most ", limits::kMaxGpuMemoryBytes));
      }
      RETURN_IF_ERROR(
          ValidateName(absl::StrCat(where, " rank ", rank.rank, ": node"), rank.gpu.node));
      if (rank.gpu.index < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, " rank ", rank.rank, ": gpu index=", rank.gpu.index, " must be >= 0"));
      }
      if (!gpus.insert(rank.gpu).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": gpu ", rank.gpu.node, "/", rank.gpu.index, " holds two ranks"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace fleetplan::storage
