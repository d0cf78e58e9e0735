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
#include "server/handler.h"

namespace fleetplan::server {

// Parsed catalog models and registered GPU sizes, so an Estimate costs microseconds rather than a
// store read and a JSON parse. Entries live `ttl` (a model deleted and re-imported by another
// process on the same database is seen after that), and this server's own catalog and inventory
// writes drop them at once (Invalidate). Thread-safe.
class EstimateCache {
 public:
  explicit EstimateCache(std::chrono::milliseconds ttl) : ttl_(ttl) {}
  std::shared_ptr<const estimator::ModelSpec> GetModel(const std::string& name,
                                                       const std::string& quantization);
  void PutModel(const std::string& name, const std::string& quantization,
                std::shared_ptr<const estimator::ModelSpec> spec);
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
  std::map<std::string, Entry<std::shared_ptr<const estimator::ModelSpec>>> models_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, Entry<int64_t>> gpus_ ABSL_GUARDED_BY(mu_);
};

// A catalog model parsed (through `cache`): NOT_FOUND when the catalog lacks it.
absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> CatalogModel(
    const ServiceDeps& deps, EstimateCache& cache, const std::string& name,
    const std::string& quantization);

// An inline config.json parsed: INVALID_ARGUMENT naming config_json when it does not parse.
absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> InlineModel(
    const std::string& config_json, const std::string& quantization);

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
    std::optional<estimator::GgufFile> gguf;           // EstimateRequest.gguf (llama.cpp)
    std::shared_ptr<const estimator::ModelSpec>
        draft;  // vllm.draft_config_json; request points at it
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
