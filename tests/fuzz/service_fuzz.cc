// Fuzz target: requests to every unary RPC through a real fleetpland (in process, an in-memory
// store, 127.0.0.1:0), as a client would send them. Input: a method name, a newline, and the
// request in protobuf text format (mutations of text reach far more fields than of wire bytes).
// Invariants: no crash or UB in the server, every answer a valid status, estimates never negative.

#include <cstdint>
#include <string>

#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/estimator.grpc.pb.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "grpcpp/create_channel.h"
#include "server/server.h"
#include "tests/fuzz/fuzz_util.h"

namespace fleetplan::fuzz {
namespace {

struct Stubs {
  std::unique_ptr<server::FleetplanServer> server;
  std::unique_ptr<v1::InventoryService::Stub> inventory;
  std::unique_ptr<v1::CatalogService::Stub> catalog;
  std::unique_ptr<v1::EstimatorService::Stub> estimator;
  std::unique_ptr<v1::HeadroomService::Stub> headroom;
  std::unique_ptr<v1::PlannerService::Stub> planner;
};

// A fresh server (and empty store) every kRunsPerServer inputs: state accumulates across inputs
// (that reaches more paths), but not without bound.
constexpr int kRunsPerServer = 2000;

Stubs& Server() {
  static int runs = 0;
  static Stubs* kStubs = nullptr;
  if (kStubs != nullptr && ++runs % kRunsPerServer == 0) {
    kStubs->server->Shutdown(std::chrono::milliseconds(0));
    delete kStubs;
    kStubs = nullptr;
  }
  if (kStubs == nullptr)
    kStubs = [] {
      auto* s = new Stubs();
      s->server = *server::FleetplanServer::Start(
          {.listen = "127.0.0.1:0", .metrics_listen = "", .store = {.path = ":memory:"}});
      auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(s->server->port()),
                                         grpc::InsecureChannelCredentials());
      s->inventory = v1::InventoryService::NewStub(channel);
      s->catalog = v1::CatalogService::NewStub(channel);
      s->estimator = v1::EstimatorService::NewStub(channel);
      s->headroom = v1::HeadroomService::NewStub(channel);
      s->planner = v1::PlannerService::NewStub(channel);
      return s;
    }();
  return *kStubs;
}

// Text-format errors are expected on most inputs: not logged.
class Quiet final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
};

template <typename Request, typename Response, typename Call>
void Run(const std::string& text, Call&& call, Response* response = nullptr) {
  Request req;
  Quiet quiet;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&quiet);
  parser.AllowPartialMessage(true);
  if (!parser.ParseFromString(text, &req)) return;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  Response resp;
  grpc::Status s = call(ctx, req, &resp);
  Check(
      s.error_code() >= grpc::StatusCode::OK && s.error_code() <= grpc::StatusCode::UNAUTHENTICATED,
      "a valid status code");
  Check(s.error_code() != grpc::StatusCode::INTERNAL && s.error_code() != grpc::StatusCode::UNKNOWN,
        "no INTERNAL or UNKNOWN: bad input is named");
  Check(s.error_message().size() <= 4096, "error messages are bounded");
  if (response != nullptr && s.ok()) *response = resp;
}

}  // namespace
}  // namespace fleetplan::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fleetplan;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  if (nl == std::string::npos) return 0;
  const std::string method = input.substr(0, nl);
  const std::string text = input.substr(nl + 1);
  fuzz::Stubs& s = fuzz::Server();
  if (method == "CreateGpuType") {
    fuzz::Run<v1::CreateGpuTypeRequest, v1::GpuType>(
        text, [&](auto& c, auto& r, auto* o) { return s.inventory->CreateGpuType(&c, r, o); });
  } else if (method == "CreateNode") {
    fuzz::Run<v1::CreateNodeRequest, v1::Node>(
        text, [&](auto& c, auto& r, auto* o) { return s.inventory->CreateNode(&c, r, o); });
  } else if (method == "ImportNodes") {
    fuzz::Run<v1::ImportNodesRequest, v1::ImportNodesResponse>(
        text, [&](auto& c, auto& r, auto* o) { return s.inventory->ImportNodes(&c, r, o); });
  } else if (method == "UpdateNode") {
    fuzz::Run<v1::UpdateNodeRequest, v1::Node>(
        text, [&](auto& c, auto& r, auto* o) { return s.inventory->UpdateNode(&c, r, o); });
  } else if (method == "ListNodes") {
    fuzz::Run<v1::ListNodesRequest, v1::ListNodesResponse>(
        text, [&](auto& c, auto& r, auto* o) { return s.inventory->ListNodes(&c, r, o); });
  } else if (method == "DrainNode") {
    fuzz::Run<v1::DrainNodeRequest, v1::Node>(
        text, [&](auto& c, auto& r, auto* o) { return s.inventory->DrainNode(&c, r, o); });
  } else if (method == "DeleteNode") {
    fuzz::Run<v1::DeleteNodeRequest, google::protobuf::Empty>(
        text, [&](auto& c, auto& r, auto* o) { return s.inventory->DeleteNode(&c, r, o); });
  } else if (method == "ImportModel") {
    fuzz::Run<v1::ImportModelRequest, v1::Model>(
        text, [&](auto& c, auto& r, auto* o) { return s.catalog->ImportModel(&c, r, o); });
  } else if (method == "Estimate") {
    v1::EstimateResponse resp;
    fuzz::Run<v1::EstimateRequest, v1::EstimateResponse>(
        text, [&](auto& c, auto& r, auto* o) { return s.estimator->Estimate(&c, r, o); }, &resp);
    for (const auto& st : resp.stages()) fuzz::Check(st.total_bytes() >= 0, "estimate bytes >= 0");
  } else if (method == "Budget") {
    fuzz::Run<v1::BudgetRequest, v1::BudgetResponse>(
        text, [&](auto& c, auto& r, auto* o) { return s.estimator->Budget(&c, r, o); });
  } else if (method == "MaxContext") {
    fuzz::Run<v1::MaxContextRequest, v1::MaxContextResponse>(
        text, [&](auto& c, auto& r, auto* o) { return s.estimator->MaxContext(&c, r, o); });
  } else if (method == "GetFleetHeadroom") {
    fuzz::Run<v1::GetFleetHeadroomRequest, v1::FleetHeadroom>(
        text, [&](auto& c, auto& r, auto* o) { return s.headroom->GetFleetHeadroom(&c, r, o); });
  } else if (method == "PlanPlacement") {
    fuzz::Run<v1::PlanPlacementRequest, v1::Plan>(
        text, [&](auto& c, auto& r, auto* o) { return s.planner->PlanPlacement(&c, r, o); });
  } else if (method == "CommitPlan") {
    fuzz::Run<v1::CommitPlanRequest, v1::CommitPlanResponse>(
        text, [&](auto& c, auto& r, auto* o) { return s.planner->CommitPlan(&c, r, o); });
  } else if (method == "ExplainPlacement") {
    fuzz::Run<v1::ExplainPlacementRequest, v1::ExplainPlacementResponse>(
        text, [&](auto& c, auto& r, auto* o) { return s.planner->ExplainPlacement(&c, r, o); });
  } else if (method == "SimulateFailure") {
    fuzz::Run<v1::SimulateFailureRequest, v1::SimulateFailureResponse>(
        text, [&](auto& c, auto& r, auto* o) { return s.planner->SimulateFailure(&c, r, o); });
  } else if (method == "Recommend") {
    fuzz::Run<v1::RecommendRequest, v1::RecommendResponse>(
        text, [&](auto& c, auto& r, auto* o) { return s.planner->Recommend(&c, r, o); });
  }
  return 0;
}
