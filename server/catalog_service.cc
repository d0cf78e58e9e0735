#include "server/catalog_service.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/llama_cpp.h"
#include "server/convert.h"
#include "server/estimator_service.h"

namespace fleetplan::server {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

namespace {

// The estimator's verdict on a parsed config: unverified, and the fields it did not read.
void AddVerdict(const estimator::ModelSpec& spec, v1::Model* out) {
  out->set_unverified(spec.unverified());
  for (const std::string& f : spec.unconsumed_fields) out->add_unconsumed_fields(f);
}

// The verdict for a stored model (parsed through the estimate cache).
absl::Status AddStoredVerdict(const ServiceDeps& deps, const placement::ModelRecord& m,
                              v1::Model* out) {
  ASSIGN_OR_RETURN(CatalogEntry entry,
                   CatalogLookup(deps, *deps.estimates, m.name, m.quantization));
  // A GGUF header is read by llama.cpp's own rules; an architecture they do not know was refused
  // at import.
  if (entry.spec != nullptr) AddVerdict(*entry.spec, out);
  return absl::OkStatus();
}

// ImportModel of a GGUF header: checked as EstimateRequest.gguf is, then estimated once by
// llama.cpp's rules (an architecture or key they cannot size is refused now, not at plan time).
absl::StatusOr<placement::ModelRecord> GgufRecord(const v1::ImportModelRequest& req,
                                                  v1::Model* resp) {
  if (!req.config_json().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", req.name(), "\": give config_json or gguf, not both"));
  }
  if (!req.quantization().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", req.name(), "\": quantization=\"", req.quantization(),
                     "\" does not apply to a GGUF file (its tensors are already quantized)"));
  }
  absl::StatusOr<estimator::GgufFile> file = FromProto(req.gguf());
  if (!file.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", req.name(), "\": ", file.status().message()));
  }
  auto arch = file->metadata.find("general.architecture");
  if (arch != file->metadata.end() && arch->second == "clip") {
    return absl::InvalidArgumentError(absl::StrCat(
        "model \"", req.name(),
        "\": gguf is an mmproj (general.architecture clip), a vision projector and not a model"));
  }
  absl::StatusOr<estimator::GgufKv> kv = estimator::GgufKvCache(*file, "f16");
  estimator::EstimateRequest probe;
  probe.engine = estimator::Engine::kLlamaCpp;
  probe.gpu_memory_bytes = int64_t{1} << 40;  // only whether it can be sized
  probe.llama_cpp.n_ctx = 4096;
  absl::StatusOr<estimator::LlamaCppEstimate> sized =
      kv.ok() ? estimator::EstimateLlamaCpp(*file, probe)
              : absl::StatusOr<estimator::LlamaCppEstimate>(kv.status());
  if (!sized.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", req.name(),
                     "\": gguf cannot be sized by llama.cpp's rules: ", sized.status().message()));
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  if (const auto s = google::protobuf::util::MessageToJsonString(req.gguf(), &json, options);
      !s.ok()) {
    return absl::InternalError(absl::StrCat("gguf: ", std::string(s.message())));
  }
  resp->add_notes(absl::StrCat("weights exact from the GGUF header: ", file->tensors.size(),
                               " tensors, ", file->weights_bytes, " bytes"));
  return placement::ModelRecord{.name = req.name(),
                                .model_type = kv->architecture,
                                .params = file->parameters,
                                .weights_bytes = file->weights_bytes,
                                .kv_bytes_per_token = kv->bytes_per_token,
                                .gguf_json = std::move(json)};
}

}  // namespace

ServerUnaryReactor* CatalogServiceImpl::ImportModel(CallbackServerContext* c,
                                                    const v1::ImportModelRequest* req,
                                                    v1::Model* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    return Idempotent(deps_, "ImportModel", req->request_id(), *req, resp, [&]() -> absl::Status {
      if (req->name().empty()) return absl::InvalidArgumentError("name must not be empty");
      if (req->has_gguf()) {
        v1::Model notes;
        ASSIGN_OR_RETURN(placement::ModelRecord record, GgufRecord(*req, &notes));
        RETURN_IF_ERROR(deps_.store->CreateModel(record, {.validate_only = req->validate_only()}));
        if (!req->validate_only()) {
          InvalidateEstimates(deps_);
          ASSIGN_OR_RETURN(record, deps_.store->GetModel(req->name()));
        }
        ToProto(record, resp);
        resp->clear_gguf();  // the caller has it, as with config_json
        resp->mutable_notes()->MergeFrom(notes.notes());
        return absl::OkStatus();
      }
      if (req->config_json().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("model \"", req->name(), "\": config_json is empty"));
      }
      absl::StatusOr<estimator::ModelSpec> spec =
          estimator::ParseModelConfig(req->config_json(), {.quantization = req->quantization()});
      if (!spec.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("model \"", req->name(), "\": ", spec.status().message()));
      }
      const estimator::ModelSummary summary = estimator::SummarizeModel(*spec);
      placement::ModelRecord record{.name = req->name(),
                                    .config_json = req->config_json(),
                                    .quantization = req->quantization(),
                                    .model_type = spec->model_type,
                                    .params = summary.params,
                                    .weights_bytes = summary.weights_bytes,
                                    .kv_bytes_per_token = summary.kv_bytes_per_token};
      RETURN_IF_ERROR(deps_.store->CreateModel(record, {.validate_only = req->validate_only()}));
      if (!req->validate_only()) {
        InvalidateEstimates(deps_);
        ASSIGN_OR_RETURN(record, deps_.store->GetModel(req->name()));
      }
      ToProto(record, resp);
      resp->clear_config_json();  // the caller has it; the answer stays small (and cacheable)
      for (const std::string& n : spec->notes) resp->add_notes(n);
      AddVerdict(*spec, resp);
      return absl::OkStatus();
    });
  });
}

ServerUnaryReactor* CatalogServiceImpl::GetModel(CallbackServerContext* c,
                                                 const v1::GetModelRequest* req, v1::Model* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(placement::ModelRecord m, deps_.store->GetModel(req->name()));
    ToProto(m, resp);
    return AddStoredVerdict(deps_, m, resp);
  });
}

ServerUnaryReactor* CatalogServiceImpl::ListModels(CallbackServerContext* c,
                                                   const v1::ListModelsRequest* req,
                                                   v1::ListModelsResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(const int64_t page_size, PageSizeFromProto(req->page_size()));
    if (req->view() != v1::MODEL_VIEW_UNSPECIFIED && req->view() != v1::MODEL_VIEW_BASIC &&
        req->view() != v1::MODEL_VIEW_FULL) {
      return absl::InvalidArgumentError(
          absl::StrCat("view=", static_cast<int>(req->view()), " is not BASIC or FULL"));
    }
    const bool full = req->view() == v1::MODEL_VIEW_FULL;
    // A page is bounded in bytes too (FULL carries configs of up to 16 MiB each).
    constexpr size_t kMaxPageBytes = 8 << 20;
    // Summaries by name (a catalog is small); configs read per model only for FULL.
    ASSIGN_OR_RETURN(auto models, deps_.store->ListModels());
    size_t bytes = 0;
    for (const auto& summary : models) {
      if (!req->page_token().empty() && summary.name <= req->page_token()) continue;
      if (resp->models_size() >= page_size) {
        resp->set_next_page_token(resp->models(resp->models_size() - 1).name());
        break;
      }
      placement::ModelRecord m = summary;
      if (full) {
        ASSIGN_OR_RETURN(m, deps_.store->GetModel(summary.name));
        if (resp->models_size() > 0 &&
            bytes + m.config_json.size() + m.gguf_json.size() > kMaxPageBytes) {
          resp->set_next_page_token(resp->models(resp->models_size() - 1).name());
          break;
        }
      }
      v1::Model* out = resp->add_models();
      ToProto(m, out);
      RETURN_IF_ERROR(AddStoredVerdict(deps_, summary, out));
      bytes += out->ByteSizeLong();
    }
    return absl::OkStatus();
  });
}

ServerUnaryReactor* CatalogServiceImpl::DeleteModel(CallbackServerContext* c,
                                                    const v1::DeleteModelRequest* req,
                                                    google::protobuf::Empty* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    return Idempotent(deps_, "DeleteModel", req->request_id(), *req, resp, [&]() -> absl::Status {
      RETURN_IF_ERROR(deps_.store->DeleteModel(req->name()));
      InvalidateEstimates(deps_);
      return absl::OkStatus();
    });
  });
}

}  // namespace fleetplan::server
