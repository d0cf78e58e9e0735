// SqlStore: GPU types, nodes and their GPUs.

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "planner/common/limits.h"
#include "planner/common/status_macros.h"
#include "storage/sql_rows.h"
#include "storage/sql_store.h"
#include "storage/validation.h"

namespace fleetplan::storage {

using internal::ActivePredicate;
using internal::BumpGeneration;
using internal::IdList;
using internal::ReadNodeWithGpus;
using placement::Gpu;

namespace {

constexpr absl::string_view kInsertGpuType =
    "INSERT INTO gpu_types (name, memory_bytes, memory_bandwidth_bytes_per_second, bf16_tflops, "
    "cost_per_hour, nvlink_generation) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
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
constexpr absl::string_view kDeleteNode = "DELETE FROM nodes WHERE name = ?1";
constexpr absl::string_view kInsertGpu =
    "INSERT INTO gpus (node, idx, gpu_type, nvlink_domain, healthy, uuid, changed_generation) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr absl::string_view kDeleteGpusOfNode = "DELETE FROM gpus WHERE node = ?1";
constexpr absl::string_view kTouchGpusOfNode =
    "UPDATE gpus SET changed_generation = ?2 WHERE node = ?1";

// Active placements on a node (?1 = now, ?2 = node), with their state.
const std::string& ActivePlacementsOnNodeSql() {
  static const std::string* const kSql = new std::string(
      absl::StrCat("SELECT DISTINCT p.id, p.state FROM placements p JOIN placement_gpus pg ON "
                   "pg.placement_id = p.id WHERE pg.node = ?2 AND ",
                   internal::ActiveRankPredicate("pg", "p"), " ORDER BY p.id"));
  return *kSql;
}

// A page's byte budget: far below gRPC's 16 MiB messages whatever the nodes hold.
constexpr int64_t kMaxPageBytes = 4 << 20;

int64_t ApproximateBytes(const Node& n) {
  int64_t bytes =
      static_cast<int64_t>(n.name.size() + n.pool.size() + n.zone.size() + n.rack.size()) + 64;
  for (const auto& [k, v] : n.labels) bytes += static_cast<int64_t>(k.size() + v.size()) + 8;
  for (const Gpu& g : n.gpus) bytes += static_cast<int64_t>(g.gpu_type.size() + g.uuid.size()) + 48;
  return bytes;
}

// GPU UUIDs are unique in the fleet (they join with DCGM metrics); a UUID another node holds is
// refused naming that node.
absl::Status CheckUuidsUnused(Database& db, const Node& n) {
  static constexpr absl::string_view kSql =
      "SELECT node, idx FROM gpus WHERE uuid = ?1 AND node != ?2 LIMIT 1";
  ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(kSql));
  for (const Gpu& g : n.gpus) {
    if (g.uuid.empty()) continue;
    stmt->BindText(1, g.uuid).BindText(2, n.name);
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (row) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node \"", n.name, "\": gpu ", g.index, " uuid \"", g.uuid, "\" is already gpu ",
          stmt->ColumnInt(1), " of node \"", stmt->ColumnText(0), "\""));
    }
    RETURN_IF_ERROR(stmt->Reset());
  }
  return absl::OkStatus();
}

absl::Status InsertGpus(Database& db, const Node& n, int64_t generation) {
  ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(kInsertGpu));
  for (const Gpu& g : n.gpus) {
    stmt->BindText(1, n.name)
        .BindInt(2, g.index)
        .BindText(3, g.gpu_type)
        .BindInt(4, g.nvlink_domain)
        .BindInt(5, g.healthy ? 1 : 0)
        .BindText(6, g.uuid)
        .BindInt(7, generation);
    absl::Status s = stmt->Run();
    if (!s.ok()) {
      if (s.code() == absl::StatusCode::kFailedPrecondition) {
        return absl::NotFoundError(absl::StrCat("node \"", n.name, "\": gpu ", g.index,
                                                " has unknown gpu_type \"", g.gpu_type, "\""));
      }
      return s;
    }
    RETURN_IF_ERROR(stmt->Reset());
  }
  return absl::OkStatus();
}

// Active placement ids on a node; `committed_only` leaves out reservations.
absl::StatusOr<std::vector<int64_t>> ActivePlacementsOnNode(Database& db, const std::string& node,
                                                            int64_t now, bool committed_only) {
  ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(ActivePlacementsOnNodeSql()));
  stmt->BindInt(1, now).BindText(2, node);
  std::vector<int64_t> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    if (committed_only && stmt->ColumnText(1) != "committed") continue;
    ids.push_back(stmt->ColumnInt(0));
  }
  return ids;
}

// A drain or take-down is refused, unless forced, while the node holds committed placements.
// (Reservations do not block it: committing one onto a node that is no longer active is ABORTED.)
absl::Status CheckNodeMayLeave(Database& db, const std::string& name, NodeState state, bool force,
                               int64_t now) {
  if (force || (state != NodeState::kDraining && state != NodeState::kDown))
    return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, ActivePlacementsOnNode(db, name, now, true));
  if (ids.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "node \"", name, "\" holds committed placements ", IdList(ids), "; release them or force"));
}

// The node row's columns, in kInsertNode's and kUpdateNode's order (?1 .. ?8).
void BindNodeColumns(Statement& stmt, const Node& n, int64_t version) {
  stmt.BindText(1, n.name)
      .BindText(2, n.pool)
      .BindText(3, n.zone)
      .BindText(4, n.rack)
      .BindText(5, internal::LabelsJson(n.labels))
      .BindText(6, placement::NodeStateName(n.state))
      .BindInt(7, n.inter_node_bandwidth_bytes_per_second)
      .BindInt(8, version);
}

// Writes a new node row and its GPUs (the caller validated it and bumped the generation).
absl::Status InsertNodeRow(Database& db, const Node& n, int64_t generation) {
  {
    ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(kInsertNode));
    BindNodeColumns(*stmt, n, 1);
    if (absl::Status s = stmt->Run(); !s.ok()) {
      if (s.code() == absl::StatusCode::kAlreadyExists) {
        return absl::AlreadyExistsError(absl::StrCat("node \"", n.name, "\" already exists"));
      }
      return s;
    }
  }
  return InsertGpus(db, n, generation);
}

// Replaces `current` (read in this transaction) with `node`: the drain rule for a state change,
// GPUs holding placements kept with their type, then the row and its GPUs rewritten.
absl::Status ReplaceNodeRow(Database& db, const Node& node, const Node& current, int64_t generation,
                            int64_t now) {
  // A state change through an update follows the same rule as SetNodeState without force.
  if (node.state != current.state) {
    RETURN_IF_ERROR(CheckNodeMayLeave(db, node.name, node.state, /*force=*/false, now));
  }
  // GPUs that hold placements must stay, with the same type.
  for (const Gpu& old : current.gpus) {
    if (old.committed_bytes == 0 && old.reserved_bytes == 0) continue;
    auto it = std::find_if(node.gpus.begin(), node.gpus.end(),
                           [&](const Gpu& g) { return g.index == old.index; });
    if (it == node.gpus.end() || it->gpu_type != old.gpu_type) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node \"", node.name, "\": gpu ", old.index,
          " holds placements; it cannot be removed or change type (release them first)"));
    }
  }
  {
    ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(kUpdateNode));
    BindNodeColumns(*stmt, node, current.version + 1);
    RETURN_IF_ERROR(stmt->Run());
  }
  {
    ASSIGN_OR_RETURN(ScopedStatement del, db.Cached(kDeleteGpusOfNode));
    del->BindText(1, node.name);
    RETURN_IF_ERROR(del->Run());
  }
  return InsertGpus(db, node, generation);
}

// The node's inventory (what an import sets) equals `b`'s: usage, versions and generations aside.
bool SameInventory(const Node& a, const Node& b) {
  if (a.pool != b.pool || a.zone != b.zone || a.rack != b.rack || a.labels != b.labels ||
      a.state != b.state ||
      a.inter_node_bandwidth_bytes_per_second != b.inter_node_bandwidth_bytes_per_second ||
      a.gpus.size() != b.gpus.size()) {
    return false;
  }
  for (size_t i = 0; i < a.gpus.size(); ++i) {
    const Gpu& x = a.gpus[i];
    const Gpu& y = b.gpus[i];
    if (x.index != y.index || x.gpu_type != y.gpu_type || x.nvlink_domain != y.nvlink_domain ||
        x.healthy != y.healthy || x.uuid != y.uuid) {
      return false;
    }
  }
  return true;
}

Node SortedGpus(Node n) {
  std::sort(n.gpus.begin(), n.gpus.end(),
            [](const Gpu& a, const Gpu& b) { return a.index < b.index; });
  return n;
}

// At most this many problems are named in one error (the count of the rest follows).
constexpr size_t kMaxProblemsShown = 20;

absl::Status ImportError(absl::StatusCode code, const std::vector<std::string>& problems,
                         size_t nodes) {
  std::vector<std::string> shown(
      problems.begin(),
      problems.begin() + static_cast<std::ptrdiff_t>(std::min(problems.size(), kMaxProblemsShown)));
  std::string more = problems.size() > kMaxProblemsShown
                         ? absl::StrCat("; and ", problems.size() - kMaxProblemsShown, " more")
                         : "";
  return absl::Status(
      code, absl::StrCat(problems.size(), " of ", nodes, " nodes refused, nothing was written: ",
                         absl::StrJoin(shown, "; "), more));
}

}  // namespace

// ---- GPU types -------------------------------------------------------------------------------

absl::Status SqlStore::CreateGpuType(const GpuType& type, const WriteOptions& options) {
  RETURN_IF_ERROR(ValidateGpuType(type));
  MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  {
    ASSIGN_OR_RETURN(ScopedStatement stmt, db_->Cached(kInsertGpuType));
    stmt->BindText(1, type.name)
        .BindInt(2, type.memory_bytes)
        .BindInt(3, type.memory_bandwidth_bytes_per_second)
        .BindDouble(4, type.bf16_tflops)
        .BindDouble(5, type.cost_per_hour)
        .BindInt(6, type.nvlink_generation);
    if (absl::Status s = stmt->Run(); !s.ok()) {
      if (s.code() == absl::StatusCode::kAlreadyExists) {
        return absl::AlreadyExistsError(
            absl::StrCat("gpu_type \"", type.name, "\" already exists"));
      }
      return s;
    }
  }
  RETURN_IF_ERROR(BumpGeneration(*db_).status());
  if (options.validate_only) return absl::OkStatus();  // rolled back
  return txn.Commit();
}

absl::StatusOr<GpuType> SqlStore::GetGpuType(const std::string& name) {
  const ReadLease read = AcquireRead();
  ASSIGN_OR_RETURN(ScopedStatement stmt, read.db().Cached(kSelectGpuType));
  stmt->BindText(1, name);
  return internal::ReadOne(*stmt, internal::ReadGpuType,
                           absl::NotFoundError(absl::StrCat("gpu_type \"", name, "\" not found")));
}

absl::StatusOr<std::vector<GpuType>> SqlStore::ListGpuTypes() {
  const ReadLease read = AcquireRead();
  ASSIGN_OR_RETURN(ScopedStatement stmt, read.db().Cached(internal::kSelectGpuTypes));
  return internal::ReadRows(*stmt, internal::ReadGpuType);
}

absl::Status SqlStore::DeleteGpuType(const std::string& name) {
  MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  {
    ASSIGN_OR_RETURN(ScopedStatement count, db_->Cached(kCountGpusOfType));
    count->BindText(1, name);
    ASSIGN_OR_RETURN(bool row, count->Step());
    if (row && count->ColumnInt(0) > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "gpu_type \"", name, "\" is used by ", count->ColumnInt(0), " GPUs; remove them first"));
    }
  }
  {
    ASSIGN_OR_RETURN(ScopedStatement del, db_->Cached(kDeleteGpuType));
    del->BindText(1, name);
    RETURN_IF_ERROR(del->Run());
  }
  if (db_->Changes() == 0)
    return absl::NotFoundError(absl::StrCat("gpu_type \"", name, "\" not found"));
  RETURN_IF_ERROR(BumpGeneration(*db_).status());
  return txn.Commit();
}

// ---- Nodes -----------------------------------------------------------------------------------

absl::StatusOr<Node> SqlStore::CreateNode(const Node& node, const WriteOptions& options) {
  RETURN_IF_ERROR(ValidateNode(node));
  Node stored = SortedGpus(node);
  MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(int64_t generation, BumpGeneration(*db_));
  RETURN_IF_ERROR(CheckUuidsUnused(*db_, stored));
  RETURN_IF_ERROR(InsertNodeRow(*db_, stored, generation));
  if (!options.validate_only) RETURN_IF_ERROR(txn.Commit());
  stored.version = 1;
  for (Gpu& g : stored.gpus) {
    g.changed_generation = generation;
    g.committed_bytes = g.reserved_bytes = 0;
  }
  return stored;
}

absl::StatusOr<std::vector<NodeImportResult>> SqlStore::ImportNodes(
    const std::vector<Node>& nodes, const WriteOptions& options) {
  if (nodes.empty()) return absl::InvalidArgumentError("nodes must not be empty");
  if (static_cast<int64_t>(nodes.size()) > limits::kMaxNodesPerImport) {
    return absl::InvalidArgumentError(absl::StrCat(nodes.size(), " nodes in one import, more than ",
                                                   limits::kMaxNodesPerImport, "; split the file"));
  }
  // Every node on its own, then the batch (names and GPU UUIDs unique within it).
  std::vector<std::string> problems;
  std::map<std::string, size_t> names;
  std::map<std::string, std::string> uuids;  // uuid -> "node/index"
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    if (absl::Status v = ValidateNode(n); !v.ok()) {
      problems.push_back(absl::StrCat("nodes[", i, "]: ", v.message()));
      continue;
    }
    if (auto [it, fresh] = names.emplace(n.name, i); !fresh) {
      problems.push_back(
          absl::StrCat("nodes[", i, "] \"", n.name, "\" repeats nodes[", it->second, "]"));
    }
    for (const Gpu& g : n.gpus) {
      if (g.uuid.empty()) continue;
      const std::string where = absl::StrCat(n.name, "/", g.index);
      if (auto [it, fresh] = uuids.emplace(g.uuid, where); !fresh) {
        problems.push_back(absl::StrCat("node \"", n.name, "\": gpu ", g.index, " uuid \"", g.uuid,
                                        "\" is also gpu ", it->second, " in this import"));
      }
    }
  }
  if (!problems.empty()) {
    return ImportError(absl::StatusCode::kInvalidArgument, problems, nodes.size());
  }
  MutexLock lock(&mu_);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(int64_t generation, BumpGeneration(*db_));
  std::vector<NodeImportResult> results;
  results.reserve(nodes.size());
  absl::StatusCode code = absl::StatusCode::kInvalidArgument;
  for (const Node& given : nodes) {
    const Node n = SortedGpus(given);
    NodeImportResult r{.name = n.name};
    absl::StatusOr<Node> current = ReadNodeWithGpus(*db_, n.name, now);
    absl::Status written;
    if (absl::IsNotFound(current.status())) {
      written = InSavepoint(*db_, [&] { return InsertNodeRow(*db_, n, generation); });
      r.outcome = NodeImportResult::Outcome::kCreated;
    } else if (!current.ok()) {
      return current.status();
    } else if (SameInventory(*current, n)) {
      r.outcome = NodeImportResult::Outcome::kUnchanged;
    } else {
      written =
          InSavepoint(*db_, [&] { return ReplaceNodeRow(*db_, n, *current, generation, now); });
      r.outcome = NodeImportResult::Outcome::kUpdated;
    }
    if (!written.ok()) {
      // Unknown GPU types (NOT_FOUND) and placement rules (FAILED_PRECONDITION) are the node's;
      // anything else is the store's.
      if (!absl::IsNotFound(written) && !absl::IsFailedPrecondition(written)) return written;
      if (absl::IsFailedPrecondition(written)) code = absl::StatusCode::kFailedPrecondition;
      problems.push_back(std::string(written.message()));
    }
    results.push_back(std::move(r));
  }
  // UUIDs unique across the fleet once the batch is in (a UUID may move between nodes within it).
  {
    // The list of holders: SQLite's GROUP_CONCAT is PostgreSQL's string_agg.
    static constexpr absl::string_view kDuplicateUuids[] = {
        "SELECT uuid, GROUP_CONCAT(node || '/' || idx, ', ') FROM gpus WHERE uuid != '' "
        "GROUP BY uuid HAVING COUNT(*) > 1 LIMIT 20",
        "SELECT uuid, string_agg(node || '/' || idx, ', ' ORDER BY node, idx) FROM gpus "
        "WHERE uuid != '' GROUP BY uuid HAVING COUNT(*) > 1 LIMIT 20"};
    ASSIGN_OR_RETURN(ScopedStatement dup,
                     db_->Cached(kDuplicateUuids[dialect_ == Dialect::kSqlite ? 0 : 1]));
    while (true) {
      ASSIGN_OR_RETURN(bool row, dup->Step());
      if (!row) break;
      problems.push_back(absl::StrCat("gpu uuid \"", dup->ColumnText(0), "\" would be held by ",
                                      dup->ColumnText(1)));
    }
  }
  if (!problems.empty()) return ImportError(code, problems, nodes.size());
  if (!options.validate_only) RETURN_IF_ERROR(txn.Commit());
  return results;
}

absl::StatusOr<Node> SqlStore::GetNode(const std::string& name) {
  const ReadLease read = AcquireRead();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(read.db(), Transaction::Mode::kRead));
  return ReadNodeWithGpus(read.db(), name, Now());
}

absl::StatusOr<NodePage> SqlStore::ListNodes(const NodeFilter& filter, int64_t page_size,
                                                const std::string& page_token) {
  if (page_size < 0 || page_size > limits::kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size=", page_size, " must be in [0, ",
                                                   limits::kMaxPageSize, "] (0: default)"));
  }
  if (page_size == 0) page_size = limits::kDefaultPageSize;
  for (const auto& [key, value] : filter.labels) {
    for (char c : key) {
      if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
        return absl::InvalidArgumentError(absl::StrCat("label filter key \"", Shown(key),
                                                       "\" may not hold quotes, backslashes or "
                                                       "control characters"));
      }
    }
  }
  std::string sql = absl::StrCat(
      "SELECT ", internal::kNodeColumns,
      " FROM nodes WHERE name > ?1 AND (?2 = '' OR pool = ?2) AND (?3 = '' OR zone = ?3) "
      "AND (?4 = '' OR EXISTS (SELECT 1 FROM gpus g WHERE g.node = nodes.name AND "
      "g.gpu_type = ?4))");
  int param = 6;
  for (size_t i = 0; i < filter.labels.size(); ++i) {
    // The label's value in the node's labels object: ?param is its JSON path (SQLite) or key.
    if (dialect_ == Dialect::kSqlite) {
      absl::StrAppend(&sql, " AND json_extract(labels_json, ?", param, ") = ?", param + 1);
    } else {
      absl::StrAppend(&sql, " AND (labels_json::jsonb ->> ?", param, ") = ?", param + 1);
    }
    param += 2;
  }
  absl::StrAppend(&sql, " ORDER BY name LIMIT ?5");
  const ReadLease read = AcquireRead();
  Database& db = read.db();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db, Transaction::Mode::kRead));
  NodePage page;
  {
    // Prepared per call: the text varies with the number of label filters.
    ASSIGN_OR_RETURN(Statement stmt_owned, db.Prepare(sql));
    Statement* stmt = &stmt_owned;
    stmt->BindText(1, page_token)
        .BindText(2, filter.pool)
        .BindText(3, filter.zone)
        .BindText(4, filter.gpu_type)
        .BindInt(5, page_size + 1);
    param = 6;
    for (const auto& [key, value] : filter.labels) {
      stmt->BindText(param, dialect_ == Dialect::kSqlite ? absl::StrCat("$.\"", key, "\"") : key)
          .BindText(param + 1, value);
      param += 2;
    }
    ASSIGN_OR_RETURN(page.nodes, internal::ReadRows(*stmt, internal::ReadNode));
  }
  if (static_cast<int64_t>(page.nodes.size()) > page_size) {
    page.nodes.resize(static_cast<size_t>(page_size));
    page.next_page_token = page.nodes.back().name;
  }
  RETURN_IF_ERROR(internal::FillGpusAndUsage(db, Now(), page.nodes));
  // Pages are bounded in bytes as well as rows, so a page always fits a response.
  int64_t bytes = 0;
  for (size_t i = 0; i < page.nodes.size(); ++i) {
    bytes += ApproximateBytes(page.nodes[i]);
    if (bytes > kMaxPageBytes && i > 0) {
      page.nodes.resize(i);
      page.next_page_token = page.nodes.back().name;
      break;
    }
  }
  return page;
}

absl::StatusOr<Node> SqlStore::UpdateNode(const Node& node, int64_t expected_version) {
  RETURN_IF_ERROR(ValidateNode(node));
  MutexLock lock(&mu_);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Node current, ReadNodeWithGpus(*db_, node.name, now));
  if (current.version != expected_version) {
    return absl::AbortedError(absl::StrCat("node \"", node.name, "\" is at version ",
                                           current.version, ", not ", expected_version,
                                           " (etag stale): re-read and retry"));
  }
  ASSIGN_OR_RETURN(int64_t generation, BumpGeneration(*db_));
  RETURN_IF_ERROR(CheckUuidsUnused(*db_, node));
  RETURN_IF_ERROR(ReplaceNodeRow(*db_, SortedGpus(node), current, generation, now));
  ASSIGN_OR_RETURN(Node updated, ReadNodeWithGpus(*db_, node.name, now));
  RETURN_IF_ERROR(txn.Commit());
  return updated;
}

absl::StatusOr<Node> SqlStore::SetNodeState(const std::string& name, NodeState state,
                                               bool force) {
  MutexLock lock(&mu_);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Node current, ReadNodeWithGpus(*db_, name, now));
  RETURN_IF_ERROR(CheckNodeMayLeave(*db_, name, state, force, now));
  ASSIGN_OR_RETURN(int64_t generation, BumpGeneration(*db_));
  {
    ASSIGN_OR_RETURN(ScopedStatement stmt, db_->Cached(kSetNodeState));
    stmt->BindText(1, name).BindText(2, placement::NodeStateName(state));
    RETURN_IF_ERROR(stmt->Run());
  }
  {
    ASSIGN_OR_RETURN(ScopedStatement touch, db_->Cached(kTouchGpusOfNode));
    touch->BindText(1, name).BindInt(2, generation);
    RETURN_IF_ERROR(touch->Run());
  }
  ASSIGN_OR_RETURN(Node updated, ReadNodeWithGpus(*db_, name, now));
  RETURN_IF_ERROR(txn.Commit());
  return updated;
}

absl::Status SqlStore::DeleteNode(const std::string& name, bool force) {
  MutexLock lock(&mu_);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Node current, ReadNodeWithGpus(*db_, name, now));
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, ActivePlacementsOnNode(*db_, name, now, false));
  if (!ids.empty()) {
    if (!force) {
      return absl::FailedPreconditionError(absl::StrCat("node \"", name, "\" holds placements ",
                                                        IdList(ids), "; release them or force"));
    }
    RETURN_IF_ERROR(internal::ReleaseIds(*db_, ids, now));
  }
  RETURN_IF_ERROR(BumpGeneration(*db_).status());
  {
    ASSIGN_OR_RETURN(ScopedStatement del, db_->Cached(kDeleteNode));
    del->BindText(1, name);
    RETURN_IF_ERROR(del->Run());
  }
  return txn.Commit();
}

}  // namespace fleetplan::storage
