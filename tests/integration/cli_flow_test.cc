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
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

using testing::ProcessResult;
using testing::RunProcess;

class CliFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("cli_flow_");
    std::ofstream(dir_ + "/tokens") << "writer-token-0123456789abcdef writer\nreader-token-0123456789abcdef reader\n";
    std::ofstream(dir_ + "/writer") << "writer-token-0123456789abcdef\n";
    std::ofstream(dir_ + "/reader") << "reader-token-0123456789abcdef\n";
    server_ = testing::Process::Start({FLEETPLAND_PATH, "--listen=127.0.0.1:0", "--metrics_listen=",
                                       "--db=" + dir_ + "/fleet.db", "--port_file=" + dir_ + "/port",
                                       "--auth_tokens_file=" + dir_ + "/tokens"},
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
  ProcessResult load = RunProcess({"/bin/bash", FLEETPLAN_SOURCE_DIR "/deploy/examples/load.sh", target_});
  ASSERT_EQ(load.exit_code, 0) << load.out << load.err;
  // Loading twice is safe.
  ProcessResult again = RunProcess({"/bin/bash", FLEETPLAN_SOURCE_DIR "/deploy/examples/load.sh", target_});
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
  // proto3 JSON writes int64 as strings (exact for any byte count).
  EXPECT_EQ(h["fleet"]["gpus"], std::to_string(4 * 8 + 6 * 4 + 4));
  EXPECT_EQ(h["fleet"]["largest_free_nvlink_domain"], "8");

  ProcessResult models = Cli({"models", "list", "--output=json"}, "reader");
  ASSERT_EQ(models.exit_code, 0) << models.err;
  EXPECT_EQ(nlohmann::json::parse(models.out)["models"].size(), 9u);

  ProcessResult est = Cli({"estimate", "--catalog-model=llama-3.1-70b-instruct", "--gpu=H100-80GB", "--tp=4",
                           "--max-model-len=32768", "--output=json"},
                          "reader");
  ASSERT_EQ(est.exit_code, 0) << est.err << est.out;
  auto ej = nlohmann::json::parse(est.out);
  EXPECT_TRUE(ej["fits"].get<bool>());
  EXPECT_EQ(ej["bytes_per_rank"].size(), 4u);
  EXPECT_GT(ej["kv_cache_tokens"].get<int64_t>(), 100000);

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
  ProcessResult plan = Cli({"plan", "--deployment=" FLEETPLAN_SOURCE_DIR "/deploy/examples/deployments.json", "--commit"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  EXPECT_NE(plan.out.find("CUDA_VISIBLE_DEVICES="), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("vllm serve llama-3.1-70b-instruct --tensor-parallel-size"), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("committed placements"), std::string::npos) << plan.out;
  ProcessResult list = Cli({"placements", "list", "--output=json"}, "reader");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto lj = nlohmann::json::parse(list.out);
  ASSERT_EQ(lj["placements"].size(), 8u);  // 2 + 1 + 2 + 1 + 2 replicas
  const std::string first_id = lj["placements"][0]["id"];
  ProcessResult release = Cli({"placements", "release", first_id});
  EXPECT_EQ(release.exit_code, 0) << release.err;
  EXPECT_NE(release.out.find("released"), std::string::npos);
  ProcessResult headroom_after = Cli({"headroom", "--by=pool", "--output=json"}, "reader");
  EXPECT_NE(nlohmann::json::parse(headroom_after.out)["fleet"]["committed_bytes"], "0");
  ProcessResult too_big = Cli({"plan", "--model=llama-3.1-70b-instruct", "--pool=l4"}, "reader");
  EXPECT_EQ(too_big.exit_code, 1) << too_big.out << too_big.err;
  EXPECT_NE(too_big.out.find("NOT PLACED"), std::string::npos) << too_big.out;
  EXPECT_NE(too_big.out.find("FAILED_PRECONDITION"), std::string::npos) << too_big.out;

  ProcessResult watch = Cli({"headroom", "--watch", "--updates=1", "--output=json"}, "reader");
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_NE(watch.out.find("\"generation\""), std::string::npos);
}

TEST_F(CliFlowTest, AuthErrorsFromTheCli) {
  ProcessResult no_token = Cli({"gpu-types", "list"}, "");
  EXPECT_EQ(no_token.exit_code, 1);
  EXPECT_NE(no_token.err.find("UNAUTHENTICATED"), std::string::npos) << no_token.err;
  ProcessResult reader_write = Cli({"gpu-types", "add", "--name=X", "--memory-bytes=1000"}, "reader");
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
