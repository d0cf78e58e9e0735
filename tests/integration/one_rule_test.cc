// "One rule, one place" (DESIGN.md) checked the cheapest way: ask two paths the same question and
// expect the same answer. Each test here guards one rule that used to be written twice: the planner
// vs `estimate --emit vllm` (launch line, parallelism search), the server vs the CLI (names of
// dtypes and KV-cache dtypes, defaults), a request's utilization honoured, validate_only vs the
// real write.

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/estimator.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/placement/plan.h"
#include "server/convert.h"
#include "server/server.h"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

using testing::ProcessResult;
using testing::RunProcess;

constexpr int64_t kH100 = 85017493504;  // the built-in table's H100-80GB

class OneRuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("one_rule_");
    auto server = server::FleetplanServer::Start(
        {.listen = "127.0.0.1:0", .metrics_listen = "", .store = {.path = dir_ + "/fleet.db"}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    inventory_ = v1::InventoryService::NewStub(channel);
    catalog_ = v1::CatalogService::NewStub(channel);
    estimator_ = v1::EstimatorService::NewStub(channel);
    planner_ = v1::PlannerService::NewStub(channel);
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  static void Deadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  }

  // One H100 node of 8 GPUs in one NVLink domain, and `slug` in the catalog under its own name.
  void FleetWith(const std::string& slug) {
    {
      grpc::ClientContext ctx;
      Deadline(ctx);
      v1::CreateGpuTypeRequest req;
      req.mutable_gpu_type()->set_name("H100-80GB");
      req.mutable_gpu_type()->set_memory_bytes(kH100);
      v1::GpuType resp;
      ASSERT_TRUE(inventory_->CreateGpuType(&ctx, req, &resp).ok());
    }
    {
      grpc::ClientContext ctx;
      Deadline(ctx);
      v1::CreateNodeRequest req;
      req.mutable_node()->set_name("n1");
      req.mutable_node()->set_pool("p");
      for (int i = 0; i < 8; ++i) {
        v1::Gpu* g = req.mutable_node()->add_gpus();
        g->set_index(i);
        g->set_gpu_type("H100-80GB");
        g->set_healthy(true);
      }
      v1::Node resp;
      ASSERT_TRUE(inventory_->CreateNode(&ctx, req, &resp).ok());
    }
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::ImportModelRequest req;
    req.set_name(slug);
    req.set_config_json(testing::CalibrationModel(slug));
    v1::Model resp;
    grpc::Status s = catalog_->ImportModel(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  v1::Plan PlanOne(const std::string& slug, int64_t concurrency, int64_t context,
                   double utilization = 0) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::PlanPlacementRequest req;
    v1::DeploymentSpec* d = req.add_deployments();
    d->set_name("d");
    d->set_model(slug);
    d->set_concurrency(concurrency);
    d->set_context_tokens(context);
    if (utilization > 0) d->mutable_vllm()->set_gpu_memory_utilization(utilization);
    v1::Plan plan;
    grpc::Status s = planner_->PlanPlacement(&ctx, req, &plan);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return plan;
  }

  // `fleetplan estimate` on a model directory named like the catalog model.
  ProcessResult EstimateCli(const std::string& slug, std::vector<std::string> flags) {
    const std::string model_dir = dir_ + "/" + slug;
    std::filesystem::create_directories(model_dir);
    std::ofstream(model_dir + "/config.json") << testing::CalibrationModel(slug);
    std::vector<std::string> argv = {FLEETPLAN_CLI_PATH, "estimate",
                                     "--model=" + model_dir + "/config.json"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return RunProcess(argv);
  }

  std::string dir_;
  std::unique_ptr<server::FleetplanServer> server_;
  std::unique_ptr<v1::InventoryService::Stub> inventory_;
  std::unique_ptr<v1::CatalogService::Stub> catalog_;
  std::unique_ptr<v1::EstimatorService::Stub> estimator_;
  std::unique_ptr<v1::PlannerService::Stub> planner_;
};

// Disagreements 1 and 3: the planner's launch line and --emit vllm are the same bytes, and the
// sliding-window model takes one GPU in both.
TEST_F(OneRuleTest, PlanAndEmitPrintTheSameLaunchLine) {
  FleetWith("gemma-3-4b-it");
  v1::Plan plan = PlanOne("gemma-3-4b-it", 32, 32768);
  ASSERT_EQ(plan.replicas_size(), 1);
  EXPECT_EQ(plan.replicas(0).tp(), 1);
  ProcessResult emit =
      EstimateCli("gemma-3-4b-it", {"--gpu=H100-80GB", "--concurrency=32", "--context=32768",
                                    "--emit=vllm", "--model-name=gemma-3-4b-it", "--output=json"});
  ASSERT_EQ(emit.exit_code, 0) << emit.err;
  auto j = nlohmann::json::parse(emit.out);
  EXPECT_EQ(j["vllm_command"].get<std::string>(), plan.replicas(0).launch_command());
  // Without --model-name the line names the model directory, not its config.json.
  ProcessResult dir = EstimateCli(
      "gemma-3-4b-it",
      {"--gpu=H100-80GB", "--concurrency=32", "--context=32768", "--emit=vllm", "--output=json"});
  const std::string line = nlohmann::json::parse(dir.out)["vllm_command"].get<std::string>();
  EXPECT_EQ(line.rfind("vllm serve " + dir_ + "/gemma-3-4b-it --", 0), 0u) << line;
}

// Disagreement 2: --emit searches parallelism as the planner does (one H100 cannot hold 16 x 32k
// of Gemma-3-27B; two can).
TEST_F(OneRuleTest, EmitUsesThePlannersParallelismSearch) {
  FleetWith("gemma-3-27b-it");
  v1::Plan plan = PlanOne("gemma-3-27b-it", 16, 32768);
  ASSERT_EQ(plan.replicas_size(), 1);
  ProcessResult emit = EstimateCli(
      "gemma-3-27b-it", {"--gpu=H100-80GB", "--concurrency=16", "--context=32768", "--emit=vllm",
                         "--model-name=gemma-3-27b-it", "--output=json"});
  auto j = nlohmann::json::parse(emit.out);
  ASSERT_TRUE(j.contains("vllm_command")) << emit.out << emit.err;
  EXPECT_EQ(j["vllm_parallelism"]["tp"].get<int64_t>(), plan.replicas(0).tp());
  EXPECT_GE(plan.replicas(0).tp(), 2);
  EXPECT_EQ(j["vllm_command"].get<std::string>(), plan.replicas(0).launch_command());
}

// Disagreement 4: a deployment's own gpu_memory_utilization is honoured, or refused with a reason.
TEST_F(OneRuleTest, RequestedUtilizationIsHonouredOrRefused) {
  FleetWith("llama-3.1-8b-instruct");
  v1::Plan at = PlanOne("llama-3.1-8b-instruct", 4, 8192, 0.6);
  ASSERT_EQ(at.replicas_size(), 1);
  EXPECT_DOUBLE_EQ(at.replicas(0).gpu_memory_utilization(), 0.6);
  EXPECT_NE(at.replicas(0).launch_command().find("--gpu-memory-utilization 0.60"),
            std::string::npos);
  v1::Plan small = PlanOne("llama-3.1-8b-instruct", 64, 32768, 0.02);
  ASSERT_EQ(small.unplaced_size(), 1);
  EXPECT_EQ(small.unplaced(0).code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_NE(small.unplaced(0).reason().find("gpu_memory_utilization=0.02"), std::string::npos)
      << small.unplaced(0).reason();
}

// Disagreement 4: unset fields become the domain struct's defaults, nothing restated at the edge.
TEST_F(OneRuleTest, UnsetFieldsTakeTheDomainDefaults) {
  auto d = server::FromProto(v1::DeploymentSpec(), 0);
  EXPECT_FALSE(d.ok());  // a model is required
  v1::DeploymentSpec p;
  p.set_name("x");
  p.set_model("m");
  d = server::FromProto(p, 0);
  ASSERT_TRUE(d.ok()) << d.status();
  const placement::DeploymentSpec defaults;
  EXPECT_EQ(d->replicas, defaults.replicas);
  EXPECT_EQ(d->concurrency, defaults.concurrency);
  EXPECT_EQ(d->min_free_ratio, defaults.min_free_ratio);
  EXPECT_EQ(d->max_tp, defaults.max_tp);
  EXPECT_EQ(d->max_pp, defaults.max_pp);
  EXPECT_EQ(d->vllm.block_size, defaults.vllm.block_size);
  EXPECT_EQ(d->vllm.gpu_memory_utilization, defaults.vllm.gpu_memory_utilization);
  EXPECT_FALSE(d->utilization_given);
  auto e = server::FromProto(v1::EstimateRequest());
  ASSERT_TRUE(e.ok());
  const estimator::EstimateRequest request_defaults;
  EXPECT_EQ(e->hf.prompt_tokens, request_defaults.hf.prompt_tokens);
  EXPECT_EQ(e->hf.new_tokens, request_defaults.hf.new_tokens);
  EXPECT_EQ(e->training.seq_tokens, request_defaults.training.seq_tokens);
  EXPECT_EQ(e->parallelism.tp, 1);
  // An explicit zero is a value, and refused by the estimator by name.
  p.set_max_tp(0);
  EXPECT_EQ(server::FromProto(p, 0)->max_tp, 0);
}

// Disagreement 5: the server and the CLI accept the same words and refuse the same ones.
TEST_F(OneRuleTest, ServerAndCliAcceptTheSameWords) {
  const std::string config = testing::CalibrationModel("qwen2.5-7b-instruct");
  for (const auto& [dtype, kv] : std::vector<std::pair<std::string, std::string>>{
           {"half", "fp8_e5m2"}, {"float", "fp8_e4m3"}, {"bf16", "auto"}}) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::EstimateRequest req;
    req.set_config_json(config);
    req.set_gpu_memory_bytes(kH100);
    req.set_dtype(dtype);
    req.set_kv_cache_dtype(kv);
    v1::EstimateResponse resp;
    grpc::Status s = estimator_->Estimate(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << dtype << "/" << kv << ": " << s.error_message();
    ProcessResult cli = EstimateCli(
        "qwen2.5-7b-instruct",
        {"--gpu=H100-80GB", "--dtype=" + dtype, "--kv-cache-dtype=" + kv, "--output=json"});
    auto j = nlohmann::json::parse(cli.out);
    EXPECT_EQ(j["max_total_bytes"].get<int64_t>(), resp.max_total_bytes()) << dtype << "/" << kv;
    EXPECT_EQ(j["kv_cache_tokens"].get<int64_t>(), resp.kv_cache_tokens()) << dtype << "/" << kv;
  }
  grpc::ClientContext ctx;
  Deadline(ctx);
  v1::EstimateRequest bad;
  bad.set_config_json(config);
  bad.set_gpu_memory_bytes(kH100);
  bad.set_dtype("float8");
  v1::EstimateResponse resp;
  grpc::Status s = estimator_->Estimate(&ctx, bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ProcessResult cli = EstimateCli("qwen2.5-7b-instruct", {"--gpu=H100-80GB", "--dtype=float8"});
  EXPECT_EQ(cli.exit_code, 2);
  const std::string words = "\"float8\" is not a dtype: use one of bfloat16, float16, float32";
  EXPECT_NE(s.error_message().find(words), std::string::npos) << s.error_message();
  EXPECT_NE(cli.err.find(words), std::string::npos) << cli.err;
}

// The same estimate offline and through --server, for the flags that travel in their own fields:
// a draft model (vllm.draft_config_json) and llama.cpp from a config (llama_cpp.file_type and the
// image of its mmproj).
TEST_F(OneRuleTest, ServerPathForwardsDraftAndLlamaCppFlags) {
  const std::string draft = dir_ + "/draft.json";
  std::ofstream(draft) << testing::CalibrationModel("qwen2.5-0.5b");
  // An EAGLE head for Qwen2.5-7B: one qwen2 layer at the target's width.
  const std::string head = dir_ + "/head.json";
  std::ofstream(head) << R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28,
    "num_key_value_heads": 4, "num_hidden_layers": 1, "vocab_size": 152064,
    "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "torch_dtype": "bfloat16", "tie_word_embeddings": false})";
  const std::string server = "--server=127.0.0.1:" + std::to_string(server_->port());
  const std::vector<std::vector<std::string>> cases = {
      {"--gpu=H100-80GB", "--max-model-len=8192", "--draft-model=" + draft,
       "--num-speculative-tokens=3", "--output=json"},
      {"--gpu=L4", "--engine=llama.cpp", "--gguf-type=q4_K_M", "--ctx-size=8192", "--parallel=2",
       "--output=json"},
      // SGLang's flags (they were dropped on the way to the server before), its adapter pool too.
      {"--gpu=H100-80GB", "--engine=sglang", "--mem-fraction-static=0.7", "--context-length=8192",
       "--enable-lora", "--max-lora-rank=64", "--max-loras-per-batch=4",
       "--lora-target-modules=q_proj,v_proj", "--output=json"},
      // SGLang speculative decoding with a draft (sglang.draft_config_json and its numbers).
      {"--gpu=H100-80GB", "--engine=sglang", "--context-length=8192", "--sglang-version=0.5.11",
       "--speculative-algorithm=STANDALONE", "--draft-model=" + draft, "--speculative-num-steps=4",
       "--speculative-num-draft-tokens=6", "--output=json"},
      // vLLM's EAGLE head (the method and the head's config travel together).
      {"--gpu=H100-80GB", "--max-model-len=8192", "--speculative-method=eagle",
       "--draft-model=" + head, "--num-speculative-tokens=3", "--output=json"},
  };
  for (const std::vector<std::string>& flags : cases) {
    ProcessResult offline = EstimateCli("qwen2.5-7b-instruct", flags);
    ASSERT_EQ(offline.exit_code, 0) << offline.err;
    std::vector<std::string> remote_flags = flags;
    remote_flags.push_back(server);
    ProcessResult remote = EstimateCli("qwen2.5-7b-instruct", remote_flags);
    ASSERT_EQ(remote.exit_code, 0) << remote.err;
    auto a = nlohmann::json::parse(offline.out);
    auto b = nlohmann::json::parse(remote.out);
    EXPECT_EQ(a["max_total_bytes"], b["max_total_bytes"]) << flags[1];
    EXPECT_EQ(a["max_high_bytes"], b["max_high_bytes"]) << flags[1];
    EXPECT_EQ(a["kv_cache_tokens"], b["kv_cache_tokens"]) << flags[1];
  }
  // Without the draft the pool is larger: the flag was not dropped on the way.
  ProcessResult plain = EstimateCli(
      "qwen2.5-7b-instruct", {"--gpu=H100-80GB", "--max-model-len=8192", server, "--output=json"});
  ProcessResult drafted = EstimateCli("qwen2.5-7b-instruct", cases[0]);
  EXPECT_GT(nlohmann::json::parse(plain.out)["kv_cache_tokens"].get<int64_t>(),
            nlohmann::json::parse(drafted.out)["kv_cache_tokens"].get<int64_t>());
  // The same for SGLang's adapter pool.
  ProcessResult no_lora = EstimateCli(
      "qwen2.5-7b-instruct", {"--gpu=H100-80GB", "--engine=sglang", "--mem-fraction-static=0.7",
                              "--context-length=8192", server, "--output=json"});
  std::vector<std::string> with_lora = cases[2];
  with_lora.push_back(server);
  ProcessResult lora = EstimateCli("qwen2.5-7b-instruct", with_lora);
  ASSERT_EQ(lora.exit_code, 0) << lora.err;
  EXPECT_GT(nlohmann::json::parse(no_lora.out)["kv_cache_tokens"].get<int64_t>(),
            nlohmann::json::parse(lora.out)["kv_cache_tokens"].get<int64_t>());
  // And for SGLang's draft: the pool is smaller with it, the launch line names it.
  ProcessResult no_draft = EstimateCli(
      "qwen2.5-7b-instruct", {"--gpu=H100-80GB", "--engine=sglang", "--context-length=8192",
                              "--sglang-version=0.5.11", server, "--output=json"});
  std::vector<std::string> with_draft = cases[3];
  with_draft.push_back(server);
  ProcessResult sg_draft = EstimateCli("qwen2.5-7b-instruct", with_draft);
  ASSERT_EQ(sg_draft.exit_code, 0) << sg_draft.err;
  EXPECT_GT(nlohmann::json::parse(no_draft.out)["kv_cache_tokens"].get<int64_t>(),
            nlohmann::json::parse(sg_draft.out)["kv_cache_tokens"].get<int64_t>());
  // With the EAGLE head the pool is smaller than without, and larger than with the whole 0.5B
  // draft model (the head shares embedding and lm_head).
  std::vector<std::string> eagle = cases[4];
  eagle.push_back(server);
  ProcessResult with_head = EstimateCli("qwen2.5-7b-instruct", eagle);
  ASSERT_EQ(with_head.exit_code, 0) << with_head.err;
  EXPECT_GT(nlohmann::json::parse(plain.out)["kv_cache_tokens"].get<int64_t>(),
            nlohmann::json::parse(with_head.out)["kv_cache_tokens"].get<int64_t>());
  EXPECT_LT(nlohmann::json::parse(drafted.out)["kv_cache_tokens"].get<int64_t>(),
            nlohmann::json::parse(with_head.out)["kv_cache_tokens"].get<int64_t>());
  // vLLM's words on SGLang and SGLang's on vLLM are usage errors, offline and remote alike.
  for (bool remote : {false, true}) {
    std::vector<std::string> mixed = {"--gpu=H100-80GB", "--engine=sglang",
                                      "--speculative-method=mtp"};
    if (remote) mixed.push_back(server);
    ProcessResult r = EstimateCli("qwen2.5-7b-instruct", mixed);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("are vLLM's"), std::string::npos) << r.err;
    std::vector<std::string> other = {"--gpu=H100-80GB", "--speculative-algorithm=EAGLE"};
    if (remote) other.push_back(server);
    r = EstimateCli("qwen2.5-7b-instruct", other);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("are SGLang's"), std::string::npos) << r.err;
  }
}

// Disagreement 9: validate_only refuses exactly what the real call refuses, with the same words.
// The GPU types a recommendation considers are one rule (placement::RecommendGpuTypes): the
// Recommend RPC and `fleetplan recommend --server` consider the same ones, in the same order, on a
// fleet with no GPU types (the built-in table, with a note) and on one with a type registered.
TEST_F(OneRuleTest, RecommendRpcAndCliConsiderTheSameGpuTypes) {
  const std::string slug = "llama-3.1-8b-instruct";
  const std::string model_dir = dir_ + "/" + slug;
  std::filesystem::create_directories(model_dir);
  std::ofstream(model_dir + "/config.json") << testing::CalibrationModel(slug);
  auto both = [&](std::vector<std::string>* rpc_types, std::vector<std::string>* cli_types,
                  std::string* cli_err) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::RecommendRequest req;
    req.set_config_json(testing::CalibrationModel(slug));
    req.mutable_deployment()->set_model(slug);
    req.mutable_deployment()->set_concurrency(16);
    req.mutable_deployment()->set_context_tokens(8192);
    v1::RecommendResponse resp;
    grpc::Status s = planner_->Recommend(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    for (const auto& v : resp.gpu_types()) rpc_types->push_back(v.gpu_type());
    ProcessResult cli = RunProcess({FLEETPLAN_CLI_PATH, "recommend",
                                    "--server=127.0.0.1:" + std::to_string(server_->port()),
                                    "--model=" + model_dir + "/config.json", "--concurrency=16",
                                    "--context=8192", "--output=json"});
    ASSERT_EQ(cli.exit_code, 0) << cli.err;
    const nlohmann::json answer = nlohmann::json::parse(cli.out);
    for (const auto& v : answer["gpu_types"])
      cli_types->push_back(v["gpu_type"].get<std::string>());
    *cli_err = cli.err;
  };
  std::vector<std::string> rpc, cli;
  std::string err;
  ASSERT_NO_FATAL_FAILURE(both(&rpc, &cli, &err));
  EXPECT_GT(rpc.size(), 3u) << "no types registered: the built-in table";
  EXPECT_EQ(rpc, cli);
  EXPECT_NE(err.find("built-in table"), std::string::npos) << err;
  FleetWith(slug);  // registers H100-80GB
  rpc.clear();
  cli.clear();
  ASSERT_NO_FATAL_FAILURE(both(&rpc, &cli, &err));
  EXPECT_EQ(rpc, std::vector<std::string>{"H100-80GB"});
  EXPECT_EQ(rpc, cli);
}

TEST_F(OneRuleTest, ValidateOnlyRunsTheSameValidation) {
  FleetWith("qwen2.5-0.5b");
  auto gpu_type = [&](v1::GpuType t, bool validate_only) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::CreateGpuTypeRequest req;
    *req.mutable_gpu_type() = t;
    req.set_validate_only(validate_only);
    v1::GpuType resp;
    return inventory_->CreateGpuType(&ctx, req, &resp);
  };
  auto node = [&](v1::Node n, bool validate_only) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::CreateNodeRequest req;
    *req.mutable_node() = n;
    req.set_validate_only(validate_only);
    v1::Node resp;
    return inventory_->CreateNode(&ctx, req, &resp);
  };
  auto model = [&](const std::string& name, const std::string& config, bool validate_only) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::ImportModelRequest req;
    req.set_name(name);
    req.set_config_json(config);
    req.set_validate_only(validate_only);
    v1::Model resp;
    return catalog_->ImportModel(&ctx, req, &resp);
  };
  auto type = [](const std::string& name, int64_t bytes, double cost = 0, double tflops = 0) {
    v1::GpuType t;
    t.set_name(name);
    t.set_memory_bytes(bytes);
    t.set_cost_per_hour(cost);
    t.set_bf16_tflops(tflops);
    return t;
  };
  auto gpu_node = [](const std::string& name, const std::string& pool, const std::string& type_name,
                     int gpus, const std::string& uuid = "") {
    v1::Node n;
    n.set_name(name);
    n.set_pool(pool);
    for (int i = 0; i < gpus; ++i) {
      v1::Gpu* g = n.add_gpus();
      g->set_index(i);
      g->set_gpu_type(type_name);
      g->set_uuid(uuid);
    }
    return n;
  };
  v1::Node labels = gpu_node("lab", "p", "H100-80GB", 1);
  (*labels.mutable_labels())["x"] = std::string(5000, 'v');
  const std::vector<std::pair<std::string, std::function<grpc::Status(bool)>>> cases = {
      {"duplicate type", [&](bool v) { return gpu_type(type("H100-80GB", kH100), v); }},
      {"negative cost", [&](bool v) { return gpu_type(type("X1", kH100, -1), v); }},
      {"infinite cost", [&](bool v) { return gpu_type(type("X2", kH100, 1.0 / 0.0), v); }},
      {"NaN tflops", [&](bool v) { return gpu_type(type("X3", kH100, 0, std::nan("")), v); }},
      {"huge memory", [&](bool v) { return gpu_type(type("X4", INT64_MAX), v); }},
      {"shell name", [&](bool v) { return gpu_type(type("a;b", kH100), v); }},
      {"duplicate node", [&](bool v) { return node(gpu_node("n1", "p", "H100-80GB", 1), v); }},
      {"unknown gpu type", [&](bool v) { return node(gpu_node("n2", "p", "B300", 1), v); }},
      {"no pool", [&](bool v) { return node(gpu_node("n3", "", "H100-80GB", 1), v); }},
      {"colon in name", [&](bool v) { return node(gpu_node("a:b", "p", "H100-80GB", 1), v); }},
      {"duplicate uuid",
       [&](bool v) { return node(gpu_node("n4", "p", "H100-80GB", 2, "GPU-1"), v); }},
      {"huge label", [&](bool v) { return node(labels, v); }},
      {"duplicate model",
       [&](bool v) { return model("qwen2.5-0.5b", testing::CalibrationModel("qwen2.5-0.5b"), v); }},
      {"bad config", [&](bool v) { return model("m2", "{\"model_type\": 3}", v); }},
      {"dot name",
       [&](bool v) { return model(".", testing::CalibrationModel("qwen2.5-0.5b"), v); }},
  };
  for (const auto& [what, call] : cases) {
    const grpc::Status real = call(false);
    const grpc::Status dry = call(true);
    EXPECT_FALSE(real.ok()) << what;
    EXPECT_EQ(dry.error_code(), real.error_code()) << what << ": " << dry.error_message();
    EXPECT_EQ(dry.error_message(), real.error_message()) << what;
  }
  // A valid request passes validate_only and writes nothing.
  EXPECT_TRUE(gpu_type(type("A100", 42505273344), true).ok());
  EXPECT_TRUE(gpu_type(type("A100", 42505273344), true).ok());
  EXPECT_TRUE(gpu_type(type("A100", 42505273344), false).ok());
}

}  // namespace
}  // namespace fleetplan
