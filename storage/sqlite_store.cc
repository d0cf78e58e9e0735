#include "storage/sqlite_store.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "planner/common/status_macros.h"

namespace fleetplan::storage {
namespace {

using json = nlohmann::json;
using placement::Gpu;
using placement::GpuRef;
using placement::PlacementRank;
using placement::PlacementState;

constexpr int64_t kMaxGpusPerNode = 1024;
constexpr int64_t kMaxPageSize = 1000;
constexpr int64_t kDefaultPageSize = 100;
constexpr size_t kMaxNameLength = 253;
constexpr size_t kMaxConfigBytes = 16 << 20;

// Ordered list of migrations. Entry i upgrades a database from user_version i to i + 1. Never edit
// a migration that has shipped; append a new one.
const std::vector<absl::string_view>& Migrations() {
  static const auto* const kMigrations = new std::vector<absl::string_view>{
      // v1: fleet metadata (the fleet generation counter).
      R"sql(
        CREATE TABLE fleet_meta (
          key   TEXT PRIMARY KEY NOT NULL,
          value INTEGER NOT NULL
        ) STRICT;
        INSERT INTO fleet_meta (key, value) VALUES ('generation', 0);
      )sql",
      // v2: inventory, catalog, placements, idempotency keys.
      R"sql(
        CREATE TABLE gpu_types (
          name TEXT PRIMARY KEY NOT NULL,
          memory_bytes INTEGER NOT NULL CHECK (memory_bytes > 0),
          memory_bandwidth_bytes_per_second INTEGER NOT NULL CHECK (memory_bandwidth_bytes_per_second >= 0),
          bf16_tflops REAL NOT NULL CHECK (bf16_tflops >= 0),
          cost_per_hour REAL NOT NULL CHECK (cost_per_hour >= 0),
          nvlink_generation INTEGER NOT NULL CHECK (nvlink_generation >= 0)
        ) STRICT;
        CREATE TABLE nodes (
          name TEXT PRIMARY KEY NOT NULL,
          pool TEXT NOT NULL,
          zone TEXT NOT NULL,
          rack TEXT NOT NULL,
          labels_json TEXT NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('active', 'cordoned', 'draining', 'down')),
          inter_node_bandwidth_bytes_per_second INTEGER NOT NULL,
          version INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX nodes_by_pool ON nodes (pool, name);
        CREATE TABLE gpus (
          node TEXT NOT NULL REFERENCES nodes (name) ON DELETE CASCADE,
          idx INTEGER NOT NULL CHECK (idx >= 0),
          gpu_type TEXT NOT NULL REFERENCES gpu_types (name),
          nvlink_domain INTEGER NOT NULL CHECK (nvlink_domain >= 0),
          healthy INTEGER NOT NULL,
          uuid TEXT NOT NULL,
          changed_generation INTEGER NOT NULL,
          PRIMARY KEY (node, idx)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX gpus_by_type ON gpus (gpu_type);
        CREATE TABLE models (
          name TEXT PRIMARY KEY NOT NULL,
          config_json TEXT NOT NULL,
          quantization TEXT NOT NULL,
          model_type TEXT NOT NULL,
          params INTEGER NOT NULL,
          weights_bytes INTEGER NOT NULL,
          kv_bytes_per_token INTEGER NOT NULL,
          created_unix_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE placements (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          deployment TEXT NOT NULL,
          model TEXT NOT NULL,
          replica INTEGER NOT NULL,
          tp INTEGER NOT NULL,
          pp INTEGER NOT NULL,
          ep INTEGER NOT NULL,
          num_ranks INTEGER NOT NULL CHECK (num_ranks > 0),
          state TEXT NOT NULL CHECK (state IN ('reserved', 'committed', 'released')),
          request_id TEXT NOT NULL,
          created_unix_ms INTEGER NOT NULL,
          expires_unix_ms INTEGER NOT NULL,
          released_unix_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX placements_by_request ON placements (request_id);
        CREATE INDEX placements_by_deployment ON placements (deployment);
        CREATE INDEX placements_by_model ON placements (model);
        CREATE TABLE placement_gpus (
          placement_id INTEGER NOT NULL REFERENCES placements (id) ON DELETE CASCADE,
          rank INTEGER NOT NULL CHECK (rank >= 0),
          node TEXT NOT NULL,
          idx INTEGER NOT NULL,
          bytes INTEGER NOT NULL CHECK (bytes > 0),
          PRIMARY KEY (placement_id, rank)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX placement_gpus_by_gpu ON placement_gpus (node, idx);
        CREATE TABLE requests (
          request_id TEXT PRIMARY KEY NOT NULL,
          fingerprint TEXT NOT NULL,
          result_json TEXT NOT NULL,
          created_unix_ms INTEGER NOT NULL
        ) STRICT;
      )sql",
      // v3: deployments (the planner's specification as JSON the store does not interpret).
      R"sql(
        CREATE TABLE deployments (
          name TEXT PRIMARY KEY NOT NULL,
          model TEXT NOT NULL REFERENCES models (name),
          replicas INTEGER NOT NULL CHECK (replicas >= 0),
          spec_json TEXT NOT NULL,
          created_unix_ms INTEGER NOT NULL
        ) STRICT;
      )sql",
  };
  return *kMigrations;
}

// ---- SQL, beside the code that binds it --------------------------------------------------------

constexpr absl::string_view kSelectGeneration =
    "SELECT value FROM fleet_meta WHERE key = 'generation'";
constexpr absl::string_view kBumpGeneration =
    "UPDATE fleet_meta SET value = value + 1 WHERE key = 'generation' RETURNING value";

constexpr absl::string_view kInsertGpuType =
    "INSERT INTO gpu_types (name, memory_bytes, memory_bandwidth_bytes_per_second, bf16_tflops, "
    "cost_per_hour, nvlink_generation) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr absl::string_view kSelectGpuTypes =
    "SELECT name, memory_bytes, memory_bandwidth_bytes_per_second, bf16_tflops, cost_per_hour, "
    "nvlink_generation FROM gpu_types ORDER BY name";
constexpr absl::string_view kSelectGpuType =
    "SELECT name, memory_bytes, memory_bandwidth_bytes_per_second, bf16_tflops, cost_per_hour, "
    "nvlink_generation FROM gpu_types WHERE name = ?1";
constexpr absl::string_view kCountGpusOfType = "SELECT COUNT(*) FROM gpus WHERE gpu_type = ?1";
constexpr absl::string_view kDeleteGpuType = "DELETE FROM gpu_types WHERE name = ?1";

constexpr absl::string_view kInsertNode =
    "INSERT INTO nodes (name, pool, zone, rack, labels_json, state, "
    "inter_node_bandwidth_bytes_per_second, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr absl::string_view kUpdateNode =
    "UPDATE nodes SET pool = ?2, zone = ?3, rack = ?4, labels_json = ?5, state = ?6, "
    "inter_node_bandwidth_bytes_per_second = ?7, version = ?8 WHERE name = ?1";
constexpr absl::string_view kSetNodeState =
    "UPDATE nodes SET state = ?2, version = version + 1 WHERE name = ?1";
constexpr absl::string_view kSelectNode =
    "SELECT name, pool, zone, rack, labels_json, state, inter_node_bandwidth_bytes_per_second, "
    "version FROM nodes WHERE name = ?1";
constexpr absl::string_view kSelectNodes =
    "SELECT name, pool, zone, rack, labels_json, state, inter_node_bandwidth_bytes_per_second, "
    "version FROM nodes ORDER BY name";
constexpr absl::string_view kDeleteNode = "DELETE FROM nodes WHERE name = ?1";
constexpr absl::string_view kInsertGpu =
    "INSERT INTO gpus (node, idx, gpu_type, nvlink_domain, healthy, uuid, changed_generation) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr absl::string_view kDeleteGpusOfNode = "DELETE FROM gpus WHERE node = ?1";
constexpr absl::string_view kSelectGpusOfNode =
    "SELECT node, idx, gpu_type, nvlink_domain, healthy, uuid, changed_generation FROM gpus "
    "WHERE node = ?1 ORDER BY idx";
constexpr absl::string_view kSelectAllGpus =
    "SELECT node, idx, gpu_type, nvlink_domain, healthy, uuid, changed_generation FROM gpus "
    "ORDER BY node, idx";
constexpr absl::string_view kTouchGpusOfNode =
    "UPDATE gpus SET changed_generation = ?2 WHERE node = ?1";
constexpr absl::string_view kTouchGpu =
    "UPDATE gpus SET changed_generation = ?3 WHERE node = ?1 AND idx = ?2";
constexpr absl::string_view kSelectGpuForCommit =
    "SELECT g.healthy, g.changed_generation, n.state, t.memory_bytes FROM gpus g "
    "JOIN nodes n ON n.name = g.node JOIN gpu_types t ON t.name = g.gpu_type "
    "WHERE g.node = ?1 AND g.idx = ?2";

// Bytes held on GPUs by committed placements and unexpired reservations (?1 = now).
constexpr absl::string_view kUsageOfGpu =
    "SELECT COALESCE(SUM(pg.bytes), 0) FROM placement_gpus pg "
    "JOIN placements p ON p.id = pg.placement_id "
    "WHERE pg.node = ?2 AND pg.idx = ?3 AND (p.state = 'committed' OR "
    "(p.state = 'reserved' AND p.expires_unix_ms > ?1))";
constexpr absl::string_view kUsageByGpu =
    "SELECT pg.node, pg.idx, p.state, SUM(pg.bytes) FROM placement_gpus pg "
    "JOIN placements p ON p.id = pg.placement_id "
    "WHERE p.state = 'committed' OR (p.state = 'reserved' AND p.expires_unix_ms > ?1) "
    "GROUP BY pg.node, pg.idx, p.state ORDER BY pg.node, pg.idx";
constexpr absl::string_view kUsageByGpuOfNode =
    "SELECT pg.node, pg.idx, p.state, SUM(pg.bytes) FROM placement_gpus pg "
    "JOIN placements p ON p.id = pg.placement_id "
    "WHERE pg.node = ?2 AND (p.state = 'committed' OR (p.state = 'reserved' AND "
    "p.expires_unix_ms > ?1)) GROUP BY pg.node, pg.idx, p.state ORDER BY pg.node, pg.idx";
constexpr absl::string_view kActivePlacementsOnNode =
    "SELECT DISTINCT p.id, p.state FROM placements p JOIN placement_gpus pg ON pg.placement_id = p.id "
    "WHERE pg.node = ?2 AND (p.state = 'committed' OR (p.state = 'reserved' AND "
    "p.expires_unix_ms > ?1)) ORDER BY p.id";
constexpr absl::string_view kActivePlacementsOnGpu =
    "SELECT COUNT(*) FROM placements p JOIN placement_gpus pg ON pg.placement_id = p.id "
    "WHERE pg.node = ?2 AND pg.idx = ?3 AND (p.state = 'committed' OR (p.state = 'reserved' AND "
    "p.expires_unix_ms > ?1))";

constexpr absl::string_view kInsertModel =
    "INSERT INTO models (name, config_json, quantization, model_type, params, weights_bytes, "
    "kv_bytes_per_token, created_unix_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr absl::string_view kSelectModel =
    "SELECT name, config_json, quantization, model_type, params, weights_bytes, "
    "kv_bytes_per_token, created_unix_ms FROM models WHERE name = ?1";
constexpr absl::string_view kSelectModels =
    "SELECT name, '', quantization, model_type, params, weights_bytes, kv_bytes_per_token, "
    "created_unix_ms FROM models ORDER BY name";
constexpr absl::string_view kActivePlacementsOfModel =
    "SELECT id FROM placements WHERE model = ?2 AND (state = 'committed' OR "
    "(state = 'reserved' AND expires_unix_ms > ?1)) ORDER BY id";
constexpr absl::string_view kDeleteModel = "DELETE FROM models WHERE name = ?1";

constexpr absl::string_view kInsertDeployment =
    "INSERT INTO deployments (name, model, replicas, spec_json, created_unix_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr absl::string_view kSelectDeployment =
    "SELECT name, model, replicas, spec_json, created_unix_ms FROM deployments WHERE name = ?1";
constexpr absl::string_view kSelectDeployments =
    "SELECT name, model, replicas, spec_json, created_unix_ms FROM deployments ORDER BY name";
constexpr absl::string_view kActivePlacementsOfDeployment =
    "SELECT id FROM placements WHERE deployment = ?2 AND (state = 'committed' OR "
    "(state = 'reserved' AND expires_unix_ms > ?1)) ORDER BY id";
constexpr absl::string_view kDeleteDeployment = "DELETE FROM deployments WHERE name = ?1";
constexpr absl::string_view kCountDeploymentsOfModel = "SELECT COUNT(*) FROM deployments WHERE model = ?1";

constexpr absl::string_view kSelectRequest =
    "SELECT fingerprint, result_json FROM requests WHERE request_id = ?1";
constexpr absl::string_view kInsertRequest =
    "INSERT INTO requests (request_id, fingerprint, result_json, created_unix_ms) "
    "VALUES (?1, ?2, ?3, ?4)";
constexpr absl::string_view kInsertPlacement =
    "INSERT INTO placements (deployment, model, replica, tp, pp, ep, num_ranks, state, request_id, "
    "created_unix_ms, expires_unix_ms, released_unix_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0)";
constexpr absl::string_view kInsertPlacementGpu =
    "INSERT INTO placement_gpus (placement_id, rank, node, idx, bytes) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr absl::string_view kSelectPlacement =
    "SELECT id, deployment, model, replica, tp, pp, ep, state, request_id, created_unix_ms, "
    "expires_unix_ms FROM placements WHERE id = ?1";
constexpr absl::string_view kSelectPlacements =
    "SELECT id, deployment, model, replica, tp, pp, ep, state, request_id, created_unix_ms, "
    "expires_unix_ms FROM placements WHERE (?1 = '' OR deployment = ?1) AND (?2 = '' OR model = ?2) "
    "AND (?3 = 1 OR state != 'released') ORDER BY id";
constexpr absl::string_view kSelectPlacementRanks =
    "SELECT rank, node, idx, bytes FROM placement_gpus WHERE placement_id = ?1 ORDER BY rank";
constexpr absl::string_view kSelectReservation =
    "SELECT id, state, expires_unix_ms FROM placements WHERE request_id = ?1 ORDER BY id";
constexpr absl::string_view kCommitPlacement =
    "UPDATE placements SET state = 'committed', expires_unix_ms = 0 WHERE id = ?1";
constexpr absl::string_view kReleasePlacement =
    "UPDATE placements SET state = 'released', released_unix_ms = ?2 WHERE id = ?1";

// ---- Helpers ---------------------------------------------------------------------------------

absl::Status ValidateName(absl::string_view field, absl::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " must not be empty"));
  if (value.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is ", value.size(),
                                                   " characters long, more than ", kMaxNameLength));
  }
  for (char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ') {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "=\"", absl::CEscape(value), "\" contains whitespace or control characters"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateGpuType(const GpuType& t) {
  RETURN_IF_ERROR(ValidateName("gpu_type.name", t.name));
  if (t.memory_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("gpu_type \"", t.name, "\": memory_bytes=", t.memory_bytes, " must be > 0"));
  }
  if (t.memory_bandwidth_bytes_per_second < 0 || t.bf16_tflops < 0 || t.cost_per_hour < 0 ||
      t.nvlink_generation < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gpu_type \"", t.name, "\": memory_bandwidth_bytes_per_second=",
        t.memory_bandwidth_bytes_per_second, ", bf16_tflops=", t.bf16_tflops, ", cost_per_hour=",
        t.cost_per_hour, ", nvlink_generation=", t.nvlink_generation, " must all be >= 0"));
  }
  return absl::OkStatus();
}

absl::Status ValidateNode(const Node& n) {
  RETURN_IF_ERROR(ValidateName("node.name", n.name));
  RETURN_IF_ERROR(ValidateName(absl::StrCat("node \"", n.name, "\": pool"), n.pool));
  if (n.inter_node_bandwidth_bytes_per_second < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node \"", n.name, "\": inter_node_bandwidth_bytes_per_second=",
        n.inter_node_bandwidth_bytes_per_second, " must be >= 0"));
  }
  for (const auto& [key, value] : n.labels) {
    RETURN_IF_ERROR(ValidateName(absl::StrCat("node \"", n.name, "\": label key"), key));
    for (char c : key) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
          c != '/') {
        return absl::InvalidArgumentError(absl::StrCat("node \"", n.name, "\": label key \"", key,
                                                       "\" may hold only letters, digits, . - _ /"));
      }
    }
  }
  if (static_cast<int64_t>(n.gpus.size()) > kMaxGpusPerNode) {
    return absl::InvalidArgumentError(absl::StrCat("node \"", n.name, "\" has ", n.gpus.size(),
                                                   " GPUs, more than ", kMaxGpusPerNode));
  }
  std::set<int64_t> seen;
  for (const Gpu& g : n.gpus) {
    if (g.index < 0 || g.index >= kMaxGpusPerNode) {
      return absl::InvalidArgumentError(absl::StrCat("node \"", n.name, "\": gpu index=", g.index,
                                                     " must be in [0, ", kMaxGpusPerNode, ")"));
    }
    if (!seen.insert(g.index).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("node \"", n.name, "\": gpu index=", g.index, " appears twice"));
    }
    if (g.nvlink_domain < 0) {
      return absl::InvalidArgumentError(absl::StrCat("node \"", n.name, "\": gpu ", g.index,
                                                     " nvlink_domain=", g.nvlink_domain,
                                                     " must be >= 0"));
    }
    RETURN_IF_ERROR(ValidateName(absl::StrCat("node \"", n.name, "\": gpu ", g.index, " gpu_type"),
                                 g.gpu_type));
  }
  return absl::OkStatus();
}

// Reads every remaining row of `stmt` with `read`.
template <typename Read>
auto ReadRows(Statement& stmt, Read read) -> absl::StatusOr<std::vector<decltype(read(stmt))>> {
  std::vector<decltype(read(stmt))> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(read(stmt));
  }
  return out;
}

// Ids of the active placements a query selects (?1 = now, ?2 = key).
absl::StatusOr<std::vector<int64_t>> ActiveIds(Database& db, absl::string_view sql, int64_t now,
                                               const std::string& key) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
  stmt.BindInt(1, now).BindText(2, key);
  return ReadRows(stmt, [](const Statement& st) { return st.ColumnInt(0); });
}

absl::StatusOr<int64_t> BumpGeneration(Database& db) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(kBumpGeneration));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::DataLossError("fleet_meta has no generation row");
  const int64_t generation = stmt.ColumnInt(0);
  RETURN_IF_ERROR(stmt.Run());
  return generation;
}

GpuType ReadGpuType(const Statement& s) {
  return GpuType{.name = s.ColumnText(0),
                 .memory_bytes = s.ColumnInt(1),
                 .memory_bandwidth_bytes_per_second = s.ColumnInt(2),
                 .bf16_tflops = s.ColumnDouble(3),
                 .cost_per_hour = s.ColumnDouble(4),
                 .nvlink_generation = s.ColumnInt(5)};
}

Node ReadNode(const Statement& s) {
  Node n;
  n.name = s.ColumnText(0);
  n.pool = s.ColumnText(1);
  n.zone = s.ColumnText(2);
  n.rack = s.ColumnText(3);
  json labels = json::parse(s.ColumnText(4), nullptr, false);
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      if (it->is_string()) n.labels[it.key()] = it->get<std::string>();
    }
  }
  n.state = placement::ParseNodeState(s.ColumnText(5)).value_or(NodeState::kDown);
  n.inter_node_bandwidth_bytes_per_second = s.ColumnInt(6);
  n.version = s.ColumnInt(7);
  return n;
}

Gpu ReadGpu(const Statement& s) {
  return Gpu{.index = s.ColumnInt(1),
             .gpu_type = s.ColumnText(2),
             .nvlink_domain = s.ColumnInt(3),
             .healthy = s.ColumnInt(4) != 0,
             .uuid = s.ColumnText(5),
             .changed_generation = s.ColumnInt(6)};
}

std::string LabelsJson(const std::map<std::string, std::string>& labels) {
  json j = json::object();
  for (const auto& [k, v] : labels) j[k] = v;
  return j.dump();
}

absl::Status InsertGpus(Database& db, const Node& n, int64_t generation) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(kInsertGpu));
  for (const Gpu& g : n.gpus) {
    stmt.BindText(1, n.name).BindInt(2, g.index).BindText(3, g.gpu_type).BindInt(4, g.nvlink_domain)
        .BindInt(5, g.healthy ? 1 : 0).BindText(6, g.uuid).BindInt(7, generation);
    absl::Status s = stmt.Run();
    if (!s.ok()) {
      if (s.code() == absl::StatusCode::kFailedPrecondition) {
        return absl::NotFoundError(absl::StrCat("node \"", n.name, "\": gpu ", g.index,
                                                " has unknown gpu_type \"", g.gpu_type, "\""));
      }
      return s;
    }
    RETURN_IF_ERROR(stmt.Reset());
  }
  return absl::OkStatus();
}

// Fills committed/reserved bytes of `nodes`' GPUs from a usage query's rows (node, idx, state, sum),
// both ordered by node then index.
absl::Status FillUsage(Statement& usage, std::vector<Node>& nodes) {
  size_t ni = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, usage.Step());
    if (!row) break;
    const std::string node = usage.ColumnText(0);
    const int64_t idx = usage.ColumnInt(1);
    while (ni < nodes.size() && nodes[ni].name < node) ++ni;
    if (ni == nodes.size() || nodes[ni].name != node) continue;  // a deleted node's history
    auto& gpus = nodes[ni].gpus;
    auto it = std::lower_bound(gpus.begin(), gpus.end(), idx,
                               [](const Gpu& g, int64_t i) { return g.index < i; });
    if (it == gpus.end() || it->index != idx) continue;
    if (usage.ColumnText(2) == "committed") {
      it->committed_bytes += usage.ColumnInt(3);
    } else {
      it->reserved_bytes += usage.ColumnInt(3);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Node> ReadNodeWithGpus(Database& db, const std::string& name, int64_t now) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(kSelectNode));
  stmt.BindText(1, name);
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("node \"", name, "\" not found"));
  std::vector<Node> nodes = {ReadNode(stmt)};
  ASSIGN_OR_RETURN(Statement gpus, db.Prepare(kSelectGpusOfNode));
  gpus.BindText(1, name);
  while (true) {
    ASSIGN_OR_RETURN(bool g, gpus.Step());
    if (!g) break;
    nodes[0].gpus.push_back(ReadGpu(gpus));
  }
  ASSIGN_OR_RETURN(Statement usage, db.Prepare(kUsageByGpuOfNode));
  usage.BindInt(1, now).BindText(2, name);
  RETURN_IF_ERROR(FillUsage(usage, nodes));
  return nodes[0];
}

// Active (committed or unexpired reserved) placement ids on a node.
absl::StatusOr<std::vector<int64_t>> ActivePlacementsOnNode(Database& db, const std::string& node,
                                                            int64_t now, bool committed_only) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(kActivePlacementsOnNode));
  stmt.BindInt(1, now).BindText(2, node);
  std::vector<int64_t> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    if (committed_only && stmt.ColumnText(1) != "committed") continue;
    ids.push_back(stmt.ColumnInt(0));
  }
  return ids;
}

std::string IdList(const std::vector<int64_t>& ids) {
  constexpr size_t kShown = 10;
  std::vector<int64_t> shown(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), kShown)));
  std::string out = absl::StrJoin(shown, ", ");
  if (ids.size() > kShown) absl::StrAppend(&out, " and ", ids.size() - kShown, " more");
  return out;
}

absl::Status ReleaseIds(Database& db, const std::vector<int64_t>& ids, int64_t now) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(kReleasePlacement));
  for (int64_t id : ids) {
    stmt.BindInt(1, id).BindInt(2, now);
    RETURN_IF_ERROR(stmt.Run());
    RETURN_IF_ERROR(stmt.Reset());
  }
  return absl::OkStatus();
}

absl::StatusOr<Placement> ReadPlacement(Database& db, int64_t id) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(kSelectPlacement));
  stmt.BindInt(1, id);
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("placement ", id, " not found"));
  Placement p;
  p.id = stmt.ColumnInt(0);
  p.deployment = stmt.ColumnText(1);
  p.model = stmt.ColumnText(2);
  p.replica = stmt.ColumnInt(3);
  p.tp = stmt.ColumnInt(4);
  p.pp = stmt.ColumnInt(5);
  p.ep = stmt.ColumnInt(6);
  const std::string state = stmt.ColumnText(7);
  p.state = state == "committed"  ? PlacementState::kCommitted
            : state == "reserved" ? PlacementState::kReserved
                                  : PlacementState::kReleased;
  p.request_id = stmt.ColumnText(8);
  p.created_unix_ms = stmt.ColumnInt(9);
  p.expires_unix_ms = stmt.ColumnInt(10);
  ASSIGN_OR_RETURN(Statement ranks, db.Prepare(kSelectPlacementRanks));
  ranks.BindInt(1, id);
  while (true) {
    ASSIGN_OR_RETURN(bool r, ranks.Step());
    if (!r) break;
    p.ranks.push_back(PlacementRank{.rank = ranks.ColumnInt(0),
                                    .gpu = GpuRef{ranks.ColumnText(1), ranks.ColumnInt(2)},
                                    .bytes = ranks.ColumnInt(3)});
  }
  return p;
}

absl::Status ValidateCommit(const CommitRequest& r) {
  RETURN_IF_ERROR(ValidateName("request_id", r.request_id));
  if (r.placements.empty()) return absl::InvalidArgumentError("placements must not be empty");
  if (r.snapshot_generation < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot_generation=", r.snapshot_generation, " must be >= 0"));
  }
  if (r.reserve_ttl_ms < 0) {
    return absl::InvalidArgumentError(absl::StrCat("reserve_ttl_ms=", r.reserve_ttl_ms, " must be >= 0"));
  }
  for (size_t i = 0; i < r.placements.size(); ++i) {
    const Placement& p = r.placements[i];
    const std::string where = absl::StrCat("placements[", i, "]");
    RETURN_IF_ERROR(ValidateName(absl::StrCat(where, ".deployment"), p.deployment));
    RETURN_IF_ERROR(ValidateName(absl::StrCat(where, ".model"), p.model));
    if (p.tp < 1 || p.pp < 1 || p.ep < 1 || p.replica < 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": tp=", p.tp, " pp=", p.pp, " ep=", p.ep,
                                                     " must be >= 1 and replica=", p.replica, " >= 0"));
    }
    if (p.ranks.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ".ranks must not be empty"));
    std::set<int64_t> ranks;
    std::set<GpuRef> gpus;
    for (const PlacementRank& rank : p.ranks) {
      if (rank.rank < 0 || !ranks.insert(rank.rank).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": rank=", rank.rank, " is negative or appears twice"));
      }
      if (rank.bytes <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(where, " rank ", rank.rank, ": bytes=",
                                                       rank.bytes, " must be > 0"));
      }
      RETURN_IF_ERROR(ValidateName(absl::StrCat(where, " rank ", rank.rank, ": node"), rank.gpu.node));
      if (rank.gpu.index < 0) {
        return absl::InvalidArgumentError(absl::StrCat(where, " rank ", rank.rank, ": gpu index=",
                                                       rank.gpu.index, " must be >= 0"));
      }
      if (!gpus.insert(rank.gpu).second) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": gpu ", rank.gpu.node, "/",
                                                       rank.gpu.index, " holds two ranks"));
      }
    }
  }
  return absl::OkStatus();
}

// A canonical description of a commit request: equal requests, equal fingerprints.
std::string Fingerprint(const CommitRequest& r) {
  json j = {{"ttl", r.reserve_ttl_ms}, {"gen", r.snapshot_generation}};
  for (const Placement& p : r.placements) {
    json ranks = json::array();
    for (const PlacementRank& rank : p.ranks) {
      ranks.push_back({rank.rank, rank.gpu.node, rank.gpu.index, rank.bytes});
    }
    j["p"].push_back({p.deployment, p.model, p.replica, p.tp, p.pp, p.ep, ranks});
  }
  // FNV-1a 64: stable across builds and platforms.
  uint64_t hash = 14695981039346656037ull;
  for (char c : j.dump()) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return absl::StrFormat("%016x", hash);
}

CommitResult ResultFromJson(const std::string& text) {
  CommitResult r;
  json j = json::parse(text, nullptr, false);
  if (j.is_object()) {
    for (const json& id : j.value("ids", json::array())) r.placement_ids.push_back(id.get<int64_t>());
    r.generation = j.value("generation", int64_t{0});
  }
  r.replayed = true;
  return r;
}

std::string ResultToJson(const CommitResult& r) {
  return json{{"ids", r.placement_ids}, {"generation", r.generation}}.dump();
}

}  // namespace

int64_t CurrentSchemaVersion() { return static_cast<int64_t>(Migrations().size()); }

absl::StatusOr<int64_t> MigrateDatabase(Database& db, int64_t target_version) {
  // WAL: readers never block the writer and a crash never leaves a torn page in the main file.
  // synchronous=FULL: in WAL mode NORMAL is safe against a process crash but may lose the last
  // commits on power loss; a committed placement is a promise to a scheduler, so we pay one fsync
  // per commit for it. foreign_keys is off by default in SQLite and must be set per connection.
  RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=ON"));
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(int64_t version, db.PragmaInt("user_version"));
  if (version > CurrentSchemaVersion()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database \"", db.path(), "\" has schema version ", version,
        ", newer than this fleetplan's ", CurrentSchemaVersion(), "; upgrade fleetplan"));
  }
  if (version < 0) {
    return absl::DataLossError(
        absl::StrCat("database \"", db.path(), "\" has invalid schema version ", version));
  }
  for (int64_t v = version; v < target_version; ++v) {
    absl::Status status = db.Exec(Migrations()[static_cast<size_t>(v)]);
    if (!status.ok()) {
      return absl::InternalError(
          absl::StrCat("migration to schema version ", v + 1, " failed: ", status.message()));
    }
  }
  const int64_t result = std::max(version, target_version);
  RETURN_IF_ERROR(db.Exec(absl::StrCat("PRAGMA user_version=", result)));
  RETURN_IF_ERROR(txn.Commit());
  return result;
}

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const StoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("store path must not be empty");
  if (options.busy_timeout.count() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("busy_timeout=", options.busy_timeout.count(), "ms must be >= 0"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open(options.path));
  RETURN_IF_ERROR(SqliteStatus(
      sqlite3_busy_timeout(db->raw(), static_cast<int>(options.busy_timeout.count())), db->raw(),
      "busy_timeout"));
  ASSIGN_OR_RETURN(int64_t version, MigrateDatabase(*db, CurrentSchemaVersion()));
  std::function<int64_t()> clock = options.now_unix_ms;
  if (!clock) {
    clock = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  return std::unique_ptr<SqliteStore>(
      new SqliteStore(std::move(db), version, options.path, std::move(clock)));
}

absl::StatusOr<int64_t> SqliteStore::FleetGeneration() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSelectGeneration));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::DataLossError("fleet_meta has no generation row");
  return stmt.ColumnInt(0);
}

absl::Status SqliteStore::CheckIntegrity() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare("PRAGMA integrity_check"));
  std::vector<std::string> problems;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    if (stmt.ColumnText(0) != "ok") problems.push_back(stmt.ColumnText(0));
  }
  if (!problems.empty()) {
    return absl::DataLossError(absl::StrCat("integrity_check: ", absl::StrJoin(problems, "; ")));
  }
  return absl::OkStatus();
}

// ---- GPU types -------------------------------------------------------------------------------

absl::Status SqliteStore::CreateGpuType(const GpuType& type) {
  RETURN_IF_ERROR(ValidateGpuType(type));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kInsertGpuType));
  stmt.BindText(1, type.name).BindInt(2, type.memory_bytes)
      .BindInt(3, type.memory_bandwidth_bytes_per_second).BindDouble(4, type.bf16_tflops)
      .BindDouble(5, type.cost_per_hour).BindInt(6, type.nvlink_generation);
  if (absl::Status s = stmt.Run(); !s.ok()) {
    if (s.code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(absl::StrCat("gpu_type \"", type.name, "\" already exists"));
    }
    return s;
  }
  RETURN_IF_ERROR(BumpGeneration(*db_).status());
  return txn.Commit();
}

absl::StatusOr<GpuType> SqliteStore::GetGpuType(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSelectGpuType));
  stmt.BindText(1, name);
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("gpu_type \"", name, "\" not found"));
  return ReadGpuType(stmt);
}

absl::StatusOr<std::vector<GpuType>> SqliteStore::ListGpuTypes() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSelectGpuTypes));
  return ReadRows(stmt, ReadGpuType);
}

absl::Status SqliteStore::DeleteGpuType(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Statement count, db_->Prepare(kCountGpusOfType));
  count.BindText(1, name);
  ASSIGN_OR_RETURN(bool row, count.Step());
  if (row && count.ColumnInt(0) > 0) {
    return absl::FailedPreconditionError(absl::StrCat("gpu_type \"", name, "\" is used by ",
                                                      count.ColumnInt(0), " GPUs; remove them first"));
  }
  ASSIGN_OR_RETURN(Statement del, db_->Prepare(kDeleteGpuType));
  del.BindText(1, name);
  RETURN_IF_ERROR(del.Run());
  if (db_->Changes() == 0) return absl::NotFoundError(absl::StrCat("gpu_type \"", name, "\" not found"));
  RETURN_IF_ERROR(BumpGeneration(*db_).status());
  return txn.Commit();
}

// ---- Nodes -----------------------------------------------------------------------------------

absl::StatusOr<Node> SqliteStore::CreateNode(const Node& node) {
  RETURN_IF_ERROR(ValidateNode(node));
  Node stored = node;
  std::sort(stored.gpus.begin(), stored.gpus.end(),
            [](const Gpu& a, const Gpu& b) { return a.index < b.index; });
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(int64_t generation, BumpGeneration(*db_));
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kInsertNode));
  stmt.BindText(1, stored.name).BindText(2, stored.pool).BindText(3, stored.zone)
      .BindText(4, stored.rack).BindText(5, LabelsJson(stored.labels))
      .BindText(6, placement::NodeStateName(stored.state))
      .BindInt(7, stored.inter_node_bandwidth_bytes_per_second).BindInt(8, 1);
  if (absl::Status s = stmt.Run(); !s.ok()) {
    if (s.code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(absl::StrCat("node \"", stored.name, "\" already exists"));
    }
    return s;
  }
  RETURN_IF_ERROR(InsertGpus(*db_, stored, generation));
  RETURN_IF_ERROR(txn.Commit());
  stored.version = 1;
  for (Gpu& g : stored.gpus) {
    g.changed_generation = generation;
    g.committed_bytes = g.reserved_bytes = 0;
  }
  return stored;
}

absl::StatusOr<Node> SqliteStore::GetNode(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kRead));
  return ReadNodeWithGpus(*db_, name, Now());
}

absl::StatusOr<NodePage> SqliteStore::ListNodes(const NodeFilter& filter, int64_t page_size,
                                                const std::string& page_token) {
  if (page_size < 0 || page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size=", page_size, " must be in [0, ", kMaxPageSize, "] (0: default)"));
  }
  if (page_size == 0) page_size = kDefaultPageSize;
  std::string sql =
      "SELECT name, pool, zone, rack, labels_json, state, inter_node_bandwidth_bytes_per_second, "
      "version FROM nodes WHERE name > ?1 AND (?2 = '' OR pool = ?2) AND (?3 = '' OR zone = ?3) "
      "AND (?4 = '' OR EXISTS (SELECT 1 FROM gpus g WHERE g.node = nodes.name AND "
      "g.gpu_type = ?4))";
  int param = 6;
  for (size_t i = 0; i < filter.labels.size(); ++i) {
    absl::StrAppend(&sql, " AND json_extract(labels_json, ?", param, ") = ?", param + 1);
    param += 2;
  }
  absl::StrAppend(&sql, " ORDER BY name LIMIT ?5");
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kRead));
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(sql));
  stmt.BindText(1, page_token).BindText(2, filter.pool).BindText(3, filter.zone)
      .BindText(4, filter.gpu_type).BindInt(5, page_size + 1);
  param = 6;
  for (const auto& [key, value] : filter.labels) {
    for (char c : key) {
      if (c == '"' || c == '\\') {
        return absl::InvalidArgumentError(absl::StrCat("label filter key \"", key, "\" is invalid"));
      }
    }
    stmt.BindText(param, absl::StrCat("$.\"", key, "\"")).BindText(param + 1, value);
    param += 2;
  }
  NodePage page;
  std::vector<std::string> names;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    names.push_back(stmt.ColumnText(0));
  }
  if (static_cast<int64_t>(names.size()) > page_size) {
    names.resize(static_cast<size_t>(page_size));
    page.next_page_token = names.back();
  }
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(Node n, ReadNodeWithGpus(*db_, name, Now()));
    page.nodes.push_back(std::move(n));
  }
  return page;
}

absl::StatusOr<Node> SqliteStore::UpdateNode(const Node& node, int64_t expected_version) {
  RETURN_IF_ERROR(ValidateNode(node));
  absl::MutexLock lock(&mu_);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Node current, ReadNodeWithGpus(*db_, node.name, now));
  if (current.version != expected_version) {
    return absl::AbortedError(absl::StrCat("node \"", node.name, "\" is at version ",
                                           current.version, ", not ", expected_version,
                                           " (etag stale): re-read and retry"));
  }
  // GPUs that hold placements must stay, with the same type.
  for (const Gpu& old : current.gpus) {
    if (old.committed_bytes == 0 && old.reserved_bytes == 0) continue;
    auto it = std::find_if(node.gpus.begin(), node.gpus.end(),
                           [&](const Gpu& g) { return g.index == old.index; });
    if (it == node.gpus.end() || it->gpu_type != old.gpu_type) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node \"", node.name, "\": gpu ", old.index, " holds placements; it cannot be removed or ",
          "change type (release them first)"));
    }
  }
  ASSIGN_OR_RETURN(int64_t generation, BumpGeneration(*db_));
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kUpdateNode));
  stmt.BindText(1, node.name).BindText(2, node.pool).BindText(3, node.zone).BindText(4, node.rack)
      .BindText(5, LabelsJson(node.labels)).BindText(6, placement::NodeStateName(node.state))
      .BindInt(7, node.inter_node_bandwidth_bytes_per_second).BindInt(8, current.version + 1);
  RETURN_IF_ERROR(stmt.Run());
  ASSIGN_OR_RETURN(Statement del, db_->Prepare(kDeleteGpusOfNode));
  del.BindText(1, node.name);
  RETURN_IF_ERROR(del.Run());
  RETURN_IF_ERROR(InsertGpus(*db_, node, generation));
  ASSIGN_OR_RETURN(Node updated, ReadNodeWithGpus(*db_, node.name, now));
  RETURN_IF_ERROR(txn.Commit());
  return updated;
}

absl::StatusOr<Node> SqliteStore::SetNodeState(const std::string& name, NodeState state, bool force) {
  absl::MutexLock lock(&mu_);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Node current, ReadNodeWithGpus(*db_, name, now));
  if (!force && (state == NodeState::kDraining || state == NodeState::kDown)) {
    ASSIGN_OR_RETURN(std::vector<int64_t> ids, ActivePlacementsOnNode(*db_, name, now, true));
    if (!ids.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node \"", name, "\" holds committed placements ", IdList(ids), "; release them or force"));
    }
  }
  ASSIGN_OR_RETURN(int64_t generation, BumpGeneration(*db_));
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSetNodeState));
  stmt.BindText(1, name).BindText(2, placement::NodeStateName(state));
  RETURN_IF_ERROR(stmt.Run());
  ASSIGN_OR_RETURN(Statement touch, db_->Prepare(kTouchGpusOfNode));
  touch.BindText(1, name).BindInt(2, generation);
  RETURN_IF_ERROR(touch.Run());
  ASSIGN_OR_RETURN(Node updated, ReadNodeWithGpus(*db_, name, now));
  RETURN_IF_ERROR(txn.Commit());
  return updated;
}

absl::Status SqliteStore::DeleteNode(const std::string& name, bool force) {
  absl::MutexLock lock(&mu_);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Node current, ReadNodeWithGpus(*db_, name, now));
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, ActivePlacementsOnNode(*db_, name, now, false));
  if (!ids.empty()) {
    if (!force) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node \"", name, "\" holds placements ", IdList(ids), "; release them or force"));
    }
    RETURN_IF_ERROR(ReleaseIds(*db_, ids, now));
  }
  RETURN_IF_ERROR(BumpGeneration(*db_).status());
  ASSIGN_OR_RETURN(Statement del, db_->Prepare(kDeleteNode));
  del.BindText(1, name);
  RETURN_IF_ERROR(del.Run());
  return txn.Commit();
}

// ---- Models ----------------------------------------------------------------------------------

absl::Status SqliteStore::CreateModel(const ModelRecord& model) {
  RETURN_IF_ERROR(ValidateName("model.name", model.name));
  if (model.config_json.empty() || model.config_json.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(absl::StrCat("model \"", model.name, "\": config_json is ",
                                                   model.config_json.size(),
                                                   " bytes; it must be 1 byte to 16 MiB"));
  }
  if (model.params <= 0 || model.weights_bytes <= 0 || model.kv_bytes_per_token < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model \"", model.name, "\": params=", model.params, " and weights_bytes=",
        model.weights_bytes, " must be > 0, kv_bytes_per_token=", model.kv_bytes_per_token, " >= 0"));
  }
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kInsertModel));
  stmt.BindText(1, model.name).BindText(2, model.config_json).BindText(3, model.quantization)
      .BindText(4, model.model_type).BindInt(5, model.params).BindInt(6, model.weights_bytes)
      .BindInt(7, model.kv_bytes_per_token).BindInt(8, Now());
  if (absl::Status s = stmt.Run(); !s.ok()) {
    if (s.code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(absl::StrCat("model \"", model.name, "\" already exists"));
    }
    return s;
  }
  return txn.Commit();
}

absl::StatusOr<ModelRecord> SqliteStore::GetModel(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSelectModel));
  stmt.BindText(1, name);
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("model \"", name, "\" not found"));
  return ModelRecord{.name = stmt.ColumnText(0), .config_json = stmt.ColumnText(1),
                     .quantization = stmt.ColumnText(2), .model_type = stmt.ColumnText(3),
                     .params = stmt.ColumnInt(4), .weights_bytes = stmt.ColumnInt(5),
                     .kv_bytes_per_token = stmt.ColumnInt(6), .created_unix_ms = stmt.ColumnInt(7)};
}

absl::StatusOr<std::vector<ModelRecord>> SqliteStore::ListModels() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSelectModels));
  std::vector<ModelRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(ModelRecord{.name = stmt.ColumnText(0), .quantization = stmt.ColumnText(2),
                              .model_type = stmt.ColumnText(3), .params = stmt.ColumnInt(4),
                              .weights_bytes = stmt.ColumnInt(5),
                              .kv_bytes_per_token = stmt.ColumnInt(6),
                              .created_unix_ms = stmt.ColumnInt(7)});
  }
  return out;
}

absl::Status SqliteStore::DeleteModel(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, ActiveIds(*db_, kActivePlacementsOfModel, Now(), name));
  if (!ids.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("model \"", name, "\" has placements ",
                                                      IdList(ids), "; release them first"));
  }
  ASSIGN_OR_RETURN(Statement deps, db_->Prepare(kCountDeploymentsOfModel));
  deps.BindText(1, name);
  ASSIGN_OR_RETURN(bool has_row, deps.Step());
  if (has_row && deps.ColumnInt(0) > 0) {
    return absl::FailedPreconditionError(absl::StrCat("model \"", name, "\" is used by ", deps.ColumnInt(0),
                                                      " deployments; delete them first"));
  }
  ASSIGN_OR_RETURN(Statement del, db_->Prepare(kDeleteModel));
  del.BindText(1, name);
  RETURN_IF_ERROR(del.Run());
  if (db_->Changes() == 0) return absl::NotFoundError(absl::StrCat("model \"", name, "\" not found"));
  return txn.Commit();
}

// ---- Deployments -----------------------------------------------------------------------------

namespace {
DeploymentRecord ReadDeployment(const Statement& s) {
  return DeploymentRecord{.name = s.ColumnText(0), .model = s.ColumnText(1),
                          .replicas = s.ColumnInt(2), .spec_json = s.ColumnText(3),
                          .created_unix_ms = s.ColumnInt(4)};
}
}  // namespace

absl::Status SqliteStore::CreateDeployment(const DeploymentRecord& d) {
  RETURN_IF_ERROR(ValidateName("deployment.name", d.name));
  RETURN_IF_ERROR(ValidateName(absl::StrCat("deployment \"", d.name, "\": model"), d.model));
  if (d.replicas < 0 || d.replicas > 100000) {
    return absl::InvalidArgumentError(absl::StrCat("deployment \"", d.name, "\": replicas=", d.replicas,
                                                   " must be in [0, 100000]"));
  }
  if (d.spec_json.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(absl::StrCat("deployment \"", d.name, "\": spec_json is ",
                                                   d.spec_json.size(), " bytes, more than 16 MiB"));
  }
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kInsertDeployment));
  stmt.BindText(1, d.name).BindText(2, d.model).BindInt(3, d.replicas)
      .BindText(4, d.spec_json.empty() ? "{}" : d.spec_json).BindInt(5, Now());
  if (absl::Status s = stmt.Run(); !s.ok()) {
    if (s.code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(absl::StrCat("deployment \"", d.name, "\" already exists"));
    }
    if (s.code() == absl::StatusCode::kFailedPrecondition) {
      return absl::NotFoundError(absl::StrCat("deployment \"", d.name, "\": model \"", d.model,
                                              "\" not found in the catalog"));
    }
    return s;
  }
  return txn.Commit();
}

absl::StatusOr<DeploymentRecord> SqliteStore::GetDeployment(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSelectDeployment));
  stmt.BindText(1, name);
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("deployment \"", name, "\" not found"));
  return ReadDeployment(stmt);
}

absl::StatusOr<std::vector<DeploymentRecord>> SqliteStore::ListDeployments() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSelectDeployments));
  return ReadRows(stmt, ReadDeployment);
}

absl::Status SqliteStore::DeleteDeployment(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, ActiveIds(*db_, kActivePlacementsOfDeployment, Now(), name));
  if (!ids.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("deployment \"", name, "\" has placements ",
                                                      IdList(ids), "; release them first"));
  }
  ASSIGN_OR_RETURN(Statement del, db_->Prepare(kDeleteDeployment));
  del.BindText(1, name);
  RETURN_IF_ERROR(del.Run());
  if (db_->Changes() == 0) return absl::NotFoundError(absl::StrCat("deployment \"", name, "\" not found"));
  return txn.Commit();
}

// ---- Placements ------------------------------------------------------------------------------

absl::StatusOr<CommitResult> SqliteStore::CommitPlacements(const CommitRequest& request) {
  RETURN_IF_ERROR(ValidateCommit(request));
  const std::string fingerprint = Fingerprint(request);
  absl::MutexLock lock(&mu_);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  {
    ASSIGN_OR_RETURN(Statement seen, db_->Prepare(kSelectRequest));
    seen.BindText(1, request.request_id);
    ASSIGN_OR_RETURN(bool row, seen.Step());
    if (row) {
      if (seen.ColumnText(0) != fingerprint) {
        return absl::AlreadyExistsError(absl::StrCat(
            "request_id \"", request.request_id, "\" was already used for a different request"));
      }
      return ResultFromJson(seen.ColumnText(1));
    }
  }
  ASSIGN_OR_RETURN(Statement gen, db_->Prepare(kSelectGeneration));
  ASSIGN_OR_RETURN(bool gen_row, gen.Step());
  if (!gen_row) return absl::DataLossError("fleet_meta has no generation row");
  if (request.snapshot_generation > gen.ColumnInt(0)) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot_generation=", request.snapshot_generation,
                                                   " is newer than the fleet's ", gen.ColumnInt(0)));
  }
  // New bytes per GPU over the whole request.
  std::map<GpuRef, int64_t> demand;
  for (const Placement& p : request.placements) {
    for (const PlacementRank& r : p.ranks) demand[r.gpu] += r.bytes;
  }
  {
    ASSIGN_OR_RETURN(Statement gpu, db_->Prepare(kSelectGpuForCommit));
    ASSIGN_OR_RETURN(Statement usage, db_->Prepare(kUsageOfGpu));
    for (const auto& [ref, bytes] : demand) {
      gpu.BindText(1, ref.node).BindInt(2, ref.index);
      ASSIGN_OR_RETURN(bool row, gpu.Step());
      if (!row) {
        return absl::NotFoundError(absl::StrCat("gpu ", ref.node, "/", ref.index, " not found"));
      }
      const bool healthy = gpu.ColumnInt(0) != 0;
      const int64_t changed = gpu.ColumnInt(1);
      const std::string state = gpu.ColumnText(2);
      const int64_t memory = gpu.ColumnInt(3);
      RETURN_IF_ERROR(gpu.Reset());
      if (changed > request.snapshot_generation) {
        return absl::AbortedError(absl::StrCat("gpu ", ref.node, "/", ref.index,
                                               " changed at generation ", changed,
                                               " after the plan's snapshot at ",
                                               request.snapshot_generation, ": re-plan"));
      }
      if (state != "active" || !healthy) {
        return absl::AbortedError(absl::StrCat("gpu ", ref.node, "/", ref.index, " is not schedulable (node ",
                                               state, healthy ? "" : ", gpu unhealthy", "): re-plan"));
      }
      usage.BindInt(1, now).BindText(2, ref.node).BindInt(3, ref.index);
      ASSIGN_OR_RETURN(bool urow, usage.Step());
      const int64_t used = urow ? usage.ColumnInt(0) : 0;
      RETURN_IF_ERROR(usage.Reset());
      if (used + bytes > memory) {
        return absl::AbortedError(absl::StrCat("gpu ", ref.node, "/", ref.index, " would be over-committed: ",
                                               used, " + ", bytes, " > ", memory, " bytes: re-plan"));
      }
    }
  }
  ASSIGN_OR_RETURN(int64_t generation, BumpGeneration(*db_));
  CommitResult result{.generation = generation};
  const bool reserve = request.reserve_ttl_ms > 0;
  ASSIGN_OR_RETURN(Statement insert, db_->Prepare(kInsertPlacement));
  ASSIGN_OR_RETURN(Statement insert_gpu, db_->Prepare(kInsertPlacementGpu));
  for (const Placement& p : request.placements) {
    insert.BindText(1, p.deployment).BindText(2, p.model).BindInt(3, p.replica).BindInt(4, p.tp)
        .BindInt(5, p.pp).BindInt(6, p.ep).BindInt(7, static_cast<int64_t>(p.ranks.size()))
        .BindText(8, reserve ? "reserved" : "committed").BindText(9, request.request_id)
        .BindInt(10, now).BindInt(11, reserve ? now + request.reserve_ttl_ms : 0);
    RETURN_IF_ERROR(insert.Run());
    RETURN_IF_ERROR(insert.Reset());
    const int64_t id = db_->LastInsertRowId();
    result.placement_ids.push_back(id);
    for (const PlacementRank& r : p.ranks) {
      insert_gpu.BindInt(1, id).BindInt(2, r.rank).BindText(3, r.gpu.node).BindInt(4, r.gpu.index)
          .BindInt(5, r.bytes);
      RETURN_IF_ERROR(insert_gpu.Run());
      RETURN_IF_ERROR(insert_gpu.Reset());
    }
  }
  ASSIGN_OR_RETURN(Statement touch, db_->Prepare(kTouchGpu));
  for (const auto& [ref, bytes] : demand) {
    touch.BindText(1, ref.node).BindInt(2, ref.index).BindInt(3, generation);
    RETURN_IF_ERROR(touch.Run());
    RETURN_IF_ERROR(touch.Reset());
  }
  ASSIGN_OR_RETURN(Statement record, db_->Prepare(kInsertRequest));
  record.BindText(1, request.request_id).BindText(2, fingerprint)
      .BindText(3, ResultToJson(result)).BindInt(4, now);
  RETURN_IF_ERROR(record.Run());
  RETURN_IF_ERROR(txn.Commit());
  return result;
}

absl::StatusOr<CommitResult> SqliteStore::CommitReservation(const std::string& reservation_request_id) {
  RETURN_IF_ERROR(ValidateName("reservation_request_id", reservation_request_id));
  absl::MutexLock lock(&mu_);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSelectReservation));
  stmt.BindText(1, reservation_request_id);
  CommitResult result;
  std::vector<int64_t> to_commit;
  bool any = false;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    any = true;
    const int64_t id = stmt.ColumnInt(0);
    const std::string state = stmt.ColumnText(1);
    result.placement_ids.push_back(id);
    if (state == "committed") continue;  // a retry
    if (state == "released" || stmt.ColumnInt(2) <= now) {
      return absl::AbortedError(absl::StrCat("reservation \"", reservation_request_id,
                                             "\": placement ", id,
                                             state == "released" ? " was released" : " expired",
                                             ": re-plan"));
    }
    to_commit.push_back(id);
  }
  if (!any) {
    return absl::NotFoundError(absl::StrCat("reservation \"", reservation_request_id, "\" not found"));
  }
  if (to_commit.empty()) {
    ASSIGN_OR_RETURN(Statement gen, db_->Prepare(kSelectGeneration));
    ASSIGN_OR_RETURN(bool row, gen.Step());
    result.generation = row ? gen.ColumnInt(0) : 0;
    result.replayed = true;
    return result;
  }
  ASSIGN_OR_RETURN(result.generation, BumpGeneration(*db_));
  ASSIGN_OR_RETURN(Statement commit, db_->Prepare(kCommitPlacement));
  for (int64_t id : to_commit) {
    commit.BindInt(1, id);
    RETURN_IF_ERROR(commit.Run());
    RETURN_IF_ERROR(commit.Reset());
  }
  RETURN_IF_ERROR(txn.Commit());
  return result;
}

absl::StatusOr<Placement> SqliteStore::ReleasePlacement(int64_t id) {
  absl::MutexLock lock(&mu_);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Placement p, ReadPlacement(*db_, id));
  if (p.state == PlacementState::kReleased) return p;  // idempotent
  RETURN_IF_ERROR(ReleaseIds(*db_, {id}, now));
  ASSIGN_OR_RETURN(int64_t generation, BumpGeneration(*db_));
  ASSIGN_OR_RETURN(Statement touch, db_->Prepare(kTouchGpu));
  for (const PlacementRank& r : p.ranks) {
    touch.BindText(1, r.gpu.node).BindInt(2, r.gpu.index).BindInt(3, generation);
    RETURN_IF_ERROR(touch.Run());
    RETURN_IF_ERROR(touch.Reset());
  }
  RETURN_IF_ERROR(txn.Commit());
  p.state = PlacementState::kReleased;
  return p;
}

absl::StatusOr<Placement> SqliteStore::GetPlacement(int64_t id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kRead));
  return ReadPlacement(*db_, id);
}

absl::StatusOr<std::vector<Placement>> SqliteStore::ListPlacements(const PlacementFilter& filter) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kRead));
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSelectPlacements));
  stmt.BindText(1, filter.deployment).BindText(2, filter.model)
      .BindInt(3, filter.include_released ? 1 : 0);
  std::vector<int64_t> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ids.push_back(stmt.ColumnInt(0));
  }
  std::vector<Placement> out;
  const int64_t now = Now();
  for (int64_t id : ids) {
    ASSIGN_OR_RETURN(Placement p, ReadPlacement(*db_, id));
    // An expired reservation no longer holds anything.
    if (p.state == PlacementState::kReserved && p.expires_unix_ms <= now && !filter.include_released) {
      continue;
    }
    out.push_back(std::move(p));
  }
  return out;
}

// ---- Snapshot --------------------------------------------------------------------------------

absl::StatusOr<FleetSnapshot> SqliteStore::LoadSnapshot() {
  absl::MutexLock lock(&mu_);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kRead));
  FleetSnapshot snap;
  {
    ASSIGN_OR_RETURN(Statement gen, db_->Prepare(kSelectGeneration));
    ASSIGN_OR_RETURN(bool row, gen.Step());
    if (!row) return absl::DataLossError("fleet_meta has no generation row");
    snap.generation = gen.ColumnInt(0);
  }
  {
    ASSIGN_OR_RETURN(Statement types, db_->Prepare(kSelectGpuTypes));
    while (true) {
      ASSIGN_OR_RETURN(bool row, types.Step());
      if (!row) break;
      snap.gpu_types.push_back(ReadGpuType(types));
    }
  }
  {
    ASSIGN_OR_RETURN(Statement nodes, db_->Prepare(kSelectNodes));
    while (true) {
      ASSIGN_OR_RETURN(bool row, nodes.Step());
      if (!row) break;
      snap.nodes.push_back(ReadNode(nodes));
    }
  }
  {
    ASSIGN_OR_RETURN(Statement gpus, db_->Prepare(kSelectAllGpus));
    size_t ni = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool row, gpus.Step());
      if (!row) break;
      const std::string node = gpus.ColumnText(0);
      while (ni < snap.nodes.size() && snap.nodes[ni].name < node) ++ni;
      if (ni == snap.nodes.size() || snap.nodes[ni].name != node) {
        return absl::DataLossError(absl::StrCat("gpu of unknown node \"", node, "\""));
      }
      snap.nodes[ni].gpus.push_back(ReadGpu(gpus));
    }
  }
  ASSIGN_OR_RETURN(Statement usage, db_->Prepare(kUsageByGpu));
  usage.BindInt(1, now);
  RETURN_IF_ERROR(FillUsage(usage, snap.nodes));
  RETURN_IF_ERROR(txn.Commit());
  return snap;
}

}  // namespace fleetplan::storage
