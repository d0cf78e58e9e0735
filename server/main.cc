// fleetpland: the fleetplan gRPC server.
//
// Flags are read here and nowhere else; they fill a ServerOptions passed down (Tips #45, #173).
// SIGINT/SIGTERM trigger a graceful shutdown: health goes NOT_SERVING, in-flight RPCs drain.

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/synchronization/mutex.h"
#include "planner/common/version.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC listen address host:port (port 0 picks a free one). Non-loopback needs TLS or "
          "--insecure_listen_any.");
ABSL_FLAG(std::string, db, "fleetplan.db",
          "SQLite database file (created when missing), or a PostgreSQL database shared by several "
          "fleetpland replicas as a libpq URI: postgresql://USER@HOST:PORT/DB (several hosts with "
          "?target_session_attrs=read-write for failover; the password from ~/.pgpass, "
          "PGPASSFILE or PGPASSWORD, not the command line)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Prometheus /metrics listen address host:port; empty disables the exporter");
ABSL_FLAG(std::string, port_file, "", "write the bound gRPC port to this file once listening");
ABSL_FLAG(std::string, http_listen, "127.0.0.1:8080",
          "the web console and the HTTP/JSON API (/api/v1/<Service>/<Method>) host:port; empty "
          "disables them. Plain HTTP: non-loopback needs --insecure_http_listen_any (behind a TLS "
          "proxy) and --auth_tokens_file.");
ABSL_FLAG(std::string, http_port_file, "", "write the bound HTTP port to this file once listening");
ABSL_FLAG(std::string, metrics_detail, "gpu",
          "fleet series per gpu | node | pool (per GPU: 7 series per GPU; per node: 9 per node; "
          "per pool: 9 per pool and GPU type)");
ABSL_FLAG(std::string, metrics_port_file, "",
          "write the bound /metrics port to this file once listening");
ABSL_FLAG(bool, insecure_listen_any, false,
          "allow plaintext gRPC on a non-loopback address (trusted networks only)");
ABSL_FLAG(bool, insecure_allow_anonymous, false,
          "allow a non-loopback listener without --auth_tokens_file or --tls_client_ca (anyone "
          "who reaches the port may write)");
ABSL_FLAG(bool, insecure_metrics_listen_any, false,
          "allow /metrics (plain HTTP) on a non-loopback address");
ABSL_FLAG(bool, insecure_http_listen_any, false,
          "allow the web console and HTTP API (plain HTTP) on a non-loopback address, for a "
          "TLS-terminating proxy in front");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate chain (enables TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM server private key");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA bundle; when set, clients must present a cert");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "bearer tokens, one \"<token> <reader|writer>\" per line; empty: no authentication");
ABSL_FLAG(std::string, dcgm_prometheus_url, "",
          "Prometheus (http://host:9090) that scrapes NVIDIA's dcgm-exporter: observe what GPUs "
          "really use and export the drift from what placements promise (empty: off)");
ABSL_FLAG(int, dcgm_poll_interval_s, 30, "how often to query --dcgm_prometheus_url");
ABSL_FLAG(int, failure_simulation_interval_s, 60,
          "simulate each zone's failure this often when the fleet changed, for the "
          "fleetplan_zone_failure_* gauges (0: off)");
ABSL_FLAG(int, shutdown_grace_ms, 5000, "how long in-flight RPCs may run after SIGINT/SIGTERM");

namespace {

// Whether the command line names --http_listen (absl 20220623 keeps that query private).
bool HttpListenGiven(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") break;
    for (std::string_view prefix : {"--http_listen", "-http_listen"}) {
      if (a.substr(0, prefix.size()) == prefix &&
          (a.size() == prefix.size() || a[prefix.size()] == '=')) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "fleetpland: plans where LLMs run on a GPU fleet.\nUsage: fleetpland [--listen=HOST:PORT] "
      "[--db=FILE] [--metrics_listen=HOST:PORT] [--http_listen=HOST:PORT]");
  absl::SetFlagsUsageConfig(
      {.version_string = [] { return std::string("fleetpland ") + fleetplan::kVersion + "\n"; }});
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  // Debian's Abseil keeps debug-build deadlock detection on, which updates a lock graph on every
  // Mutex acquisition; production servers run with it off (tests keep it on).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (rest.size() > 1) {
    std::fprintf(stderr, "fleetpland: unexpected argument \"%s\" (see --help)\n", rest[1]);
    return 2;
  }

  // Block the shutdown signals in every thread (gRPC's and civetweb's inherit this mask); one
  // thread of ours waits for them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto detail = fleetplan::server::MetricsDetailNames().Parse("metrics_detail",
                                                              absl::GetFlag(FLAGS_metrics_detail));
  if (!detail.ok()) {
    std::fprintf(stderr, "fleetpland: %s\n", std::string(detail.status().message()).c_str());
    return 2;
  }
  fleetplan::server::ServerOptions options{
      .listen = absl::GetFlag(FLAGS_listen),
      .http_listen = absl::GetFlag(FLAGS_http_listen),
      .http_port_file = absl::GetFlag(FLAGS_http_port_file),
      .metrics_listen = absl::GetFlag(FLAGS_metrics_listen),
      .metrics_detail = *detail,
      .port_file = absl::GetFlag(FLAGS_port_file),
      .metrics_port_file = absl::GetFlag(FLAGS_metrics_port_file),
      .insecure_listen_any = absl::GetFlag(FLAGS_insecure_listen_any),
      .insecure_allow_anonymous = absl::GetFlag(FLAGS_insecure_allow_anonymous),
      .insecure_metrics_listen_any = absl::GetFlag(FLAGS_insecure_metrics_listen_any),
      .insecure_http_listen_any = absl::GetFlag(FLAGS_insecure_http_listen_any),
      .tls = {.cert_file = absl::GetFlag(FLAGS_tls_cert),
              .key_file = absl::GetFlag(FLAGS_tls_key),
              .client_ca_file = absl::GetFlag(FLAGS_tls_client_ca)},
      .auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens_file),
      .store = {.path = absl::GetFlag(FLAGS_db)},
  };
  // The console's default listener cannot check client certificates: with --tls_client_ca and no
  // tokens it stays off (said so) rather than open a door the gRPC listener keeps shut; asked
  // for explicitly, the server refuses to start instead (server.cc).
  if (!options.tls.client_ca_file.empty() && options.auth_tokens_file.empty() &&
      !HttpListenGiven(argc, argv)) {
    options.http_listen.clear();
    std::printf(
        "web console off: callers authenticate by client certificate, which the HTTP API "
        "cannot check (give --auth_tokens_file to serve it)\n");
  }
  const int simulate_s = absl::GetFlag(FLAGS_failure_simulation_interval_s);
  if (simulate_s < 0) {
    std::fprintf(stderr, "fleetpland: failure_simulation_interval_s=%d must be >= 0\n", simulate_s);
    return 2;
  }
  options.failure_simulation_interval = std::chrono::seconds(simulate_s);
  options.dcgm_prometheus_url = absl::GetFlag(FLAGS_dcgm_prometheus_url);
  const int dcgm_s = absl::GetFlag(FLAGS_dcgm_poll_interval_s);
  if (dcgm_s < 1) {
    std::fprintf(stderr, "fleetpland: dcgm_poll_interval_s=%d must be >= 1\n", dcgm_s);
    return 2;
  }
  options.dcgm_poll_interval = std::chrono::seconds(dcgm_s);
  const int grace_ms = absl::GetFlag(FLAGS_shutdown_grace_ms);
  if (grace_ms < 0) {
    std::fprintf(stderr, "fleetpland: shutdown_grace_ms=%d must be >= 0\n", grace_ms);
    return 2;
  }

  auto server = fleetplan::server::FleetplanServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "fleetpland: %s\n", server.status().ToString().c_str());
    return server.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::printf("fleetpland %s listening on %s (gRPC port %d), database %s\n", fleetplan::kVersion,
              options.listen.c_str(), (*server)->port(), (*server)->store().path().c_str());
  if ((*server)->metrics_port() != 0) {
    std::printf("metrics: http://%s/metrics (port %d)\n", options.metrics_listen.c_str(),
                (*server)->metrics_port());
  }
  if ((*server)->http_port() != 0) {
    const std::string& http = options.http_listen;
    std::printf("web console: http://%s:%d/ (HTTP API under /api/v1/)\n",
                http.substr(0, http.rfind(':')).c_str(), (*server)->http_port());
  }
  std::printf("stop with Ctrl-C or: kill -TERM %d\n", static_cast<int>(getpid()));
  std::fflush(stdout);

  std::thread signal_thread([&signals, &server, grace_ms] {
    int received = 0;
    sigwait(&signals, &received);
    std::printf("fleetpland: signal %d, shutting down\n", received);
    std::fflush(stdout);
    (*server)->Shutdown(std::chrono::milliseconds(grace_ms));
  });
  (*server)->Wait();
  signal_thread.join();
  server->reset();
  std::printf("fleetpland: stopped\n");
  return 0;
}
