#include "server/server_options.h"

#include <string>

#include "gtest/gtest.h"
#include "server/server.h"

namespace fleetplan::server {
namespace {

TEST(IsLoopbackAddressTest, Table) {
  struct Case {
    std::string listen;
    bool loopback;
  };
  const Case cases[] = {
      {"127.0.0.1:50051", true},   {"127.1.2.3:0", true},
      {"localhost:50051", true},   {"LOCALHOST:1", true},
      {"[::1]:50051", true},       {"unix:/tmp/fleetplan.sock", true},
      {"0.0.0.0:50051", false},    {"[::]:50051", false},
      {"10.0.0.5:50051", false},   {"127.evil.com:1", false},
      {"127.0.0.1.evil:1", false}, {"[::1:50051", false},
      {"example.com:443", false},  {"", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsLoopbackAddress(c.listen), c.loopback) << c.listen;
  }
}

TEST(FleetplanServerTest, RefusesNonLoopbackWithoutTls) {
  ServerOptions options{.listen = "0.0.0.0:0", .metrics_listen = "", .store = {.path = ":memory:"}};
  auto server = FleetplanServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(server.status().message().find("listen=\"0.0.0.0:0\""), std::string::npos)
      << server.status();
}

TEST(FleetplanServerTest, HalfTlsIsInvalid) {
  ServerOptions options{.listen = "127.0.0.1:0",
                        .metrics_listen = "",
                        .tls = {.cert_file = "/nonexistent/cert.pem"},
                        .store = {.path = ":memory:"}};
  auto server = FleetplanServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << server.status();
}

TEST(FleetplanServerTest, MissingTlsFileIsNotFound) {
  ServerOptions options{
      .listen = "0.0.0.0:0",
      .metrics_listen = "",
      .tls = {.cert_file = "/nonexistent/cert.pem", .key_file = "/nonexistent/key.pem"},
      .store = {.path = ":memory:"}};
  auto server = FleetplanServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kNotFound) << server.status();
  EXPECT_NE(server.status().message().find("tls_"), std::string::npos);
}

TEST(FleetplanServerTest, StartsOnPortZeroAndShutsDown) {
  ServerOptions options{
      .listen = "127.0.0.1:0", .metrics_listen = "127.0.0.1:0", .store = {.path = ":memory:"}};
  auto server = FleetplanServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->port(), 0);
  EXPECT_GT((*server)->metrics_port(), 0);
  (*server)->Shutdown(std::chrono::milliseconds(100));
  (*server)->Wait();
}

TEST(FleetplanServerTest, RefusesABadDcgmPrometheusUrl) {
  for (const char* url : {"prometheus:9090", "ftp://p:9090", "http://p:9090/?x=1", "http://a b"}) {
    auto server = FleetplanServer::Start({.listen = "127.0.0.1:0",
                                          .metrics_listen = "",
                                          .dcgm_prometheus_url = url,
                                          .store = {.path = ":memory:"}});
    ASSERT_FALSE(server.ok()) << url;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_NE(server.status().message().find("dcgm_prometheus_url"), std::string::npos);
  }
}

}  // namespace
}  // namespace fleetplan::server
