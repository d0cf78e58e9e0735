// PlannerService end to end through the server: plan -> commit -> headroom reflects it -> a second
// scheduler's stale plan is ABORTED -> release -> headroom restored; reservations; explain; errors.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/gguf_convert.h"
#include "planner/estimator/llama_cpp.h"
#include "server/convert.h"
#include "server/server.h"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

class PlannerApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("planner_api_");
    auto server = server::FleetplanServer::Start(
        {.listen = "127.0.0.1:0",
         .metrics_listen = "",
         .failure_simulation_interval = std::chrono::milliseconds(50),
         .store = {.path = dir_ + "/fleet.db"}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    planner_ = v1::PlannerService::NewStub(channel);
    headroom_ = v1::HeadroomService::NewStub(channel);
    auto inventory = v1::InventoryService::NewStub(channel);
    catalog_ = v1::CatalogService::NewStub(channel);
    auto& catalog = catalog_;
    {
      grpc::ClientContext ctx;
      v1::CreateGpuTypeRequest req;
      req.mutable_gpu_type()->set_name("H100");
      req.mutable_gpu_type()->set_memory_bytes(85017493504);
      v1::GpuType resp;
      ASSERT_TRUE(inventory->CreateGpuType(&ctx, req, &resp).ok());
    }
    for (const char* name : {"n1", "n2"}) {
      grpc::ClientContext ctx;
      v1::CreateNodeRequest req;
      req.mutable_node()->set_name(name);
      req.mutable_node()->set_pool("p");
      req.mutable_node()->set_zone(std::string(name) == "n1" ? "z1" : "z2");
      for (int i = 0; i < 8; ++i) {
        v1::Gpu* g = req.mutable_node()->add_gpus();
        g->set_index(i);
        g->set_gpu_type("H100");
        g->set_healthy(true);
      }
      v1::Node resp;
      ASSERT_TRUE(inventory->CreateNode(&ctx, req, &resp).ok());
    }
    for (const char* slug : {"llama-3.1-8b-instruct", "llama-3.3-70b-instruct-fp8-dynamic"}) {
      grpc::ClientContext ctx;
      v1::ImportModelRequest req;
      req.set_name(slug);
      req.set_config_json(testing::CalibrationModel(slug));
      v1::Model resp;
      ASSERT_TRUE(catalog->ImportModel(&ctx, req, &resp).ok());
    }
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  v1::PlanPlacementRequest Request(const std::string& name, const std::string& model, int replicas,
                                   int64_t ttl = 0) {
    v1::PlanPlacementRequest req;
    v1::DeploymentSpec* d = req.add_deployments();
    d->set_name(name);
    d->set_model(model);
    d->set_replicas(replicas);
    d->set_concurrency(16);
    d->set_context_tokens(8192);
    d->mutable_vllm()->set_max_model_len(8192);
    req.set_reserve_ttl_ms(ttl);
    return req;
  }

  grpc::Status PlanCall(const v1::PlanPlacementRequest& req, v1::Plan* plan) {
    grpc::ClientContext ctx;
    return planner_->PlanPlacement(&ctx, req, plan);
  }
  grpc::Status Commit(const std::string& plan_id, v1::CommitPlanResponse* out = nullptr) {
    grpc::ClientContext ctx;
    v1::CommitPlanRequest req;
    req.set_plan_id(plan_id);
    v1::CommitPlanResponse resp;
    grpc::Status s = planner_->CommitPlan(&ctx, req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }
  v1::FleetHeadroom Headroom() {
    grpc::ClientContext ctx;
    v1::FleetHeadroom h;
    EXPECT_TRUE(headroom_->GetFleetHeadroom(&ctx, {}, &h).ok());
    return h;
  }

  std::string dir_;
  std::unique_ptr<server::FleetplanServer> server_;
  std::unique_ptr<v1::PlannerService::Stub> planner_;
  std::unique_ptr<v1::CatalogService::Stub> catalog_;
  std::unique_ptr<v1::HeadroomService::Stub> headroom_;
};

// DeploymentSpec.engine = ENGINE_SGLANG: planned by SGLang's rule and launched by its server;
// an engine plans do not serve is refused by name, as is sglang on shared GPUs.
TEST_F(PlannerApiTest, SglangDeploymentsPlanAndLaunchAsSglang) {
  v1::PlanPlacementRequest req = Request("sg", "llama-3.1-8b-instruct", 1);
  req.mutable_deployments(0)->set_engine(v1::ENGINE_SGLANG);
  req.mutable_deployments(0)->mutable_sglang()->set_context_length(8192);
  v1::Plan plan;
  grpc::Status s = PlanCall(req, &plan);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(plan.replicas_size(), 1);
  EXPECT_EQ(plan.replicas(0).launch_command().rfind(
                "python -m sglang.launch_server --model-path llama-3.1-8b-instruct", 0),
            0u)
      << plan.replicas(0).launch_command();
  EXPECT_NE(plan.replicas(0).launch_command().find("--context-length 8192"), std::string::npos);
  v1::PlanPlacementRequest shared = req;
  shared.mutable_deployments(0)->set_shared(true);
  s = PlanCall(shared, &plan);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("cannot share GPUs"), std::string::npos) << s.error_message();
  v1::PlanPlacementRequest openvino = req;
  openvino.mutable_deployments(0)->set_engine(v1::ENGINE_OPENVINO);
  s = PlanCall(openvino, &plan);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("engine=openvino is not placed"), std::string::npos)
      << s.error_message();
}

// A hybrid linear-attention model (qwen3_next) plans on vLLM and on SGLang: the planner picks the
// parallelism that holds the workload, and SGLang's state pool caps the running requests: 30
// states hold 10 (three per request with the radix cache), too few for 16 sequences, so that
// replica is not placed, while 48 states hold them.
TEST_F(PlannerApiTest, LinearAttentionModelPlansOnVllmAndSglang) {
  {
    grpc::ClientContext ctx;
    v1::ImportModelRequest req;
    req.set_name("qwen3-next");
    req.set_config_json(testing::TestModel("qwen3-next-80b-a3b"));
    v1::Model resp;
    ASSERT_TRUE(catalog_->ImportModel(&ctx, req, &resp).ok());
  }
  v1::Plan plan;
  v1::PlanPlacementRequest vllm = Request("next", "qwen3-next", 1);
  grpc::Status s = PlanCall(vllm, &plan);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(plan.replicas_size(), 1) << plan.DebugString();
  EXPECT_NE(plan.replicas(0).launch_command().find("vllm serve qwen3-next --tensor-parallel-size"),
            std::string::npos)
      << plan.replicas(0).launch_command();
  v1::PlanPlacementRequest sglang = Request("next-sg", "qwen3-next", 1);
  v1::DeploymentSpec* d = sglang.mutable_deployments(0);
  d->set_engine(v1::ENGINE_SGLANG);
  d->mutable_sglang()->set_context_length(8192);
  d->mutable_sglang()->set_max_mamba_cache_size(30);
  s = PlanCall(sglang, &plan);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(plan.replicas_size(), 0) << plan.DebugString();
  ASSERT_GT(plan.unplaced_size(), 0);
  EXPECT_EQ(plan.unplaced(0).code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_NE(plan.unplaced(0).reason().find("max_running_requests 10"), std::string::npos)
      << plan.unplaced(0).reason();
  d->mutable_sglang()->set_max_mamba_cache_size(48);
  s = PlanCall(sglang, &plan);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(plan.replicas_size(), 1) << plan.DebugString();
  EXPECT_NE(plan.replicas(0).launch_command().find("--max-mamba-cache-size 48"), std::string::npos)
      << plan.replicas(0).launch_command();
}

// A speculative draft carried inline by the deployment (vllm.draft_config_json, or
// sglang.draft_config_json with sglang.speculative_algorithm) is sized into the plan and named in
// the launch line: the plan API used to drop it, reserving the GPU without the draft.
TEST_F(PlannerApiTest, DeploymentsWithADraftReserveIt) {
  const std::string draft = testing::CalibrationModel("qwen2.5-0.5b");
  auto rank_bytes = [&](const v1::PlanPlacementRequest& req, std::string* launch) -> int64_t {
    v1::Plan plan;
    grpc::Status s = PlanCall(req, &plan);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok() || plan.replicas_size() != 1) return -1;
    if (launch != nullptr) *launch = plan.replicas(0).launch_command();
    return plan.replicas(0).ranks(0).bytes();
  };
  v1::PlanPlacementRequest vllm = Request("v", "llama-3.1-8b-instruct", 1);
  const int64_t vllm_plain = rank_bytes(vllm, nullptr);
  vllm.mutable_deployments(0)->mutable_vllm()->set_draft_config_json(draft);
  vllm.mutable_deployments(0)->mutable_vllm()->set_draft_model("Qwen/Qwen2.5-0.5B");
  vllm.mutable_deployments(0)->mutable_vllm()->set_num_speculative_tokens(3);
  std::string launch;
  EXPECT_GT(rank_bytes(vllm, &launch), vllm_plain);
  EXPECT_NE(launch.find("--speculative-config '{\"model\":\"Qwen/Qwen2.5-0.5B\""),
            std::string::npos)
      << launch;

  v1::PlanPlacementRequest sglang = Request("sg", "llama-3.1-8b-instruct", 1);
  v1::DeploymentSpec* d = sglang.mutable_deployments(0);
  d->set_engine(v1::ENGINE_SGLANG);
  d->mutable_sglang()->set_context_length(8192);
  d->mutable_sglang()->set_version("0.5.11");
  const int64_t sglang_plain = rank_bytes(sglang, nullptr);
  d->mutable_sglang()->set_speculative_algorithm("STANDALONE");
  d->mutable_sglang()->set_draft_config_json(draft);
  d->mutable_sglang()->set_draft_model("Qwen/Qwen2.5-0.5B");
  // From 0.5.11 the pool makes room for the draft (its cell grows by the draft's layers), so the
  // rank holds other bytes, not more: what matters is that the draft was sized at all.
  EXPECT_NE(rank_bytes(sglang, &launch), sglang_plain);
  EXPECT_NE(launch.find("--speculative-algorithm STANDALONE --speculative-draft-model-path "
                        "Qwen/Qwen2.5-0.5B"),
            std::string::npos)
      << launch;
  // Refused by field: a draft that does not parse, an algorithm SGLang does not have, and a
  // draft-model algorithm without its draft.
  auto refused = [&](v1::PlanPlacementRequest req, const std::string& words) {
    v1::Plan plan;
    grpc::Status s = PlanCall(req, &plan);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << words;
    EXPECT_NE(s.error_message().find(words), std::string::npos) << s.error_message();
  };
  v1::PlanPlacementRequest bad = sglang;
  bad.mutable_deployments(0)->mutable_sglang()->set_draft_config_json("{");
  refused(bad, "sglang.draft_config_json");
  bad = sglang;
  bad.mutable_deployments(0)->mutable_sglang()->set_speculative_algorithm("MEDUSA");
  refused(bad, "MEDUSA");
  bad = sglang;
  bad.mutable_deployments(0)->mutable_sglang()->clear_draft_config_json();
  refused(bad, "speculative_algorithm=STANDALONE needs the draft");
}

// DeploymentSpec.engine = ENGINE_LLAMA_CPP with llama_cpp.file_type: planned from the GGUF that
// file type names and launched by llama-server; without a file type, refused by name.
TEST_F(PlannerApiTest, LlamaCppDeploymentsPlanAndLaunchAsLlamaServer) {
  v1::PlanPlacementRequest req = Request("ll", "llama-3.1-8b-instruct", 1);
  req.mutable_deployments(0)->set_engine(v1::ENGINE_LLAMA_CPP);
  req.mutable_deployments(0)->mutable_llama_cpp()->set_file_type("q8_0");
  req.mutable_deployments(0)->set_concurrency(1);
  v1::Plan plan;
  grpc::Status s = PlanCall(req, &plan);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(plan.replicas_size(), 1);
  EXPECT_EQ(plan.replicas(0).launch_command().rfind(
                "llama-server -m llama-3.1-8b-instruct-q8_0.gguf -c 8192 -np 1 -ngl 33", 0),
            0u)
      << plan.replicas(0).launch_command();
  EXPECT_GT(plan.replicas(0).host_bytes(), 0) << "token_embd stays on the CPU";
  req.mutable_deployments(0)->mutable_llama_cpp()->clear_file_type();
  s = PlanCall(req, &plan);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("llama_cpp.file_type"), std::string::npos) << s.error_message();
}

// A catalog model imported from a GGUF header (here the header llama.cpp's converter and
// quantizer write for Llama-3.1-8B at Q4_K_M) plans with its own tensors' bytes and launches the
// imported file; no engine but llama.cpp is offered it.
TEST_F(PlannerApiTest, GgufCatalogModelPlansAsLlamaServer) {
  auto spec = estimator::ParseModelConfig(testing::CalibrationModel("llama-3.1-8b-instruct"));
  ASSERT_TRUE(spec.ok());
  auto header = estimator::GgufFromModel(*spec, "file_type", "q4_K_M");
  ASSERT_TRUE(header.ok()) << header.status();
  {
    grpc::ClientContext ctx;
    v1::ImportModelRequest req;
    req.set_name("llama-8b-q4");
    server::ToProto(*header, req.mutable_gguf());
    req.mutable_gguf()->set_path("/models/Llama-3.1-8B-Q4_K_M.gguf");
    v1::Model resp;
    grpc::Status s = catalog_->ImportModel(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.weights_bytes(), header->weights_bytes);
  }
  v1::PlanPlacementRequest req = Request("ll", "llama-8b-q4", 1);
  req.mutable_deployments(0)->set_engine(v1::ENGINE_LLAMA_CPP);
  req.mutable_deployments(0)->set_concurrency(2);
  req.mutable_deployments(0)->set_context_tokens(8192);
  v1::Plan plan;
  grpc::Status s = PlanCall(req, &plan);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(plan.replicas_size(), 1);
  EXPECT_EQ(plan.replicas(0).launch_command().rfind(
                "llama-server -m /models/Llama-3.1-8B-Q4_K_M.gguf -c 16384 -np 2 -ngl 33", 0),
            0u)
      << plan.replicas(0).launch_command();
  // The rank reserves the offline estimate's high end on an H100 (one GPU, every layer on it).
  estimator::EstimateRequest offline{.engine = estimator::Engine::kLlamaCpp,
                                     .parallelism = {.tp = 1, .pp = 1, .ep = 1},
                                     .gpu_memory_bytes = 85017493504,
                                     .concurrency = 2,
                                     .context_tokens = 8192};
  offline.llama_cpp.n_gpu_layers = 33;
  auto expect = estimator::EstimateLlamaCpp(*header, offline);
  ASSERT_TRUE(expect.ok()) << expect.status();
  ASSERT_EQ(plan.replicas(0).ranks_size(), 1);
  EXPECT_EQ(plan.replicas(0).ranks(0).bytes(), expect->memory.max_high_bytes);

  // No engine named: the one a GGUF file is served by.
  req.mutable_deployments(0)->clear_engine();
  v1::Plan unnamed;
  s = PlanCall(req, &unnamed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(unnamed.replicas_size(), 1);
  EXPECT_EQ(unnamed.replicas(0).launch_command(), plan.replicas(0).launch_command());
  req.mutable_deployments(0)->set_engine(v1::ENGINE_VLLM);
  s = PlanCall(req, &plan);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("was imported from a GGUF file: engine=vllm cannot serve it"),
            std::string::npos)
      << s.error_message();
}

TEST_F(PlannerApiTest, PlanCommitStaleAbortReleaseRoundTrip) {
  // Two schedulers plan from the same snapshot.
  v1::Plan a, b;
  ASSERT_TRUE(PlanCall(Request("big", "llama-3.3-70b-instruct-fp8-dynamic", 2), &a).ok());
  ASSERT_TRUE(PlanCall(Request("big-2", "llama-3.3-70b-instruct-fp8-dynamic", 2), &b).ok());
  ASSERT_EQ(a.replicas_size(), 2);
  EXPECT_TRUE(a.unplaced().empty());
  EXPECT_GT(a.headroom_after().fleet().reserved_bytes(), 0);
  EXPECT_NE(a.replicas(0).launch_command().find("vllm serve llama-3.3-70b-instruct-fp8-dynamic"),
            std::string::npos)
      << a.replicas(0).launch_command();
  EXPECT_NE(a.replicas(0).launch_command().find("--tensor-parallel-size"), std::string::npos);
  EXPECT_EQ(a.lower_bound_gpus(), a.gpus_used());

  const int64_t before = Headroom().fleet().committed_bytes();
  v1::CommitPlanResponse committed;
  ASSERT_TRUE(Commit(a.plan_id(), &committed).ok());
  ASSERT_EQ(committed.placement_ids_size(), 2);
  v1::FleetHeadroom after = Headroom();
  int64_t planned = 0;
  for (const auto& r : a.replicas()) {
    for (const auto& rank : r.ranks()) planned += rank.bytes();
  }
  EXPECT_EQ(after.fleet().committed_bytes(), before + planned);

  // b was planned before a's commit and lands on the same GPUs: ABORTED, re-plan.
  grpc::Status stale = Commit(b.plan_id());
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED) << stale.error_message();
  // Retrying a's commit is idempotent.
  EXPECT_TRUE(Commit(a.plan_id()).ok());
  // A fresh plan for b avoids a's GPUs and commits.
  v1::Plan b2;
  ASSERT_TRUE(PlanCall(Request("big-2", "llama-3.3-70b-instruct-fp8-dynamic", 1), &b2).ok());
  ASSERT_EQ(b2.replicas_size(), 1);
  ASSERT_TRUE(Commit(b2.plan_id()).ok());

  {
    grpc::ClientContext ctx;
    v1::ListPlacementsRequest req;
    req.set_deployment("big");
    v1::ListPlacementsResponse list;
    ASSERT_TRUE(planner_->ListPlacements(&ctx, req, &list).ok());
    EXPECT_EQ(list.placements_size(), 2);
  }
  for (int64_t id : committed.placement_ids()) {
    grpc::ClientContext ctx;
    v1::ReleasePlacementRequest req;
    req.set_placement_id(id);
    v1::PlacementRecord rec;
    ASSERT_TRUE(planner_->ReleasePlacement(&ctx, req, &rec).ok());
    EXPECT_EQ(rec.state(), "released");
  }
  int64_t b2_bytes = 0;
  for (const auto& rank : b2.replicas(0).ranks()) b2_bytes += rank.bytes();
  EXPECT_EQ(Headroom().fleet().committed_bytes(), before + b2_bytes);
}

TEST_F(PlannerApiTest, ReservationHoldsCapacityUntilCommit) {
  v1::Plan reserved;
  ASSERT_TRUE(PlanCall(Request("r", "llama-3.1-8b-instruct", 2, 60000), &reserved).ok());
  EXPECT_TRUE(reserved.reserved());
  EXPECT_GT(reserved.reservation_expires_unix_ms(), 0);
  EXPECT_GT(Headroom().fleet().reserved_bytes(), 0);
  ASSERT_TRUE(Commit(reserved.plan_id()).ok());
  EXPECT_EQ(Headroom().fleet().reserved_bytes(), 0);
  EXPECT_GT(Headroom().fleet().committed_bytes(), 0);
}

TEST_F(PlannerApiTest, UnplaceableAndBadRequests) {
  v1::Plan plan;
  v1::PlanPlacementRequest too_many = Request("many", "llama-3.3-70b-instruct-fp8-dynamic", 50);
  ASSERT_TRUE(PlanCall(too_many, &plan).ok());
  EXPECT_GT(plan.unplaced_size(), 0);
  EXPECT_EQ(plan.unplaced(0).code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));

  v1::PlanPlacementRequest unknown = Request("x", "no-such-model", 1);
  EXPECT_EQ(PlanCall(unknown, &plan).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::PlanPlacementRequest bad_spread = Request("x", "llama-3.1-8b-instruct", 1);
  bad_spread.mutable_deployments(0)->set_spread("planets");
  grpc::Status s = PlanCall(bad_spread, &plan);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("spread=\"planets\""), std::string::npos);
  EXPECT_EQ(PlanCall(v1::PlanPlacementRequest(), &plan).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Commit("plan-nope").error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext ctx;
  v1::ExplainPlacementRequest explain;
  *explain.mutable_deployment() =
      Request("e", "llama-3.3-70b-instruct-fp8-dynamic", 1).deployments(0);
  v1::ExplainPlacementResponse why;
  ASSERT_TRUE(planner_->ExplainPlacement(&ctx, explain, &why).ok());
  ASSERT_GE(why.lines_size(), 2);
  EXPECT_NE(why.lines(0).find("tp="), std::string::npos) << why.lines(0);
}

}  // namespace
}  // namespace fleetplan

namespace fleetplan {
namespace {

// A model the estimator does not fully understand is marked unverified on import and in
// estimates, and PlanPlacement refuses it (FAILED_PRECONDITION naming it) unless the deployment
// says allow_unverified.
TEST_F(PlannerApiTest, UnverifiedModelsAreShownAndNotPlacedUnlessAllowed) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto catalog = v1::CatalogService::NewStub(channel);
  // An unknown family, and a known one with a memory-relevant field its builder does not read.
  const std::string unknown =
      R"({"model_type": "brand_new_family", "hidden_size": 2048, "intermediate_size": 8192,
          "num_hidden_layers": 16, "num_attention_heads": 16, "num_key_value_heads": 8,
          "vocab_size": 32000})";
  std::string extra = testing::CalibrationModel("llama-3.1-8b-instruct");
  extra.insert(extra.find('{') + 1, R"("num_local_experts": 8, "cross_attention_layers": [3, 8],)");
  for (const auto& [name, config] :
       {std::pair<std::string, std::string>{"unknown", unknown}, {"extra", extra}}) {
    grpc::ClientContext ctx;
    v1::ImportModelRequest req;
    req.set_name(name);
    req.set_config_json(config);
    v1::Model m;
    ASSERT_TRUE(catalog->ImportModel(&ctx, req, &m).ok()) << name;
    EXPECT_TRUE(m.unverified()) << name;
    grpc::ClientContext gc;
    v1::GetModelRequest get;
    get.set_name(name);
    v1::Model stored;
    ASSERT_TRUE(catalog->GetModel(&gc, get, &stored).ok());
    EXPECT_TRUE(stored.unverified()) << name;
    v1::Plan plan;
    grpc::Status st = PlanCall(Request("d-" + name, name, 1), &plan);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << name;
    EXPECT_NE(st.error_message().find("unverified"), std::string::npos) << st.error_message();
    EXPECT_NE(st.error_message().find("allow_unverified"), std::string::npos);
    v1::PlanPlacementRequest allowed = Request("d-" + name, name, 1);
    allowed.mutable_deployments(0)->set_allow_unverified(true);
    ASSERT_TRUE(PlanCall(allowed, &plan).ok()) << name;
    EXPECT_EQ(plan.replicas_size(), 1);
  }
  {
    grpc::ClientContext gc;
    v1::GetModelRequest get;
    get.set_name("extra");
    v1::Model stored;
    ASSERT_TRUE(catalog->GetModel(&gc, get, &stored).ok());
    std::string fields;
    for (const auto& f : stored.unconsumed_fields()) fields += f + " ";
    EXPECT_NE(fields.find("num_local_experts"), std::string::npos) << fields;
    EXPECT_NE(fields.find("cross_attention_layers"), std::string::npos) << fields;
  }
  // Known, fully read models are verified, in the list too.
  grpc::ClientContext lc;
  v1::ListModelsResponse list;
  ASSERT_TRUE(catalog->ListModels(&lc, {}, &list).ok());
  for (const auto& m : list.models()) {
    EXPECT_EQ(m.unverified(), m.name() == "unknown" || m.name() == "extra") << m.name();
  }
}

// What if a zone or a node fails: displaced replicas re-planned on the rest, nothing written; the
// per-zone N+1 gauges follow the fleet.
TEST_F(PlannerApiTest, SimulateFailureReplansDisplacedReplicasAndWritesNothing) {
  v1::PlanPlacementRequest spread = Request("chat", "llama-3.1-8b-instruct", 2);
  spread.mutable_deployments(0)->set_spread("nodes");
  v1::Plan plan;
  ASSERT_TRUE(PlanCall(spread, &plan).ok());
  ASSERT_EQ(plan.replicas_size(), 2);
  ASSERT_TRUE(Commit(plan.plan_id()).ok());
  const v1::FleetHeadroom before = Headroom();

  auto simulate = [&](std::vector<std::string> zones, std::vector<std::string> nodes,
                      v1::SimulateFailureResponse* resp) {
    grpc::ClientContext ctx;
    v1::SimulateFailureRequest req;
    for (const auto& z : zones) req.add_zones(z);
    for (const auto& n : nodes) req.add_nodes(n);
    return planner_->SimulateFailure(&ctx, req, resp);
  };
  v1::SimulateFailureResponse zone;
  ASSERT_TRUE(simulate({"z1"}, {}, &zone).ok());
  EXPECT_EQ(zone.failed_nodes_size(), 1);
  EXPECT_EQ(zone.failed_nodes(0), "n1");
  ASSERT_EQ(zone.displaced_size(), 1);
  EXPECT_EQ(zone.displaced(0).deployment(), "chat");
  // Spread over nodes: the only other node already runs a replica of chat.
  EXPECT_EQ(zone.absorbed(), 0);
  EXPECT_DOUBLE_EQ(zone.absorbed_ratio(), 0.0);
  ASSERT_EQ(zone.replan().unplaced_size(), 1);
  EXPECT_EQ(zone.replan().unplaced(0).replica(), zone.displaced(0).replica());
  EXPECT_TRUE(zone.replan().plan_id().empty()) << "a what-if cannot be committed";

  // A deployment without spread moves onto the surviving node.
  ASSERT_TRUE(PlanCall(Request("solo", "llama-3.3-70b-instruct-fp8-dynamic", 1), &plan).ok());
  ASSERT_EQ(plan.replicas_size(), 1);
  ASSERT_TRUE(Commit(plan.plan_id()).ok());
  const std::string host = plan.replicas(0).ranks(0).node();
  v1::SimulateFailureResponse node;
  ASSERT_TRUE(simulate({}, {host}, &node).ok());
  EXPECT_EQ(node.displaced_size(), 2);  // chat's replica there and solo
  EXPECT_EQ(node.absorbed(), 1);
  bool solo_moved = false;
  for (const auto& r : node.replan().replicas()) {
    EXPECT_NE(r.ranks(0).node(), host);
    solo_moved = solo_moved || r.deployment() == "solo";
  }
  EXPECT_TRUE(solo_moved);
  EXPECT_DOUBLE_EQ(node.absorbed_ratio(), 0.5);

  v1::SimulateFailureResponse bad;
  EXPECT_EQ(simulate({"nowhere"}, {}, &bad).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::Status invalid = simulate({}, {"not a name"}, &bad);
  EXPECT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(invalid.error_message().find("nodes[0]"), std::string::npos) << invalid.error_message();
  EXPECT_EQ(simulate({}, {}, &bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  {
    grpc::ClientContext ctx;
    v1::SimulateFailureRequest req;
    req.add_zones("z1");
    req.set_strategy(static_cast<v1::Strategy>(42));
    EXPECT_EQ(planner_->SimulateFailure(&ctx, req, &bad).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  // Observation is off on this server: GetObservedUsage says so; bad thresholds are named first.
  {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    auto hs = v1::HeadroomService::NewStub(channel);
    v1::ObservedUsage usage;
    grpc::ClientContext c1;
    grpc::Status off = hs->GetObservedUsage(&c1, {}, &usage);
    EXPECT_EQ(off.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(off.error_message().find("--dcgm_prometheus_url"), std::string::npos);
    grpc::ClientContext c2;
    v1::GetObservedUsageRequest neg;
    neg.set_unplanned_bytes(-1);
    grpc::Status named = hs->GetObservedUsage(&c2, neg, &usage);
    EXPECT_EQ(named.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(named.error_message().find("unplanned_bytes=-1"), std::string::npos);
  }
  v1::FleetHeadroom after = Headroom();
  EXPECT_EQ(after.fleet().free_bytes(),
            before.fleet().free_bytes() -
                plan.replicas(0).ranks(0).bytes() * plan.replicas(0).ranks_size())
      << "only solo's commit changed the fleet";

  // The per-zone gauges (the server simulates every zone when the fleet changes).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string scrape;
  while (std::chrono::steady_clock::now() < deadline) {
    scrape = server_->metrics().Scrape();
    if (scrape.find("fleetplan_zone_failure_displaced_replicas{zone=\"" +
                    std::string(host == "n1" ? "z1" : "z2") + "\"} 2") != std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string host_zone = host == "n1" ? "z1" : "z2";
  EXPECT_NE(scrape.find("fleetplan_zone_failure_displaced_replicas{zone=\"" + host_zone + "\"} 2"),
            std::string::npos)
      << scrape;
  EXPECT_NE(scrape.find("fleetplan_zone_failure_absorbable_ratio{zone=\"" + host_zone + "\"} 0.5"),
            std::string::npos)
      << scrape;
}

TEST_F(PlannerApiTest, RecommendListsWhatThePlannerWouldPlace) {
  auto recommend = [&](const v1::RecommendRequest& req, v1::RecommendResponse* resp) {
    grpc::ClientContext ctx;
    return planner_->Recommend(&ctx, req, resp);
  };
  v1::RecommendRequest req;
  req.mutable_deployment()->set_model("llama-3.3-70b-instruct-fp8-dynamic");
  req.mutable_deployment()->set_concurrency(16);
  req.mutable_deployment()->set_context_tokens(8192);
  v1::RecommendResponse rec;
  ASSERT_TRUE(recommend(req, &rec).ok());
  ASSERT_GT(rec.configurations_size(), 0);
  ASSERT_EQ(rec.gpu_types_size(), 1);  // the fleet's one registered type
  EXPECT_EQ(rec.gpu_types(0).gpu_type(), "H100");
  EXPECT_TRUE(rec.gpu_types(0).fits());
  EXPECT_GT(rec.params(), 60'000'000'000);
  // The best configuration is the one PlanPlacement places for the same workload.
  v1::PlanPlacementRequest plan_req = Request("chat", "llama-3.3-70b-instruct-fp8-dynamic", 1);
  plan_req.mutable_deployments(0)->set_concurrency(16);
  plan_req.mutable_deployments(0)->set_context_tokens(8192);
  v1::Plan plan;
  ASSERT_TRUE(PlanCall(plan_req, &plan).ok());
  ASSERT_EQ(plan.replicas_size(), 1);
  const v1::RecommendedConfiguration& best = rec.configurations(0);
  EXPECT_EQ(best.gpu_type(), plan.replicas(0).gpu_type());
  EXPECT_EQ(best.tp(), plan.replicas(0).tp());
  EXPECT_EQ(best.pp(), plan.replicas(0).pp());
  EXPECT_DOUBLE_EQ(best.gpu_memory_utilization(), plan.replicas(0).gpu_memory_utilization());
  EXPECT_EQ(best.kv_cache_tokens(), plan.replicas(0).kv_cache_tokens());
  EXPECT_EQ(best.launch_command(), plan.replicas(0).launch_command());
  EXPECT_EQ(best.max_bytes_per_gpu(), plan.replicas(0).ranks(0).bytes());

  // Before there is a fleet: the built-in table and an inline config.
  v1::RecommendRequest inline_req;
  inline_req.set_config_json(testing::CalibrationModel("llama-3.1-8b-instruct"));
  inline_req.set_builtin_gpu_types(true);
  inline_req.mutable_deployment()->set_model("meta-llama/Llama-3.1-8B-Instruct");
  inline_req.mutable_deployment()->add_gpu_types("A100-80GB");
  inline_req.mutable_deployment()->add_gpu_types("L4");
  inline_req.set_limit(2);
  v1::RecommendResponse builtin;
  ASSERT_TRUE(recommend(inline_req, &builtin).ok());
  EXPECT_EQ(builtin.gpu_types_size(), 2);
  EXPECT_LE(builtin.configurations_size(), 2);
  ASSERT_GT(builtin.configurations_size(), 0);
  EXPECT_NE(builtin.configurations(0).launch_command().find("meta-llama/Llama-3.1-8B-Instruct"),
            std::string::npos);

  // Bad input names the field and the value.
  auto refused = [&](v1::RecommendRequest bad, grpc::StatusCode code, const std::string& field) {
    v1::RecommendResponse ignored;
    grpc::Status s = recommend(bad, &ignored);
    EXPECT_EQ(s.error_code(), code) << field << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(field), std::string::npos) << s.error_message();
  };
  v1::RecommendRequest bad = req;
  bad.mutable_deployment()->add_gpu_types("B300");
  refused(bad, grpc::StatusCode::NOT_FOUND, "deployment.gpu_types[0]=\"B300\"");
  bad = req;
  bad.set_gpus_per_node(0);
  refused(bad, grpc::StatusCode::INVALID_ARGUMENT, "gpus_per_node=0");
  bad = req;
  bad.mutable_deployment()->set_replicas(3);
  refused(bad, grpc::StatusCode::INVALID_ARGUMENT, "deployment.replicas=3");
  bad = req;
  bad.mutable_deployment()->set_model("no-such-model");
  refused(bad, grpc::StatusCode::NOT_FOUND, "deployment.model");
  bad = req;
  bad.mutable_deployment()->set_concurrency(-1);
  refused(bad, grpc::StatusCode::INVALID_ARGUMENT, "concurrency");
  bad = inline_req;
  bad.set_config_json("{not json");
  refused(bad, grpc::StatusCode::INVALID_ARGUMENT, "config_json");
}

}  // namespace
}  // namespace fleetplan
