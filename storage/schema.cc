#include "storage/schema.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "planner/common/status_macros.h"

namespace fleetplan::storage {
namespace {

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
      // v4: GPU UUIDs are looked up (uniqueness across nodes, joins with DCGM metrics).
      R"sql(
        CREATE INDEX gpus_by_uuid ON gpus (uuid) WHERE uuid != '';
      )sql",
      // v5: which nodes changed at which fleet generation, so a reader (the server's live fleet
      // state, storage/live_fleet.h) re-reads only those. Triggers note every write to a node, its
      // GPUs or the placements on them, whoever makes it, so no write path can forget to. The
      // generation noted is the one current when the row changed, which is the write's own
      // generation or the one before it (writes bump it first or last): readers ask for changes
      // at or after the generation they hold. The key '' (never a node name) means "GPU types
      // changed". Reservations that expire change usage without a write: readers find them by
      // expiry time (the partial index).
      R"sql(
        CREATE TABLE node_changes (
          node TEXT PRIMARY KEY NOT NULL,
          generation INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX node_changes_by_generation ON node_changes (generation);
        INSERT INTO node_changes (node, generation)
          SELECT name, (SELECT value FROM fleet_meta WHERE key = 'generation') FROM nodes;
        CREATE INDEX placements_reserved_by_expiry ON placements (expires_unix_ms)
          WHERE state = 'reserved';
        CREATE TRIGGER note_node_insert AFTER INSERT ON nodes BEGIN
          INSERT INTO node_changes VALUES
            (NEW.name, (SELECT value FROM fleet_meta WHERE key = 'generation'))
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
        END;
        CREATE TRIGGER note_node_update AFTER UPDATE ON nodes BEGIN
          INSERT INTO node_changes VALUES
            (NEW.name, (SELECT value FROM fleet_meta WHERE key = 'generation'))
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
        END;
        CREATE TRIGGER note_node_delete AFTER DELETE ON nodes BEGIN
          INSERT INTO node_changes VALUES
            (OLD.name, (SELECT value FROM fleet_meta WHERE key = 'generation'))
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
        END;
        CREATE TRIGGER note_gpu_insert AFTER INSERT ON gpus BEGIN
          INSERT INTO node_changes VALUES
            (NEW.node, (SELECT value FROM fleet_meta WHERE key = 'generation'))
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
        END;
        CREATE TRIGGER note_gpu_update AFTER UPDATE ON gpus BEGIN
          INSERT INTO node_changes VALUES
            (NEW.node, (SELECT value FROM fleet_meta WHERE key = 'generation'))
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
        END;
        CREATE TRIGGER note_gpu_delete AFTER DELETE ON gpus BEGIN
          INSERT INTO node_changes VALUES
            (OLD.node, (SELECT value FROM fleet_meta WHERE key = 'generation'))
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
        END;
        CREATE TRIGGER note_rank_insert AFTER INSERT ON placement_gpus BEGIN
          INSERT INTO node_changes VALUES
            (NEW.node, (SELECT value FROM fleet_meta WHERE key = 'generation'))
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
        END;
        CREATE TRIGGER note_placement_state AFTER UPDATE OF state, expires_unix_ms ON placements
        BEGIN
          INSERT INTO node_changes
            SELECT DISTINCT node, (SELECT value FROM fleet_meta WHERE key = 'generation')
            FROM placement_gpus WHERE placement_id = NEW.id AND true
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
        END;
        CREATE TRIGGER note_gpu_types_insert AFTER INSERT ON gpu_types BEGIN
          INSERT INTO node_changes VALUES
            ('', (SELECT value FROM fleet_meta WHERE key = 'generation'))
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
        END;
        CREATE TRIGGER note_gpu_types_update AFTER UPDATE ON gpu_types BEGIN
          INSERT INTO node_changes VALUES
            ('', (SELECT value FROM fleet_meta WHERE key = 'generation'))
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
        END;
        CREATE TRIGGER note_gpu_types_delete AFTER DELETE ON gpu_types BEGIN
          INSERT INTO node_changes VALUES
            ('', (SELECT value FROM fleet_meta WHERE key = 'generation'))
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
        END;
      )sql",
  };
  return *kMigrations;
}

}  // namespace

int64_t CurrentSchemaVersion() { return static_cast<int64_t>(Migrations().size()); }

absl::Status ConfigureConnection(Database& db) {
  // WAL: readers never block the writer and a crash never leaves a torn page in the main file.
  // synchronous=FULL: in WAL mode NORMAL is safe against a process crash but may lose the last
  // commits on power loss; a committed placement is a promise to a scheduler, so we pay one fsync
  // per commit for it. foreign_keys is off by default in SQLite and must be set per connection.
  RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=ON"));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> MigrateDatabase(Database& db, int64_t target_version) {
  RETURN_IF_ERROR(ConfigureConnection(db));
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

}  // namespace fleetplan::storage
