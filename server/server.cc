#include "server/server.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <thread>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "server/auth.h"
#include "server/catalog_service.h"
#include "server/estimator_service.h"
#include "server/headroom_service.h"
#include "server/inventory_service.h"
#include "server/observed_usage.h"
#include "server/planner_service.h"
#include "server/request_cache.h"
#include "server/simulation.h"
#include "server/system_service.h"

namespace fleetplan::server {
namespace {

// Largest request we accept. A 2 MiB config.json (the biggest published ones are < 100 KiB) fits
// with room; a 100 MiB upload is refused by gRPC with RESOURCE_EXHAUSTED before we parse it.
constexpr int64_t kMaxReceiveMessageBytes = 16 * kMiB;

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, "=\"", path, "\": cannot read file"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Parses the certificate chain and key, and checks that they belong together, so a bad file is
// reported as what it is (gRPC would only fail to listen).
absl::Status CheckKeyPair(const TlsOptions& tls, const std::string& cert, const std::string& key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(cert.data(), static_cast<int>(cert.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> x509(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (x509 == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_cert=\"", tls.cert_file, "\" holds no PEM certificate"));
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(key.data(), static_cast<int>(key.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_key=\"", tls.key_file, "\" holds no (unencrypted) PEM private key"));
  }
  if (X509_check_private_key(x509.get(), pkey.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_key=\"", tls.key_file, "\" does not match the certificate in tls_cert=\"",
                     tls.cert_file, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(const TlsOptions& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("TLS needs both tls_cert=\"", tls.cert_file,
                                                   "\" and tls_key=\"", tls.key_file, "\""));
  }
  grpc::SslServerCredentialsOptions ssl;
  ASSIGN_OR_RETURN(std::string cert, ReadFile("tls_cert", tls.cert_file));
  ASSIGN_OR_RETURN(std::string key, ReadFile("tls_key", tls.key_file));
  RETURN_IF_ERROR(CheckKeyPair(tls, cert, key));
  ssl.pem_key_cert_pairs.push_back({key, cert});
  if (!tls.client_ca_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile("tls_client_ca", tls.client_ca_file));
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

absl::Status ValidateOptions(const ServerOptions& options) {
  RETURN_IF_ERROR(ValidateListenAddress("listen", options.listen));
  if (!options.metrics_listen.empty()) {
    RETURN_IF_ERROR(ValidateListenAddress("metrics_listen", options.metrics_listen));
  }
  if (!options.http_listen.empty()) {
    RETURN_IF_ERROR(ValidateListenAddress("http_listen", options.http_listen));
    if (absl::StartsWith(options.http_listen, "unix")) {
      return absl::InvalidArgumentError(absl::StrCat("http_listen=\"", options.http_listen,
                                                     "\": the HTTP API listens on host:port only"));
    }
    if (!IsLoopbackAddress(options.http_listen)) {
      if (!options.insecure_http_listen_any) {
        return absl::InvalidArgumentError(absl::StrCat(
            "http_listen=\"", options.http_listen,
            "\" is not a loopback address and the HTTP API is plain HTTP: serve it through a "
            "TLS-terminating proxy on this machine, or give --insecure_http_listen_any"));
      }
      if (options.auth_tokens_file.empty() && !options.insecure_allow_anonymous) {
        return absl::InvalidArgumentError(absl::StrCat(
            "http_listen=\"", options.http_listen,
            "\" is not a loopback address and the HTTP API authenticates by bearer token only: "
            "give --auth_tokens_file, or --insecure_allow_anonymous"));
      }
    }
    if (!options.tls.client_ca_file.empty() && options.auth_tokens_file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "http_listen=\"", options.http_listen,
          "\": gRPC callers are authenticated by client "
          "certificate (tls_client_ca), which the HTTP API cannot check: give --auth_tokens_file "
          "too, or leave http_listen empty"));
    }
  }
  if (!IsLoopbackAddress(options.listen)) {
    if (!options.tls.enabled() && !options.insecure_listen_any) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen=\"", options.listen,
          "\" is not a loopback address: give --tls_cert and --tls_key, or --insecure_listen_any "
          "to serve plaintext to the network"));
    }
  }
  if (!options.metrics_listen.empty() && !IsLoopbackAddress(options.metrics_listen) &&
      !options.insecure_metrics_listen_any) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics_listen=\"", options.metrics_listen,
        "\" is not a loopback address and /metrics is plain HTTP: scrape through a local proxy, or "
        "give --insecure_metrics_listen_any (with --auth_tokens_file, /metrics then needs a "
        "bearer token)"));
  }
  return absl::OkStatus();
}

// A network listener needs a way to tell who calls (checked after the TLS files are read, so a
// missing file is reported as such first).
absl::Status CheckAuthentication(const ServerOptions& options) {
  if (IsLoopbackAddress(options.listen)) return absl::OkStatus();
  const bool authenticated =
      !options.auth_tokens_file.empty() || !options.tls.client_ca_file.empty();
  if (authenticated || options.insecure_allow_anonymous) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "listen=\"", options.listen,
      "\" is not a loopback address and no authentication is configured: give "
      "--auth_tokens_file or --tls_client_ca, or --insecure_allow_anonymous to let anyone who "
      "reaches the port write"));
}

// Writes "<port>\n" to `path` atomically (a reader never sees a half-written file).
absl::Status WritePortFile(const char* field, const std::string& path, int port) {
  std::ofstream out(path + ".tmp");
  out << port << "\n";
  out.close();
  if (!out || std::rename((path + ".tmp").c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat(field, "=\"", path, "\": cannot write"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateListenAddress(const std::string& field, const std::string& listen) {
  if (listen.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " must not be empty"));
  if (absl::StartsWith(listen, "unix:") || absl::StartsWith(listen, "unix-abstract:")) {
    return absl::OkStatus();
  }
  const size_t colon = listen.rfind(':');
  const size_t bracket = listen.rfind(']');
  int port = -1;
  const bool has_port = colon != std::string::npos &&
                        (bracket == std::string::npos || colon > bracket) && colon > 0 &&
                        absl::SimpleAtoi(listen.substr(colon + 1), &port);
  if (!has_port || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(field, "=\"", listen,
                                                   "\" must be host:port with a port in [0, 65535] "
                                                   "(0 picks a free one)"));
  }
  return absl::OkStatus();
}

bool IsLoopbackAddress(const std::string& listen) {
  absl::string_view addr = listen;
  if (absl::StartsWith(addr, "unix:") || absl::StartsWith(addr, "unix-abstract:")) return true;
  absl::string_view host;
  if (absl::ConsumePrefix(&addr, "[")) {
    size_t close = addr.find(']');
    if (close == absl::string_view::npos) return false;
    host = addr.substr(0, close);
  } else {
    size_t colon = addr.rfind(':');
    host = colon == absl::string_view::npos ? addr : addr.substr(0, colon);
  }
  std::string lower = absl::AsciiStrToLower(host);
  if (lower == "localhost" || lower == "::1" || lower == "0:0:0:0:0:0:0:1") return true;
  // 127.0.0.0/8, written as a dotted quad.
  absl::string_view rest = lower;
  if (!absl::ConsumePrefix(&rest, "127.")) return false;
  int dots = 0;
  for (char c : rest) {
    if (c == '.') {
      ++dots;
    } else if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return dots == 2;
}

absl::StatusOr<std::unique_ptr<FleetplanServer>> FleetplanServer::Start(
    const ServerOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  ASSIGN_OR_RETURN(auto credentials, MakeCredentials(options.tls));
  RETURN_IF_ERROR(CheckAuthentication(options));

  auto server = std::unique_ptr<FleetplanServer>(new FleetplanServer());
  ASSIGN_OR_RETURN(server->store_, storage::SqlStore::Open(options.store));
  server->fleet_ = std::make_unique<storage::LiveFleet>(server->store_.get());
  // Read the fleet now, so the first plan does not pay for it (and a broken store fails start).
  RETURN_IF_ERROR(server->fleet_->Current().status());
  if (options.auth_tokens_file.empty()) {
    server->auth_ = Authorizer::AllowAll();
  } else {
    ASSIGN_OR_RETURN(std::string tokens, ReadFile("auth_tokens_file", options.auth_tokens_file));
    ASSIGN_OR_RETURN(server->auth_, Authorizer::FromText(tokens, options.auth_tokens_file));
  }
  ASSIGN_OR_RETURN(server->metrics_, Metrics::Start(options.metrics_listen, server->fleet_.get(),
                                                    server->auth_.get(), options.metrics_detail));
  server->requests_ = std::make_unique<RequestCache>();
  server->estimates_ = std::make_unique<EstimateCache>(std::chrono::seconds(10));
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  server->heavy_ = std::make_unique<Admission>(
      options.max_heavy_calls > 0 ? options.max_heavy_calls : 2 * cores, options.heavy_call_wait);
  if (!options.dcgm_prometheus_url.empty()) {
    RETURN_IF_ERROR(ValidatePrometheusUrl("dcgm_prometheus_url", options.dcgm_prometheus_url));
    server->observed_ = std::make_unique<ObservedUsageHolder>();
    // Older than three polls: stale, not shown (Prometheus or the exporter went away).
    server->metrics_->SetObserved(server->observed_.get(), 3 * options.dcgm_poll_interval);
  }
  const ServiceDeps deps{.store = server->store_.get(),
                         .auth = server->auth_.get(),
                         .requests = server->requests_.get(),
                         .estimates = server->estimates_.get(),
                         .metrics = server->metrics_.get(),
                         .heavy = server->heavy_.get(),
                         .fleet = server->fleet_.get(),
                         .observed = server->observed_.get(),
                         .observed_max_age = 3 * options.dcgm_poll_interval};
  server->system_service_ = std::make_unique<SystemServiceImpl>(deps);
  server->inventory_service_ = std::make_unique<InventoryServiceImpl>(deps);
  server->catalog_service_ = std::make_unique<CatalogServiceImpl>(deps);
  server->estimator_service_ =
      std::make_unique<EstimatorServiceImpl>(deps, server->estimates_.get());
  server->headroom_service_ = std::make_unique<HeadroomServiceImpl>(
      deps, options.headroom_poll_interval,
      WatchLimits{.per_client = options.max_watches_per_client, .total = options.max_watches});
  server->planner_service_ = std::make_unique<PlannerServiceImpl>(deps, server->estimates_.get());
  server->failure_watch_ = std::make_unique<FailureWatch>(deps, server->estimates_.get(),
                                                          options.failure_simulation_interval);
  if (server->observed_ != nullptr) {
    server->dcgm_ =
        std::make_unique<DcgmObserver>(options.dcgm_prometheus_url, options.dcgm_poll_interval,
                                       server->fleet_.get(), server->observed_.get());
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, credentials, &server->port_);
  builder.RegisterService(server->system_service_.get());
  builder.RegisterService(server->inventory_service_.get());
  builder.RegisterService(server->catalog_service_.get());
  builder.RegisterService(server->estimator_service_.get());
  builder.RegisterService(server->headroom_service_.get());
  builder.RegisterService(server->planner_service_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxReceiveMessageBytes));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(server->metrics_->InterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("listen=\"", options.listen, "\": cannot listen (address in use or invalid)"));
  }
  // The store is open and migrated; only now do we report SERVING. From then on health follows
  // the database: NOT_SERVING while it does not answer (calls fail fast with UNAVAILABLE then),
  // SERVING again when it does, without a restart.
  grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService();
  auto set_health = [health](bool serving) {
    health->SetServingStatus(serving);
    for (const char* service :
         {fleetplan::v1::SystemService::service_full_name(),
          v1::InventoryService::service_full_name(), v1::CatalogService::service_full_name(),
          v1::EstimatorService::service_full_name(), v1::HeadroomService::service_full_name(),
          v1::PlannerService::service_full_name()}) {
      health->SetServingStatus(service, serving);
    }
  };
  set_health(true);
  if (options.store_probe_interval.count() > 0) {
    FleetplanServer* self = server.get();
    server->store_probe_ =
        std::make_unique<Periodic>(options.store_probe_interval, [self, set_health] {
          const bool answers = self->store_->FleetGeneration().ok();
          if (answers != self->store_answers_.exchange(answers)) set_health(answers);
        });
  }

  if (!options.http_listen.empty()) {
    // Answers are bounded by the services' pages, not by the client default of 4 MiB.
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(-1);
    channel_args.SetMaxSendMessageSize(static_cast<int>(kMaxReceiveMessageBytes));
    auto gateway =
        HttpGateway::Start({.listen = options.http_listen,
                            .max_body_bytes = kMaxReceiveMessageBytes,
                            .loopback_hosts_only = IsLoopbackAddress(options.http_listen)},
                           server->server_->InProcessChannel(channel_args));
    if (!gateway.ok()) {
      server->Shutdown(std::chrono::milliseconds(0));
      return gateway.status();
    }
    server->http_ = *std::move(gateway);
  }
  for (const auto& [field, path, port] :
       {std::tuple{"port_file", options.port_file, server->port_},
        std::tuple{"metrics_port_file", options.metrics_port_file, server->metrics_port()},
        std::tuple{"http_port_file", options.http_port_file, server->http_port()}}) {
    if (path.empty()) continue;
    if (absl::Status written = WritePortFile(field, path, port); !written.ok()) {
      server->Shutdown(std::chrono::milliseconds(0));
      return written;
    }
  }
  return server;
}

FleetplanServer::~FleetplanServer() { Shutdown(std::chrono::milliseconds(0)); }

void FleetplanServer::Shutdown(std::chrono::milliseconds grace) {
  if (server_ == nullptr) return;
  if (store_probe_ != nullptr) store_probe_->Stop();
  // NOT_SERVING first so load balancers stop sending; then drain in-flight RPCs.
  if (auto* health = server_->GetHealthCheckService(); health != nullptr) health->Shutdown();
  // Streams end first (they would otherwise hold the drain until its deadline).
  if (headroom_service_ != nullptr) headroom_service_->Shutdown();
  // The HTTP API's calls go through this server: closed (its open requests answered) before it.
  if (http_ != nullptr) http_->Stop();
  if (failure_watch_ != nullptr) failure_watch_->Shutdown();
  if (dcgm_ != nullptr) dcgm_->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + grace);
}

void FleetplanServer::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace fleetplan::server
