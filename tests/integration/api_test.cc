// The gRPC API end to end: fleetpland's services on 127.0.0.1:0 with a temp database, called
// through the generated stubs over a real channel. Every RPC, and each error path: bad input, not
// found, duplicate, stale etag, unauthenticated, permission denied, oversize message; a
// WatchHeadroom stream that sees a change; Estimate equal to the offline estimator.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/estimator.grpc.pb.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/llama_cpp.h"
#include "planner/estimator/testing/gguf_writer.h"
#include "server/convert.h"
#include "server/server.h"
#include "storage/store_test_util.h"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

constexpr char kWriter[] = "writer-token-0123456789abcdef";
constexpr char kReader[] = "reader-token-0123456789abcdef";

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("api_");
    const std::string tokens = dir_ + "/tokens";
    std::ofstream(tokens) << "# test tokens\n" << kWriter << " writer\n" << kReader << " reader\n";
    auto server =
        server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                        .metrics_listen = "",
                                        .auth_tokens_file = tokens,
                                        .headroom_poll_interval = std::chrono::milliseconds(50),
                                        .store = {.path = dir_ + "/fleet.db"}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
    inventory_ = v1::InventoryService::NewStub(channel_);
    catalog_ = v1::CatalogService::NewStub(channel_);
    estimator_ = v1::EstimatorService::NewStub(channel_);
    headroom_ = v1::HeadroomService::NewStub(channel_);
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  static void Auth(grpc::ClientContext& ctx, const char* token = kWriter) {
    if (token != nullptr) ctx.AddMetadata("authorization", std::string("Bearer ") + token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  }

  grpc::Status CreateType(const std::string& name, int64_t bytes, const char* token = kWriter) {
    grpc::ClientContext ctx;
    Auth(ctx, token);
    v1::CreateGpuTypeRequest req;
    req.mutable_gpu_type()->set_name(name);
    req.mutable_gpu_type()->set_memory_bytes(bytes);
    v1::GpuType resp;
    return inventory_->CreateGpuType(&ctx, req, &resp);
  }

  grpc::Status CreateNode(const std::string& name, int gpus, const std::string& type,
                          v1::Node* out = nullptr) {
    grpc::ClientContext ctx;
    Auth(ctx);
    v1::CreateNodeRequest req;
    v1::Node* n = req.mutable_node();
    n->set_name(name);
    n->set_pool("pool-a");
    n->set_zone("z1");
    (*n->mutable_labels())["tier"] = "gold";
    for (int i = 0; i < gpus; ++i) {
      v1::Gpu* g = n->add_gpus();
      g->set_index(i);
      g->set_gpu_type(type);
      g->set_healthy(true);
    }
    v1::Node resp;
    grpc::Status s = inventory_->CreateNode(&ctx, req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }

  grpc::Status Import(const std::string& name, const std::string& config,
                      v1::Model* out = nullptr) {
    grpc::ClientContext ctx;
    Auth(ctx);
    v1::ImportModelRequest req;
    req.set_name(name);
    req.set_config_json(config);
    v1::Model resp;
    grpc::Status s = catalog_->ImportModel(&ctx, req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }

  std::string dir_;
  std::unique_ptr<server::FleetplanServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InventoryService::Stub> inventory_;
  std::unique_ptr<v1::CatalogService::Stub> catalog_;
  std::unique_ptr<v1::EstimatorService::Stub> estimator_;
  std::unique_ptr<v1::HeadroomService::Stub> headroom_;
};

TEST_F(ApiTest, InventoryRoundTripAndErrors) {
  ASSERT_TRUE(CreateType("H100", 85017493504).ok());
  EXPECT_EQ(CreateType("H100", 85017493504).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  grpc::Status bad = CreateType("X", -1);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("memory_bytes=-1"), std::string::npos) << bad.error_message();

  {
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    v1::ListGpuTypesResponse resp;
    ASSERT_TRUE(inventory_->ListGpuTypes(&ctx, {}, &resp).ok());
    ASSERT_EQ(resp.gpu_types_size(), 1);
    EXPECT_EQ(resp.gpu_types(0).memory_bytes(), 85017493504);
  }
  v1::Node created;
  ASSERT_TRUE(CreateNode("n1", 8, "H100", &created).ok());
  EXPECT_EQ(created.etag(), "v1");
  EXPECT_EQ(CreateNode("n1", 8, "H100").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  grpc::Status unknown = CreateNode("n2", 1, "B200");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(unknown.error_message().find("B200"), std::string::npos);
  ASSERT_TRUE(CreateNode("n3", 4, "H100").ok());

  {  // list with filter and pagination
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    v1::ListNodesRequest req;
    req.set_page_size(1);
    (*req.mutable_labels())["tier"] = "gold";
    v1::ListNodesResponse resp;
    ASSERT_TRUE(inventory_->ListNodes(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.nodes_size(), 1);
    EXPECT_EQ(resp.nodes(0).name(), "n1");
    EXPECT_EQ(resp.next_page_token(), "n1");
    grpc::ClientContext ctx2;
    Auth(ctx2, kReader);
    req.set_page_token(resp.next_page_token());
    ASSERT_TRUE(inventory_->ListNodes(&ctx2, req, &resp).ok());
    ASSERT_EQ(resp.nodes_size(), 1);
    EXPECT_EQ(resp.nodes(0).name(), "n3");
  }
  {  // update with etag, then a stale etag
    grpc::ClientContext ctx;
    Auth(ctx);
    v1::UpdateNodeRequest req;
    *req.mutable_node() = created;
    req.mutable_node()->set_zone("z2");
    v1::Node resp;
    ASSERT_TRUE(inventory_->UpdateNode(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.etag(), "v2");
    grpc::ClientContext ctx2;
    Auth(ctx2);
    EXPECT_EQ(inventory_->UpdateNode(&ctx2, req, &resp).error_code(), grpc::StatusCode::ABORTED);
    grpc::ClientContext ctx3;
    Auth(ctx3);
    req.mutable_node()->set_etag("garbage");
    EXPECT_EQ(inventory_->UpdateNode(&ctx3, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {  // cordon, drain, pools, get, delete
    grpc::ClientContext c1;
    Auth(c1);
    v1::CordonNodeRequest cordon;
    cordon.set_name("n3");
    v1::Node node;
    ASSERT_TRUE(inventory_->CordonNode(&c1, cordon, &node).ok());
    EXPECT_EQ(node.state(), v1::NODE_STATE_CORDONED);
    grpc::ClientContext c2;
    Auth(c2);
    v1::DrainNodeRequest drain;
    drain.set_name("n3");
    ASSERT_TRUE(inventory_->DrainNode(&c2, drain, &node).ok());
    EXPECT_EQ(node.state(), v1::NODE_STATE_DRAINING);
    grpc::ClientContext c3;
    Auth(c3, kReader);
    v1::ListPoolsResponse pools;
    ASSERT_TRUE(inventory_->ListPools(&c3, {}, &pools).ok());
    ASSERT_EQ(pools.pools_size(), 1);
    EXPECT_EQ(pools.pools(0).gpus(), 12);
    grpc::ClientContext c4;
    Auth(c4);
    v1::DeleteNodeRequest del;
    del.set_name("n3");
    google::protobuf::Empty empty;
    ASSERT_TRUE(inventory_->DeleteNode(&c4, del, &empty).ok());
    grpc::ClientContext c5;
    Auth(c5, kReader);
    v1::GetNodeRequest get;
    get.set_name("n3");
    EXPECT_EQ(inventory_->GetNode(&c5, get, &node).error_code(), grpc::StatusCode::NOT_FOUND);
    grpc::ClientContext c6;
    Auth(c6);
    v1::DeleteGpuTypeRequest delt;
    delt.set_name("H100");
    EXPECT_EQ(inventory_->DeleteGpuType(&c6, delt, &empty).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
}

TEST_F(ApiTest, AuthenticationAndRoles) {
  EXPECT_EQ(CreateType("H100", 80 * kGiB, nullptr).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CreateType("H100", 80 * kGiB, "not-a-real-token-at-all").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status reader_write = CreateType("H100", 80 * kGiB, kReader);
  EXPECT_EQ(reader_write.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  grpc::ClientContext ctx;  // no token on a read
  v1::ListGpuTypesResponse resp;
  EXPECT_EQ(inventory_->ListGpuTypes(&ctx, {}, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext ok;
  Auth(ok, kReader);
  EXPECT_TRUE(inventory_->ListGpuTypes(&ok, {}, &resp).ok());
}

TEST_F(ApiTest, IdempotentRetriesAndValidateOnly) {
  grpc::ClientContext c1;
  Auth(c1);
  v1::CreateGpuTypeRequest req;
  req.set_request_id("req-1");
  req.mutable_gpu_type()->set_name("L4");
  req.mutable_gpu_type()->set_memory_bytes(22 * kGiB);
  v1::GpuType resp;
  ASSERT_TRUE(inventory_->CreateGpuType(&c1, req, &resp).ok());
  grpc::ClientContext c2;
  Auth(c2);
  EXPECT_TRUE(inventory_->CreateGpuType(&c2, req, &resp).ok()) << "a retry gets the first answer";
  grpc::ClientContext c3;
  Auth(c3);
  req.mutable_gpu_type()->set_memory_bytes(23 * kGiB);
  EXPECT_EQ(inventory_->CreateGpuType(&c3, req, &resp).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);

  grpc::ClientContext c4;
  Auth(c4);
  v1::CreateGpuTypeRequest dry;
  dry.set_validate_only(true);
  dry.mutable_gpu_type()->set_name("A100");
  dry.mutable_gpu_type()->set_memory_bytes(40 * kGiB);
  ASSERT_TRUE(inventory_->CreateGpuType(&c4, dry, &resp).ok());
  grpc::ClientContext c5;
  Auth(c5, kReader);
  v1::GetGpuTypeRequest get;
  get.set_name("A100");
  EXPECT_EQ(inventory_->GetGpuType(&c5, get, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ApiTest, CatalogImportSummarisesAndRejectsBadConfigs) {
  v1::Model m;
  ASSERT_TRUE(Import("llama-8b", testing::CalibrationModel("llama-3.1-8b-instruct"), &m).ok());
  EXPECT_EQ(m.params(), 8030261248);
  EXPECT_EQ(m.model_type(), "llama");
  EXPECT_EQ(m.kv_bytes_per_token(), 131072);
  EXPECT_EQ(m.weights_bytes(), 8030261248 * 2);
  EXPECT_EQ(Import("llama-8b", testing::CalibrationModel("llama-3.1-8b-instruct")).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  grpc::Status bad =
      Import("bad", R"({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 2,
      "num_attention_heads": 32, "num_key_value_heads": 0, "intermediate_size": 1, "vocab_size": 10})");
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("num_key_value_heads=0 must be >= 1"), std::string::npos)
      << bad.error_message();
  EXPECT_EQ(Import("empty", "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext c1;
  Auth(c1, kReader);
  v1::ListModelsResponse list;
  ASSERT_TRUE(catalog_->ListModels(&c1, {}, &list).ok());
  ASSERT_EQ(list.models_size(), 1);
  EXPECT_TRUE(list.models(0).config_json().empty());
  grpc::ClientContext c2;
  Auth(c2, kReader);
  v1::GetModelRequest get;
  get.set_name("llama-8b");
  ASSERT_TRUE(catalog_->GetModel(&c2, get, &m).ok());
  EXPECT_FALSE(m.config_json().empty());
  grpc::ClientContext c3;
  Auth(c3);
  v1::DeleteModelRequest del;
  del.set_name("llama-8b");
  google::protobuf::Empty empty;
  ASSERT_TRUE(catalog_->DeleteModel(&c3, del, &empty).ok());
  grpc::ClientContext c4;
  Auth(c4);
  EXPECT_EQ(catalog_->DeleteModel(&c4, del, &empty).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ApiTest, ModelWithCommittedPlacementsCannotBeDeleted) {
  ASSERT_TRUE(CreateType("H100", 80 * kGiB).ok());
  ASSERT_TRUE(CreateNode("n1", 2, "H100").ok());
  ASSERT_TRUE(Import("m", testing::CalibrationModel("qwen2.5-0.5b")).ok());
  auto& store = server_->store();
  ASSERT_TRUE(
      store
          .CommitPlacements({.request_id = "p",
                             .snapshot_generation = *store.FleetGeneration(),
                             .placements = {storage::testing::MakePlacement("n1", {0}, kGiB)}})
          .ok());
  grpc::ClientContext ctx;
  Auth(ctx);
  v1::DeleteModelRequest del;
  del.set_name("m");
  google::protobuf::Empty empty;
  EXPECT_EQ(catalog_->DeleteModel(&ctx, del, &empty).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ApiTest, EstimateMatchesTheOfflineEstimator) {
  ASSERT_TRUE(CreateType("H100-80GB-HBM3", 85017493504).ok());
  const std::string config = testing::CalibrationModel("qwen2.5-7b-instruct");
  ASSERT_TRUE(Import("qwen", config).ok());
  v1::EstimateRequest req;
  req.set_model_name("qwen");
  req.set_gpu_type("H100-80GB-HBM3");
  req.mutable_parallelism()->set_tp(2);
  req.mutable_vllm()->set_gpu_memory_utilization(0.95);
  req.mutable_vllm()->set_max_model_len(8192);
  req.set_concurrency(16);
  req.set_context_tokens(8192);
  grpc::ClientContext ctx;
  Auth(ctx, kReader);
  v1::EstimateResponse resp;
  ASSERT_TRUE(estimator_->Estimate(&ctx, req, &resp).ok());

  auto spec = estimator::ParseModelConfig(config);
  ASSERT_TRUE(spec.ok());
  estimator::EstimateRequest offline{
      .engine = estimator::Engine::kVllm,
      .parallelism = {.tp = 2},
      .gpu_memory_bytes = 85017493504,
      .vllm = {.gpu_memory_utilization = 0.95, .max_model_len = 8192},
      .concurrency = 16,
      .context_tokens = 8192};
  auto expect = estimator::Estimate(*spec, offline);
  ASSERT_TRUE(expect.ok());
  EXPECT_EQ(resp.kv_cache_tokens(), expect->kv_cache_tokens);
  EXPECT_EQ(resp.max_total_bytes(), expect->max_total_bytes);
  ASSERT_EQ(resp.stages_size(), 1);
  EXPECT_EQ(resp.stages(0).weights_bytes(), expect->stages[0].weights_bytes);
  EXPECT_EQ(resp.bytes_per_rank_size(), 2);
  EXPECT_TRUE(resp.fits());
  // The uncertainty band travels with the estimate: what a plan reserves and counts on.
  EXPECT_EQ(resp.max_high_bytes(), expect->max_high_bytes);
  EXPECT_GT(resp.max_high_bytes(), resp.max_total_bytes());
  EXPECT_EQ(resp.bytes_per_rank(0), expect->stages[0].high_bytes);
  EXPECT_EQ(resp.stages(0).low_bytes(), expect->stages[0].low_bytes);
  EXPECT_EQ(resp.stages(0).high_bytes(), expect->stages[0].high_bytes);
  EXPECT_EQ(resp.kv_cache_tokens_low(), expect->kv_cache_tokens_low);
  EXPECT_LT(resp.kv_cache_tokens_low(), resp.kv_cache_tokens());
  EXPECT_EQ(resp.max_concurrency_low(), expect->max_concurrency_low);
  // Another vLLM version's semantics through the API: the same as the library's, and named.
  v1::EstimateRequest old = req;
  old.mutable_vllm()->set_version("0.7.3");
  grpc::ClientContext c_old;
  Auth(c_old, kReader);
  v1::EstimateResponse old_resp;
  ASSERT_TRUE(estimator_->Estimate(&c_old, old, &old_resp).ok());
  offline.vllm.version = "0.7.3";
  offline.gpu_name = "H100-80GB-HBM3";
  auto expect_old = estimator::Estimate(*spec, offline);
  ASSERT_TRUE(expect_old.ok());
  EXPECT_EQ(old_resp.kv_cache_tokens(), expect_old->kv_cache_tokens);
  EXPECT_NE(old_resp.kv_cache_tokens(), resp.kv_cache_tokens());
  EXPECT_GT(old_resp.band_widened_size(), 0);

  // Inline config + built-in GPU table; budget and inverse queries.
  v1::BudgetRequest budget;
  *budget.mutable_base() = req;
  budget.mutable_base()->set_config_json(config);
  budget.add_context_tokens(4096);
  budget.add_concurrencies(1);
  budget.add_concurrencies(64);
  grpc::ClientContext c2;
  Auth(c2, kReader);
  v1::BudgetResponse cells;
  ASSERT_TRUE(estimator_->Budget(&c2, budget, &cells).ok());
  ASSERT_EQ(cells.cells_size(), 2);
  EXPECT_LT(cells.cells(0).bytes_per_gpu(), cells.cells(1).bytes_per_gpu());
  v1::MaxConcurrencyRequest mc;
  *mc.mutable_base() = req;
  mc.set_context_tokens(8192);
  grpc::ClientContext c3;
  Auth(c3, kReader);
  v1::MaxConcurrencyResponse mcr;
  ASSERT_TRUE(estimator_->MaxConcurrency(&c3, mc, &mcr).ok());
  EXPECT_EQ(mcr.max_concurrency(), expect->max_concurrency_low)
      << "what a replica can be counted on";
  v1::MaxContextRequest mx;
  *mx.mutable_base() = req;
  mx.set_concurrency(mcr.max_concurrency());
  grpc::ClientContext c4;
  Auth(c4, kReader);
  v1::MaxContextResponse mxr;
  ASSERT_TRUE(estimator_->MaxContext(&c4, mx, &mxr).ok());
  EXPECT_GE(mxr.max_context_tokens(), 8192);
}

TEST_F(ApiTest, CachedModelsFollowCatalogChanges) {
  ASSERT_TRUE(Import("m", testing::CalibrationModel("qwen2.5-0.5b")).ok());
  v1::EstimateRequest req;
  req.set_model_name("m");
  req.set_gpu_type("H100-80GB");
  v1::EstimateResponse resp;
  {
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    ASSERT_TRUE(estimator_->Estimate(&ctx, req, &resp).ok());  // now cached
  }
  const int64_t small = resp.stages(0).weights_bytes();
  {
    grpc::ClientContext ctx;
    Auth(ctx);
    v1::DeleteModelRequest del;
    del.set_name("m");
    google::protobuf::Empty empty;
    ASSERT_TRUE(catalog_->DeleteModel(&ctx, del, &empty).ok());
  }
  {
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    EXPECT_EQ(estimator_->Estimate(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  ASSERT_TRUE(
      Import("m", testing::CalibrationModel("qwen2.5-7b")).ok());  // same name, another model
  grpc::ClientContext ctx;
  Auth(ctx, kReader);
  ASSERT_TRUE(estimator_->Estimate(&ctx, req, &resp).ok());
  EXPECT_GT(resp.stages(0).weights_bytes(), 10 * small);
  // A registered GPU type overrides the built-in one of the same name once created.
  ASSERT_TRUE(CreateType("H100-80GB", 40 * kGiB).ok());
  grpc::ClientContext ctx2;
  Auth(ctx2, kReader);
  ASSERT_TRUE(estimator_->Estimate(&ctx2, req, &resp).ok());
  EXPECT_EQ(resp.gpu_memory_bytes(), 40 * kGiB);
}

TEST_F(ApiTest, EstimateErrors) {
  struct Case {
    const char* what;
    v1::EstimateRequest req;
    grpc::StatusCode code;
    const char* expect;
  };
  v1::EstimateRequest no_model;
  no_model.set_gpu_memory_bytes(80 * kGiB);
  v1::EstimateRequest unknown_model = no_model;
  unknown_model.set_model_name("nope");
  v1::EstimateRequest no_gpu;
  no_gpu.set_config_json(testing::CalibrationModel("llama-3.1-8b"));
  v1::EstimateRequest bad_gpu = no_gpu;
  bad_gpu.set_gpu_type("Voodoo2");
  v1::EstimateRequest bad_tp = no_gpu;
  bad_tp.set_gpu_memory_bytes(80 * kGiB);
  bad_tp.mutable_parallelism()->set_tp(3);
  v1::EstimateRequest bad_config = no_model;
  bad_config.set_config_json("{");
  v1::EstimateRequest bad_kv = bad_tp;
  bad_kv.mutable_parallelism()->set_tp(1);
  bad_kv.set_kv_cache_dtype("int2");
  v1::EstimateRequest bad_version = bad_kv;
  bad_version.clear_kv_cache_dtype();
  bad_version.mutable_vllm()->set_version("latest");
  v1::EstimateRequest zero_util = bad_version;
  zero_util.mutable_vllm()->clear_version();
  zero_util.mutable_vllm()->set_gpu_memory_utilization(0);
  const Case cases[] = {
      {"bad vllm version", bad_version, grpc::StatusCode::INVALID_ARGUMENT,
       "vllm.version=\"latest\""},
      {"explicit zero utilization", zero_util, grpc::StatusCode::INVALID_ARGUMENT,
       "vllm.gpu_memory_utilization=0"},
      {"no model", no_model, grpc::StatusCode::INVALID_ARGUMENT, "model_name"},
      {"unknown model", unknown_model, grpc::StatusCode::NOT_FOUND, "model \"nope\""},
      {"no gpu", no_gpu, grpc::StatusCode::INVALID_ARGUMENT, "gpu_type or gpu_memory_bytes"},
      {"unknown gpu", bad_gpu, grpc::StatusCode::NOT_FOUND, "Voodoo2"},
      {"bad tp", bad_tp, grpc::StatusCode::INVALID_ARGUMENT, "tp=3 does not divide"},
      {"bad config", bad_config, grpc::StatusCode::INVALID_ARGUMENT, "not valid JSON"},
      {"bad kv dtype", bad_kv, grpc::StatusCode::INVALID_ARGUMENT, "kv_cache_dtype=\"int2\""},
  };
  for (const Case& c : cases) {
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    v1::EstimateResponse resp;
    grpc::Status s = estimator_->Estimate(&ctx, c.req, &resp);
    EXPECT_EQ(s.error_code(), c.code) << c.what << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(c.expect), std::string::npos)
        << c.what << ": " << s.error_message();
  }
}

// llama.cpp through the API: the client sends the GGUF header's content (not its bytes), the
// server sizes the tensors itself and answers what the offline estimator does, with the host
// memory and the llama-server line.
TEST_F(ApiTest, EstimateLlamaCppFromAGgufHeader) {
  estimator::testing::TestModel m;
  m.layers = 6;
  auto file = estimator::ParseGgufHeader(estimator::testing::WriteModel(m));
  ASSERT_TRUE(file.ok()) << file.status();
  v1::EstimateRequest req;
  server::ToProto(*file, req.mutable_gguf());
  req.mutable_gguf()->set_path("/models/test-q4_k_m.gguf");
  req.set_gpu_memory_bytes(24 * kGiB);
  req.mutable_llama_cpp()->set_n_gpu_layers(4);
  req.mutable_llama_cpp()->set_flash_attn("off");
  req.set_concurrency(2);
  req.set_context_tokens(4096);
  grpc::ClientContext ctx;
  Auth(ctx, kReader);
  v1::EstimateResponse resp;
  grpc::Status s = estimator_->Estimate(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();

  estimator::EstimateRequest offline{.engine = estimator::Engine::kLlamaCpp,
                                     .gpu_memory_bytes = 24 * kGiB,
                                     .concurrency = 2,
                                     .context_tokens = 4096};
  offline.llama_cpp.n_gpu_layers = 4;
  offline.llama_cpp.flash_attn = estimator::FlashAttn::kOff;
  auto expect = estimator::EstimateLlamaCpp(*file, offline);
  ASSERT_TRUE(expect.ok()) << expect.status();
  ASSERT_EQ(resp.stages_size(), 1);
  const estimator::StageMemory& g = expect->memory.stages[0];
  EXPECT_EQ(resp.stages(0).weights_bytes(), g.weights_bytes);
  EXPECT_EQ(resp.stages(0).kv_cache_bytes(), g.kv_cache_bytes);
  EXPECT_EQ(resp.stages(0).activation_peak_bytes(), g.activation_peak_bytes);
  EXPECT_EQ(resp.stages(0).high_bytes(), g.high_bytes);
  EXPECT_EQ(resp.host_bytes(), expect->memory.host_bytes);
  EXPECT_GT(resp.host_bytes(), 0);
  EXPECT_EQ(resp.params(), file->parameters);
  EXPECT_EQ(resp.max_concurrency(), 2);
  EXPECT_EQ(resp.launch_command(),
            "llama-server -m /models/test-q4_k_m.gguf -c 8192 -np 2 -ngl 4 -fa off");

  // Refusals name the field: a tensor of an unknown ggml type, another engine, the inverse
  // queries (llama.cpp answers Estimate only), a bad flash_attn word.
  struct Case {
    const char* what;
    v1::EstimateRequest req;
    const char* expect;
  };
  v1::EstimateRequest bad_type = req;
  bad_type.mutable_gguf()->mutable_tensors(3)->set_type(77);
  v1::EstimateRequest bad_dims = req;
  bad_dims.mutable_gguf()->mutable_tensors(2)->add_dims(-1);
  v1::EstimateRequest vllm = req;
  vllm.set_engine(v1::ENGINE_VLLM);
  v1::EstimateRequest bad_fa = req;
  bad_fa.mutable_llama_cpp()->set_flash_attn("maybe");
  v1::EstimateRequest tp = req;
  tp.mutable_parallelism()->set_tp(2);
  const Case cases[] = {
      {"unknown ggml type", bad_type, "ggml type 77"},
      {"negative dimension", bad_dims, "is out of range"},
      {"engine vllm", vllm, "engine=vllm"},
      {"bad flash_attn", bad_fa, "llama_cpp.flash_attn"},
      {"tp", tp, "tp=2"},
  };
  for (const Case& c : cases) {
    grpc::ClientContext cc;
    Auth(cc, kReader);
    v1::EstimateResponse r;
    grpc::Status st = estimator_->Estimate(&cc, c.req, &r);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.what;
    EXPECT_NE(st.error_message().find(c.expect), std::string::npos)
        << c.what << ": " << st.error_message();
  }
  v1::MaxConcurrencyRequest inverse;
  *inverse.mutable_base() = req;
  grpc::ClientContext ic;
  Auth(ic, kReader);
  v1::MaxConcurrencyResponse ir;
  grpc::Status st = estimator_->MaxConcurrency(&ic, inverse, &ir);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("Estimate only"), std::string::npos) << st.error_message();
}

// SGLang through the API: the offline numbers and the launch line for the catalog model.
TEST_F(ApiTest, EstimateSglang) {
  const std::string config = testing::CalibrationModel("qwen2.5-7b-instruct");
  ASSERT_TRUE(Import("qwen", config).ok());
  v1::EstimateRequest req;
  req.set_model_name("qwen");
  req.set_engine(v1::ENGINE_SGLANG);
  req.set_gpu_memory_bytes(85017493504);
  req.mutable_sglang()->set_context_length(16384);
  req.mutable_sglang()->set_max_running_requests(64);
  grpc::ClientContext ctx;
  Auth(ctx, kReader);
  v1::EstimateResponse resp;
  grpc::Status s = estimator_->Estimate(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto spec = estimator::ParseModelConfig(config);
  ASSERT_TRUE(spec.ok());
  estimator::EstimateRequest offline{.engine = estimator::Engine::kSglang,
                                     .gpu_memory_bytes = 85017493504};
  offline.sglang.context_length = 16384;
  offline.sglang.max_running_requests = 64;
  auto expect = estimator::Estimate(*spec, offline);
  ASSERT_TRUE(expect.ok()) << expect.status();
  EXPECT_EQ(resp.max_high_bytes(), expect->max_high_bytes);
  EXPECT_EQ(resp.kv_cache_tokens(), expect->kv_cache_tokens);
  // The 64 running requests or the full-context sequences the pool holds, whichever is fewer.
  EXPECT_EQ(resp.max_concurrency(), std::min<int64_t>(64, expect->kv_cache_tokens / 16384));
  EXPECT_EQ(resp.max_concurrency(), expect->max_concurrency);
  EXPECT_NE(resp.launch_command().find("--model-path qwen --mem-fraction-static"),
            std::string::npos)
      << resp.launch_command();
  EXPECT_NE(resp.launch_command().find("--max-running-requests 64"), std::string::npos);
  req.mutable_sglang()->set_page_size(0);
  grpc::ClientContext bad_ctx;
  Auth(bad_ctx, kReader);
  s = estimator_->Estimate(&bad_ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("sglang.page_size=0"), std::string::npos) << s.error_message();

  // Every SGLang field travels: a hybrid SWA model's ratio, a version and a STANDALONE draft
  // inline.
  const std::string oss = testing::CalibrationModel("gpt-oss-20b");
  const std::string head = testing::CalibrationModel("qwen2.5-0.5b");
  v1::EstimateRequest full;
  full.set_config_json(oss);
  full.set_engine(v1::ENGINE_SGLANG);
  full.set_gpu_memory_bytes(85017493504);
  v1::SglangConfig* g = full.mutable_sglang();
  g->set_context_length(8192);
  g->set_swa_full_tokens_ratio(0.5);
  g->set_version("0.5.11");
  g->set_speculative_algorithm("standalone");
  g->set_draft_config_json(head);
  g->set_draft_model("eagle-head");
  g->set_speculative_num_steps(2);
  g->set_speculative_num_draft_tokens(3);
  grpc::ClientContext full_ctx;
  Auth(full_ctx, kReader);
  s = estimator_->Estimate(&full_ctx, full, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto oss_spec = estimator::ParseModelConfig(oss);
  auto head_spec = estimator::ParseModelConfig(head);
  ASSERT_TRUE(oss_spec.ok() && head_spec.ok());
  estimator::EstimateRequest same{.engine = estimator::Engine::kSglang,
                                  .gpu_memory_bytes = 85017493504};
  same.sglang.context_length = 8192;
  same.sglang.swa_full_tokens_ratio = 0.5;
  same.sglang.version = "0.5.11";
  same.sglang.speculative_algorithm = estimator::SglangSpeculative::kStandalone;
  same.sglang.draft = &*head_spec;
  same.sglang.speculative_num_steps = 2;
  same.sglang.speculative_num_draft_tokens = 3;
  auto want = estimator::Estimate(*oss_spec, same);
  ASSERT_TRUE(want.ok()) << want.status();
  EXPECT_EQ(resp.kv_cache_tokens(), want->kv_cache_tokens);
  EXPECT_EQ(resp.max_high_bytes(), want->max_high_bytes);
  EXPECT_EQ(resp.max_concurrency(), want->max_concurrency);
  EXPECT_NE(
      resp.launch_command().find("--swa-full-tokens-ratio 0.5 --speculative-algorithm STANDALONE "
                                 "--speculative-draft-model-path eagle-head "
                                 "--speculative-num-steps 2"),
      std::string::npos)
      << resp.launch_command();
  g->set_speculative_algorithm("medusa");
  grpc::ClientContext word_ctx;
  Auth(word_ctx, kReader);
  s = estimator_->Estimate(&word_ctx, full, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("sglang.speculative_algorithm"), std::string::npos)
      << s.error_message();
  g->set_speculative_algorithm("EAGLE");  // a 896-wide head for a 2880-wide model
  grpc::ClientContext width_ctx;
  Auth(width_ctx, kReader);
  s = estimator_->Estimate(&width_ctx, full, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("the draft's hidden_size 896 is not the target's 2880"),
            std::string::npos)
      << s.error_message();
  full.mutable_vllm()->set_draft_config_json(head);
  grpc::ClientContext both_ctx;
  Auth(both_ctx, kReader);
  s = estimator_->Estimate(&both_ctx, full, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("vllm.draft_config_json and sglang.draft_config_json"),
            std::string::npos)
      << s.error_message();
}

// OpenVINO through the API: the offline numbers, the pipeline parts and the export/OVMS line for
// the catalog model; a bad word is named.
TEST_F(ApiTest, EstimateOpenvino) {
  const std::string config = testing::CalibrationModel("gemma-3-4b-it");
  ASSERT_TRUE(Import("gemma", config).ok());
  v1::EstimateRequest req;
  req.set_model_name("gemma");
  req.set_engine(v1::ENGINE_OPENVINO);
  req.set_gpu_memory_bytes(int64_t{32} << 30);
  v1::OpenvinoConfig* ov = req.mutable_openvino();
  ov->set_weight_format("int4");
  ov->set_continuous_batching(true);
  ov->set_cache_size_gb(4);
  ov->set_images(1);
  ov->set_image_height(682);
  ov->set_image_width(1024);
  grpc::ClientContext ctx;
  Auth(ctx, kReader);
  v1::EstimateResponse resp;
  grpc::Status s = estimator_->Estimate(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto spec = estimator::ParseModelConfig(config);
  ASSERT_TRUE(spec.ok());
  estimator::EstimateRequest offline{.engine = estimator::Engine::kOpenvino,
                                     .gpu_memory_bytes = int64_t{32} << 30};
  offline.openvino.weight_format_set = true;
  offline.openvino.weight_format = estimator::OvWeightFormat::kInt4Asym;
  offline.openvino.continuous_batching = true;
  offline.openvino.cache_size_gb = 4;
  offline.openvino.images = 1;
  offline.openvino.image_height = 682;
  offline.openvino.image_width = 1024;
  auto expect = estimator::Estimate(*spec, offline);
  ASSERT_TRUE(expect.ok()) << expect.status();
  EXPECT_EQ(resp.max_high_bytes(), expect->max_high_bytes);
  EXPECT_EQ(resp.kv_cache_tokens(), expect->kv_cache_tokens);
  ASSERT_EQ(resp.pipeline_parts_size(), 3);
  EXPECT_EQ(resp.pipeline_parts(2).name(), "language_model");
  EXPECT_EQ(resp.pipeline_parts(2).weights_bytes(), expect->pipeline_parts[2].weights_bytes);
  EXPECT_NE(resp.launch_command().find("--weight-format int4"), std::string::npos)
      << resp.launch_command();
  EXPECT_NE(resp.launch_command().find("--cache_size 4"), std::string::npos)
      << resp.launch_command();
  ov->set_kv_cache_precision("u3");
  grpc::ClientContext bad_ctx;
  Auth(bad_ctx, kReader);
  s = estimator_->Estimate(&bad_ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("openvino.kv_cache_precision=\"u3\""), std::string::npos)
      << s.error_message();
}

// llama.cpp from a catalog config through the API: the GGUF llama_cpp.file_type names, its mmproj
// for a VLM with an image, the offline numbers and llama-server's line; no file type is named.
TEST_F(ApiTest, EstimateLlamaCppFromCatalogConfig) {
  const std::string config = testing::CalibrationModel("gemma-3-4b-it");
  ASSERT_TRUE(Import("gemma-ll", config).ok());
  v1::EstimateRequest req;
  req.set_model_name("gemma-ll");
  req.set_engine(v1::ENGINE_LLAMA_CPP);
  req.set_gpu_memory_bytes(int64_t{24} << 30);
  v1::LlamaCppConfig* ll = req.mutable_llama_cpp();
  ll->set_file_type("q4_K_M");
  ll->set_n_ctx(8192);
  ll->set_n_parallel(2);
  ll->set_images(1);
  ll->set_image_height(896);
  ll->set_image_width(896);
  grpc::ClientContext ctx;
  Auth(ctx, kReader);
  v1::EstimateResponse resp;
  grpc::Status s = estimator_->Estimate(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto spec = estimator::ParseModelConfig(config);
  ASSERT_TRUE(spec.ok());
  estimator::EstimateRequest offline{.engine = estimator::Engine::kLlamaCpp,
                                     .gpu_memory_bytes = int64_t{24} << 30};
  offline.llama_cpp.file_type = "q4_K_M";
  offline.llama_cpp.n_ctx = 8192;
  offline.llama_cpp.n_parallel = 2;
  offline.llama_cpp.images = 1;
  offline.llama_cpp.image_height = 896;
  offline.llama_cpp.image_width = 896;
  auto expect = estimator::Estimate(*spec, offline);
  ASSERT_TRUE(expect.ok()) << expect.status();
  EXPECT_EQ(resp.max_high_bytes(), expect->max_high_bytes);
  EXPECT_EQ(resp.kv_cache_tokens(), 8192);
  EXPECT_EQ(resp.launch_command().rfind("llama-server -m MODEL-q4_K_M.gguf -c 8192 -np 2", 0), 0u)
      << resp.launch_command();
  EXPECT_NE(resp.launch_command().find("--mmproj mmproj-MODEL-f16.gguf"), std::string::npos)
      << resp.launch_command();
  // The converted header is cached per catalog model and file type: the same answer again, and
  // another file type is its own conversion.
  for (const char* type : {"q4_K_M", "q8_0"}) {
    ll->set_file_type(type);
    grpc::ClientContext again_ctx;
    Auth(again_ctx, kReader);
    v1::EstimateResponse again;
    ASSERT_TRUE(estimator_->Estimate(&again_ctx, req, &again).ok());
    offline.llama_cpp.file_type = type;
    auto offline_type = estimator::Estimate(*spec, offline);
    ASSERT_TRUE(offline_type.ok()) << offline_type.status();
    EXPECT_EQ(again.max_high_bytes(), offline_type->max_high_bytes) << type;
  }
  EXPECT_GT(resp.max_high_bytes(), 0);
  ll->clear_file_type();
  grpc::ClientContext bad_ctx;
  Auth(bad_ctx, kReader);
  s = estimator_->Estimate(&bad_ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("llama_cpp.file_type"), std::string::npos) << s.error_message();
}

// A GGUF file's header imported into the catalog (ImportModelRequest.gguf): its weights are the
// file's tensors, exact; Estimate by model_name answers with llama.cpp's rules (the engine a GGUF
// file is served by) and launches the imported path; other engines, the inverse queries and a
// quantization override are refused by name; an mmproj or a header llama.cpp cannot size is
// refused at import; list and get say format "gguf", get carries the header.
TEST_F(ApiTest, GgufCatalogModel) {
  estimator::testing::TestModel tm;
  tm.layers = 6;
  auto header = estimator::ParseGgufHeader(estimator::testing::WriteModel(tm));
  ASSERT_TRUE(header.ok()) << header.status();
  auto import = [&](const std::string& name, const estimator::GgufFile& file,
                    v1::Model* out = nullptr, const std::string& config = "",
                    const std::string& quantization = "") {
    grpc::ClientContext ctx;
    Auth(ctx);
    v1::ImportModelRequest req;
    req.set_name(name);
    server::ToProto(file, req.mutable_gguf());
    req.mutable_gguf()->set_path("/models/tiny-Q4_K_M.gguf");
    req.set_config_json(config);
    req.set_quantization(quantization);
    v1::Model resp;
    grpc::Status s = catalog_->ImportModel(&ctx, req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  };
  v1::Model imported;
  grpc::Status s = import("tiny-q4", *header, &imported);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(imported.format(), "gguf");
  EXPECT_EQ(imported.model_type(), "llama");
  EXPECT_EQ(imported.weights_bytes(), header->weights_bytes);
  EXPECT_EQ(imported.params(), header->parameters);
  auto kv = estimator::GgufKvCache(*header, "f16");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(imported.kv_bytes_per_token(), kv->bytes_per_token);
  EXPECT_EQ(imported.gguf().tensors_size(), 0) << "the caller has the header";

  v1::EstimateRequest req;
  req.set_model_name("tiny-q4");
  req.set_gpu_memory_bytes(int64_t{24} << 30);
  req.mutable_llama_cpp()->set_n_ctx(4096);
  req.mutable_llama_cpp()->set_n_parallel(2);
  v1::EstimateResponse resp;
  {
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    s = estimator_->Estimate(&ctx, req, &resp);
  }
  ASSERT_TRUE(s.ok()) << s.error_message();
  estimator::EstimateRequest offline{.engine = estimator::Engine::kLlamaCpp,
                                     .gpu_memory_bytes = int64_t{24} << 30};
  offline.llama_cpp.n_ctx = 4096;
  offline.llama_cpp.n_parallel = 2;
  auto expect = estimator::EstimateLlamaCpp(*header, offline);
  ASSERT_TRUE(expect.ok()) << expect.status();
  EXPECT_EQ(resp.max_high_bytes(), expect->memory.max_high_bytes);
  ASSERT_EQ(resp.stages_size(), 1);
  EXPECT_EQ(resp.stages(0).kv_cache_bytes(), expect->memory.stages[0].kv_cache_bytes);
  EXPECT_EQ(
      resp.launch_command().rfind("llama-server -m /models/tiny-Q4_K_M.gguf -c 4096 -np 2", 0), 0u)
      << resp.launch_command();

  // With its mmproj (EstimateRequest.mmproj): the offline numbers with it, and --mmproj in the
  // launch line; a text model given as the mmproj is refused naming the key.
  auto mmproj = estimator::ParseGgufHeader(estimator::testing::WriteMmproj());
  ASSERT_TRUE(mmproj.ok()) << mmproj.status();
  {
    v1::EstimateRequest with = req;
    server::ToProto(*mmproj, with.mutable_mmproj());
    with.mutable_mmproj()->set_path("/models/mmproj-tiny-f16.gguf");
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    v1::EstimateResponse got;
    s = estimator_->Estimate(&ctx, with, &got);
    ASSERT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> notes;
    auto mm = estimator::LlamaCppMmprojFromGguf(*mmproj, offline, notes);
    ASSERT_TRUE(mm.ok()) << mm.status();
    auto offline_mm = estimator::EstimateLlamaCpp(*header, offline, &*mm);
    ASSERT_TRUE(offline_mm.ok()) << offline_mm.status();
    EXPECT_EQ(got.max_high_bytes(), offline_mm->memory.max_high_bytes);
    EXPECT_EQ(got.stages(0).weights_bytes(),
              resp.stages(0).weights_bytes() + 64 * 64 * 2 + 64 * 512 * 2);
    EXPECT_NE(got.launch_command().find("--mmproj /models/mmproj-tiny-f16.gguf"), std::string::npos)
        << got.launch_command();
    with.clear_mmproj();
    server::ToProto(*header, with.mutable_mmproj());
    grpc::ClientContext bad_ctx;
    Auth(bad_ctx, kReader);
    s = estimator_->Estimate(&bad_ctx, with, &got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message().rfind("mmproj: ", 0), 0u) << s.error_message();
    // A config.json's mmproj is its own vision tower's conversion.
    v1::EstimateRequest config;
    config.set_config_json(testing::CalibrationModel("qwen2.5-0.5b"));
    config.set_engine(v1::ENGINE_LLAMA_CPP);
    config.mutable_llama_cpp()->set_file_type("q8_0");
    config.set_gpu_memory_bytes(int64_t{24} << 30);
    server::ToProto(*mmproj, config.mutable_mmproj());
    grpc::ClientContext config_ctx;
    Auth(config_ctx, kReader);
    s = estimator_->Estimate(&config_ctx, config, &got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("mmproj: only with a GGUF model"), std::string::npos)
        << s.error_message();
  }

  auto refused = [&](v1::EstimateRequest r, const std::string& needle) {
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    v1::EstimateResponse ignored;
    grpc::Status got = estimator_->Estimate(&ctx, r, &ignored);
    EXPECT_EQ(got.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << needle;
    EXPECT_NE(got.error_message().find(needle), std::string::npos) << got.error_message();
  };
  v1::EstimateRequest vllm = req;
  vllm.set_engine(v1::ENGINE_VLLM);
  refused(vllm, "engine=vllm: a GGUF model is served by engine llama.cpp alone");
  v1::EstimateRequest quant = req;
  quant.set_quantization("awq");
  refused(quant, "quantization=\"awq\"");
  {
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    v1::MaxConcurrencyRequest mc;
    *mc.mutable_base() = req;
    mc.set_context_tokens(1024);
    v1::MaxConcurrencyResponse ignored;
    grpc::Status got = estimator_->MaxConcurrency(&ctx, mc, &ignored);
    EXPECT_EQ(got.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(got.error_message().find("model_name \"tiny-q4\": a GGUF model"), std::string::npos)
        << got.error_message();
  }

  {
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    v1::GetModelRequest get;
    get.set_name("tiny-q4");
    v1::Model m;
    ASSERT_TRUE(catalog_->GetModel(&ctx, get, &m).ok());
    EXPECT_EQ(m.format(), "gguf");
    EXPECT_EQ(m.gguf().tensors_size(), static_cast<int>(header->tensors.size()));
    EXPECT_EQ(m.gguf().path(), "/models/tiny-Q4_K_M.gguf");
    EXPECT_TRUE(m.config_json().empty());
  }
  {
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    v1::ListModelsRequest list;
    v1::ListModelsResponse models;
    ASSERT_TRUE(catalog_->ListModels(&ctx, list, &models).ok());
    ASSERT_EQ(models.models_size(), 1);
    EXPECT_EQ(models.models(0).format(), "gguf");
    EXPECT_EQ(models.models(0).gguf().tensors_size(), 0) << "BASIC carries no header";
  }

  // Refused at import, naming what is wrong; nothing is stored.
  auto import_refused = [&](grpc::Status got, const std::string& needle) {
    EXPECT_EQ(got.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << needle;
    EXPECT_NE(got.error_message().find(needle), std::string::npos) << got.error_message();
  };
  import_refused(import("both", *header, nullptr, R"({"model_type": "llama"})"), "not both");
  import_refused(import("quant", *header, nullptr, "", "awq"), "quantization=\"awq\"");
  estimator::GgufFile clip = *header;
  clip.metadata["general.architecture"] = "clip";
  import_refused(import("proj", clip), "mmproj");
  estimator::GgufFile unsized = *header;
  unsized.metadata.erase("llama.block_count");
  import_refused(import("unsized", unsized), "block_count");
  estimator::GgufFile bad_type = *header;
  bad_type.tensors[1].type = 999;
  import_refused(import("badtype", bad_type), bad_type.tensors[1].name);
  for (const char* name : {"both", "quant", "proj", "unsized", "badtype"}) {
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    v1::GetModelRequest get;
    get.set_name(name);
    v1::Model m;
    EXPECT_EQ(catalog_->GetModel(&ctx, get, &m).error_code(), grpc::StatusCode::NOT_FOUND) << name;
  }
}

// vLLM with a draft model through the API (vllm.draft_config_json) and with LoRA slots: the
// offline numbers; a bad draft config is named.
TEST_F(ApiTest, EstimateWithDraftAndLora) {
  const std::string config = testing::CalibrationModel("qwen2.5-7b-instruct");
  const std::string draft = testing::CalibrationModel("qwen2.5-0.5b");
  v1::EstimateRequest req;
  req.set_config_json(config);
  req.set_gpu_memory_bytes(85017493504);
  req.mutable_vllm()->set_max_model_len(8192);
  req.mutable_vllm()->set_draft_config_json(draft);
  req.mutable_vllm()->set_draft_model("Qwen/Qwen2.5-0.5B");
  req.mutable_vllm()->set_num_speculative_tokens(3);
  req.mutable_vllm()->set_enable_lora(true);
  req.mutable_vllm()->set_max_loras(4);
  grpc::ClientContext ctx;
  Auth(ctx, kReader);
  v1::EstimateResponse resp;
  grpc::Status s = estimator_->Estimate(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto spec = estimator::ParseModelConfig(config);
  auto draft_spec = estimator::ParseModelConfig(draft);
  ASSERT_TRUE(spec.ok() && draft_spec.ok());
  estimator::EstimateRequest offline{.engine = estimator::Engine::kVllm,
                                     .gpu_memory_bytes = 85017493504};
  offline.vllm.max_model_len = 8192;
  offline.vllm.draft = &*draft_spec;
  offline.vllm.num_speculative_tokens = 3;
  offline.vllm.enable_lora = true;
  offline.vllm.max_loras = 4;
  auto expect = estimator::Estimate(*spec, offline);
  ASSERT_TRUE(expect.ok()) << expect.status();
  EXPECT_EQ(resp.stages(0).weights_bytes(), expect->stages[0].weights_bytes);
  EXPECT_EQ(resp.kv_cache_tokens(), expect->kv_cache_tokens);
  EXPECT_EQ(resp.host_bytes(), expect->host_bytes);
  req.mutable_vllm()->set_draft_config_json("{");
  grpc::ClientContext bad;
  Auth(bad, kReader);
  s = estimator_->Estimate(&bad, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("vllm.draft_config_json"), std::string::npos)
      << s.error_message();
}

// MTP speculative decoding through the API (vllm.speculative_method): the model's own MTP layers
// as the offline estimate counts them; a draft config beside it
// and an unknown method are refused by field.
TEST_F(ApiTest, EstimateWithMtpSpeculation) {
  const std::string config = testing::TestModel("glm-4.5-air");
  v1::EstimateRequest req;
  req.set_config_json(config);
  req.set_gpu_memory_bytes(150 * kGiB);
  req.mutable_parallelism()->set_tp(4);
  req.mutable_vllm()->set_max_model_len(8192);
  req.mutable_vllm()->set_speculative_method("mtp");
  req.mutable_vllm()->set_num_speculative_tokens(1);
  grpc::ClientContext ctx;
  Auth(ctx, kReader);
  v1::EstimateResponse resp;
  grpc::Status s = estimator_->Estimate(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto spec = estimator::ParseModelConfig(config);
  ASSERT_TRUE(spec.ok()) << spec.status();
  estimator::EstimateRequest offline{.engine = estimator::Engine::kVllm,
                                     .gpu_memory_bytes = 150 * kGiB};
  offline.parallelism.tp = 4;
  offline.vllm.max_model_len = 8192;
  offline.vllm.speculative_method = estimator::SpeculativeMethod::kMtp;
  offline.vllm.num_speculative_tokens = 1;
  auto expect = estimator::Estimate(*spec, offline);
  ASSERT_TRUE(expect.ok()) << expect.status();
  EXPECT_EQ(resp.stages(0).weights_bytes(), expect->stages[0].weights_bytes);
  EXPECT_EQ(resp.kv_cache_tokens(), expect->kv_cache_tokens);
  req.mutable_vllm()->set_speculative_method("medusa2");
  grpc::ClientContext bad;
  Auth(bad, kReader);
  s = estimator_->Estimate(&bad, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("medusa2"), std::string::npos) << s.error_message();
  req.mutable_vllm()->set_speculative_method("mtp");
  req.mutable_vllm()->set_draft_config_json(testing::CalibrationModel("qwen2.5-0.5b"));
  grpc::ClientContext both;
  Auth(both, kReader);
  s = estimator_->Estimate(&both, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("vllm.draft_config_json"), std::string::npos)
      << s.error_message();
}

// An embedding model through the API: the response says it is an encoder with no KV cache, the
// numbers are the offline estimator's, and an engine not modelled for it is refused by name.
TEST_F(ApiTest, EstimateEncoderOnlyModel) {
  const std::string config = testing::TestModel("bge-m3");
  v1::EstimateRequest req;
  req.set_config_json(config);
  req.set_gpu_memory_bytes(80 * kGiB);
  req.set_context_tokens(512);
  req.set_concurrency(32);
  grpc::ClientContext ctx;
  Auth(ctx, kReader);
  v1::EstimateResponse resp;
  grpc::Status s = estimator_->Estimate(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(resp.encoder_only());
  EXPECT_TRUE(resp.fits()) << resp.reason();
  EXPECT_EQ(resp.kv_cache_tokens(), 0);
  ASSERT_EQ(resp.stages_size(), 1);
  EXPECT_EQ(resp.stages(0).kv_cache_bytes(), 0);
  auto spec = estimator::ParseModelConfig(config);
  ASSERT_TRUE(spec.ok()) << spec.status();
  estimator::EstimateRequest offline{.engine = estimator::Engine::kVllm,
                                     .gpu_memory_bytes = 80 * kGiB,
                                     .concurrency = 32,
                                     .context_tokens = 512};
  auto expect = estimator::Estimate(*spec, offline);
  ASSERT_TRUE(expect.ok()) << expect.status();
  EXPECT_EQ(resp.max_total_bytes(), expect->max_total_bytes);
  EXPECT_EQ(resp.max_concurrency(), expect->max_concurrency);
  EXPECT_EQ(resp.params(), 567'754'752);
  req.set_engine(v1::ENGINE_SGLANG);
  grpc::ClientContext bad;
  Auth(bad, kReader);
  s = estimator_->Estimate(&bad, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("bidirectional encoder"), std::string::npos)
      << s.error_message();
}

// A hybrid linear-attention model through the API on vLLM: the response is the offline
// estimator's (vLLM's 544-token attention block, a state page per sequence), its band is widened
// for a path the calibration files do not hold; SGLang's state pool flags travel through it; and
// OpenVINO, not modelled for it, is refused.
TEST_F(ApiTest, EstimateLinearAttentionModelOnVllm) {
  const std::string config = testing::TestModel("qwen3-next-80b-a3b");
  v1::EstimateRequest req;
  req.set_config_json(config);
  req.set_gpu_memory_bytes(140 * kGiB);
  req.set_context_tokens(32768);
  req.set_concurrency(8);
  req.mutable_parallelism()->set_tp(2);
  req.mutable_vllm()->set_max_model_len(32768);
  grpc::ClientContext ctx;
  Auth(ctx, kReader);
  v1::EstimateResponse resp;
  grpc::Status s = estimator_->Estimate(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(resp.fits()) << resp.reason();
  auto spec = estimator::ParseModelConfig(config);
  ASSERT_TRUE(spec.ok()) << spec.status();
  estimator::EstimateRequest offline{.engine = estimator::Engine::kVllm,
                                     .gpu_memory_bytes = 140 * kGiB,
                                     .concurrency = 8,
                                     .context_tokens = 32768};
  offline.parallelism.tp = 2;
  offline.vllm.max_model_len = 32768;
  auto expect = estimator::Estimate(*spec, offline);
  ASSERT_TRUE(expect.ok()) << expect.status();
  EXPECT_EQ(resp.kv_cache_tokens(), expect->kv_cache_tokens);
  EXPECT_GT(resp.kv_cache_tokens(), 0);
  EXPECT_EQ(resp.kv_cache_tokens() % 544, 0);
  EXPECT_EQ(resp.max_concurrency(), expect->max_concurrency);
  EXPECT_EQ(resp.max_high_bytes(), expect->max_high_bytes);
  bool block = false, widened = false;
  for (const std::string& n : resp.notes()) block |= n.find("544 tokens") != std::string::npos;
  for (const std::string& w : resp.band_widened()) {
    widened |= w.find("linear-attention") != std::string::npos;
  }
  EXPECT_TRUE(block);
  EXPECT_TRUE(widened);
  // SGLang's state pool settings travel through the API: 90 states, 3 per running request.
  req.set_engine(v1::ENGINE_SGLANG);
  req.mutable_sglang()->set_context_length(32768);
  req.mutable_sglang()->set_max_mamba_cache_size(90);
  req.mutable_sglang()->set_mamba_ssm_dtype("bfloat16");
  grpc::ClientContext sglang;
  Auth(sglang, kReader);
  s = estimator_->Estimate(&sglang, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.max_concurrency(), 30);
  EXPECT_NE(resp.launch_command().find("--max-mamba-cache-size 90 --mamba-ssm-dtype bfloat16"),
            std::string::npos)
      << resp.launch_command();
  req.mutable_sglang()->set_mamba_ssm_dtype("int4");
  grpc::ClientContext bad_dtype;
  Auth(bad_dtype, kReader);
  s = estimator_->Estimate(&bad_dtype, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("sglang.mamba_ssm_dtype"), std::string::npos)
      << s.error_message();
  req.set_engine(v1::ENGINE_OPENVINO);
  grpc::ClientContext bad;
  Auth(bad, kReader);
  s = estimator_->Estimate(&bad, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("linear-attention"), std::string::npos) << s.error_message();
}

TEST_F(ApiTest, OversizeMessageIsRefusedAndTwoMiBIsFine) {
  ASSERT_TRUE(CreateType("H100", 80 * kGiB).ok());
  // A 2 MiB config.json (padding in an ignored key) imports.
  std::string big = testing::CalibrationModel("qwen2.5-0.5b");
  big.insert(1, "\"_padding\": \"" + std::string(2 << 20, 'x') + "\",");
  EXPECT_TRUE(Import("big", big).ok());
  // 20 MiB is over the server's 16 MiB limit.
  std::string huge = testing::CalibrationModel("qwen2.5-0.5b");
  huge.insert(1, "\"_padding\": \"" + std::string(20 << 20, 'x') + "\",");
  grpc::Status s = Import("huge", huge);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
}

TEST_F(ApiTest, ExpiredDeadlineIsHonoured) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kReader);
  ctx.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  v1::ListGpuTypesResponse resp;
  EXPECT_EQ(inventory_->ListGpuTypes(&ctx, {}, &resp).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_F(ApiTest, HeadroomAndWatchSeeAChange) {
  ASSERT_TRUE(CreateType("H100", 80 * kGiB).ok());
  ASSERT_TRUE(CreateNode("n1", 8, "H100").ok());
  ASSERT_TRUE(Import("m", testing::CalibrationModel("qwen2.5-0.5b")).ok());
  grpc::ClientContext ctx;
  Auth(ctx, kReader);
  v1::GetFleetHeadroomRequest hreq;
  hreq.set_include_gpus(true);
  v1::FleetHeadroom h;
  ASSERT_TRUE(headroom_->GetFleetHeadroom(&ctx, hreq, &h).ok());
  EXPECT_EQ(h.fleet().total_bytes(), 8 * 80 * kGiB);
  EXPECT_EQ(h.fleet().free_gpus(), 8);
  EXPECT_EQ(h.gpus_size(), 8);
  EXPECT_EQ(h.fleet().largest_free_nvlink_domain(), 8);

  grpc::ClientContext watch_ctx;
  Auth(watch_ctx, kReader);
  auto reader = headroom_->WatchHeadroom(&watch_ctx, v1::WatchHeadroomRequest());
  v1::FleetHeadroom first;
  ASSERT_TRUE(reader->Read(&first));
  EXPECT_EQ(first.fleet().committed_bytes(), 0);
  // A commit changes the generation; the stream sends the new headroom.
  auto& store = server_->store();
  ASSERT_TRUE(store
                  .CommitPlacements({.request_id = "w",
                                     .snapshot_generation = *store.FleetGeneration(),
                                     .placements = {storage::testing::MakePlacement(
                                         "n1", {0, 1}, 30 * kGiB, "m")}})
                  .ok());
  v1::FleetHeadroom second;
  ASSERT_TRUE(reader->Read(&second));
  EXPECT_GT(second.generation(), first.generation());
  EXPECT_EQ(second.fleet().committed_bytes(), 60 * kGiB);
  EXPECT_EQ(second.fleet().free_gpus(), 6);
  watch_ctx.TryCancel();
  while (reader->Read(&second)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ApiTest, WatchWithoutTokenIsUnauthenticated) {
  grpc::ClientContext ctx;
  auto reader = headroom_->WatchHeadroom(&ctx, v1::WatchHeadroomRequest());
  v1::FleetHeadroom h;
  EXPECT_FALSE(reader->Read(&h));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace fleetplan
