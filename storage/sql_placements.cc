// SqlStore: committing, reserving and releasing placements. The commit check loads each
// touched GPU as domain values and asks the planner's own rules (placement::Schedulable,
// placement::FitsOnGpu), so the store refuses exactly what the planner would not have planned.

#include <limits>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "planner/common/status_macros.h"
#include "planner/placement/fit.h"
#include "storage/sql_rows.h"
#include "storage/sql_store.h"
#include "storage/validation.h"

namespace fleetplan::storage {

using internal::ActivePredicate;
using internal::ActiveRankPredicate;
using internal::BumpGeneration;
using json = nlohmann::json;
using placement::GpuRef;
using placement::PlacementRank;
using placement::PlacementState;

namespace {

constexpr absl::string_view kSelectRequest =
    "SELECT fingerprint, result_json FROM requests WHERE request_id = ?1";
constexpr absl::string_view kInsertRequest =
    "INSERT INTO requests (request_id, fingerprint, result_json, created_unix_ms) "
    "VALUES (?1, ?2, ?3, ?4)";
constexpr absl::string_view kInsertPlacement =
    "INSERT INTO placements (deployment, model, replica, tp, pp, ep, num_ranks, state, request_id, "
    "created_unix_ms, expires_unix_ms, released_unix_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0) RETURNING id";
constexpr absl::string_view kInsertPlacementGpu =
    "INSERT INTO placement_gpus (placement_id, rank, node, idx, bytes) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr absl::string_view kSelectReservation =
    "SELECT id, state, expires_unix_ms FROM placements WHERE request_id = ?1 ORDER BY id";
constexpr absl::string_view kCommitPlacement =
    "UPDATE placements SET state = 'committed', expires_unix_ms = 0 WHERE id = ?1";
constexpr absl::string_view kUpsertDeployment =
    "INSERT INTO deployments (name, model, replicas, spec_json, created_unix_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET model = excluded.model, "
    "replicas = excluded.replicas, spec_json = excluded.spec_json";
constexpr absl::string_view kPlacementRanksOfRequest =
    "SELECT pg.placement_id, pg.node, pg.idx FROM placement_gpus pg JOIN placements p ON "
    "p.id = pg.placement_id WHERE p.request_id = ?1 ORDER BY pg.placement_id, pg.rank";

// What the commit check reads of one GPU (?1 = now, ?2 node, ?3 index), in one query: its health,
// change generation, node state, memory, and the bytes active placements hold on it.
const std::string& GpuForCommitSql() {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "SELECT g.healthy, g.changed_generation, n.state, t.memory_bytes, "
      "(SELECT COALESCE(SUM(pg.bytes), 0) FROM placement_gpus pg JOIN placements p ON "
      "p.id = pg.placement_id WHERE pg.node = ?2 AND pg.idx = ?3 AND ",
      ActiveRankPredicate("pg", "p"),
      ") FROM gpus g JOIN nodes n ON n.name = g.node JOIN gpu_types t ON t.name = g.gpu_type "
      "WHERE g.node = ?2 AND g.idx = ?3"));
  return *kSql;
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
  for (char c : j.dump(-1, ' ', false, json::error_handler_t::replace)) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return absl::StrFormat("%016x", hash);
}

CommitResult ResultFromJson(const std::string& text) {
  CommitResult r;
  json j = json::parse(text, nullptr, false);
  if (j.is_object()) {
    for (const json& id : j.value("ids", json::array())) {
      if (id.is_number_integer()) r.placement_ids.push_back(id.get<int64_t>());
    }
    const json& g = j.value("generation", json(0));
    r.generation = g.is_number_integer() ? g.get<int64_t>() : 0;
  }
  r.replayed = true;
  return r;
}

std::string ResultToJson(const CommitResult& r) {
  return json{{"ids", r.placement_ids}, {"generation", r.generation}}.dump();
}

// What the commit check knows about one GPU, read inside the transaction.
struct GpuForCommit {
  placement::NodeState node_state = placement::NodeState::kDown;
  bool healthy = false;
  int64_t changed_generation = 0;
  int64_t memory_bytes = 0;
  int64_t used_bytes = 0;  // active placements
};

absl::StatusOr<GpuForCommit> LoadGpuForCommit(Database& db, const GpuRef& ref, int64_t now) {
  GpuForCommit g;
  ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(GpuForCommitSql()));
  stmt->BindInt(1, now).BindText(2, ref.node).BindInt(3, ref.index);
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("gpu ", ref.node, "/", ref.index, " not found"));
  g.healthy = stmt->ColumnInt(0) != 0;
  g.changed_generation = stmt->ColumnInt(1);
  g.node_state =
      placement::ParseNodeState(stmt->ColumnText(2)).value_or(placement::NodeState::kDown);
  g.memory_bytes = stmt->ColumnInt(3);
  g.used_bytes = stmt->ColumnInt(4);
  return g;
}

absl::Status CheckSchedulable(const GpuRef& ref, const GpuForCommit& g) {
  if (placement::Schedulable(g.node_state, g.healthy)) return absl::OkStatus();
  return absl::AbortedError(absl::StrCat(
      "gpu ", ref.node, "/", ref.index, " is not schedulable (node ",
      placement::NodeStateName(g.node_state), g.healthy ? "" : ", gpu unhealthy", "): re-plan"));
}

absl::Status WriteDeployments(Database& db, const std::vector<DeploymentRecord>& deployments,
                              int64_t now) {
  ASSIGN_OR_RETURN(ScopedStatement stmt, db.Cached(kUpsertDeployment));
  for (const DeploymentRecord& d : deployments) {
    stmt->BindText(1, d.name)
        .BindText(2, d.model)
        .BindInt(3, d.replicas)
        .BindText(4, d.spec_json.empty() ? "{}" : d.spec_json)
        .BindInt(5, now);
    if (absl::Status s = stmt->Run(); !s.ok()) {
      if (s.code() == absl::StatusCode::kFailedPrecondition) {
        return absl::NotFoundError(absl::StrCat("deployment \"", d.name, "\": model \"", d.model,
                                                "\" not found in the catalog"));
      }
      return s;
    }
    RETURN_IF_ERROR(stmt->Reset());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CommitResult> SqlStore::CommitPlacements(const CommitRequest& request) {
  RETURN_IF_ERROR(ValidateCommit(request));
  absl::StatusOr<CommitResult> result;
  RETURN_IF_ERROR(InWriteGroup([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    result = CommitPlacementsLocked(request);
    return result.status();
  }));
  return result;
}

absl::StatusOr<CommitResult> SqlStore::CommitPlacementsLocked(const CommitRequest& request) {
  const std::string fingerprint = Fingerprint(request);
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  {
    ASSIGN_OR_RETURN(ScopedStatement seen, db_->Cached(kSelectRequest));
    seen->BindText(1, request.request_id);
    ASSIGN_OR_RETURN(bool row, seen->Step());
    if (row) {
      if (seen->ColumnText(0) != fingerprint) {
        return absl::AlreadyExistsError(absl::StrCat(
            "request_id \"", request.request_id, "\" was already used for a different request"));
      }
      return ResultFromJson(seen->ColumnText(1));
    }
  }
  ASSIGN_OR_RETURN(int64_t current, internal::CurrentGeneration(*db_));
  if (request.snapshot_generation > current) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot_generation=", request.snapshot_generation,
                     " is newer than the fleet's ", current));
  }
  // New bytes per GPU over the whole request.
  std::map<GpuRef, int64_t> demand;
  for (const Placement& p : request.placements) {
    for (const PlacementRank& r : p.ranks) demand[r.gpu] += r.bytes;
  }
  for (const auto& [ref, bytes] : demand) {
    ASSIGN_OR_RETURN(GpuForCommit g, LoadGpuForCommit(*db_, ref, now));
    if (g.changed_generation > request.snapshot_generation) {
      return absl::AbortedError(absl::StrCat(
          "gpu ", ref.node, "/", ref.index, " changed at generation ", g.changed_generation,
          " after the plan's snapshot at ", request.snapshot_generation, ": re-plan"));
    }
    RETURN_IF_ERROR(CheckSchedulable(ref, g));
    if (!placement::FitsOnGpu(placement::FreeBytes(g.memory_bytes, g.used_bytes), bytes)) {
      return absl::AbortedError(absl::StrCat("gpu ", ref.node, "/", ref.index,
                                             " would be over-committed: ", g.used_bytes, " + ",
                                             bytes, " > ", g.memory_bytes, " bytes: re-plan"));
    }
  }
  RETURN_IF_ERROR(WriteDeployments(*db_, request.deployments, now));
  RETURN_IF_ERROR(internal::RaiseClockFloor(*db_, now));
  ASSIGN_OR_RETURN(int64_t generation, BumpGeneration(*db_));
  CommitResult result{.generation = generation};
  const bool reserve = request.reserve_ttl_ms > 0;
  {
    ASSIGN_OR_RETURN(ScopedStatement insert, db_->Cached(kInsertPlacement));
    ASSIGN_OR_RETURN(ScopedStatement insert_gpu, db_->Cached(kInsertPlacementGpu));
    for (const Placement& p : request.placements) {
      insert->BindText(1, p.deployment)
          .BindText(2, p.model)
          .BindInt(3, p.replica)
          .BindInt(4, p.tp)
          .BindInt(5, p.pp)
          .BindInt(6, p.ep)
          .BindInt(7, static_cast<int64_t>(p.ranks.size()))
          .BindText(8, reserve ? "reserved" : "committed")
          .BindText(9, request.request_id)
          .BindInt(10, now)
          .BindInt(11, reserve ? now + request.reserve_ttl_ms : 0);
      ASSIGN_OR_RETURN(const int64_t id,
                       internal::ReadOne(
                           *insert, [](const Statement& st) { return st.ColumnInt(0); },
                           absl::InternalError("INSERT ... RETURNING id returned no row")));
      RETURN_IF_ERROR(insert->Run());
      RETURN_IF_ERROR(insert->Reset());
      result.placement_ids.push_back(id);
      for (const PlacementRank& r : p.ranks) {
        insert_gpu->BindInt(1, id)
            .BindInt(2, r.rank)
            .BindText(3, r.gpu.node)
            .BindInt(4, r.gpu.index)
            .BindInt(5, r.bytes);
        RETURN_IF_ERROR(insert_gpu->Run());
        RETURN_IF_ERROR(insert_gpu->Reset());
      }
    }
  }
  std::vector<GpuRef> touched;
  for (const auto& [ref, bytes] : demand) touched.push_back(ref);
  RETURN_IF_ERROR(internal::TouchGpus(*db_, touched, generation));
  {
    ASSIGN_OR_RETURN(ScopedStatement record, db_->Cached(kInsertRequest));
    record->BindText(1, request.request_id)
        .BindText(2, fingerprint)
        .BindText(3, ResultToJson(result))
        .BindInt(4, now);
    RETURN_IF_ERROR(record->Run());
  }
  RETURN_IF_ERROR(txn.Commit());
  return result;
}

absl::StatusOr<CommitResult> SqlStore::CommitReservation(
    const std::string& reservation_request_id, const std::vector<DeploymentRecord>& deployments) {
  RETURN_IF_ERROR(ValidateName("reservation_request_id", reservation_request_id));
  for (const DeploymentRecord& d : deployments) RETURN_IF_ERROR(ValidateDeployment(d));
  absl::StatusOr<CommitResult> result;
  RETURN_IF_ERROR(InWriteGroup([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    result = CommitReservationLocked(reservation_request_id, deployments);
    return result.status();
  }));
  return result;
}

absl::StatusOr<CommitResult> SqlStore::CommitReservationLocked(
    const std::string& reservation_request_id, const std::vector<DeploymentRecord>& deployments) {
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  CommitResult result;
  std::vector<int64_t> to_commit;
  bool any = false;
  {
    ASSIGN_OR_RETURN(ScopedStatement stmt, db_->Cached(kSelectReservation));
    stmt->BindText(1, reservation_request_id);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      any = true;
      const int64_t id = stmt->ColumnInt(0);
      const std::string state = stmt->ColumnText(1);
      result.placement_ids.push_back(id);
      if (state == "committed") continue;  // a retry
      if (state == "released" || stmt->ColumnInt(2) <= now) {
        return absl::AbortedError(
            absl::StrCat("reservation \"", reservation_request_id, "\": placement ", id,
                         state == "released" ? " was released" : " expired", ": re-plan"));
      }
      to_commit.push_back(id);
    }
  }
  if (!any) {
    return absl::NotFoundError(
        absl::StrCat("reservation \"", reservation_request_id, "\" not found"));
  }
  if (to_commit.empty()) {
    ASSIGN_OR_RETURN(result.generation, internal::CurrentGeneration(*db_));
    result.replayed = true;
    return result;
  }
  // The reserved GPUs must still be schedulable: a node drained or a GPU marked unhealthy after
  // the reservation was made takes no new placements.
  std::vector<GpuRef> gpus;
  {
    ASSIGN_OR_RETURN(ScopedStatement ranks, db_->Cached(kPlacementRanksOfRequest));
    ranks->BindText(1, reservation_request_id);
    while (true) {
      ASSIGN_OR_RETURN(bool row, ranks->Step());
      if (!row) break;
      gpus.push_back(GpuRef{ranks->ColumnText(1), ranks->ColumnInt(2)});
    }
  }
  for (const GpuRef& ref : gpus) {
    ASSIGN_OR_RETURN(GpuForCommit g, LoadGpuForCommit(*db_, ref, now));
    RETURN_IF_ERROR(CheckSchedulable(ref, g));
  }
  RETURN_IF_ERROR(WriteDeployments(*db_, deployments, now));
  RETURN_IF_ERROR(internal::RaiseClockFloor(*db_, now));
  ASSIGN_OR_RETURN(result.generation, BumpGeneration(*db_));
  {
    ASSIGN_OR_RETURN(ScopedStatement commit, db_->Cached(kCommitPlacement));
    for (int64_t id : to_commit) {
      commit->BindInt(1, id);
      RETURN_IF_ERROR(commit->Run());
      RETURN_IF_ERROR(commit->Reset());
    }
  }
  RETURN_IF_ERROR(txn.Commit());
  return result;
}

absl::StatusOr<Placement> SqlStore::ReleasePlacement(int64_t id) {
  absl::StatusOr<Placement> result;
  RETURN_IF_ERROR(InWriteGroup([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    result = ReleasePlacementLocked(id);
    return result.status();
  }));
  return result;
}

absl::StatusOr<Placement> SqlStore::ReleasePlacementLocked(int64_t id) {
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(Placement p, internal::ReadPlacement(*db_, id));
  if (p.state == PlacementState::kReleased) return p;  // idempotent
  RETURN_IF_ERROR(internal::ReleaseIds(*db_, {id}, now));
  RETURN_IF_ERROR(internal::RaiseClockFloor(*db_, now));
  ASSIGN_OR_RETURN(int64_t generation, BumpGeneration(*db_));
  std::vector<GpuRef> gpus;
  for (const PlacementRank& r : p.ranks) gpus.push_back(r.gpu);
  RETURN_IF_ERROR(internal::TouchGpus(*db_, gpus, generation));
  RETURN_IF_ERROR(txn.Commit());
  p.state = PlacementState::kReleased;
  return p;
}

absl::StatusOr<Placement> SqlStore::GetPlacement(int64_t id) {
  const ReadLease read = AcquireRead();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(read.db(), Transaction::Mode::kRead));
  return internal::ReadPlacement(read.db(), id);
}

absl::StatusOr<std::vector<Placement>> SqlStore::ListPlacements(const PlacementFilter& filter) {
  if (filter.after_id < 0 || filter.limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("after_id=", filter.after_id, " and limit=", filter.limit, " must be >= 0"));
  }
  // ?1 = now, ?2 deployment, ?3 model, ?4 include released, ids in (?5, ?6]. Without released
  // ones, an expired reservation no longer holds anything and is left out too.
  static const std::string* const kWhere = new std::string(absl::StrCat(
      " WHERE (?2 = '' OR p.deployment = ?2) AND (?3 = '' OR p.model = ?3) AND (?4 = 1 OR ",
      ActivePredicate("p"), ") AND p.id > ?5 AND p.id <= ?6"));
  static const std::string* const kList = new std::string(absl::StrCat(
      "SELECT ", internal::kPlacementColumns, " FROM placements p", *kWhere, " ORDER BY p.id"));
  static const std::string* const kRanks = new std::string(absl::StrCat(
      "SELECT pg.placement_id, pg.rank, pg.node, pg.idx, pg.bytes FROM placement_gpus pg "
      "JOIN placements p ON p.id = pg.placement_id",
      *kWhere, " ORDER BY pg.placement_id, pg.rank"));
  // The page's last id, so both queries read exactly the page.
  static const std::string* const kPageEnd =
      new std::string(absl::StrCat("SELECT MAX(id) FROM (SELECT p.id AS id FROM placements p",
                                   *kWhere, " ORDER BY p.id LIMIT ?7) AS page"));
  const ReadLease read = AcquireRead();
  Database& db = read.db();
  const int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db, Transaction::Mode::kRead));
  auto bind = [&](Statement& s, int64_t upper) {
    s.BindInt(1, now)
        .BindText(2, filter.deployment)
        .BindText(3, filter.model)
        .BindInt(4, filter.include_released ? 1 : 0)
        .BindInt(5, filter.after_id)
        .BindInt(6, upper);
  };
  int64_t upper = std::numeric_limits<int64_t>::max();
  if (filter.limit > 0) {
    ASSIGN_OR_RETURN(ScopedStatement end, db.Cached(*kPageEnd));
    bind(*end, upper);
    end->BindInt(7, filter.limit);
    ASSIGN_OR_RETURN(bool row, end->Step());
    if (!row || end->ColumnIsNull(0)) return std::vector<Placement>{};
    upper = end->ColumnInt(0);
  }
  return internal::ReadPlacements(db, *kList, *kRanks, [&](Statement& s) { bind(s, upper); });
}

}  // namespace fleetplan::storage
