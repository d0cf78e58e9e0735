#ifndef FLEETPLAN_SERVER_CONVERT_H_
#define FLEETPLAN_SERVER_CONVERT_H_

// The one place where protos meet domain types (DESIGN.md): FromProto validates what a struct
// cannot express (enum values, required oneofs) and names the offending field; ToProto never
// fails.

#include "absl/status/statusor.h"
#include "fleetplan/v1/catalog.pb.h"
#include "fleetplan/v1/estimator.pb.h"
#include "fleetplan/v1/headroom.pb.h"
#include "fleetplan/v1/inventory.pb.h"
#include "fleetplan/v1/planner.pb.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/gguf.h"
#include "planner/estimator/inverse.h"
#include "planner/placement/fleet.h"
#include "planner/placement/headroom.h"
#include "planner/placement/planner.h"
#include "planner/placement/recommend.h"

namespace fleetplan::server {

placement::GpuType FromProto(const v1::GpuType& p);
void ToProto(const placement::GpuType& d, v1::GpuType* p);

absl::StatusOr<placement::Node> FromProto(const v1::Node& p);

// A list request's page_size: 0 is the default (limits::kDefaultPageSize); INVALID_ARGUMENT naming
// the field outside [0, limits::kMaxPageSize].
absl::StatusOr<int64_t> PageSizeFromProto(int64_t page_size);
void ToProto(const placement::Node& d, v1::Node* p);

void ToProto(const placement::ModelRecord& d, v1::Model* p);

// Everything of an EstimateRequest but the model and the GPU size, which need the store. Unset
// fields keep the domain struct's defaults (the only place defaults are written).
absl::StatusOr<estimator::EstimateRequest> FromProto(const v1::EstimateRequest& p);
// SGLang's arguments; unset fields keep SglangConfig's defaults (the estimator validates them).
absl::Status FromProto(const v1::SglangConfig& p, estimator::SglangConfig& d);
// OpenVINO's deployment; words are parsed with the estimator's vocabularies (INVALID_ARGUMENT
// names the field and the value).
absl::Status FromProto(const v1::OpenvinoConfig& p, estimator::OpenvinoConfig& d);
void ToProto(const estimator::OpenvinoConfig& d, v1::OpenvinoConfig* p);
// llama-server's arguments; unset fields keep LlamaCppConfig's defaults.
absl::Status FromProto(const v1::LlamaCppConfig& p, estimator::LlamaCppConfig& c);
// A GGUF header's content, checked and sized as the file reader does (gguf.h GgufFromParts).
absl::StatusOr<estimator::GgufFile> FromProto(const v1::GgufModel& p);
// What a client sends: the header's metadata, arrays and tensor infos (not its bytes).
void ToProto(const estimator::GgufFile& d, v1::GgufModel* p);
// SGLang's settings, every field written (unset optionals as their defaults).
void ToProto(const estimator::SglangConfig& d, v1::SglangConfig* p);
void ToProto(const estimator::LlamaCppConfig& d, v1::LlamaCppConfig* p);

// A deployment without its model (the caller resolves `model` from the catalog and sets spec).
// `index` names it in errors: deployments[3] "chat": spread="rack" is not a spread ...
absl::StatusOr<placement::DeploymentSpec> FromProto(const v1::DeploymentSpec& p, size_t index);
// The same with errors prefixed by `where` (the field that holds the spec).
absl::StatusOr<placement::DeploymentSpec> FromProto(const v1::DeploymentSpec& p,
                                                    const std::string& where);

v1::Engine ToProto(estimator::Engine e);
absl::StatusOr<estimator::Engine> EngineFromProto(v1::Engine e);
v1::Strategy ToProto(placement::Strategy s);
absl::StatusOr<placement::Strategy> StrategyFromProto(v1::Strategy s);
void ToProto(const estimator::MemoryEstimate& d, int64_t params, v1::EstimateResponse* p);
void ToProto(const estimator::BudgetCell& d, v1::BudgetCell* p);

void ToProto(const placement::FleetHeadroom& d, v1::FleetHeadroom* p);
v1::RiskLevel ToProtoRisk(Risk r);
Risk FromProto(v1::RiskLevel r);                  // unspecified and unknown values: high
placement::NodeState FromProto(v1::NodeState s);  // unspecified and unknown values: down

void ToProto(const placement::Plan& plan, v1::Plan* p);
void ToProto(const placement::Shortfall& s, v1::Shortfall* p);
void ToProto(const placement::Recommendation& r, v1::RecommendResponse* p);
// ExplainPlacement's lines: each replica's verdict in words.
void ExplainLines(const v1::Plan& plan, google::protobuf::RepeatedPtrField<std::string>* lines);
void ToProto(const placement::Placement& d, v1::PlacementRecord* p);
void ToProto(const placement::DeploymentRecord& d, v1::DeploymentRecord* p);

// etag <-> node version.
std::string NodeEtag(int64_t version);
absl::StatusOr<int64_t> ParseNodeEtag(const std::string& etag);

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_CONVERT_H_
