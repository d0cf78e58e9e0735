#ifndef FLEETPLAN_SERVER_ESTIMATOR_SERVICE_H_
#define FLEETPLAN_SERVER_ESTIMATOR_SERVICE_H_

// fleetplan.v1.EstimatorService: the offline estimator behind RPCs. A model comes from the catalog
// or inline; a GPU from the registered types, the built-in table, or explicit bytes.

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "fleetplan/v1/estimator.grpc.pb.h"
#include "planner/common/mutex.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/gguf.h"
#include "planner/placement/plan.h"
#include "server/handler.h"

namespace fleetplan::server {

// A catalog model imported from a GGUF file's header (engine llama.cpp): the header as the
// estimator reads it, and the file llama-server loads (for launch lines; may be empty).
struct CatalogGguf {
  estimator::GgufFile file;
  std::string path;
};

// A catalog model as the estimator reads it: exactly one of a parsed config.json (spec) and a
// GGUF header (gguf).
struct CatalogEntry {
  std::shared_ptr<const estimator::ModelSpec> spec;
  std::shared_ptr<const CatalogGguf> gguf;
};

// Parsed catalog models and registered GPU sizes, so an Estimate costs microseconds rather than a
// store read and a JSON parse. Entries live `ttl` (a model deleted and re-imported by another
// process on the same database is seen after that), and this server's own catalog and inventory
// writes drop them at once (Invalidate). Thread-safe.
class EstimateCache {
 public:
  explicit EstimateCache(std::chrono::milliseconds ttl) : ttl_(ttl) {}
  std::optional<CatalogEntry> GetModel(const std::string& name, const std::string& quantization);
  void PutModel(const std::string& name, const std::string& quantization, CatalogEntry entry);
  // engine llama.cpp from a catalog config: the GGUF header `spec` converts to at one file type
  // (converting a 70B config costs milliseconds; an estimate from the header, microseconds). A
  // header converted from another spec (the model was re-read since) is not returned.
  std::shared_ptr<const estimator::GgufFile> GetConverted(
      const std::string& key, const std::shared_ptr<const estimator::ModelSpec>& spec);
  void PutConverted(const std::string& key, std::shared_ptr<const estimator::ModelSpec> spec,
                    std::shared_ptr<const estimator::GgufFile> file);
  std::optional<int64_t> GetGpuBytes(const std::string& type);
  void PutGpuBytes(const std::string& type, int64_t bytes);
  void Invalidate();

 private:
  template <typename T>
  struct Entry {
    T value;
    std::chrono::steady_clock::time_point expires;
  };
  const std::chrono::milliseconds ttl_;
  Mutex mu_;
  std::map<std::string, Entry<CatalogEntry>> models_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Entry<int64_t>> gpus_ ABSL_GUARDED_BY(mu_);
  struct Converted {
    std::shared_ptr<const estimator::ModelSpec> spec;  // what it was converted from
    std::shared_ptr<const estimator::GgufFile> file;
  };
  std::map<std::string, Entry<Converted>> converted_ ABSL_GUARDED_BY(mu_);
};

// A catalog model parsed (through `cache`): NOT_FOUND when the catalog lacks it.
absl::StatusOr<CatalogEntry> CatalogLookup(const ServiceDeps& deps, EstimateCache& cache,
                                           const std::string& name,
                                           const std::string& quantization);
// The same for a caller that needs a config.json: a GGUF model is INVALID_ARGUMENT naming it
// (engine llama.cpp only).
absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> CatalogModel(
    const ServiceDeps& deps, EstimateCache& cache, const std::string& name,
    const std::string& quantization);

// A stored GGUF header (ModelRecord.gguf_json) as the estimator reads it, checked as an
// EstimateRequest.gguf is.
absl::StatusOr<CatalogGguf> ParseStoredGguf(const std::string& gguf_json);

// `d` planned on `model`: its config's spec, or its GGUF header (engine llama.cpp, which a
// deployment that names no engine, `engine_given` false, gets). `model` must outlive the planning.
void UseCatalogModel(const CatalogEntry& model, bool engine_given, placement::DeploymentSpec& d);

// An inline config.json parsed: INVALID_ARGUMENT naming config_json when it does not parse.
absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> InlineModel(
    const std::string& config_json, const std::string& quantization);

// The speculative draft an engine config carries inline (vllm.draft_config_json or
// sglang.draft_config_json), parsed and pointed at by `vllm.draft` / `sglang.draft`, which it
// must outlive; null without one. INVALID_ARGUMENT naming the field when it does not parse, or
// when both carry one.
absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> DraftModel(
    const v1::VllmConfig& vllm_in, const v1::SglangConfig& sglang_in, estimator::VllmConfig& vllm,
    estimator::SglangConfig& sglang);

class EstimatorServiceImpl final : public v1::EstimatorService::CallbackService {
 public:
  EstimatorServiceImpl(ServiceDeps deps, EstimateCache* cache) : deps_(deps), cache_(cache) {}

  grpc::ServerUnaryReactor* Estimate(grpc::CallbackServerContext* c, const v1::EstimateRequest* req,
                                     v1::EstimateResponse* resp) override;
  grpc::ServerUnaryReactor* Budget(grpc::CallbackServerContext* c, const v1::BudgetRequest* req,
                                   v1::BudgetResponse* resp) override;
  grpc::ServerUnaryReactor* MaxConcurrency(grpc::CallbackServerContext* c,
                                           const v1::MaxConcurrencyRequest* req,
                                           v1::MaxConcurrencyResponse* resp) override;
  grpc::ServerUnaryReactor* MaxContext(grpc::CallbackServerContext* c,
                                       const v1::MaxContextRequest* req,
                                       v1::MaxContextResponse* resp) override;

 private:
  struct Resolved {
    std::shared_ptr<const estimator::ModelSpec> spec;  // null for a GGUF model
    // EstimateRequest.gguf, or a GGUF catalog model (llama.cpp)
    std::shared_ptr<const CatalogGguf> gguf;
    std::shared_ptr<const estimator::ModelSpec>
        draft;  // vllm. or sglang.draft_config_json; request points at it
    estimator::EstimateRequest request;
  };
  // `allow_gguf`: only Estimate answers for a GGUF model (llama.cpp); the inverse queries refuse
  // it by name.
  absl::StatusOr<Resolved> Resolve(const v1::EstimateRequest& req, bool allow_gguf = false);

  ServiceDeps deps_;
  EstimateCache* cache_;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_ESTIMATOR_SERVICE_H_
