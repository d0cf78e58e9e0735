// The quickstart flow end to end through the `fleetplan` binary: a real fleetpland, the example
// fleet and catalog loaded by deploy/examples/load.sh, then headroom, listings, an estimate through
// the server, cordon/drain/remove, and auth errors from the CLI.

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/estimator/testing/gguf_writer.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

using testing::ProcessResult;
using testing::RunProcess;

class CliFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("cli_flow_");
    std::ofstream(dir_ + "/tokens")
        << "writer-token-0123456789abcdef writer\nreader-token-0123456789abcdef reader\n";
    std::ofstream(dir_ + "/writer") << "writer-token-0123456789abcdef\n";
    std::ofstream(dir_ + "/reader") << "reader-token-0123456789abcdef\n";
    server_ = testing::Process::Start(
        {FLEETPLAND_PATH, "--listen=127.0.0.1:0",
         "--metrics_listen=", "--http_listen=", "--db=" + dir_ + "/fleet.db",
         "--port_file=" + dir_ + "/port", "--auth_tokens_file=" + dir_ + "/tokens"},
        dir_ + "/server.log");
    ASSERT_TRUE(server_.has_value());
    auto port = testing::WaitForFile(dir_ + "/port", std::chrono::seconds(20));
    ASSERT_TRUE(port.has_value());
    target_ = "127.0.0.1:" + std::string(absl::StripAsciiWhitespace(*port));
  }
  void TearDown() override {
    if (server_) {
      server_->Signal(SIGTERM);
      server_->Wait(std::chrono::seconds(20));
    }
    std::filesystem::remove_all(dir_);
  }

  ProcessResult Cli(std::vector<std::string> args, const std::string& token = "writer") {
    args.insert(args.begin(), FLEETPLAN_CLI_PATH);
    args.push_back("--server=" + target_);
    if (!token.empty()) args.push_back("--token-file=" + dir_ + "/" + token);
    return RunProcess(args);
  }

  std::string dir_;
  std::string target_;
  std::optional<testing::Process> server_;
};

TEST_F(CliFlowTest, QuickstartFlow) {
  setenv("FLEETPLAN_CLI", FLEETPLAN_CLI_PATH, 1);
  setenv("FLEETPLAN_TOKEN_FILE", (dir_ + "/writer").c_str(), 1);
  ProcessResult load =
      RunProcess({"/bin/bash", FLEETPLAN_SOURCE_DIR "/deploy/examples/load.sh", target_});
  ASSERT_EQ(load.exit_code, 0) << load.out << load.err;
  // Loading twice is safe.
  ProcessResult again =
      RunProcess({"/bin/bash", FLEETPLAN_SOURCE_DIR "/deploy/examples/load.sh", target_});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;

  ProcessResult pools = Cli({"pools", "--output=json"}, "reader");
  ASSERT_EQ(pools.exit_code, 0) << pools.err;
  auto pj = nlohmann::json::parse(pools.out);
  ASSERT_EQ(pj["pools"].size(), 3u);

  ProcessResult headroom = Cli({"headroom", "--by=pool"}, "reader");
  ASSERT_EQ(headroom.exit_code, 0) << headroom.err;
  EXPECT_NE(headroom.out.find("h100"), std::string::npos) << headroom.out;
  EXPECT_NE(headroom.out.find("fleet (generation"), std::string::npos) << headroom.out;
  ProcessResult hj = Cli({"headroom", "--by=gpu-type", "--output=json"}, "reader");
  auto h = nlohmann::json::parse(hj.out);
  // Counts are JSON numbers; byte counts stay proto3's exact int64 strings.
  EXPECT_EQ(h["fleet"]["gpus"], 4 * 8 + 6 * 4 + 4);
  EXPECT_EQ(h["fleet"]["largest_free_nvlink_domain"], 8);
  EXPECT_TRUE(h["fleet"]["total_bytes"].is_string());

  ProcessResult models = Cli({"models", "list", "--output=json"}, "reader");
  ASSERT_EQ(models.exit_code, 0) << models.err;
  EXPECT_EQ(nlohmann::json::parse(models.out)["models"].size(), 9u);

  ProcessResult est = Cli({"estimate", "--catalog-model=llama-3.1-70b-instruct", "--gpu=H100-80GB",
                           "--tp=4", "--max-model-len=32768", "--output=json"},
                          "reader");
  ASSERT_EQ(est.exit_code, 0) << est.err << est.out;
  auto ej = nlohmann::json::parse(est.out);
  EXPECT_TRUE(ej["fits"].get<bool>());
  EXPECT_EQ(ej["bytes_per_rank"].size(), 4u);
  EXPECT_GT(ej["kv_cache_tokens"].get<int64_t>(), 100000);

  // "What do I need?" over the fleet's own GPU types and their costs.
  ProcessResult rec =
      Cli({"recommend",
           "--model=" FLEETPLAN_SOURCE_DIR "/deploy/examples/models/llama-3.1-70b-instruct.json",
           "--concurrency=16", "--context=8192", "--output=json"},
          "reader");
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  auto rj = nlohmann::json::parse(rec.out);
  ASSERT_EQ(rj["gpu_types"].size(), 3u) << rec.out;  // H100-80GB, A100-40GB, L4
  ASSERT_FALSE(rj["configurations"].empty());
  EXPECT_FALSE(rj["configurations"][0]["cost_per_hour"].is_null()) << "load.sh sets costs";

  ProcessResult nodes = Cli({"nodes", "list", "--pool=a100"}, "reader");
  ASSERT_EQ(nodes.exit_code, 0) << nodes.err;
  EXPECT_NE(nodes.out.find("a100-node-5"), std::string::npos) << nodes.out;
  EXPECT_EQ(Cli({"nodes", "cordon", "a100-node-0"}).exit_code, 0);
  EXPECT_EQ(Cli({"nodes", "drain", "a100-node-0"}).exit_code, 0);
  EXPECT_EQ(Cli({"nodes", "remove", "a100-node-0"}).exit_code, 0);
  ProcessResult gone = Cli({"nodes", "show", "a100-node-0"}, "reader");
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("NOT_FOUND"), std::string::npos) << gone.err;

  // Plan the example deployments, commit, list, release.
  ProcessResult plan =
      Cli({"plan", "--deployment=" FLEETPLAN_SOURCE_DIR "/deploy/examples/deployments.json",
           "--commit"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  EXPECT_NE(plan.out.find("CUDA_VISIBLE_DEVICES="), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("vllm serve llama-3.1-70b-instruct --tensor-parallel-size"),
            std::string::npos)
      << plan.out;
  EXPECT_NE(plan.out.find("committed placements"), std::string::npos) << plan.out;
  ProcessResult list = Cli({"placements", "list", "--output=json"}, "reader");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto lj = nlohmann::json::parse(list.out);
  ASSERT_EQ(lj["placements"].size(), 8u);  // 2 + 1 + 2 + 1 + 2 replicas
  const std::string first_id = std::to_string(lj["placements"][0]["id"].get<int64_t>());
  ProcessResult release = Cli({"placements", "release", first_id});
  EXPECT_EQ(release.exit_code, 0) << release.err;
  EXPECT_NE(release.out.find("released"), std::string::npos);
  ProcessResult headroom_after = Cli({"headroom", "--by=pool", "--output=json"}, "reader");
  EXPECT_NE(nlohmann::json::parse(headroom_after.out)["fleet"]["committed_bytes"], "0");
  ProcessResult too_big = Cli({"plan", "--model=llama-3.1-70b-instruct", "--pool=l4"}, "reader");
  EXPECT_EQ(too_big.exit_code, 1) << too_big.out << too_big.err;
  EXPECT_NE(too_big.out.find("NOT PLACED"), std::string::npos) << too_big.out;
  EXPECT_NE(too_big.out.find("FAILED_PRECONDITION"), std::string::npos) << too_big.out;

  // What if: a node's placements and a whole zone's, re-planned on the rest; nothing changes.
  const std::string busy = lj["placements"][1]["ranks"][0]["node"];
  ProcessResult before = Cli({"placements", "list", "--output=json"}, "reader");
  ProcessResult drain_plan = Cli({"nodes", "drain", busy, "--plan"}, "reader");
  EXPECT_EQ(drain_plan.exit_code, 0) << drain_plan.out << drain_plan.err;
  EXPECT_NE(drain_plan.out.find("draining " + busy + " (nodes " + busy + "):"), std::string::npos)
      << drain_plan.out;
  EXPECT_NE(drain_plan.out.find("re-placed on the rest of the fleet (100%)"), std::string::npos)
      << drain_plan.out;
  EXPECT_NE(drain_plan.out.find("vllm serve"), std::string::npos) << drain_plan.out;
  EXPECT_EQ(
      nlohmann::json::parse(Cli({"nodes", "show", busy, "--output=json"}, "reader").out)["state"],
      "NODE_STATE_ACTIVE")
      << "--plan changes nothing";
  ProcessResult zone = Cli({"plan", "--simulate-failure=zone=zone-a", "--output=json"}, "reader");
  EXPECT_LE(zone.exit_code, 1) << zone.err;
  auto zj = nlohmann::json::parse(zone.out);
  EXPECT_EQ(zj["failed_nodes"].size(), 4u) << zone.out;  // the H100 pool is zone-a
  EXPECT_EQ(zone.exit_code == 0, zj["absorbed"] == static_cast<int64_t>(zj["displaced"].size()));
  EXPECT_EQ(Cli({"placements", "list", "--output=json"}, "reader").out, before.out);
  ProcessResult bad_scenario = Cli({"plan", "--simulate-failure=rack=r1"}, "reader");
  EXPECT_EQ(bad_scenario.exit_code, 2);
  EXPECT_NE(bad_scenario.err.find("\"rack=r1\" is not zone=NAME or node=NAME"), std::string::npos)
      << bad_scenario.err;

  ProcessResult watch = Cli({"headroom", "--watch", "--updates=1", "--output=json"}, "reader");
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_NE(watch.out.find("\"generation\""), std::string::npos);
}

TEST_F(CliFlowTest, AuthErrorsFromTheCli) {
  unsetenv("FLEETPLAN_TOKEN_FILE");  // the CLI reads it as --token-file's default
  ProcessResult no_token = Cli({"gpu-types", "list"}, "");
  EXPECT_EQ(no_token.exit_code, 1);
  EXPECT_NE(no_token.err.find("UNAUTHENTICATED"), std::string::npos) << no_token.err;
  ProcessResult reader_write =
      Cli({"gpu-types", "add", "--name=X", "--memory-bytes=1000"}, "reader");
  EXPECT_EQ(reader_write.exit_code, 1);
  EXPECT_NE(reader_write.err.find("PERMISSION_DENIED"), std::string::npos) << reader_write.err;
  ProcessResult bad_verb = Cli({"nodes", "explode"});
  EXPECT_EQ(bad_verb.exit_code, 2);
  ProcessResult bad_by = Cli({"headroom", "--by=planet"}, "reader");
  EXPECT_EQ(bad_by.exit_code, 2);
  EXPECT_NE(bad_by.err.find("--by=\"planet\""), std::string::npos);
  ProcessResult missing_file = Cli({"models", "import", "/nonexistent/config.json"});
  EXPECT_EQ(missing_file.exit_code, 1);
}

}  // namespace
}  // namespace fleetplan

namespace fleetplan {
namespace {

// A GGUF file into the catalog through the CLI: only its header is read (the file here is a
// header with no tensor data, as a multi-GB file's first megabytes are); list and show say it is
// a GGUF, estimate --catalog-model answers with llama.cpp's numbers and the imported path, and
// plan places it as llama-server without being told the engine.
TEST_F(CliFlowTest, GgufModelImportEstimatePlan) {
  const std::string file = dir_ + "/tiny-Q4_K_M.gguf";
  estimator::testing::TestModel tm;
  tm.layers = 6;
  { std::ofstream(file, std::ios::binary) << estimator::testing::WriteModel(tm); }
  ASSERT_EQ(Cli({"gpu-types", "add", "--name=L4", "--memory-bytes=23580639232"}).exit_code, 0);
  ASSERT_EQ(
      Cli({"nodes", "add", "--name=edge1", "--pool=edge", "--gpus=1", "--gpu-type=L4"}).exit_code,
      0);
  ProcessResult imported = Cli({"models", "import", file, "--gguf-path=/srv/tiny-Q4_K_M.gguf"});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.out.find("imported model tiny-Q4_K_M (gguf): llama"), std::string::npos)
      << imported.out;
  ProcessResult list = Cli({"models", "list"}, "reader");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("gguf"), std::string::npos) << list.out;
  ProcessResult show = Cli({"models", "show", "tiny-Q4_K_M"}, "reader");
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("GGUF header: " + std::to_string(3 + 9 * tm.layers) + " tensors"),
            std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("/srv/tiny-Q4_K_M.gguf"), std::string::npos) << show.out;

  ProcessResult est = Cli({"estimate", "--catalog-model=tiny-Q4_K_M", "--gpu=L4", "--context=2048",
                           "--concurrency=2", "--output=json"},
                          "reader");
  ASSERT_EQ(est.exit_code, 0) << est.err;
  auto j = nlohmann::json::parse(est.out);
  EXPECT_EQ(j["launch_command"], "llama-server -m /srv/tiny-Q4_K_M.gguf -c 4096 -np 2 -ngl 7");
  ProcessResult vllm =
      Cli({"estimate", "--catalog-model=tiny-Q4_K_M", "--gpu=L4", "--engine=vllm"}, "reader");
  EXPECT_NE(vllm.exit_code, 0);
  EXPECT_NE(vllm.err.find("engine llama.cpp alone"), std::string::npos) << vllm.err;

  ProcessResult plan =
      Cli({"plan", "--model=tiny-Q4_K_M", "--concurrency=2", "--context=2048", "--output=json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err << plan.out;
  auto pj = nlohmann::json::parse(plan.out);
  ASSERT_EQ(pj["replicas"].size(), 1u) << plan.out;
  EXPECT_EQ(pj["replicas"][0]["launch_command"].get<std::string>().rfind(
                "llama-server -m /srv/tiny-Q4_K_M.gguf -c 4096 -np 2 -ngl 7", 0),
            0u)
      << plan.out;

  // Not a GGUF and not JSON: the config reader names the file; a truncated GGUF names the offset.
  { std::ofstream(dir_ + "/cut.gguf", std::ios::binary) << std::string("GGUF\x03\0\0\0", 8); }
  ProcessResult cut = Cli({"models", "import", dir_ + "/cut.gguf"});
  EXPECT_NE(cut.exit_code, 0);
  EXPECT_NE(cut.err.find("cut.gguf"), std::string::npos) << cut.err;
  EXPECT_EQ(Cli({"models", "show", "cut"}, "reader").exit_code, 1);
}

// The CLI as a script uses it: global flags before the command, environment defaults, one JSON
// document per call, a partial plan not committed unless asked, uncordon, completion.
TEST_F(CliFlowTest, ScriptsWell) {
  const std::string server = "--server=" + target_;
  const std::string token = "--token-file=" + dir_ + "/writer";
  auto run = [](std::vector<std::string> args) {
    args.insert(args.begin(), FLEETPLAN_CLI_PATH);
    return RunProcess(args);
  };
  // Global flags before the command.
  ProcessResult type =
      run({server, token, "gpu-types", "add", "--name=H100", "--memory-bytes=85017493504"});
  ASSERT_EQ(type.exit_code, 0) << type.err;
  ASSERT_EQ(
      run({server, token, "nodes", "add", "--name=n1", "--pool=p", "--gpus=1", "--gpu-type=H100"})
          .exit_code,
      0);
  ASSERT_EQ(run({"--server", target_, token, "models", "import",
                 FLEETPLAN_SOURCE_DIR "/tests/data/calibration/models/qwen2.5-0.5b.json"})
                .exit_code,
            0);
  ProcessResult unknown = run({"--colour=red", "nodes", "list"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown global flag"), std::string::npos) << unknown.err;
  // Environment defaults.
  setenv("FLEETPLAN_SERVER", target_.c_str(), 1);
  setenv("FLEETPLAN_TOKEN_FILE", (dir_ + "/writer").c_str(), 1);
  ProcessResult listed = run({"nodes", "list", "--output=json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  auto nodes = nlohmann::json::parse(listed.out);
  ASSERT_EQ(nodes["nodes"].size(), 1u);
  EXPECT_EQ(nodes["nodes"][0]["gpus"][0]["index"], 0) << "counts are numbers";
  ProcessResult table = run({"nodes", "list"});
  EXPECT_EQ(table.out.find("GPUS"), table.out.rfind("GPUS")) << "each column once: " << table.out;
  // A partial plan is not committed unless asked; --allow-partial commits and exits 3, and
  // --output=json prints one document either way.
  ProcessResult refused =
      run({"plan", "--model=qwen2.5-0.5b", "--replicas=2", "--commit", "--output=json"});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  auto rj = nlohmann::json::parse(refused.out);  // throws on two documents
  EXPECT_FALSE(rj["committed"].get<bool>());
  EXPECT_TRUE(rj["partial"].get<bool>());
  EXPECT_NE(refused.err.find("--allow-partial"), std::string::npos) << refused.err;
  EXPECT_TRUE(nlohmann::json::parse(run({"placements", "list", "--output=json"}).out)["placements"]
                  .empty());
  ProcessResult partial = run({"plan", "--model=qwen2.5-0.5b", "--replicas=2", "--commit",
                               "--allow-partial", "--output=json"});
  EXPECT_EQ(partial.exit_code, 3) << partial.err;
  auto pj = nlohmann::json::parse(partial.out);
  EXPECT_TRUE(pj["committed"].get<bool>());
  EXPECT_EQ(pj["commit"]["placement_ids"].size(), 1u);
  // Uncordon, which the CLI could not do before.
  ASSERT_EQ(run({"nodes", "cordon", "n1"}).exit_code, 0);
  ProcessResult back = run({"nodes", "uncordon", "n1", "--output=json"});
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(nlohmann::json::parse(back.out)["state"], "NODE_STATE_ACTIVE");
  // Completion from the registered commands.
  ProcessResult bash = run({"completion", "bash"});
  EXPECT_EQ(bash.exit_code, 0);
  EXPECT_NE(bash.out.find("nodes) words="), std::string::npos) << bash.out;
  EXPECT_NE(bash.out.find("uncordon"), std::string::npos);
  EXPECT_NE(bash.out.find("complete -o default -F _fleetplan fleetplan"), std::string::npos);
  unsetenv("FLEETPLAN_SERVER");
  unsetenv("FLEETPLAN_TOKEN_FILE");
}

}  // namespace
}  // namespace fleetplan

namespace fleetplan {
namespace {

// `nodes export` prints what `nodes import` reads back: exported from one server and imported into
// another, the fleet is exactly the same; a bad entry refuses the file naming node and field and
// writes nothing; YAML works like JSON.
TEST_F(CliFlowTest, NodesImportExportRoundTrip) {
  ASSERT_EQ(Cli({"gpu-types", "add", "--name=H100-80GB", "--memory-bytes=85017493504"}).exit_code,
            0);
  ASSERT_EQ(Cli({"gpu-types", "add", "--name=L4", "--memory-gib=22.03"}).exit_code, 0);
  ProcessResult first =
      Cli({"nodes", "import", FLEETPLAN_SOURCE_DIR "/deploy/examples/fleet.yaml", "--output=json"});
  ASSERT_NE(first.exit_code, 0) << "the example fleet uses A100-40GB, not registered yet";
  EXPECT_NE(first.err.find("A100-40GB"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("nothing was written"), std::string::npos) << first.err;
  EXPECT_EQ(nlohmann::json::parse(Cli({"pools", "--output=json"}, "reader").out)
                .value("pools", nlohmann::json::array())
                .size(),
            0u);
  ASSERT_EQ(Cli({"gpu-types", "add", "--name=A100-40GB", "--memory-gib=39.59"}).exit_code, 0);
  ProcessResult imported =
      Cli({"nodes", "import", FLEETPLAN_SOURCE_DIR "/deploy/examples/fleet.yaml", "--output=json"});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_EQ(nlohmann::json::parse(imported.out)["created"], 14) << imported.out;
  ProcessResult again =
      Cli({"nodes", "import", FLEETPLAN_SOURCE_DIR "/deploy/examples/fleet.yaml"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("14 unchanged"), std::string::npos) << again.out;

  ProcessResult exported = Cli({"nodes", "export"}, "reader");
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const std::string file = dir_ + "/fleet.json";
  std::ofstream(file) << exported.out;
  // Change one node in the file: the re-import updates exactly that node.
  nlohmann::json j = nlohmann::json::parse(exported.out);
  ASSERT_EQ(j["nodes"].size(), 14u);
  j["nodes"][0]["labels"]["tier"] = "gold";
  std::ofstream(dir_ + "/changed.json") << j.dump();
  ProcessResult changed = Cli({"nodes", "import", dir_ + "/changed.json"});
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  EXPECT_NE(changed.out.find("1 updated, 13 unchanged"), std::string::npos) << changed.out;
  ASSERT_EQ(Cli({"nodes", "import", file}).exit_code, 0);
  EXPECT_EQ(Cli({"nodes", "export"}, "reader").out, exported.out) << "round trip is exact";

  // A bad field: refused naming node and field; nothing written.
  j = nlohmann::json::parse(exported.out);
  j["nodes"][3]["gpus"][1]["gpu_type"] = "H999";
  j["nodes"][5]["name"] = "Not A Name";
  std::ofstream(dir_ + "/bad.json") << j.dump();
  ProcessResult bad = Cli({"nodes", "import", dir_ + "/bad.json"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("nodes[5]"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("Not A Name"), std::string::npos) << bad.err;
  EXPECT_EQ(Cli({"nodes", "export"}, "reader").out, exported.out) << "nothing was written";
  // An unknown field is refused by name.
  std::ofstream(dir_ + "/unknown.yaml") << "nodes:\n  - name: x\n    colour: red\n";
  ProcessResult unknown = Cli({"nodes", "import", dir_ + "/unknown.yaml"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("colour"), std::string::npos) << unknown.err;
}

// The inventories other tools hold, imported through the server (tests/data/inventory: kubectl
// output with GPU Feature Discovery labels, nvidia-smi's GPU list and topology).
TEST_F(CliFlowTest, NodesImportFromKubernetesAndNvidiaSmi) {
  const std::string data = FLEETPLAN_SOURCE_DIR "/tests/data/inventory/";
  ASSERT_EQ(Cli({"gpu-types", "add", "--name=H100-80GB", "--memory-bytes=85017493504"}).exit_code,
            0);
  ASSERT_EQ(Cli({"gpu-types", "add", "--name=A100-40GB", "--memory-gib=39.59"}).exit_code, 0);
  const std::vector<std::string> kube = {"nodes",
                                         "import",
                                         "--from-kubernetes",
                                         data + "kubectl_nodes.json",
                                         "--pool=gpu",
                                         "--pool-label=fleet.example.com/pool",
                                         "--cluster=east"};
  auto with = [](std::vector<std::string> a, std::vector<std::string> more) {
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  ProcessResult unknown = Cli(kube);
  EXPECT_EQ(unknown.exit_code, 1) << unknown.err;
  EXPECT_NE(unknown.err.find("FAILED_PRECONDITION: unknown GPU products: \"NVIDIA-A10G\""),
            std::string::npos)
      << unknown.err;
  EXPECT_NE(unknown.err.find("NVIDIA-L40S"), std::string::npos) << unknown.err;
  EXPECT_EQ(nlohmann::json::parse(Cli({"pools", "--output=json"}, "reader").out)
                .value("pools", nlohmann::json::array())
                .size(),
            0u)
      << "nothing written";

  ProcessResult imported = Cli(with(kube, {"--create-gpu-types", "--output=json"}));
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_EQ(nlohmann::json::parse(imported.out)["created"], 5) << imported.out;
  EXPECT_NE(imported.err.find("skipped cpu-system-0: no NVIDIA GPUs"), std::string::npos)
      << imported.err;
  EXPECT_NE(imported.err.find("new GPU type L40S"), std::string::npos) << imported.err;
  ProcessResult types = Cli({"gpu-types", "list", "--output=json"}, "reader");
  EXPECT_NE(types.out.find("\"A10G\""), std::string::npos) << types.out;
  ProcessResult again = Cli(with(kube, {"--create-gpu-types"}));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("5 unchanged"), std::string::npos) << "a re-import changes nothing";

  ProcessResult shown = Cli({"nodes", "show", "h100-a-1", "--output=json"}, "reader");
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  nlohmann::json node = nlohmann::json::parse(shown.out);
  EXPECT_EQ(node["state"], "NODE_STATE_CORDONED");
  EXPECT_EQ(node["pool"], "h100");
  EXPECT_EQ(node["labels"]["nvidia.com/gpu.product"], "NVIDIA-H100-80GB-HBM3");
  EXPECT_EQ(node["gpus"].size(), 8u);

  // Later: h100-a-1 left the cluster, a100-b-0 is ready again. Nothing is deleted.
  const std::vector<std::string> later = {"nodes",
                                          "import",
                                          "--from-kubernetes",
                                          data + "kubectl_nodes_later.json",
                                          "--pool=gpu",
                                          "--pool-label=fleet.example.com/pool",
                                          "--cluster=east"};
  ProcessResult reconciled = Cli(later);
  ASSERT_EQ(reconciled.exit_code, 0) << reconciled.err;
  EXPECT_NE(reconciled.out.find("2 updated, 3 unchanged"), std::string::npos) << reconciled.out;
  EXPECT_NE(reconciled.err.find("h100-a-1 is no longer in the cluster: down"), std::string::npos)
      << reconciled.err;
  EXPECT_EQ(nlohmann::json::parse(
                Cli({"nodes", "show", "h100-a-1", "--output=json"}, "reader").out)["state"],
            "NODE_STATE_DOWN");
  EXPECT_EQ(nlohmann::json::parse(
                Cli({"nodes", "show", "a100-b-0", "--output=json"}, "reader").out)["state"],
            "NODE_STATE_ACTIVE");
  EXPECT_NE(Cli(later).out.find("5 unchanged"), std::string::npos);

  // Bare metal: one node from nvidia-smi with its NVLink topology.
  const std::vector<std::string> smi = {"nodes",
                                        "import",
                                        "--from-nvidia-smi",
                                        data + "nvidia_smi_h100.csv",
                                        "--topology",
                                        data + "topo_h100.txt",
                                        "--name=dgx-01",
                                        "--pool=bare",
                                        "--zone=dc1"};
  ProcessResult metal = Cli(smi);
  ASSERT_EQ(metal.exit_code, 0) << metal.err;
  EXPECT_NE(metal.out.find("1 created"), std::string::npos) << metal.out;
  node = nlohmann::json::parse(Cli({"nodes", "show", "dgx-01", "--output=json"}, "reader").out);
  ASSERT_EQ(node["gpus"].size(), 8u);
  EXPECT_EQ(node["gpus"][5]["uuid"], "GPU-8f3a1c2e-5b6d-4e7f-9a0b-1c2d3e4f5a65");
  EXPECT_EQ(node["gpus"][5]["gpu_type"], "H100-80GB");
  // A cordon made in fleetplan survives re-importing the node.
  ASSERT_EQ(Cli({"nodes", "cordon", "dgx-01"}).exit_code, 0);
  EXPECT_NE(Cli(smi).out.find("1 unchanged"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(
                Cli({"nodes", "show", "dgx-01", "--output=json"}, "reader").out)["state"],
            "NODE_STATE_CORDONED");
  ProcessResult mig = Cli({"nodes", "import", "--from-nvidia-smi", data + "nvidia_smi_mig.csv",
                           "--name=m", "--pool=bare"});
  EXPECT_EQ(mig.exit_code, 2);
  EXPECT_NE(mig.err.find("is a MIG device"), std::string::npos) << mig.err;
  ProcessResult two = Cli({"nodes", "import", data + "x.yaml", "--from-nvidia-smi", "y.csv"});
  EXPECT_EQ(two.exit_code, 2);
  EXPECT_NE(two.err.find("give one source"), std::string::npos) << two.err;
}

}  // namespace
}  // namespace fleetplan
