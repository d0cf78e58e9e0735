#include "server/estimator_service.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/gpu_catalog.h"
#include "planner/estimator/inverse.h"
#include "planner/estimator/llama_cpp.h"
#include "planner/estimator/openvino.h"
#include "planner/estimator/sglang.h"
#include "server/convert.h"

namespace fleetplan::server {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

std::optional<CatalogEntry> EstimateCache::GetModel(const std::string& name,
                                                    const std::string& quantization) {
  MutexLock lock(&mu_);
  auto it = models_.find(name + '\n' + quantization);
  if (it == models_.end() || it->second.expires < std::chrono::steady_clock::now())
    return std::nullopt;
  return it->second.value;
}

void EstimateCache::PutModel(const std::string& name, const std::string& quantization,
                             CatalogEntry entry) {
  MutexLock lock(&mu_);
  models_[name + '\n' + quantization] = {std::move(entry), std::chrono::steady_clock::now() + ttl_};
}

std::shared_ptr<const estimator::GgufFile> EstimateCache::GetConverted(
    const std::string& key, const std::shared_ptr<const estimator::ModelSpec>& spec) {
  MutexLock lock(&mu_);
  auto it = converted_.find(key);
  if (it == converted_.end() || it->second.expires < std::chrono::steady_clock::now() ||
      it->second.value.spec != spec) {
    return nullptr;
  }
  return it->second.value.file;
}

void EstimateCache::PutConverted(const std::string& key,
                                 std::shared_ptr<const estimator::ModelSpec> spec,
                                 std::shared_ptr<const estimator::GgufFile> file) {
  MutexLock lock(&mu_);
  converted_[key] = {{std::move(spec), std::move(file)}, std::chrono::steady_clock::now() + ttl_};
}

std::optional<int64_t> EstimateCache::GetGpuBytes(const std::string& type) {
  MutexLock lock(&mu_);
  auto it = gpus_.find(type);
  if (it == gpus_.end() || it->second.expires < std::chrono::steady_clock::now())
    return std::nullopt;
  return it->second.value;
}

void EstimateCache::PutGpuBytes(const std::string& type, int64_t bytes) {
  MutexLock lock(&mu_);
  gpus_[type] = {bytes, std::chrono::steady_clock::now() + ttl_};
}

void InvalidateEstimates(const ServiceDeps& deps) {
  if (deps.estimates != nullptr) deps.estimates->Invalidate();
}

void EstimateCache::Invalidate() {
  MutexLock lock(&mu_);
  models_.clear();
  gpus_.clear();
  converted_.clear();
}

absl::StatusOr<CatalogGguf> ParseStoredGguf(const std::string& gguf_json) {
  v1::GgufModel proto;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // a header stored by a newer server
  if (const auto s = google::protobuf::util::JsonStringToMessage(gguf_json, &proto, options);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("gguf_json: ", std::string(s.message())));
  }
  ASSIGN_OR_RETURN(estimator::GgufFile file, FromProto(proto));
  return CatalogGguf{std::move(file), proto.path()};
}

absl::StatusOr<CatalogEntry> CatalogLookup(const ServiceDeps& deps, EstimateCache& cache,
                                           const std::string& name,
                                           const std::string& quantization) {
  if (std::optional<CatalogEntry> cached = cache.GetModel(name, quantization)) return *cached;
  ASSIGN_OR_RETURN(placement::ModelRecord m, deps.store->GetModel(name));
  CatalogEntry entry;
  if (!m.gguf_json.empty()) {
    absl::StatusOr<CatalogGguf> gguf = ParseStoredGguf(m.gguf_json);
    if (!gguf.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model \"", m.name, "\": ", gguf.status().message()));
    }
    entry.gguf = std::make_shared<const CatalogGguf>(*std::move(gguf));
  } else {
    absl::StatusOr<estimator::ModelSpec> parsed = estimator::ParseModelConfig(
        m.config_json, {.quantization = quantization.empty() ? m.quantization : quantization});
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model \"", m.name, "\": ", parsed.status().message()));
    }
    entry.spec = std::make_shared<const estimator::ModelSpec>(std::move(*parsed));
  }
  cache.PutModel(name, quantization, entry);
  return entry;
}

absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> CatalogModel(
    const ServiceDeps& deps, EstimateCache& cache, const std::string& name,
    const std::string& quantization) {
  ASSIGN_OR_RETURN(CatalogEntry entry, CatalogLookup(deps, cache, name, quantization));
  if (entry.spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model \"", name,
        "\" was imported from a GGUF file (no config.json): engine llama.cpp's Estimate only"));
  }
  return entry.spec;
}

void UseCatalogModel(const CatalogEntry& model, bool engine_given, placement::DeploymentSpec& d) {
  if (model.gguf != nullptr && !engine_given) d.engine = estimator::Engine::kLlamaCpp;
  d.spec = model.spec.get();
  d.gguf = model.gguf != nullptr ? &model.gguf->file : nullptr;
  d.gguf_path = model.gguf != nullptr ? model.gguf->path : "";
}

absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> InlineModel(
    const std::string& config_json, const std::string& quantization) {
  absl::StatusOr<estimator::ModelSpec> parsed =
      estimator::ParseModelConfig(config_json, {.quantization = quantization});
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config_json: ", parsed.status().message()));
  }
  return std::make_shared<const estimator::ModelSpec>(std::move(*parsed));
}

absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> DraftModel(
    const v1::VllmConfig& vllm_in, const v1::SglangConfig& sglang_in, estimator::VllmConfig& vllm,
    estimator::SglangConfig& sglang) {
  const bool in_vllm = !vllm_in.draft_config_json().empty();
  const bool in_sglang = !sglang_in.draft_config_json().empty();
  if (in_vllm && in_sglang) {
    return absl::InvalidArgumentError(
        "vllm.draft_config_json and sglang.draft_config_json: give the draft of the engine that "
        "serves");
  }
  if (!in_vllm && !in_sglang) return nullptr;
  const char* field = in_vllm ? "vllm.draft_" : "sglang.draft_";
  absl::StatusOr<std::shared_ptr<const estimator::ModelSpec>> parsed =
      InlineModel(in_vllm ? vllm_in.draft_config_json() : sglang_in.draft_config_json(), "");
  if (!parsed.ok()) {  // "config_json: ..." -> "vllm.draft_config_json: ..."
    return absl::InvalidArgumentError(absl::StrCat(field, parsed.status().message()));
  }
  (in_vllm ? vllm.draft : sglang.draft) = parsed->get();
  return *std::move(parsed);
}

absl::StatusOr<EstimatorServiceImpl::Resolved> EstimatorServiceImpl::Resolve(
    const v1::EstimateRequest& req, bool allow_gguf) {
  std::shared_ptr<const estimator::ModelSpec> spec;
  std::shared_ptr<const CatalogGguf> gguf;
  // A llama.cpp model's slots and context are llama_cpp.n_parallel and n_ctx: Estimate answers.
  auto refuse_gguf = [](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        ": a GGUF model (llama.cpp) is answered by Estimate only (its slots and context are "
        "llama_cpp.n_parallel and n_ctx)"));
  };
  switch (req.model_case()) {
    case v1::EstimateRequest::kGguf: {
      if (!allow_gguf) return refuse_gguf("gguf");
      ASSIGN_OR_RETURN(estimator::GgufFile file, FromProto(req.gguf()));
      gguf = std::make_shared<const CatalogGguf>(CatalogGguf{std::move(file), req.gguf().path()});
      break;
    }
    case v1::EstimateRequest::kModelName: {
      ASSIGN_OR_RETURN(CatalogEntry entry,
                       CatalogLookup(deps_, *cache_, req.model_name(), req.quantization()));
      if (entry.gguf != nullptr) {
        if (!allow_gguf) return refuse_gguf(absl::StrCat("model_name \"", req.model_name(), "\""));
        if (!req.quantization().empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat("quantization=\"", req.quantization(), "\": model_name \"",
                           req.model_name(), "\" is a GGUF file, quantized as its tensors are"));
        }
      }
      spec = std::move(entry.spec);
      gguf = std::move(entry.gguf);
      break;
    }
    case v1::EstimateRequest::kConfigJson: {
      ASSIGN_OR_RETURN(spec, InlineModel(req.config_json(), req.quantization()));
      break;
    }
    default:
      return absl::InvalidArgumentError(
          "model: give model_name (catalog), config_json (inline) or gguf (llama.cpp)");
  }
  ASSIGN_OR_RETURN(estimator::EstimateRequest request, FromProto(req));
  if (gguf != nullptr && req.engine() == v1::ENGINE_UNSPECIFIED) {
    request.engine = estimator::Engine::kLlamaCpp;  // what a GGUF file is served by
  }
  if (gguf != nullptr && request.engine != estimator::Engine::kLlamaCpp) {
    return absl::InvalidArgumentError(absl::StrCat(
        "engine=", estimator::EngineName(request.engine),
        ": a GGUF model is served by engine llama.cpp alone",
        req.model_case() == v1::EstimateRequest::kModelName
            ? absl::StrCat(" (model_name \"", req.model_name(), "\" was imported from one)")
            : ""));
  }
  switch (req.gpu_case()) {
    case v1::EstimateRequest::kGpuType: {
      request.gpu_name = req.gpu_type();
      if (std::optional<int64_t> cached = cache_->GetGpuBytes(req.gpu_type()); cached.has_value()) {
        request.gpu_memory_bytes = *cached;
        break;
      }
      absl::StatusOr<placement::GpuType> registered = deps_.store->GetGpuType(req.gpu_type());
      if (registered.ok()) {
        request.gpu_memory_bytes = registered->memory_bytes;
        cache_->PutGpuBytes(req.gpu_type(), registered->memory_bytes);
      } else {
        absl::StatusOr<estimator::GpuInfo> builtin = estimator::FindGpu(req.gpu_type());
        if (!builtin.ok()) {
          return absl::NotFoundError(absl::StrCat(
              "gpu_type \"", req.gpu_type(), "\" is neither registered nor in the built-in table"));
        }
        request.gpu_memory_bytes = builtin->memory_bytes;
        cache_->PutGpuBytes(req.gpu_type(), builtin->memory_bytes);
      }
      break;
    }
    case v1::EstimateRequest::kGpuMemoryBytes:
      request.gpu_memory_bytes = req.gpu_memory_bytes();
      break;
    default:
      return absl::InvalidArgumentError("gpu: give gpu_type or gpu_memory_bytes");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const estimator::ModelSpec> draft,
                   DraftModel(req.vllm(), req.sglang(), request.vllm, request.sglang));
  return Resolved{std::move(spec), std::move(gguf), std::move(draft), request};
}

ServerUnaryReactor* EstimatorServiceImpl::Estimate(CallbackServerContext* c,
                                                   const v1::EstimateRequest* req,
                                                   v1::EstimateResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Resolved r, Resolve(*req, /*allow_gguf=*/true));
    if (req->has_mmproj() && r.gguf == nullptr) {
      return absl::InvalidArgumentError(
          "mmproj: only with a GGUF model (a config.json's mmproj is the one its vision tower "
          "converts to, estimated with it)");
    }
    if (r.gguf != nullptr) {  // a GGUF header, inline or from the catalog
      std::optional<estimator::LlamaCppMmproj> mmproj;
      std::vector<std::string> notes;
      if (req->has_mmproj()) {
        absl::StatusOr<estimator::GgufFile> file = FromProto(req->mmproj());
        absl::StatusOr<estimator::LlamaCppMmproj> parsed =
            file.ok() ? estimator::LlamaCppMmprojFromGguf(*file, r.request, notes)
                      : absl::StatusOr<estimator::LlamaCppMmproj>(file.status());
        if (!parsed.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("mmproj: ", absl::StripPrefix(parsed.status().message(), "gguf: ")));
        }
        mmproj = *std::move(parsed);
      }
      ASSIGN_OR_RETURN(
          estimator::LlamaCppEstimate e,
          estimator::EstimateLlamaCpp(r.gguf->file, r.request, mmproj ? &*mmproj : nullptr));
      if (mmproj) e.mmproj_path = req->mmproj().path();
      for (std::string& n : notes) e.memory.notes.push_back(std::move(n));
      ToProto(e.memory, r.gguf->file.parameters, resp);
      std::string path = r.gguf->path;
      if (path.empty() && req->model_case() == v1::EstimateRequest::kModelName) {
        path = absl::StrCat(req->model_name(), ".gguf");
      }
      resp->set_launch_command(estimator::LlamaServerCommand(path, e));
      return absl::OkStatus();
    }
    if (r.request.engine == estimator::Engine::kLlamaCpp) {
      // From a config: the GGUF llama_cpp.file_type names, as llama.cpp's tools write it; for a
      // catalog model converted once per file type and parsed config.
      std::shared_ptr<const estimator::GgufFile> converted;
      if (req->model_case() == v1::EstimateRequest::kModelName &&
          !r.request.llama_cpp.file_type.empty()) {
        const std::string key = absl::StrCat(req->model_name(), "\n", req->quantization(), "\n",
                                             r.request.llama_cpp.file_type);
        converted = cache_->GetConverted(key, r.spec);
        if (converted == nullptr) {
          ASSIGN_OR_RETURN(estimator::GgufFile file,
                           estimator::LlamaCppConvert(*r.spec, r.request));
          converted = std::make_shared<const estimator::GgufFile>(std::move(file));
          cache_->PutConverted(key, r.spec, converted);
        }
      }
      ASSIGN_OR_RETURN(estimator::LlamaCppEstimate e,
                       estimator::EstimateLlamaCppFromModel(*r.spec, r.request, converted.get()));
      ToProto(e.memory, r.spec->num_params(), resp);
      resp->set_launch_command(estimator::LlamaServerCommand("", e));
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(estimator::MemoryEstimate e, estimator::Estimate(*r.spec, r.request));
    ToProto(e, r.spec->num_params(), resp);
    const std::string model =
        req->model_case() == v1::EstimateRequest::kModelName ? req->model_name() : "";
    if (r.request.engine == estimator::Engine::kSglang) {
      resp->set_launch_command(estimator::SglangLaunchCommand(model, r.request, e));
    } else if (r.request.engine == estimator::Engine::kOpenvino) {
      resp->set_launch_command(
          estimator::OpenvinoLaunchCommand(model.empty() ? "MODEL" : model, *r.spec, r.request, e));
    }
    return absl::OkStatus();
  });
}

ServerUnaryReactor* EstimatorServiceImpl::Budget(CallbackServerContext* c,
                                                 const v1::BudgetRequest* req,
                                                 v1::BudgetResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    absl::Status refused;
    const auto slot = AdmitHeavy(deps_, c, "Budget", &refused);
    RETURN_IF_ERROR(refused);
    ASSIGN_OR_RETURN(Resolved r, Resolve(req->base()));
    ASSIGN_OR_RETURN(auto cells,
                     estimator::Budget(*r.spec, r.request,
                                       {req->context_tokens().begin(), req->context_tokens().end()},
                                       {req->concurrencies().begin(), req->concurrencies().end()}));
    for (const auto& cell : cells) ToProto(cell, resp->add_cells());
    return absl::OkStatus();
  });
}

ServerUnaryReactor* EstimatorServiceImpl::MaxConcurrency(CallbackServerContext* c,
                                                         const v1::MaxConcurrencyRequest* req,
                                                         v1::MaxConcurrencyResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Resolved r, Resolve(req->base()));
    ASSIGN_OR_RETURN(int64_t n,
                     estimator::MaxConcurrency(*r.spec, r.request, req->context_tokens()));
    resp->set_max_concurrency(n);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* EstimatorServiceImpl::MaxContext(CallbackServerContext* c,
                                                     const v1::MaxContextRequest* req,
                                                     v1::MaxContextResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    absl::Status refused;
    const auto slot = AdmitHeavy(deps_, c, "MaxContext", &refused);
    RETURN_IF_ERROR(refused);
    ASSIGN_OR_RETURN(Resolved r, Resolve(req->base()));
    ASSIGN_OR_RETURN(int64_t n, estimator::MaxContext(*r.spec, r.request, req->concurrency()));
    resp->set_max_context_tokens(n);
    return absl::OkStatus();
  });
}

}  // namespace fleetplan::server
