#include "storage/sql_rows.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace fleetplan::storage::internal {
namespace {

using json = nlohmann::json;
using placement::Gpu;
using placement::GpuRef;
using placement::Node;
using placement::Placement;
using placement::PlacementRank;
using placement::PlacementState;

constexpr absl::string_view kBumpGeneration =
    "UPDATE fleet_meta SET value = value + 1 WHERE key = 'generation' RETURNING value";
constexpr absl::string_view kSelectGeneration =
    "SELECT value FROM fleet_meta WHERE key = 'generation'";
constexpr absl::string_view kReleasePlacement =
    "UPDATE placements SET state = 'released', released_unix_ms = ?2 WHERE id = ?1";
constexpr absl::string_view kTouchGpu =
    "UPDATE gpus SET changed_generation = ?3 WHERE node = ?1 AND idx = ?2";

PlacementState StateOf(const std::string& state) {
  return state == "committed"  ? PlacementState::kCommitted
         : state == "reserved" ? PlacementState::kReserved
                               : PlacementState::kReleased;
}

Placement ReadPlacementRow(const Statement& s) {
  Placement p;
  p.id = s.ColumnInt(0);
  p.deployment = s.ColumnText(1);
  p.model = s.ColumnText(2);
  p.replica = s.ColumnInt(3);
  p.tp = s.ColumnInt(4);
  p.pp = s.ColumnInt(5);
  p.ep = s.ColumnInt(6);
  p.state = StateOf(s.ColumnText(7));
  p.request_id = s.ColumnText(8);
  p.created_unix_ms = s.ColumnInt(9);
  p.expires_unix_ms = s.ColumnInt(10);
  return p;
}

}  // namespace

std::string ActivePredicate(absl::string_view a) {
  return absl::StrCat("(", a, ".state = 'committed' OR (", a, ".state = 'reserved' AND ", a,
                      ".expires_unix_ms > ?1))");
}

std::string ActiveRankPredicate(absl::string_view rank, absl::string_view placement) {
  return absl::StrCat("(", rank, ".released = 0 AND ", ActivePredicate(placement), ")");
}

placement::GpuType ReadGpuType(const Statement& s) {
  return placement::GpuType{.name = s.ColumnText(0),
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
  n.state = placement::ParseNodeState(s.ColumnText(5)).value_or(placement::NodeState::kDown);
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

placement::DeploymentRecord ReadDeployment(const Statement& s) {
  return placement::DeploymentRecord{.name = s.ColumnText(0),
                                     .model = s.ColumnText(1),
                                     .replicas = s.ColumnInt(2),
                                     .spec_json = s.ColumnText(3),
                                     .created_unix_ms = s.ColumnInt(4)};
}

placement::ModelRecord ReadModel(const Statement& s) {
  return placement::ModelRecord{.name = s.ColumnText(0),
                                .config_json = s.ColumnText(1),
                                .quantization = s.ColumnText(2),
                                .model_type = s.ColumnText(3),
                                .params = s.ColumnInt(4),
                                .weights_bytes = s.ColumnInt(5),
                                .kv_bytes_per_token = s.ColumnInt(6),
                                .created_unix_ms = s.ColumnInt(7),
                                .gguf_json = s.ColumnText(8)};
}

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

const std::string& UsageOfNodeRangeSql() {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "SELECT pg.node, pg.idx, p.state, SUM(pg.bytes) FROM placement_gpus pg "
      "JOIN placements p ON p.id = pg.placement_id WHERE pg.node >= ?2 AND pg.node <= ?3 AND ",
      ActiveRankPredicate("pg", "p"),
      " GROUP BY pg.node, pg.idx, p.state ORDER BY pg.node, pg.idx"));
  return *kSql;
}

absl::Status AttachGpus(Statement& gpus, std::vector<Node>& nodes, bool every_node_listed) {
  size_t ni = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, gpus.Step());
    if (!row) break;
    const std::string node = gpus.ColumnText(0);
    while (ni < nodes.size() && nodes[ni].name < node) ++ni;
    if (ni == nodes.size() || nodes[ni].name != node) {
      if (every_node_listed) {
        return absl::DataLossError(absl::StrCat("gpu of unknown node \"", node, "\""));
      }
      if (ni == nodes.size()) break;
      continue;  // a node between the first and last not in the set
    }
    nodes[ni].gpus.push_back(ReadGpu(gpus));
  }
  return absl::OkStatus();
}

absl::Status FillGpusAndUsage(Database& db, int64_t now, std::vector<Node>& nodes) {
  if (nodes.empty()) return absl::OkStatus();
  static const std::string* const kGpus = new std::string(absl::StrCat(
      "SELECT ", kGpuColumns, " FROM gpus WHERE node >= ?1 AND node <= ?2 ORDER BY node, idx"));
  {
    ASSIGN_OR_RETURN(ScopedStatement gpus, db.Cached(*kGpus));
    gpus->BindText(1, nodes.front().name).BindText(2, nodes.back().name);
    RETURN_IF_ERROR(AttachGpus(*gpus, nodes, /*every_node_listed=*/false));
  }
  ASSIGN_OR_RETURN(ScopedStatement usage, db.Cached(UsageOfNodeRangeSql()));
  usage->BindInt(1, now).BindText(2, nodes.front().name).BindText(3, nodes.back().name);
  return FillUsage(*usage, nodes);
}

absl::StatusOr<Node> ReadNodeWithGpus(Database& db, const std::string& name, int64_t now) {
  static const std::string* const kSql =
      new std::string(absl::StrCat("SELECT ", kNodeColumns, " FROM nodes WHERE name = ?1"));
  std::vector<Node> nodes;
  {
    ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(*kSql));
    stmt->BindText(1, name);
    ASSIGN_OR_RETURN(Node n,
                     ReadOne(*stmt, ReadNode,
                             absl::NotFoundError(absl::StrCat("node \"", name, "\" not found"))));
    nodes.push_back(std::move(n));
  }
  RETURN_IF_ERROR(FillGpusAndUsage(db, now, nodes));
  return std::move(nodes[0]);
}

absl::StatusOr<std::vector<int64_t>> ActiveIds(Database& db, absl::string_view sql, int64_t now,
                                               const std::string& key) {
  ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(sql));
  stmt->BindInt(1, now).BindText(2, key);
  return ReadRows(*stmt, [](const Statement& st) { return st.ColumnInt(0); });
}

absl::StatusOr<std::vector<Placement>> ReadPlacements(Database& db, absl::string_view sql,
                                                      absl::string_view ranks_sql,
                                                      const std::function<void(Statement&)>& bind) {
  std::vector<Placement> out;
  {
    ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(sql));
    bind(*stmt);
    ASSIGN_OR_RETURN(out, ReadRows(*stmt, ReadPlacementRow));
  }
  if (out.empty()) return out;
  ASSIGN_OR_RETURN(ScopedStatement ranks, db.Cached(ranks_sql));
  bind(*ranks);
  size_t pi = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, ranks->Step());
    if (!row) break;
    const int64_t id = ranks->ColumnInt(0);
    while (pi < out.size() && out[pi].id < id) ++pi;
    if (pi == out.size()) break;
    if (out[pi].id != id) continue;
    out[pi].ranks.push_back(PlacementRank{.rank = ranks->ColumnInt(1),
                                          .gpu = GpuRef{ranks->ColumnText(2), ranks->ColumnInt(3)},
                                          .bytes = ranks->ColumnInt(4)});
  }
  return out;
}

absl::StatusOr<Placement> ReadPlacement(Database& db, int64_t id) {
  static const std::string* const kOne = new std::string(
      absl::StrCat("SELECT ", kPlacementColumns, " FROM placements p WHERE p.id = ?1"));
  static constexpr absl::string_view kRanks =
      "SELECT placement_id, rank, node, idx, bytes FROM placement_gpus WHERE placement_id = ?1 "
      "ORDER BY placement_id, rank";
  ASSIGN_OR_RETURN(std::vector<Placement> one,
                   ReadPlacements(db, *kOne, kRanks, [&](Statement& s) { s.BindInt(1, id); }));
  if (one.empty()) return absl::NotFoundError(absl::StrCat("placement ", id, " not found"));
  return std::move(one[0]);
}

std::string IdList(const std::vector<int64_t>& ids) {
  constexpr size_t kShown = 10;
  std::vector<int64_t> shown(
      ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), kShown)));
  std::string out = absl::StrJoin(shown, ", ");
  if (ids.size() > kShown) absl::StrAppend(&out, " and ", ids.size() - kShown, " more");
  return out;
}

absl::StatusOr<int64_t> BumpGeneration(Database& db) {
  ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(kBumpGeneration));
  ASSIGN_OR_RETURN(int64_t generation,
                   ReadOne(
                       *stmt, [](const Statement& s) { return s.ColumnInt(0); },
                       absl::DataLossError("fleet_meta has no generation row")));
  RETURN_IF_ERROR(stmt->Run());
  return generation;
}

absl::Status RaiseClockFloor(Database& db, int64_t now) {
  static constexpr absl::string_view kSql =
      "INSERT INTO fleet_meta (key, value) VALUES ('clock_floor_ms', ?1) "
      "ON CONFLICT (key) DO UPDATE SET value = CASE WHEN excluded.value > fleet_meta.value "
      "THEN excluded.value ELSE fleet_meta.value END";
  ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(kSql));
  stmt->BindInt(1, now);
  return stmt->Run();
}

absl::StatusOr<int64_t> CurrentGeneration(Database& db) {
  ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(kSelectGeneration));
  return ReadOne(
      *stmt, [](const Statement& s) { return s.ColumnInt(0); },
      absl::DataLossError("fleet_meta has no generation row"));
}

absl::Status ReleaseIds(Database& db, const std::vector<int64_t>& ids, int64_t now) {
  ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(kReleasePlacement));
  for (int64_t id : ids) {
    stmt->BindInt(1, id).BindInt(2, now);
    RETURN_IF_ERROR(stmt->Run());
    RETURN_IF_ERROR(stmt->Reset());
  }
  return absl::OkStatus();
}

absl::Status TouchGpus(Database& db, const std::vector<GpuRef>& gpus, int64_t generation) {
  ASSIGN_OR_RETURN(ScopedStatement touch, db.Cached(kTouchGpu));
  for (const GpuRef& ref : gpus) {
    touch->BindText(1, ref.node).BindInt(2, ref.index).BindInt(3, generation);
    RETURN_IF_ERROR(touch->Run());
    RETURN_IF_ERROR(touch->Reset());
  }
  return absl::OkStatus();
}

std::string LabelsJson(const std::map<std::string, std::string>& labels) {
  json j = json::object();
  for (const auto& [k, v] : labels) j[k] = v;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace fleetplan::storage::internal
