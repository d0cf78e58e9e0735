// TLS on fleetpland: a server certificate (clients verify it), and with --tls_client_ca mutual TLS
// (clients without a certificate are refused). Test certificates: tests/data/tls.

#include <filesystem>
#include <fstream>
#include <sstream>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

const std::string kTls = std::string(FLEETPLAN_TESTDATA_DIR) + "/tls/";

std::string Read(const std::string& name) {
  std::ifstream in(kTls + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

grpc::Status Check(std::shared_ptr<grpc::ChannelCredentials> creds, int port) {
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), creds, args);
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckResponse resp;
  return stub->Check(&ctx, {}, &resp);
}

TEST(TlsTest, ServerCertificateAndMutualTls) {
  const std::string dir = testing::MakeTempDir("tls_");
  {
    auto server = server::FleetplanServer::Start(
        {.listen = "127.0.0.1:0",
         .metrics_listen = "",
         .tls = {.cert_file = kTls + "server.pem", .key_file = kTls + "server.key"},
         .store = {.path = dir + "/a.db"}});
    ASSERT_TRUE(server.ok()) << server.status();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Read("ca.pem");
    EXPECT_TRUE(Check(grpc::SslCredentials(ssl), (*server)->port()).ok());
    EXPECT_FALSE(Check(grpc::InsecureChannelCredentials(), (*server)->port()).ok());
    (*server)->Shutdown(std::chrono::milliseconds(100));
  }
  {
    auto server = server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                                  .metrics_listen = "",
                                                  .tls = {.cert_file = kTls + "server.pem",
                                                          .key_file = kTls + "server.key",
                                                          .client_ca_file = kTls + "ca.pem"},
                                                  .store = {.path = dir + "/b.db"}});
    ASSERT_TRUE(server.ok()) << server.status();
    grpc::SslCredentialsOptions no_cert;
    no_cert.pem_root_certs = Read("ca.pem");
    EXPECT_FALSE(Check(grpc::SslCredentials(no_cert), (*server)->port()).ok());
    grpc::SslCredentialsOptions with_cert = no_cert;
    with_cert.pem_cert_chain = Read("client.pem");
    with_cert.pem_private_key = Read("client.key");
    EXPECT_TRUE(Check(grpc::SslCredentials(with_cert), (*server)->port()).ok());
    (*server)->Shutdown(std::chrono::milliseconds(100));
  }
  // TLS alone does not make a non-loopback listener acceptable: it needs an authentication mode
  // (client certificates here, or bearer tokens), or the explicit insecure_allow_anonymous.
  auto anonymous = server::FleetplanServer::Start(
      {.listen = "0.0.0.0:0",
       .metrics_listen = "",
       .tls = {.cert_file = kTls + "server.pem", .key_file = kTls + "server.key"},
       .store = {.path = dir + "/c.db"}});
  ASSERT_FALSE(anonymous.ok());
  EXPECT_NE(anonymous.status().message().find("no authentication"), std::string::npos)
      << anonymous.status();
  for (const bool allow_anonymous : {false, true}) {
    auto any = server::FleetplanServer::Start(
        {.listen = "0.0.0.0:0",
         .metrics_listen = "",
         .insecure_allow_anonymous = allow_anonymous,
         .tls = {.cert_file = kTls + "server.pem",
                 .key_file = kTls + "server.key",
                 .client_ca_file = allow_anonymous ? "" : kTls + "ca.pem"},
         .store = {.path = dir + "/c.db"}});
    EXPECT_TRUE(any.ok()) << any.status();
    if (any.ok()) (*any)->Shutdown(std::chrono::milliseconds(100));
  }
  std::filesystem::remove_all(dir);
}

TEST(TlsTest, BadTokensFileIsRefusedAtStart) {
  const std::string dir = testing::MakeTempDir("tokens_");
  std::ofstream(dir + "/tokens") << "short writer\n";
  auto server = server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                                .metrics_listen = "",
                                                .auth_tokens_file = dir + "/tokens",
                                                .store = {.path = ":memory:"}});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("shorter than 16"), std::string::npos)
      << server.status();
  std::ofstream(dir + "/tokens2") << "0123456789abcdefXYZ admin\n";
  server = server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                           .metrics_listen = "",
                                           .auth_tokens_file = dir + "/tokens2",
                                           .store = {.path = ":memory:"}});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("role \"admin\""), std::string::npos) << server.status();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fleetplan
