// Starts the real fleetpland binary on 127.0.0.1:0 with a temp database, checks grpc.health.v1
// over a real channel (typed stub and the `fleetplan health` CLI), then shuts it down with SIGTERM
// and expects a clean exit.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "fleetplan/v1/system.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

using ::fleetplan::testing::Process;
using ::fleetplan::testing::ProcessResult;
using ::fleetplan::testing::RunProcess;

class ServerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("fleetpland_");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string ReadLog() const {
    std::ifstream in(dir_ + "/server.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Starts fleetpland and returns its port (0 on failure).
  int StartServer(std::optional<Process>& process) {
    process =
        Process::Start({FLEETPLAND_PATH, "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0", "--http_listen=",
                        "--db=" + dir_ + "/fleet.db", "--port_file=" + dir_ + "/port"},
                       dir_ + "/server.log");
    if (!process) return 0;
    auto port = testing::WaitForFile(dir_ + "/port", std::chrono::seconds(20));
    if (!port) return 0;
    return std::stoi(std::string(absl::StripAsciiWhitespace(*port)));
  }

  std::string dir_;
};

TEST_F(ServerProcessTest, ServesHealthAndShutsDownCleanly) {
  std::optional<Process> server;
  const int port = StartServer(server);
  ASSERT_GT(port, 0) << ReadLog();
  const std::string target = "127.0.0.1:" + std::to_string(port);

  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  for (const std::string service : {"", "fleetplan.v1.SystemService"}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(&context, request, &response);
    ASSERT_TRUE(status.ok()) << service << ": " << status.error_message();
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service("no.such.Service");
    grpc::health::v1::HealthCheckResponse response;
    EXPECT_EQ(health->Check(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    auto system = fleetplan::v1::SystemService::NewStub(channel);
    grpc::ClientContext context;
    fleetplan::v1::ServerInfo info;
    ASSERT_TRUE(system->GetServerInfo(&context, {}, &info).ok());
    EXPECT_FALSE(info.version().empty());
    EXPECT_GE(info.schema_version(), 1);
  }

  // The CLI sees the same.
  ProcessResult cli = RunProcess({FLEETPLAN_CLI_PATH, "health", "--server=" + target});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out, target + ": SERVING\n");

  server->Signal(SIGTERM);
  auto code = server->Wait(std::chrono::seconds(20));
  ASSERT_TRUE(code.has_value()) << "fleetpland did not exit after SIGTERM\n" << ReadLog();
  EXPECT_EQ(*code, 0) << ReadLog();
  const std::string log = ReadLog();
  EXPECT_NE(log.find("listening on 127.0.0.1:0"), std::string::npos) << log;
  EXPECT_NE(log.find("fleetpland: stopped"), std::string::npos) << log;
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/fleet.db"));
}

TEST_F(ServerProcessTest, RefusesNonLoopbackWithoutTls) {
  ProcessResult r = RunProcess(
      {FLEETPLAND_PATH, "--listen=0.0.0.0:0", "--metrics_listen=", "--http_listen=", "--db=" + dir_ + "/fleet.db"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("listen=\"0.0.0.0:0\" is not a loopback address"), std::string::npos)
      << r.err;
}

TEST_F(ServerProcessTest, UnwritableDatabaseFailsWithClearError) {
  ProcessResult r = RunProcess({FLEETPLAND_PATH, "--listen=127.0.0.1:0",
                                "--metrics_listen=", "--http_listen=", "--db=" + dir_ + "/missing/dir/fleet.db"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("fleet.db"), std::string::npos) << r.err;
}

TEST(CliProcessTest, UnknownSubcommandPrintsUsageAndExitsTwo) {
  ProcessResult r = RunProcess({FLEETPLAN_CLI_PATH, "no-such-command"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown command \"no-such-command\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Usage: fleetplan <command>"), std::string::npos) << r.err;
}

TEST(CliProcessTest, HealthAgainstNothingIsOperationalError) {
  ProcessResult r =
      RunProcess({FLEETPLAN_CLI_PATH, "health", "--server=127.0.0.1:1", "--timeout=0.5"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
}

}  // namespace
}  // namespace fleetplan
