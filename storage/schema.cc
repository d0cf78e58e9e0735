#include "storage/schema.h"

#include <algorithm>
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
      // v6: a released placement's ranks are marked released, so what a GPU holds is read through
      // a partial index of live ranks instead of the GPU's whole history (which grows with every
      // commit and release: the soak's latency grew with it). A trigger marks them, so no release
      // path can forget to.
      R"sql(
        ALTER TABLE placement_gpus ADD COLUMN released INTEGER NOT NULL DEFAULT 0;
        UPDATE placement_gpus SET released = 1
          WHERE placement_id IN (SELECT id FROM placements WHERE state = 'released');
        CREATE INDEX placement_gpus_live_by_gpu ON placement_gpus (node, idx) WHERE released = 0;
        CREATE TRIGGER release_ranks AFTER UPDATE OF state ON placements
        WHEN NEW.state = 'released' BEGIN
          UPDATE placement_gpus SET released = 1 WHERE placement_id = NEW.id;
        END;
      )sql",
      // v7: a catalog model imported from a GGUF file's header (llama.cpp) keeps that header as
      // JSON (fleetplan.v1.GgufModel) in gguf_json, and config_json is empty; exactly one is set.
      R"sql(
        ALTER TABLE models ADD COLUMN gguf_json TEXT NOT NULL DEFAULT '';
      )sql",
  };
  return *kMigrations;
}

// The same schema for PostgreSQL, migration for migration (entry i upgrades version i to i + 1,
// with the same tables, columns, keys and checks): BIGINT for SQLite's 64-bit INTEGER, DOUBLE
// PRECISION for REAL, text in the C collation so that names sort and page exactly as in SQLite,
// identity ids that are never reused (AUTOINCREMENT), and the v5 triggers in PL/pgSQL. v5 also adds
// what only a database shared by several servers needs: a GPU's committed bytes can never exceed
// its type's memory, whatever a server believed (SQLSTATE 23514, FAILED_PRECONDITION), and a
// NOTIFY on channel fleetplan_fleet whenever the fleet generation moves
// (storage/postgres_listener.h).
const std::vector<absl::string_view>& PostgresMigrations() {
  static const auto* const kMigrations = new std::vector<absl::string_view>{
      // v1
      R"sql(
        CREATE TABLE fleet_meta (
          key   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          value BIGINT NOT NULL
        );
        INSERT INTO fleet_meta (key, value) VALUES ('generation', 0);
      )sql",
      // v2
      R"sql(
        CREATE TABLE gpu_types (
          name TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          memory_bytes BIGINT NOT NULL CHECK (memory_bytes > 0),
          memory_bandwidth_bytes_per_second BIGINT NOT NULL CHECK (memory_bandwidth_bytes_per_second >= 0),
          bf16_tflops DOUBLE PRECISION NOT NULL CHECK (bf16_tflops >= 0),
          cost_per_hour DOUBLE PRECISION NOT NULL CHECK (cost_per_hour >= 0),
          nvlink_generation BIGINT NOT NULL CHECK (nvlink_generation >= 0)
        );
        CREATE TABLE nodes (
          name TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          pool TEXT COLLATE "C" NOT NULL,
          zone TEXT COLLATE "C" NOT NULL,
          rack TEXT COLLATE "C" NOT NULL,
          labels_json TEXT NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('active', 'cordoned', 'draining', 'down')),
          inter_node_bandwidth_bytes_per_second BIGINT NOT NULL,
          version BIGINT NOT NULL
        );
        CREATE INDEX nodes_by_pool ON nodes (pool, name);
        CREATE TABLE gpus (
          node TEXT COLLATE "C" NOT NULL REFERENCES nodes (name) ON DELETE CASCADE,
          idx BIGINT NOT NULL CHECK (idx >= 0),
          gpu_type TEXT COLLATE "C" NOT NULL REFERENCES gpu_types (name),
          nvlink_domain BIGINT NOT NULL CHECK (nvlink_domain >= 0),
          healthy BIGINT NOT NULL,
          uuid TEXT COLLATE "C" NOT NULL,
          changed_generation BIGINT NOT NULL,
          PRIMARY KEY (node, idx)
        );
        CREATE INDEX gpus_by_type ON gpus (gpu_type);
        CREATE TABLE models (
          name TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          config_json TEXT NOT NULL,
          quantization TEXT NOT NULL,
          model_type TEXT NOT NULL,
          params BIGINT NOT NULL,
          weights_bytes BIGINT NOT NULL,
          kv_bytes_per_token BIGINT NOT NULL,
          created_unix_ms BIGINT NOT NULL
        );
        CREATE TABLE placements (
          id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
          deployment TEXT COLLATE "C" NOT NULL,
          model TEXT COLLATE "C" NOT NULL,
          replica BIGINT NOT NULL,
          tp BIGINT NOT NULL,
          pp BIGINT NOT NULL,
          ep BIGINT NOT NULL,
          num_ranks BIGINT NOT NULL CHECK (num_ranks > 0),
          state TEXT NOT NULL CHECK (state IN ('reserved', 'committed', 'released')),
          request_id TEXT COLLATE "C" NOT NULL,
          created_unix_ms BIGINT NOT NULL,
          expires_unix_ms BIGINT NOT NULL,
          released_unix_ms BIGINT NOT NULL
        );
        CREATE INDEX placements_by_request ON placements (request_id);
        CREATE INDEX placements_by_deployment ON placements (deployment);
        CREATE INDEX placements_by_model ON placements (model);
        CREATE TABLE placement_gpus (
          placement_id BIGINT NOT NULL REFERENCES placements (id) ON DELETE CASCADE,
          rank BIGINT NOT NULL CHECK (rank >= 0),
          node TEXT COLLATE "C" NOT NULL,
          idx BIGINT NOT NULL,
          bytes BIGINT NOT NULL CHECK (bytes > 0),
          PRIMARY KEY (placement_id, rank)
        );
        CREATE INDEX placement_gpus_by_gpu ON placement_gpus (node, idx);
        CREATE TABLE requests (
          request_id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          fingerprint TEXT NOT NULL,
          result_json TEXT NOT NULL,
          created_unix_ms BIGINT NOT NULL
        );
      )sql",
      // v3
      R"sql(
        CREATE TABLE deployments (
          name TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          model TEXT COLLATE "C" NOT NULL REFERENCES models (name),
          replicas BIGINT NOT NULL CHECK (replicas >= 0),
          spec_json TEXT NOT NULL,
          created_unix_ms BIGINT NOT NULL
        );
      )sql",
      // v4
      R"sql(
        CREATE INDEX gpus_by_uuid ON gpus (uuid) WHERE uuid != '';
      )sql",
      // v5 (see the SQLite v5 for what node_changes is), and the capacity check.
      R"sql(
        CREATE TABLE node_changes (
          node TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          generation BIGINT NOT NULL
        );
        CREATE INDEX node_changes_by_generation ON node_changes (generation);
        INSERT INTO node_changes (node, generation)
          SELECT name, (SELECT value FROM fleet_meta WHERE key = 'generation') FROM nodes;
        CREATE INDEX placements_reserved_by_expiry ON placements (expires_unix_ms)
          WHERE state = 'reserved';
        CREATE FUNCTION fleetplan_note_node(changed TEXT) RETURNS void LANGUAGE sql AS $$
          INSERT INTO node_changes VALUES
            (changed, (SELECT value FROM fleet_meta WHERE key = 'generation'))
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation
        $$;
        CREATE FUNCTION fleetplan_note_row() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_TABLE_NAME = 'gpu_types' THEN
            PERFORM fleetplan_note_node('');
          ELSIF TG_TABLE_NAME = 'nodes' THEN
            PERFORM fleetplan_note_node(CASE WHEN TG_OP = 'DELETE' THEN OLD.name ELSE NEW.name END);
          ELSE
            PERFORM fleetplan_note_node(CASE WHEN TG_OP = 'DELETE' THEN OLD.node ELSE NEW.node END);
          END IF;
          RETURN NULL;
        END $$;
        CREATE TRIGGER note_node AFTER INSERT OR UPDATE OR DELETE ON nodes
          FOR EACH ROW EXECUTE FUNCTION fleetplan_note_row();
        CREATE TRIGGER note_gpu AFTER INSERT OR UPDATE OR DELETE ON gpus
          FOR EACH ROW EXECUTE FUNCTION fleetplan_note_row();
        CREATE TRIGGER note_rank_insert AFTER INSERT ON placement_gpus
          FOR EACH ROW EXECUTE FUNCTION fleetplan_note_row();
        CREATE TRIGGER note_gpu_types AFTER INSERT OR UPDATE OR DELETE ON gpu_types
          FOR EACH ROW EXECUTE FUNCTION fleetplan_note_row();
        CREATE FUNCTION fleetplan_note_placement() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO node_changes
            SELECT DISTINCT node, (SELECT value FROM fleet_meta WHERE key = 'generation')
            FROM placement_gpus WHERE placement_id = NEW.id
            ON CONFLICT (node) DO UPDATE SET generation = excluded.generation;
          RETURN NULL;
        END $$;
        CREATE TRIGGER note_placement_state AFTER UPDATE OF state, expires_unix_ms ON placements
          FOR EACH ROW EXECUTE FUNCTION fleetplan_note_placement();
        -- Replicas LISTEN: a moved generation is pushed to them when its transaction commits.
        CREATE FUNCTION fleetplan_notify_generation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('fleetplan_fleet', NEW.value::text);
          RETURN NULL;
        END $$;
        CREATE TRIGGER notify_generation AFTER UPDATE ON fleet_meta
          FOR EACH ROW WHEN (NEW.key = 'generation') EXECUTE FUNCTION fleetplan_notify_generation();

        -- Committed bytes on one GPU never exceed its type's memory.
        CREATE FUNCTION fleetplan_check_gpu(gpu_node TEXT, gpu_idx BIGINT) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
          used BIGINT;
          capacity BIGINT;
        BEGIN
          SELECT COALESCE(SUM(pg.bytes), 0) INTO used FROM placement_gpus pg
            JOIN placements p ON p.id = pg.placement_id
            WHERE pg.node = gpu_node AND pg.idx = gpu_idx AND p.state = 'committed';
          SELECT t.memory_bytes INTO capacity FROM gpus g JOIN gpu_types t ON t.name = g.gpu_type
            WHERE g.node = gpu_node AND g.idx = gpu_idx;
          IF capacity IS NOT NULL AND used > capacity THEN
            RAISE EXCEPTION 'gpu %/% would hold % committed bytes, more than its % bytes',
              gpu_node, gpu_idx, used, capacity USING ERRCODE = 'check_violation';
          END IF;
        END $$;
        CREATE FUNCTION fleetplan_check_rank() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM fleetplan_check_gpu(NEW.node, NEW.idx);
          RETURN NULL;
        END $$;
        CREATE FUNCTION fleetplan_check_placement() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          r RECORD;
        BEGIN
          FOR r IN SELECT node, idx FROM placement_gpus WHERE placement_id = NEW.id LOOP
            PERFORM fleetplan_check_gpu(r.node, r.idx);
          END LOOP;
          RETURN NULL;
        END $$;
        CREATE TRIGGER capacity_of_rank AFTER INSERT ON placement_gpus
          FOR EACH ROW EXECUTE FUNCTION fleetplan_check_rank();
        CREATE TRIGGER capacity_of_placement AFTER UPDATE OF state ON placements
          FOR EACH ROW WHEN (NEW.state = 'committed' AND OLD.state != 'committed')
          EXECUTE FUNCTION fleetplan_check_placement();
      )sql",
      // v6 (see the SQLite v6), and the capacity check reads live ranks only.
      R"sql(
        ALTER TABLE placement_gpus ADD COLUMN released BIGINT NOT NULL DEFAULT 0;
        UPDATE placement_gpus SET released = 1
          WHERE placement_id IN (SELECT id FROM placements WHERE state = 'released');
        CREATE INDEX placement_gpus_live_by_gpu ON placement_gpus (node, idx) WHERE released = 0;
        CREATE FUNCTION fleetplan_release_ranks() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE placement_gpus SET released = 1 WHERE placement_id = NEW.id;
          RETURN NULL;
        END $$;
        CREATE TRIGGER release_ranks AFTER UPDATE OF state ON placements
          FOR EACH ROW WHEN (NEW.state = 'released') EXECUTE FUNCTION fleetplan_release_ranks();
        CREATE OR REPLACE FUNCTION fleetplan_check_gpu(gpu_node TEXT, gpu_idx BIGINT) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
          used BIGINT;
          capacity BIGINT;
        BEGIN
          SELECT COALESCE(SUM(pg.bytes), 0) INTO used FROM placement_gpus pg
            JOIN placements p ON p.id = pg.placement_id
            WHERE pg.node = gpu_node AND pg.idx = gpu_idx AND pg.released = 0
              AND p.state = 'committed';
          SELECT t.memory_bytes INTO capacity FROM gpus g JOIN gpu_types t ON t.name = g.gpu_type
            WHERE g.node = gpu_node AND g.idx = gpu_idx;
          IF capacity IS NOT NULL AND used > capacity THEN
            RAISE EXCEPTION 'gpu %/% would hold % committed bytes, more than its % bytes',
              gpu_node, gpu_idx, used, capacity USING ERRCODE = 'check_violation';
          END IF;
        END $$;
      )sql",
      // v7 (see the SQLite v7).
      R"sql(
        ALTER TABLE models ADD COLUMN gguf_json TEXT NOT NULL DEFAULT '';
      )sql",
  };
  return *kMigrations;
}

}  // namespace

int64_t CurrentSchemaVersion() { return static_cast<int64_t>(Migrations().size()); }

absl::Status ConfigureConnection(Database& db) {
  if (db.dialect() != Dialect::kSqlite) return absl::OkStatus();
  // WAL: readers never block the writer and a crash never leaves a torn page in the main file.
  // synchronous=FULL: in WAL mode NORMAL is safe against a process crash but may lose the last
  // commits on power loss; a committed placement is a promise to a scheduler, so we pay one fsync
  // per commit for it. foreign_keys is off by default in SQLite and must be set per connection.
  // (PostgreSQL's defaults are already these: fsync and synchronous_commit on, keys enforced.)
  RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=ON"));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> MigrateDatabase(Database& db, int64_t target_version) {
  const bool sqlite = db.dialect() == Dialect::kSqlite;
  const std::vector<absl::string_view>& migrations = sqlite ? Migrations() : PostgresMigrations();
  if (migrations.size() != Migrations().size()) {
    return absl::InternalError("the PostgreSQL and SQLite schemas have different versions");
  }
  RETURN_IF_ERROR(ConfigureConnection(db));
  // A write transaction: on PostgreSQL it holds the writers' lock, so replicas starting together
  // migrate one after the other (the second finds the work done).
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db, Transaction::Mode::kWrite));
  int64_t version = 0;
  if (sqlite) {
    ASSIGN_OR_RETURN(version, db.QueryInt("PRAGMA user_version"));
  } else {
    RETURN_IF_ERROR(
        db.Exec("CREATE TABLE IF NOT EXISTS fleetplan_schema (version BIGINT NOT NULL)"));
    ASSIGN_OR_RETURN(version,
                     db.QueryInt("SELECT COALESCE(MAX(version), 0) FROM fleetplan_schema"));
  }
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
    absl::Status status = db.Exec(migrations[static_cast<size_t>(v)]);
    if (!status.ok()) {
      return absl::InternalError(
          absl::StrCat("migration to schema version ", v + 1, " failed: ", status.message()));
    }
  }
  const int64_t result = std::max(version, target_version);
  if (sqlite) {
    RETURN_IF_ERROR(db.Exec(absl::StrCat("PRAGMA user_version=", result)));
  } else {
    RETURN_IF_ERROR(
        db.Exec(absl::StrCat("DELETE FROM fleetplan_schema; INSERT INTO "
                             "fleetplan_schema (version) VALUES (",
                             result, ")")));
  }
  RETURN_IF_ERROR(txn.Commit());
  return result;
}

}  // namespace fleetplan::storage
