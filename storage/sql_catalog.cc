// SqlStore: the model catalog and deployments.

#include <vector>

#include "absl/strings/str_cat.h"
#include "planner/common/status_macros.h"
#include "storage/sql_rows.h"
#include "storage/sql_store.h"
#include "storage/validation.h"

namespace fleetplan::storage {

using internal::ActiveIds;
using internal::ActivePredicate;
using internal::IdList;

namespace {

constexpr absl::string_view kInsertModel =
    "INSERT INTO models (name, config_json, quantization, model_type, params, weights_bytes, "
    "kv_bytes_per_token, created_unix_ms, gguf_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr absl::string_view kSelectModel =
    "SELECT name, config_json, quantization, model_type, params, weights_bytes, "
    "kv_bytes_per_token, created_unix_ms, gguf_json FROM models WHERE name = ?1";
constexpr absl::string_view kSelectModels =
    "SELECT name, '', quantization, model_type, params, weights_bytes, kv_bytes_per_token, "
    "created_unix_ms, CASE WHEN gguf_json = '' THEN '' ELSE '{}' END FROM models ORDER BY name";
constexpr absl::string_view kDeleteModel = "DELETE FROM models WHERE name = ?1";
constexpr absl::string_view kCountDeploymentsOfModel =
    "SELECT COUNT(*) FROM deployments WHERE model = ?1";

constexpr absl::string_view kInsertDeployment =
    "INSERT INTO deployments (name, model, replicas, spec_json, created_unix_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr absl::string_view kSelectDeployment =
    "SELECT name, model, replicas, spec_json, created_unix_ms FROM deployments WHERE name = ?1";
constexpr absl::string_view kSelectDeployments =
    "SELECT name, model, replicas, spec_json, created_unix_ms FROM deployments ORDER BY name";
constexpr absl::string_view kDeleteDeployment = "DELETE FROM deployments WHERE name = ?1";

const std::string& ActivePlacementsOfModelSql() {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "SELECT id FROM placements p WHERE p.model = ?2 AND ", ActivePredicate("p"), " ORDER BY id"));
  return *kSql;
}

const std::string& ActivePlacementsOfDeploymentSql() {
  static const std::string* const kSql =
      new std::string(absl::StrCat("SELECT id FROM placements p WHERE p.deployment = ?2 AND ",
                                   ActivePredicate("p"), " ORDER BY id"));
  return *kSql;
}

}  // namespace

// ---- Models ----------------------------------------------------------------------------------

absl::Status SqlStore::CreateModel(const ModelRecord& model, const WriteOptions& options) {
  RETURN_IF_ERROR(ValidateModel(model));
  MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  {
    ASSIGN_OR_RETURN(ScopedStatement stmt, db_->Cached(kInsertModel));
    stmt->BindText(1, model.name)
        .BindText(2, model.config_json)
        .BindText(3, model.quantization)
        .BindText(4, model.model_type)
        .BindInt(5, model.params)
        .BindInt(6, model.weights_bytes)
        .BindInt(7, model.kv_bytes_per_token)
        .BindInt(8, Now())
        .BindText(9, model.gguf_json);
    if (absl::Status s = stmt->Run(); !s.ok()) {
      if (s.code() == absl::StatusCode::kAlreadyExists) {
        return absl::AlreadyExistsError(absl::StrCat("model \"", model.name, "\" already exists"));
      }
      return s;
    }
  }
  if (options.validate_only) return absl::OkStatus();  // rolled back
  return txn.Commit();
}

absl::StatusOr<ModelRecord> SqlStore::GetModel(const std::string& name) {
  const ReadLease read = AcquireRead();
  ASSIGN_OR_RETURN(ScopedStatement stmt, read.db().Cached(kSelectModel));
  stmt->BindText(1, name);
  return internal::ReadOne(*stmt, internal::ReadModel,
                           absl::NotFoundError(absl::StrCat("model \"", name, "\" not found")));
}

absl::StatusOr<std::vector<ModelRecord>> SqlStore::ListModels() {
  const ReadLease read = AcquireRead();
  ASSIGN_OR_RETURN(ScopedStatement stmt, read.db().Cached(kSelectModels));
  return internal::ReadRows(*stmt, internal::ReadModel);
}

absl::Status SqlStore::DeleteModel(const std::string& name) {
  MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                   ActiveIds(*db_, ActivePlacementsOfModelSql(), Now(), name));
  if (!ids.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("model \"", name, "\" has placements ", IdList(ids), "; release them first"));
  }
  {
    ASSIGN_OR_RETURN(ScopedStatement deps, db_->Cached(kCountDeploymentsOfModel));
    deps->BindText(1, name);
    ASSIGN_OR_RETURN(bool has_row, deps->Step());
    if (has_row && deps->ColumnInt(0) > 0) {
      return absl::FailedPreconditionError(absl::StrCat("model \"", name, "\" is used by ",
                                                        deps->ColumnInt(0),
                                                        " deployments; delete them first"));
    }
  }
  {
    ASSIGN_OR_RETURN(ScopedStatement del, db_->Cached(kDeleteModel));
    del->BindText(1, name);
    RETURN_IF_ERROR(del->Run());
  }
  if (db_->Changes() == 0)
    return absl::NotFoundError(absl::StrCat("model \"", name, "\" not found"));
  return txn.Commit();
}

// ---- Deployments -----------------------------------------------------------------------------

absl::Status SqlStore::CreateDeployment(const DeploymentRecord& d) {
  RETURN_IF_ERROR(ValidateDeployment(d));
  MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  {
    ASSIGN_OR_RETURN(ScopedStatement stmt, db_->Cached(kInsertDeployment));
    stmt->BindText(1, d.name)
        .BindText(2, d.model)
        .BindInt(3, d.replicas)
        .BindText(4, d.spec_json.empty() ? "{}" : d.spec_json)
        .BindInt(5, Now());
    if (absl::Status s = stmt->Run(); !s.ok()) {
      if (s.code() == absl::StatusCode::kAlreadyExists) {
        return absl::AlreadyExistsError(absl::StrCat("deployment \"", d.name, "\" already exists"));
      }
      if (s.code() == absl::StatusCode::kFailedPrecondition) {
        return absl::NotFoundError(absl::StrCat("deployment \"", d.name, "\": model \"", d.model,
                                                "\" not found in the catalog"));
      }
      return s;
    }
  }
  return txn.Commit();
}

absl::StatusOr<DeploymentRecord> SqlStore::GetDeployment(const std::string& name) {
  const ReadLease read = AcquireRead();
  ASSIGN_OR_RETURN(ScopedStatement stmt, read.db().Cached(kSelectDeployment));
  stmt->BindText(1, name);
  return internal::ReadOne(
      *stmt, internal::ReadDeployment,
      absl::NotFoundError(absl::StrCat("deployment \"", name, "\" not found")));
}

absl::StatusOr<std::vector<DeploymentRecord>> SqlStore::ListDeployments() {
  const ReadLease read = AcquireRead();
  ASSIGN_OR_RETURN(ScopedStatement stmt, read.db().Cached(kSelectDeployments));
  return internal::ReadRows(*stmt, internal::ReadDeployment);
}

absl::Status SqlStore::DeleteDeployment(const std::string& name) {
  MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db_, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                   ActiveIds(*db_, ActivePlacementsOfDeploymentSql(), Now(), name));
  if (!ids.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("deployment \"", name, "\" has placements ",
                                                      IdList(ids), "; release them first"));
  }
  {
    ASSIGN_OR_RETURN(ScopedStatement del, db_->Cached(kDeleteDeployment));
    del->BindText(1, name);
    RETURN_IF_ERROR(del->Run());
  }
  if (db_->Changes() == 0)
    return absl::NotFoundError(absl::StrCat("deployment \"", name, "\" not found"));
  return txn.Commit();
}

}  // namespace fleetplan::storage
