// Regression tests for the defects found by attacking fleetpland as an adversarial user would
// (issue "Hardening", defect list 1-16): each sends what an attacker or a careless script sent and
// expects a clear refusal instead of a crash, a hang, unbounded memory or a wrong number.

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/estimator.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "fleetplan/v1/system.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "planner/estimator/vllm.h"
#include "server/plan_registry.h"
#include "server/request_cache.h"
#include "server/server.h"
#include "storage/sql_store.h"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

using testing::ProcessResult;
using testing::RunProcess;

constexpr int64_t kH100 = 85017493504;
constexpr char kWriter[] = "writer-token-0123456789abcdef";
constexpr char kReader[] = "reader-token-0123456789abcdef";

// `"hidden_size": [[[...]]]` nested `depth` levels.
std::string DeepConfig(size_t depth) {
  return absl::StrCat(R"({"model_type": "llama", "hidden_size": )", std::string(depth, '['), "1",
                      std::string(depth, ']'), "}");
}

class AttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("attack_");
    std::ofstream(dir_ + "/tokens") << kWriter << " writer\n" << kReader << " reader\n";
    auto server = server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                                  .metrics_listen = "",
                                                  .auth_tokens_file = dir_ + "/tokens",
                                                  .store = {.path = dir_ + "/fleet.db"}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    inventory_ = v1::InventoryService::NewStub(channel);
    catalog_ = v1::CatalogService::NewStub(channel);
    estimator_ = v1::EstimatorService::NewStub(channel);
    planner_ = v1::PlannerService::NewStub(channel);
    system_ = v1::SystemService::NewStub(channel);
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  static void Auth(grpc::ClientContext& ctx, const char* token = kWriter, int seconds = 30) {
    if (token != nullptr) ctx.AddMetadata("authorization", std::string("Bearer ") + token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  }

  grpc::Status Type(const std::string& name, int64_t bytes, double cost = 0) {
    grpc::ClientContext ctx;
    Auth(ctx);
    v1::CreateGpuTypeRequest req;
    req.mutable_gpu_type()->set_name(name);
    req.mutable_gpu_type()->set_memory_bytes(bytes);
    req.mutable_gpu_type()->set_cost_per_hour(cost);
    v1::GpuType resp;
    return inventory_->CreateGpuType(&ctx, req, &resp);
  }

  grpc::Status Node(const std::string& name, int gpus, const std::string& type = "H100") {
    grpc::ClientContext ctx;
    Auth(ctx);
    v1::CreateNodeRequest req;
    req.mutable_node()->set_name(name);
    req.mutable_node()->set_pool("p");
    for (int i = 0; i < gpus; ++i) {
      v1::Gpu* g = req.mutable_node()->add_gpus();
      g->set_index(i);
      g->set_gpu_type(type);
      g->set_healthy(true);
    }
    v1::Node resp;
    return inventory_->CreateNode(&ctx, req, &resp);
  }

  grpc::Status Import(const std::string& name, const std::string& config,
                      bool validate_only = false, const std::string& request_id = "",
                      v1::Model* out = nullptr) {
    grpc::ClientContext ctx;
    Auth(ctx);
    v1::ImportModelRequest req;
    req.set_name(name);
    req.set_config_json(config);
    req.set_validate_only(validate_only);
    req.set_request_id(request_id);
    v1::Model resp;
    grpc::Status s = catalog_->ImportModel(&ctx, req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }

  grpc::Status Plan(const v1::PlanPlacementRequest& req, v1::Plan* plan, int seconds = 30) {
    grpc::ClientContext ctx;
    Auth(ctx, kWriter, seconds);
    return planner_->PlanPlacement(&ctx, req, plan);
  }

  std::string dir_;
  std::unique_ptr<server::FleetplanServer> server_;
  std::unique_ptr<v1::InventoryService::Stub> inventory_;
  std::unique_ptr<v1::CatalogService::Stub> catalog_;
  std::unique_ptr<v1::EstimatorService::Stub> estimator_;
  std::unique_ptr<v1::PlannerService::Stub> planner_;
  std::unique_ptr<v1::SystemService::Stub> system_;
};

// 1. A config nested 100,000 levels deep crashed the server (recursion in the error path); at 5,000
// levels the client saw a metadata-size error instead of the message.
TEST_F(AttackTest, DeeplyNestedConfigIsRefusedWithABoundedMessage) {
  for (size_t depth : {100000u, 5000u, 70u}) {
    const std::string config = DeepConfig(depth);
    for (bool validate_only : {true, false}) {
      grpc::Status s = Import("deep", config, validate_only);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << depth << ": " << s.error_message();
      EXPECT_NE(s.error_message().find("nests deeper than 64 levels"), std::string::npos)
          << s.error_message();
      EXPECT_LT(s.error_message().size(), 2200u);
    }
    grpc::ClientContext ctx;
    Auth(ctx, kReader);
    v1::EstimateRequest req;
    req.set_config_json(config);
    req.set_gpu_memory_bytes(kH100);
    v1::EstimateResponse resp;
    grpc::Status s = estimator_->Estimate(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  }
  // 60 levels inside a field: parsed, then refused naming the field, the value shown bounded.
  grpc::Status s = Import("deep", DeepConfig(60));
  EXPECT_NE(s.error_message().find("hidden_size=[[[["), std::string::npos) << s.error_message();
  EXPECT_LT(s.error_message().size(), 400u);
  // The offline CLI too.
  std::ofstream(dir_ + "/deep.json") << DeepConfig(100000);
  ProcessResult cli =
      RunProcess({FLEETPLAN_CLI_PATH, "estimate", "--model=" + dir_ + "/deep.json"});
  EXPECT_EQ(cli.exit_code, 1) << cli.err;
  EXPECT_NE(cli.err.find("nests deeper"), std::string::npos) << cli.err;
}

// 2. cost_per_hour=inf (or 1e30, or NaN) was accepted and a later exact plan aborted the server.
TEST_F(AttackTest, NonFiniteOrAbsurdCostsAreRefusedAndExactPlansSurviveLargeOnes) {
  for (double cost : {std::numeric_limits<double>::infinity(), 1e30,
                      std::numeric_limits<double>::quiet_NaN(), -1.0}) {
    grpc::Status s = Type("X", kH100, cost);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << cost;
    EXPECT_NE(s.error_message().find("cost_per_hour"), std::string::npos) << s.error_message();
  }
  ProcessResult cli = RunProcess({FLEETPLAN_CLI_PATH, "gpu-types", "add", "--name=X",
                                  "--memory-bytes=1000", "--cost-per-hour=inf"});
  EXPECT_EQ(cli.exit_code, 2) << cli.err;
  EXPECT_NE(cli.err.find("finite"), std::string::npos) << cli.err;
  ASSERT_TRUE(Type("H100", kH100, 1e6).ok());  // the largest accepted cost
  ASSERT_TRUE(Node("n1", 8).ok());
  ASSERT_TRUE(Import("small", testing::CalibrationModel("qwen2.5-0.5b")).ok());
  v1::PlanPlacementRequest req;
  req.set_strategy(v1::STRATEGY_EXACT);
  v1::DeploymentSpec* d = req.add_deployments();
  d->set_name("d");
  d->set_model("small");
  d->set_replicas(4);
  v1::Plan plan;
  grpc::Status s = Plan(req, &plan);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(plan.replicas_size(), 4);
  EXPECT_EQ(plan.strategy(), "exact");
}

// 3. The request-id cache kept whole 15 MiB requests and answers: 20 imports took 800 MB.
TEST_F(AttackTest, RequestIdCacheIsBoundedInBytes) {
  std::string big = testing::CalibrationModel("qwen2.5-0.5b");
  big.insert(big.rfind('}'), absl::StrCat(", \"_padding\": \"", std::string(4 << 20, 'x'), "\""));
  for (int i = 0; i < 5; ++i) {
    v1::Model m;
    grpc::Status s = Import("m" + std::to_string(i), big, true, "req-" + std::to_string(i), &m);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(m.config_json().empty()) << "the answer does not echo the config";
  }
  server::RequestCache cache(
      {.max_entries = 1000, .max_bytes = 1 << 20, .max_entry_bytes = 64 << 10});
  v1::Model response;
  response.add_notes(std::string(32 << 10, 'n'));
  v1::ImportModelRequest request;
  for (int i = 0; i < 200; ++i) {
    request.set_name("m" + std::to_string(i));
    request.set_config_json(std::string(1 << 20, 'c'));
    cache.Store("ImportModel", "id-" + std::to_string(i), request, response);
    EXPECT_LE(cache.bytes(), 1 << 20);
  }
  // A retry still gets the first answer (recent entries are kept) ...
  auto hit = cache.Lookup("ImportModel", "id-199", request);
  ASSERT_TRUE(hit.ok());
  EXPECT_TRUE(hit->has_value());
  // ... and a different request under a used id is ALREADY_EXISTS.
  request.set_name("other");
  EXPECT_EQ(cache.Lookup("ImportModel", "id-199", request).status().code(),
            absl::StatusCode::kAlreadyExists);
}

// 4 and 5. 200 x 10,000 replicas ran 30 s past the deadline and was counted OK; kept plans were
// unbounded.
TEST_F(AttackTest, HugeRequestsAreRefusedAndKeptPlansAreBounded) {
  ASSERT_TRUE(Type("H100", kH100).ok());
  ASSERT_TRUE(Node("n1", 8).ok());
  ASSERT_TRUE(Import("small", testing::CalibrationModel("qwen2.5-0.5b")).ok());
  v1::PlanPlacementRequest req;
  for (int i = 0; i < 200; ++i) {
    v1::DeploymentSpec* d = req.add_deployments();
    d->set_name("d" + std::to_string(i));
    d->set_model("small");
    d->set_replicas(10000);
  }
  v1::Plan plan;
  grpc::Status s = Plan(req, &plan);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("replicas in all"), std::string::npos) << s.error_message();
  server::PlanRegistry registry({.max_plans = 10, .max_bytes = 64 << 10});
  for (int i = 0; i < 100; ++i) {
    server::StoredPlan p;
    p.commit.placements.resize(50);
    for (auto& placement : p.commit.placements) placement.ranks.resize(8);
    registry.Keep(p);
    EXPECT_LE(registry.size(), 10u);
    EXPECT_LE(registry.bytes(), 64 << 10);
  }
}

// 6. Huge labels on five nodes made `nodes list` fail for everyone.
TEST_F(AttackTest, LabelsAreBoundedAndPagesFitAnAnswer) {
  ASSERT_TRUE(Type("H100", kH100).ok());
  grpc::ClientContext ctx;
  Auth(ctx);
  v1::CreateNodeRequest req;
  req.mutable_node()->set_name("big");
  req.mutable_node()->set_pool("p");
  (*req.mutable_node()->mutable_labels())["k"] = std::string(2 << 20, 'v');
  v1::Node resp;
  grpc::Status s = inventory_->CreateNode(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("more than 1024"), std::string::npos) << s.error_message();
  // Pages are cut by bytes: 80 nodes of 64 labels x 1000 characters (~5 MiB) do not come back in
  // one answer, and every node comes back once over the pages.
  auto store = storage::SqlStore::Open({.path = dir_ + "/labels.db"});
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->CreateGpuType({.name = "H100", .memory_bytes = kH100}).ok());
  for (int i = 0; i < 80; ++i) {
    placement::Node n{.name = absl::StrCat("n", 100 + i), .pool = "p"};
    for (int l = 0; l < 64; ++l) n.labels[absl::StrCat("l", l)] = std::string(1000, 'v');
    ASSERT_TRUE((*store)->CreateNode(n).ok());
  }
  std::string token;
  int pages = 0, seen = 0;
  do {
    auto page = (*store)->ListNodes({}, 1000, token);
    ASSERT_TRUE(page.ok());
    seen += static_cast<int>(page->nodes.size());
    token = page->next_page_token;
    ++pages;
  } while (!token.empty() && pages < 100);
  EXPECT_EQ(seen, 80);
  EXPECT_GE(pages, 2);
}

// 8 and 10. Network listeners need an authentication mode; /metrics follows the same rules and
// GetServerInfo needs a token when tokens are on.
TEST_F(AttackTest, ListenersNeedAuthenticationAndServerInfoNeedsAToken) {
  auto open = server::FleetplanServer::Start({.listen = "0.0.0.0:0",
                                              .metrics_listen = "",
                                              .insecure_listen_any = true,
                                              .store = {.path = ":memory:"}});
  EXPECT_FALSE(open.ok());
  EXPECT_NE(open.status().message().find("no authentication"), std::string::npos) << open.status();
  auto metrics = server::FleetplanServer::Start(
      {.listen = "127.0.0.1:0", .metrics_listen = "0.0.0.0:0", .store = {.path = ":memory:"}});
  EXPECT_FALSE(metrics.ok());
  EXPECT_NE(metrics.status().message().find("metrics_listen=\"0.0.0.0:0\""), std::string::npos)
      << metrics.status();
  auto portless = server::FleetplanServer::Start(
      {.listen = "127.0.0.1", .metrics_listen = "", .store = {.path = ":memory:"}});
  EXPECT_FALSE(portless.ok());
  EXPECT_NE(portless.status().message().find("must be host:port"), std::string::npos);
  grpc::ClientContext anonymous;
  anonymous.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ServerInfo info;
  EXPECT_EQ(system_->GetServerInfo(&anonymous, {}, &info).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext reader;
  Auth(reader, kReader);
  EXPECT_TRUE(system_->GetServerInfo(&reader, {}, &info).ok());
  // /metrics with tokens on: refused without one, served with a reader's.
  auto with_metrics = server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                                      .metrics_listen = "127.0.0.1:0",
                                                      .auth_tokens_file = dir_ + "/tokens",
                                                      .store = {.path = ":memory:"}});
  ASSERT_TRUE(with_metrics.ok()) << with_metrics.status();
  const int port = (*with_metrics)->metrics_port();
  EXPECT_FALSE(testing::HttpGet(port, "/metrics").has_value());
  auto body =
      testing::HttpGet(port, "/metrics", absl::StrCat("Authorization: Bearer ", kReader, "\r\n"));
  ASSERT_TRUE(body.has_value());
  EXPECT_NE(body->find("fleetplan_build_info"), std::string::npos);
  (*with_metrics)->Shutdown(std::chrono::milliseconds(100));
}

// 9. A model named `q7;touch${IFS}pwned;#` made the printed launch line run a command; a node name
// with ':' garbled CUDA_VISIBLE_DEVICES.
TEST_F(AttackTest, NamesAreShellSafeAndLaunchLinesQuoted) {
  grpc::Status s = Import("q7;touch${IFS}pwned;#", testing::CalibrationModel("qwen2.5-0.5b"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("shell syntax"), std::string::npos) << s.error_message();
  ASSERT_TRUE(Type("H100", kH100).ok());
  EXPECT_EQ(Node("a:b", 1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(estimator::ShellQuote("q7;touch${IFS}pwned;#"), "'q7;touch${IFS}pwned;#'");
  EXPECT_EQ(estimator::ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(estimator::ShellQuote("meta-llama/Llama-3.1-8B"), "meta-llama/Llama-3.1-8B");
  EXPECT_EQ(estimator::ShellQuote(""), "''");
}

// 11. concurrency=1048576 x context=67108864 was "placed" on one H100 with negative bytes; a GPU
// type of INT64_MAX bytes overflowed headroom sums.
TEST_F(AttackTest, OverflowingWorkloadsAreRefusedNamingTheFields) {
  ASSERT_TRUE(Type("H100", kH100).ok());
  EXPECT_EQ(Type("huge", INT64_MAX).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Node("n1", 8).ok());
  ASSERT_TRUE(Import("llama", testing::CalibrationModel("llama-3.1-8b-instruct")).ok());
  v1::PlanPlacementRequest req;
  v1::DeploymentSpec* d = req.add_deployments();
  d->set_name("d");
  d->set_model("llama");
  d->set_concurrency(1048576);
  d->set_context_tokens(67108864);
  v1::Plan plan;
  grpc::Status s = Plan(req, &plan);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("concurrency=1048576"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("context_tokens=67108864"), std::string::npos);
  ProcessResult gib =
      RunProcess({FLEETPLAN_CLI_PATH, "gpu-types", "add", "--name=X", "--memory-gib=1e30"});
  EXPECT_EQ(gib.exit_code, 2) << gib.err;
}

// 12. CommitPlan wrote deployment rows before committing; refused commits left them behind and a
// model once committed could never be removed.
TEST_F(AttackTest, RefusedCommitsLeaveNoDeploymentsAndDeploymentsCanBeDeleted) {
  ASSERT_TRUE(Type("H100", kH100).ok());
  ASSERT_TRUE(Node("n1", 1).ok());
  ASSERT_TRUE(Import("small", testing::CalibrationModel("qwen2.5-0.5b")).ok());
  v1::PlanPlacementRequest req;
  v1::DeploymentSpec* d = req.add_deployments();
  d->set_name("chat");
  d->set_model("small");
  v1::Plan first, second;
  ASSERT_TRUE(Plan(req, &first).ok());
  d->set_name("other");
  ASSERT_TRUE(Plan(req, &second).ok());
  auto commit = [&](const std::string& plan_id) {
    grpc::ClientContext ctx;
    Auth(ctx);
    v1::CommitPlanRequest c;
    c.set_plan_id(plan_id);
    v1::CommitPlanResponse r;
    return planner_->CommitPlan(&ctx, c, &r);
  };
  ASSERT_TRUE(commit(first.plan_id()).ok());
  EXPECT_EQ(commit(second.plan_id()).error_code(), grpc::StatusCode::ABORTED);
  grpc::ClientContext lc;
  Auth(lc, kReader);
  v1::ListDeploymentsResponse list;
  ASSERT_TRUE(planner_->ListDeployments(&lc, {}, &list).ok());
  ASSERT_EQ(list.deployments_size(), 1) << "the refused plan left no deployment row";
  EXPECT_EQ(list.deployments(0).name(), "chat");
  EXPECT_EQ(list.deployments(0).spec().model(), "small");
  // Release, delete the deployment, and the model can go.
  grpc::ClientContext pc;
  Auth(pc, kReader);
  v1::ListPlacementsResponse placements;
  ASSERT_TRUE(planner_->ListPlacements(&pc, {}, &placements).ok());
  ASSERT_EQ(placements.placements_size(), 1);
  grpc::ClientContext rc;
  Auth(rc);
  v1::ReleasePlacementRequest release;
  release.set_placement_id(placements.placements(0).id());
  v1::PlacementRecord record;
  ASSERT_TRUE(planner_->ReleasePlacement(&rc, release, &record).ok());
  grpc::ClientContext dc;
  Auth(dc);
  v1::DeleteDeploymentRequest del;
  del.set_name("chat");
  google::protobuf::Empty empty;
  ASSERT_TRUE(planner_->DeleteDeployment(&dc, del, &empty).ok());
  grpc::ClientContext mc;
  Auth(mc);
  v1::DeleteModelRequest dm;
  dm.set_name("small");
  EXPECT_TRUE(catalog_->DeleteModel(&mc, dm, &empty).ok());
}

// 15 and 16. Smaller defects: UpdateNode draining what DrainNode refuses, bad engine fields read
// as "no valid parallelism", --max-tp=-1 not named, label filters leaking SQL errors, a misspelled
// --vllm flag silently ignored.
TEST_F(AttackTest, SmallDefects) {
  ASSERT_TRUE(Type("H100", kH100).ok());
  ASSERT_TRUE(Node("n1", 8).ok());
  ASSERT_TRUE(Import("small", testing::CalibrationModel("qwen2.5-0.5b")).ok());
  v1::PlanPlacementRequest req;
  v1::DeploymentSpec* d = req.add_deployments();
  d->set_name("d");
  d->set_model("small");
  d->mutable_vllm()->set_block_size(0);
  v1::Plan plan;
  grpc::Status s = Plan(req, &plan);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("block_size=0"), std::string::npos) << s.error_message();
  d->clear_vllm();
  d->set_max_tp(-1);
  s = Plan(req, &plan);
  EXPECT_NE(s.error_message().find("max_tp=-1"), std::string::npos) << s.error_message();
  d->clear_max_tp();
  ASSERT_TRUE(Plan(req, &plan).ok());
  grpc::ClientContext cc;
  Auth(cc);
  v1::CommitPlanRequest commit;
  commit.set_plan_id(plan.plan_id());
  v1::CommitPlanResponse committed;
  ASSERT_TRUE(planner_->CommitPlan(&cc, commit, &committed).ok());
  // UpdateNode follows DrainNode's rule.
  grpc::ClientContext gc;
  Auth(gc, kReader);
  v1::GetNodeRequest get;
  get.set_name("n1");
  v1::Node node;
  ASSERT_TRUE(inventory_->GetNode(&gc, get, &node).ok());
  node.set_state(v1::NODE_STATE_DRAINING);
  grpc::ClientContext uc;
  Auth(uc);
  v1::UpdateNodeRequest update;
  *update.mutable_node() = node;
  v1::Node updated;
  s = inventory_->UpdateNode(&uc, update, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  // Label filters with odd keys are refused by name, never INTERNAL.
  for (const std::string key : {"a\"b", "a\\b", "k\x01"}) {
    grpc::ClientContext lc;
    Auth(lc, kReader);
    v1::ListNodesRequest list;
    (*list.mutable_labels())[key] = "v";
    v1::ListNodesResponse nodes;
    s = inventory_->ListNodes(&lc, list, &nodes);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  }
  for (const std::string key : {"a.b", "$[0]", "k*"}) {
    grpc::ClientContext lc;
    Auth(lc, kReader);
    v1::ListNodesRequest list;
    (*list.mutable_labels())[key] = "v";
    v1::ListNodesResponse nodes;
    s = inventory_->ListNodes(&lc, list, &nodes);
    EXPECT_TRUE(s.ok()) << key << ": " << s.error_message();
  }
  // A misspelled vLLM flag is reported, and refused with --strict.
  const std::string model_dir = dir_ + "/qwen";
  std::filesystem::create_directories(model_dir);
  std::ofstream(model_dir + "/config.json") << testing::CalibrationModel("qwen2.5-0.5b");
  const std::string line = "vllm serve " + model_dir + " --max-modl-len 4096 --port 8000";
  ProcessResult warned = RunProcess({FLEETPLAN_CLI_PATH, "estimate", "--vllm=" + line});
  EXPECT_EQ(warned.exit_code, 0) << warned.err;
  EXPECT_NE(warned.out.find("--max-modl-len is not one fleetplan knows"), std::string::npos)
      << warned.out;
  EXPECT_NE(warned.out.find("--port does not change memory"), std::string::npos) << warned.out;
  ProcessResult strict = RunProcess({FLEETPLAN_CLI_PATH, "estimate", "--strict", "--vllm=" + line});
  EXPECT_EQ(strict.exit_code, 2);
  EXPECT_NE(strict.err.find("--max-modl-len"), std::string::npos) << strict.err;
}

// 16. A bad TLS key was reported as "address in use".
TEST(AttackStartTest, BadTlsKeyIsNamed) {
  const std::string dir = testing::MakeTempDir("badkey_");
  std::ofstream(dir + "/key.pem")
      << "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
  auto server = server::FleetplanServer::Start(
      {.listen = "127.0.0.1:0",
       .metrics_listen = "",
       .tls = {.cert_file = std::string(FLEETPLAN_TESTDATA_DIR) + "/tls/server.pem",
               .key_file = dir + "/key.pem"},
       .store = {.path = ":memory:"}});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("tls_key="), std::string::npos) << server.status();
  EXPECT_EQ(server.status().message().find("address in use"), std::string::npos);
  auto mismatch = server::FleetplanServer::Start(
      {.listen = "127.0.0.1:0",
       .metrics_listen = "",
       .tls = {.cert_file = std::string(FLEETPLAN_TESTDATA_DIR) + "/tls/server.pem",
               .key_file = std::string(FLEETPLAN_TESTDATA_DIR) + "/tls/client.key"},
       .store = {.path = ":memory:"}});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("does not match"), std::string::npos)
      << mismatch.status();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fleetplan

#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"

namespace fleetplan {
namespace {

// 16. Non-UTF-8 in a string field came back as "UNIMPLEMENTED:" with an empty message.
TEST_F(AttackTest, NonUtf8InputGetsAClearError) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  // CreateGpuTypeRequest{gpu_type: {name: "\xff"}} on the wire.
  const std::string wire("\x0a\x03\x0a\x01\xff", 5);
  grpc::Slice slice(wire);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ClientContext ctx;
  Auth(ctx);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/fleetplan.v1.InventoryService/CreateGpuType", grpc::StubOptions(),
                 &request, &response, [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = s;
                   done = true;
                   cv.notify_all();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("not valid UTF-8"), std::string::npos)
      << status.error_message();
}

}  // namespace
}  // namespace fleetplan
