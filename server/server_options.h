#ifndef FLEETPLAN_SERVER_SERVER_OPTIONS_H_
#define FLEETPLAN_SERVER_SERVER_OPTIONS_H_

// Options of fleetpland. Filled from flags in main() only (Tips #45, #173) and passed down.

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "server/metrics_detail.h"
#include "storage/sql_store.h"

namespace fleetplan::server {

struct TlsOptions {
  std::string cert_file;  // PEM server certificate chain
  std::string key_file;   // PEM private key
  std::string
      client_ca_file;  // optional: PEM CA bundle; when set, client certificates are required
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

struct ServerOptions {
  // gRPC listen address, "host:port". Port 0 picks a free port (printed, and written to
  // port_file when set).
  std::string listen = "127.0.0.1:50051";
  // The HTTP/JSON API and the web console (server/http_gateway.h), "host:port"; empty: off (the
  // fleetpland flag's default is 127.0.0.1:8080). Plain HTTP (http_gateway.h says why): a
  // non-loopback address needs insecure_http_listen_any (behind a TLS proxy) and bearer tokens
  // unless insecure_allow_anonymous (it cannot check client certificates).
  std::string http_listen;
  // Where to write the chosen HTTP port (with http_listen port 0).
  std::string http_port_file;
  // Prometheus /metrics listen address; empty disables the exporter.
  std::string metrics_listen = "127.0.0.1:9464";
  // Fleet series per GPU (default), per node or per pool only (server/metrics.h has the series
  // count of each; per node or per pool for very large fleets).
  MetricsDetail metrics_detail = MetricsDetail::kGpu;
  // Where to write the chosen gRPC port once listening (tests, supervisors). Empty: don't.
  std::string port_file;
  // The same for the /metrics port (with metrics_listen port 0).
  std::string metrics_port_file;
  // A non-loopback listen address needs TLS unless this is set.
  bool insecure_listen_any = false;
  // A non-loopback listen address also needs an authentication mode (bearer tokens or client
  // certificates) unless this is set: otherwise anyone who reaches the port can write.
  bool insecure_allow_anonymous = false;
  // /metrics is plain HTTP: a non-loopback metrics_listen needs this (with tokens configured,
  // /metrics then asks for a bearer token like any reader call).
  bool insecure_metrics_listen_any = false;
  // The HTTP API and console on a non-loopback address (plain HTTP: behind a TLS proxy).
  bool insecure_http_listen_any = false;
  TlsOptions tls;
  // Bearer tokens ("<token> <reader|writer>" per line). Empty: no authentication (loopback
  // default).
  std::string auth_tokens_file;
  // Long calls (PlanPlacement, ExplainPlacement, Budget, MaxContext) running at once; more wait
  // for a slot until their deadline (at most heavy_call_wait), then get RESOURCE_EXHAUSTED.
  // 0: twice the machine's cores.
  int64_t max_heavy_calls = 0;
  std::chrono::milliseconds heavy_call_wait = std::chrono::seconds(2);
  // WatchHeadroom streams open at once: per client (its token, or its host without a token) and
  // in all. More are refused with RESOURCE_EXHAUSTED; a closed stream frees its slot.
  int64_t max_watches_per_client = 32;
  int64_t max_watches = 1024;
  // How often WatchHeadroom streams look for a new fleet generation.
  std::chrono::milliseconds headroom_poll_interval = std::chrono::milliseconds(250);
  // Prometheus that scrapes NVIDIA's dcgm-exporter: observed GPU memory use, drift metrics and
  // GetObservedUsage. Empty: off.
  std::string dcgm_prometheus_url;
  std::chrono::milliseconds dcgm_poll_interval = std::chrono::seconds(30);
  // How often, when the fleet changed, every zone's failure is simulated for the
  // fleetplan_zone_failure_* gauges (N+1 headroom). 0: never.
  std::chrono::milliseconds failure_simulation_interval = std::chrono::seconds(60);
  storage::StoreOptions store;
  // How often the server checks that its database answers: while it does not (a PostgreSQL
  // server down or failing over), health is NOT_SERVING, and SERVING again once it answers.
  std::chrono::milliseconds store_probe_interval = std::chrono::seconds(1);
};

// OK when `listen` is "host:port" (port 0-65535), "[v6]:port" or "unix:PATH"; INVALID_ARGUMENT
// naming `field` otherwise (a missing port would make gRPC pick 443).
absl::Status ValidateListenAddress(const std::string& field, const std::string& listen);

// Returns true when `listen` ("host:port", "[v6]:port", "unix:...") is reachable only from this
// machine: 127.0.0.0/8, ::1, localhost, or a unix socket.
bool IsLoopbackAddress(const std::string& listen);

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_SERVER_OPTIONS_H_
