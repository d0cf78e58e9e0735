// The HTTP/JSON API (server/http_gateway.h) against a real fleetpland server on 127.0.0.1:0 with
// libcurl: every unary route answers JSON (an answer or an error naming the field, never a 500),
// answers equal the gRPC answers for the same requests, bad bodies and methods are refused with
// their HTTP status, tokens and roles are the gRPC ones, GET reads take query parameters, the
// headroom stream sends an event per fleet generation, the pages carry the security headers, and
// it serves beside a TLS gRPC listener, and its listener is checked like the gRPC one.

#include <curl/curl.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/estimator.grpc.pb.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "fleetplan/v1/system.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/server.h"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan {
namespace {

using json = nlohmann::json;

struct Reply {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-cased names
  json Json() const { return json::parse(body, nullptr, false); }
};

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t CollectHeader(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * n;
}

struct Request {
  std::string method = "POST";
  std::string body = "{}";
  std::string content_type = "application/json";
  std::string token;
  std::string ca_file;  // https
  std::string host;     // a Host header other than the URL's
};

Reply Http(const std::string& url, const Request& r) {
  Reply reply;
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  if (!r.content_type.empty()) {
    headers = curl_slist_append(headers, ("Content-Type: " + r.content_type).c_str());
  }
  if (!r.token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + r.token).c_str());
  if (!r.host.empty()) headers = curl_slist_append(headers, ("Host: " + r.host).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.headers);
  if (!r.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, r.ca_file.c_str());
  if (r.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(r.body.size()));
  } else if (r.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return reply;
}

template <typename M>
M FromJson(const std::string& text) {
  M m;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &m).ok()) << text.substr(0, 300);
  return m;
}

template <typename M>
std::string ToJson(const M& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

class HttpApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }

  void Start(const std::string& tokens = "") {
    dir_ = testing::MakeTempDir("http_api_");
    server::ServerOptions options{.listen = "127.0.0.1:0",
                                  .http_listen = "127.0.0.1:0",
                                  .metrics_listen = "",
                                  .failure_simulation_interval = std::chrono::milliseconds(0),
                                  .store = {.path = dir_ + "/fleet.db"}};
    options.headroom_poll_interval = std::chrono::milliseconds(20);
    if (!tokens.empty()) {
      options.auth_tokens_file = dir_ + "/tokens";
      std::ofstream(options.auth_tokens_file) << tokens;
    }
    auto server = server::FleetplanServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_GT(server_->http_port(), 0);
    base_ = "http://127.0.0.1:" + std::to_string(server_->http_port());
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
  }

  // Two nodes of 8 H100s and a catalog model, through the HTTP API.
  void Load(const std::string& token = "") {
    Request r{.token = token};
    r.body = R"({"gpuType": {"name": "H100", "memoryBytes": "85017493504", "costPerHour": 2.5}})";
    ASSERT_EQ(Http(base_ + "/api/v1/InventoryService/CreateGpuType", r).status, 200);
    for (const char* name : {"n1", "n2"}) {
      json node{{"name", name}, {"pool", "p"}, {"zone", std::string("z-") + name}};
      for (int i = 0; i < 8; ++i) node["gpus"].push_back({{"index", i}, {"gpuType", "H100"}});
      r.body = json{{"node", node}}.dump();
      Reply created = Http(base_ + "/api/v1/InventoryService/CreateNode", r);
      ASSERT_EQ(created.status, 200) << created.body;
    }
    r.body = json{{"name", "llama-8b"},
                  {"configJson", testing::CalibrationModel("llama-3.1-8b-instruct")}}
                 .dump();
    Reply imported = Http(base_ + "/api/v1/CatalogService/ImportModel", r);
    ASSERT_EQ(imported.status, 200) << imported.body;
  }

  Reply Post(const std::string& method, const std::string& body, const std::string& token = "") {
    return Http(base_ + "/api/v1/" + method, Request{.body = body, .token = token});
  }
  Reply Get(const std::string& path, const std::string& token = "") {
    return Http(base_ + path, Request{.method = "GET", .body = "", .content_type = "", .token = token});
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string dir_, base_;
  std::unique_ptr<server::FleetplanServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(HttpApiTest, EveryUnaryRouteAnswersJsonAndNeverA500) {
  Start();
  Load();
  int routes = 0;
  for (const google::protobuf::FileDescriptor* f :
       {v1::ServerInfo::descriptor()->file(), v1::Node::descriptor()->file(),
        v1::Model::descriptor()->file(), v1::EstimateRequest::descriptor()->file(),
        v1::FleetHeadroom::descriptor()->file(), v1::Plan::descriptor()->file()}) {
    for (int s = 0; s < f->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service = f->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        const google::protobuf::MethodDescriptor* method = service->method(m);
        const std::string route = service->name() + "/" + method->name();
        Reply r = Post(route, "{}");
        const json body = r.Json();
        ASSERT_FALSE(body.is_discarded()) << route << ": " << r.body;
        if (method->server_streaming()) {
          EXPECT_EQ(r.status, 400) << route;
          continue;
        }
        ++routes;
        EXPECT_LT(r.status, 500) << route << ": " << r.body;
        if (r.status != 200) {
          ASSERT_TRUE(body.contains("error")) << route << ": " << r.body;
          EXPECT_EQ(body["error"]["code"], r.status) << route;
          EXPECT_FALSE(body["error"]["message"].get<std::string>().empty()) << route;
          EXPECT_FALSE(body["error"]["status"].get<std::string>().empty()) << route;
        }
      }
    }
  }
  EXPECT_GE(routes, 34) << "every unary RPC of the six services";
}

TEST_F(HttpApiTest, AnswersEqualTheGrpcAnswers) {
  Start();
  Load();
  auto estimator = v1::EstimatorService::NewStub(channel_);
  auto inventory = v1::InventoryService::NewStub(channel_);
  auto headroom = v1::HeadroomService::NewStub(channel_);
  auto planner = v1::PlannerService::NewStub(channel_);
  using google::protobuf::util::MessageDifferencer;

  v1::EstimateRequest est;
  est.set_model_name("llama-8b");
  est.set_gpu_type("H100");
  est.set_concurrency(16);
  est.set_context_tokens(8192);
  est.mutable_parallelism()->set_tp(2);
  v1::EstimateResponse grpc_est;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(estimator->Estimate(&ctx, est, &grpc_est).ok());
  }
  Reply http_est = Post("EstimatorService/Estimate", ToJson(est));
  ASSERT_EQ(http_est.status, 200) << http_est.body;
  EXPECT_TRUE(MessageDifferencer::Equals(FromJson<v1::EstimateResponse>(http_est.body), grpc_est));
  // int64 as JSON strings, every field present (always_print_primitive_fields).
  EXPECT_TRUE(http_est.Json()["maxTotalBytes"].is_string());
  EXPECT_TRUE(http_est.Json().contains("unverified"));

  v1::ListNodesResponse grpc_nodes;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(inventory->ListNodes(&ctx, v1::ListNodesRequest(), &grpc_nodes).ok());
  }
  EXPECT_TRUE(MessageDifferencer::Equals(
      FromJson<v1::ListNodesResponse>(Post("InventoryService/ListNodes", "{}").body), grpc_nodes));

  v1::RecommendRequest rec;
  rec.mutable_deployment()->set_model("llama-8b");
  rec.mutable_deployment()->set_concurrency(32);
  v1::RecommendResponse grpc_rec;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(planner->Recommend(&ctx, rec, &grpc_rec).ok());
  }
  EXPECT_TRUE(MessageDifferencer::Equals(
      FromJson<v1::RecommendResponse>(Post("PlannerService/Recommend", ToJson(rec)).body),
      grpc_rec));

  // A plan through HTTP equals a plan through gRPC (but for its id), and commits.
  v1::PlanPlacementRequest plan_req;
  v1::DeploymentSpec* d = plan_req.add_deployments();
  d->set_name("chat");
  d->set_model("llama-8b");
  d->set_replicas(2);
  d->set_spread("nodes");
  v1::Plan grpc_plan;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(planner->PlanPlacement(&ctx, plan_req, &grpc_plan).ok());
  }
  Reply http_plan = Post("PlannerService/PlanPlacement", ToJson(plan_req));
  ASSERT_EQ(http_plan.status, 200) << http_plan.body;
  v1::Plan plan = FromJson<v1::Plan>(http_plan.body);
  EXPECT_FALSE(plan.plan_id().empty());
  v1::Plan a = plan, b = grpc_plan;
  a.clear_plan_id();
  b.clear_plan_id();
  EXPECT_TRUE(MessageDifferencer::Equals(a, b));
  Reply commit = Post("PlannerService/CommitPlan", json{{"planId", plan.plan_id()}}.dump());
  ASSERT_EQ(commit.status, 200) << commit.body;
  // The other plan is now stale: 409 ABORTED, as gRPC says ABORTED.
  Reply stale = Post("PlannerService/CommitPlan", json{{"planId", grpc_plan.plan_id()}}.dump());
  EXPECT_EQ(stale.status, 409) << stale.body;
  EXPECT_EQ(stale.Json()["error"]["status"], "ABORTED");

  v1::FleetHeadroom grpc_head;
  {
    grpc::ClientContext ctx;
    v1::GetFleetHeadroomRequest req;
    req.set_include_gpus(true);
    ASSERT_TRUE(headroom->GetFleetHeadroom(&ctx, req, &grpc_head).ok());
  }
  EXPECT_GT(grpc_head.fleet().committed_bytes(), 0);
  EXPECT_TRUE(MessageDifferencer::Equals(
      FromJson<v1::FleetHeadroom>(Post("HeadroomService/GetFleetHeadroom", R"({"includeGpus": true})").body),
      grpc_head));
  // The same read as a GET with query parameters.
  EXPECT_TRUE(MessageDifferencer::Equals(
      FromJson<v1::FleetHeadroom>(Get("/api/v1/HeadroomService/GetFleetHeadroom?include_gpus=true").body),
      grpc_head));
}

TEST_F(HttpApiTest, BadRequestsGetTheirStatusAndNameTheField) {
  Start();
  Load();
  auto expect = [&](const Reply& r, long status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << needle << ": " << r.body;
    EXPECT_NE(r.body.find(needle), std::string::npos) << r.body;
    EXPECT_EQ(r.headers.count("access-control-allow-origin"), 0u) << "no CORS";
  };
  expect(Post("EstimatorService/Estimate", "{not json"), 400, "body:");
  expect(Post("EstimatorService/Estimate", R"({"modelName": 3})"), 400, "model_name");
  expect(Post("EstimatorService/Estimate", R"({"noSuchField": 1})"), 400, "noSuchField");
  expect(Post("EstimatorService/Estimate", R"({"modelName": "llama-8b", "gpuType": "H100",
            "concurrency": -4})"), 400, "concurrency");
  expect(Post("InventoryService/GetNode", R"({"name": "nope"})"), 404, "nope");
  expect(Post("NoService/Method", "{}"), 404, "no method");
  expect(Post("PlannerService/NoMethod", "{}"), 404, "no method");
  expect(Http(base_ + "/api/v1/SystemService/GetServerInfo",
              Request{.body = "{}", .content_type = "text/plain"}),
         415, "application/json");
  expect(Get("/api/v1/InventoryService/CreateNode"), 501, "POST");
  expect(Http(base_ + "/api/v1/InventoryService/ListNodes", Request{.method = "PUT"}), 501,
         "POST");
  expect(Get("/api/v1/InventoryService/ListNodes?nope=1"), 400, "nope");
  expect(Get("/api/v1/HeadroomService/GetFleetHeadroom?include_gpus=maybe"), 400, "maybe");
  expect(Get("/api/v1/InventoryService/ListNodes?pool=%ff%fe"), 400, "UTF-8");
  expect(Post("InventoryService/ListNodes", "{\"pool\": \"\xff\"}"), 400, "body");
  // Oversized: more than gRPC's own 16 MiB limit.
  const std::string huge = R"({"name": "x", "configJson": ")" + std::string(17 << 20, 'a') + "\"}";
  expect(Post("CatalogService/ImportModel", huge), 413, "bytes");
  // Nothing was stored by the refused calls.
  EXPECT_EQ(Post("CatalogService/ListModels", "{}").Json()["models"].size(), 1u);
  // DNS rebinding: a page elsewhere whose name now points at 127.0.0.1 is not answered.
  expect(Http(base_ + "/api/v1/InventoryService/ListNodes", Request{.host = "evil.example:80"}), 403,
         "evil.example");
  expect(Http(base_ + "/", Request{.method = "GET", .host = "evil.example"}), 403, "localhost");
  EXPECT_EQ(Http(base_ + "/", Request{.method = "GET", .host = "localhost:1"}).status, 200);
  EXPECT_EQ(Http(base_ + "/", Request{.method = "GET", .host = "127.0.0.2"}).status, 200);
  // GET with query parameters equals the POST.
  EXPECT_EQ(Get("/api/v1/InventoryService/ListNodes?pool=p&pageSize=1").Json(),
            Post("InventoryService/ListNodes", R"({"pool": "p", "pageSize": 1})").Json());
}

TEST_F(HttpApiTest, TokensAndRolesAreTheGrpcOnes) {
  Start("reader-token-0123456789 reader\nwriter-token-0123456789 writer\n");
  auto expect_status_ = [](const Reply& r, long status) { EXPECT_EQ(r.status, status) << r.body; };
  expect_status_(Post("InventoryService/ListNodes", "{}"), 401);
  expect_status_(Post("InventoryService/ListNodes", "{}", "wrong"), 401);
  expect_status_(Post("InventoryService/ListNodes", "{}", "reader-token-0123456789"), 200);
  expect_status_(Get("/api/v1/InventoryService/ListNodes", "reader-token-0123456789"), 200);
  expect_status_(Post("InventoryService/CreateGpuType",
                      R"({"gpuType": {"name": "H100", "memoryBytes": "85017493504"}})",
                      "reader-token-0123456789"),
                 403);
  expect_status_(Post("InventoryService/CreateGpuType",
                      R"({"gpuType": {"name": "H100", "memoryBytes": "85017493504"}})",
                      "writer-token-0123456789"),
                 200);
  Reply unauth = Get("/api/v1/HeadroomService/WatchHeadroom");
  expect_status_(unauth, 401);
  // The pages themselves need no token (they hold no data; the API calls do).
  expect_status_(Get("/"), 200);
}

TEST_F(HttpApiTest, PagesCarryTheSecurityHeaders) {
  Start();
  Reply index = Get("/");
  ASSERT_EQ(index.status, 200);
  EXPECT_NE(index.headers["content-type"].find("text/html"), std::string::npos);
  EXPECT_NE(index.body.find("/app.js"), std::string::npos);
  const std::string csp = index.headers["content-security-policy"];
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(index.headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(index.headers["x-frame-options"], "DENY");
  EXPECT_EQ(index.body.find("<script>"), std::string::npos) << "no inline script";
  Reply js = Get("/app.js");
  ASSERT_EQ(js.status, 200);
  EXPECT_NE(js.headers["content-type"].find("javascript"), std::string::npos);
  EXPECT_EQ(Get("/app.css").status, 200);
  EXPECT_EQ(Get("/nope.html").status, 404);
  EXPECT_EQ(Post("SystemService/GetServerInfo", "{}").headers["content-security-policy"], csp);
}

TEST_F(HttpApiTest, HeadroomStreamSendsAnEventPerGeneration) {
  Start();
  Load();
  // Read the stream on its own thread until two events came (bounded: 30 s).
  struct Seen {
    std::string text;
    std::atomic<int> events{0};
  } seen;
  std::thread reader([&] {
    CURL* curl = curl_easy_init();
    const std::string url = base_ + "/api/v1/HeadroomService/WatchHeadroom";
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(
        curl, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* out) -> size_t {
          auto* s = static_cast<Seen*>(out);
          s->text.append(data, size * n);
          size_t count = 0;
          for (size_t at = 0; (at = s->text.find("event: headroom\n", at)) != std::string::npos;
               ++at) {
            ++count;
          }
          s->events = static_cast<int>(count);
          return count >= 2 ? 0 : size * n;  // 0: stop
        });
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &seen);
    curl_easy_perform(curl);
    curl_easy_cleanup(curl);
  });
  for (int i = 0; i < 300 && seen.events < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(seen.events, 1) << seen.text;
  Reply plan = Post("PlannerService/PlanPlacement",
                    R"({"deployments": [{"name": "chat", "model": "llama-8b"}]})");
  ASSERT_EQ(plan.status, 200) << plan.body;
  ASSERT_EQ(Post("PlannerService/CommitPlan",
                 json{{"planId", plan.Json()["planId"]}}.dump())
                .status,
            200);
  reader.join();
  ASSERT_GE(seen.events, 2) << seen.text;
  // Each event's data is a FleetHeadroom; the second shows the commit.
  const size_t second = seen.text.find("data: ", seen.text.find("data: ") + 1);
  ASSERT_NE(second, std::string::npos);
  const std::string data = seen.text.substr(second + 6, seen.text.find('\n', second) - second - 6);
  EXPECT_GT(FromJson<v1::FleetHeadroom>(data).fleet().committed_bytes(), 0) << data;
  // A POST to a stream is refused with the way to read it.
  EXPECT_NE(Post("HeadroomService/WatchHeadroom", "{}").body.find("GET"), std::string::npos);
}

TEST_F(HttpApiTest, ServesBesideATlsGrpcListener) {
  // gRPC with TLS, the console on loopback (plain HTTP; http_gateway.h says why).
  const std::string tls = std::string(FLEETPLAN_TESTDATA_DIR) + "/tls/";
  dir_ = testing::MakeTempDir("http_tls_");
  auto server = server::FleetplanServer::Start({.listen = "127.0.0.1:0",
                                                .http_listen = "127.0.0.1:0",
                                                .metrics_listen = "",
                                                .tls = {.cert_file = tls + "server.pem",
                                                        .key_file = tls + "server.key"},
                                                .failure_simulation_interval =
                                                    std::chrono::milliseconds(0),
                                                .store = {.path = dir_ + "/fleet.db"}});
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = std::move(*server);
  base_ = "http://127.0.0.1:" + std::to_string(server_->http_port());
  Reply info = Post("SystemService/GetServerInfo", "{}");
  EXPECT_EQ(info.status, 200) << info.body;
  EXPECT_TRUE(info.Json().contains("version"));
}

TEST(HttpApiOptionsTest, ListenersAreCheckedLikeTheGrpcOne) {
  const std::string dir = testing::MakeTempDir("http_opts_");
  auto refused = [&](server::ServerOptions o, const std::string& needle) {
    o.store.path = dir + "/fleet.db";
    o.metrics_listen = "";
    auto s = server::FleetplanServer::Start(o);
    ASSERT_FALSE(s.ok()) << needle;
    EXPECT_NE(s.status().message().find(needle), std::string::npos) << s.status();
  };
  refused({.listen = "127.0.0.1:0", .http_listen = "0.0.0.0:0"}, "http_listen=\"0.0.0.0:0\"");
  refused({.listen = "127.0.0.1:0", .http_listen = "0.0.0.0:0"}, "insecure_http_listen_any");
  refused({.listen = "127.0.0.1:0", .http_listen = "127.0.0.1"}, "http_listen");
  refused({.listen = "127.0.0.1:0", .http_listen = "unix:/tmp/x"}, "host:port");
  refused({.listen = "127.0.0.1:0",
           .http_listen = "0.0.0.0:0",
           .insecure_http_listen_any = true},
          "auth_tokens_file");
  const std::string tls = std::string(FLEETPLAN_TESTDATA_DIR) + "/tls/";
  refused({.listen = "127.0.0.1:0",
           .http_listen = "127.0.0.1:0",
           .tls = {.cert_file = tls + "server.pem",
                   .key_file = tls + "server.key",
                   .client_ca_file = tls + "ca.pem"}},
          "client certificate");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fleetplan
