#ifndef FLEETPLAN_SERVER_HTTP_GATEWAY_H_
#define FLEETPLAN_SERVER_HTTP_GATEWAY_H_

// The HTTP/JSON API and the web console, served by fleetpland itself (--http_listen).
//
//   POST /api/v1/<Service>/<Method>   body: the request message in protobuf JSON;
//                                     answer: the response message in protobuf JSON
//   GET  /api/v1/<Service>/<Get*|List*>?field=value&...   the same for reads, fields as query
//                                     parameters (repeated fields: the parameter repeated)
//   GET  /api/v1/HeadroomService/WatchHeadroom?...         server-sent events: one
//                                     "event: headroom" per fleet generation
//   GET  /, /app.js, /app.css ...     the console's pages (embedded in the binary, web/)
//
// Every call goes through an in-process channel to the same gRPC services, so validation,
// authorization (the "Authorization: Bearer <token>" header is passed on as gRPC metadata),
// admission and metrics are the gRPC ones; there is no second copy of any rule here. The gRPC
// names are the routes (no mapping table to keep). Errors are google.rpc-style JSON
// ({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "..."}}) with the HTTP status
// of the gRPC code (grpc_status.h HttpStatusFor).
//
// civetweb parses HTTP. Bodies are capped (max_body_bytes, 413 beyond); a POST must say
// Content-Type: application/json (415 otherwise), so a cross-site form cannot post, and no CORS
// header is ever sent. Every answer carries a CSP without inline script, nosniff and frame deny.
//
// Thread-safe; Stop() (or the destructor) closes the listener and waits for open requests.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"

class CivetServer;

namespace fleetplan::server {

struct HttpGatewayOptions {
  // "host:port"; port 0 picks one (port()). Plain HTTP: Debian 12's civetweb 1.15 loads
  // OpenSSL 1.0 entry points that OpenSSL 3 lacks, and its TLS listener crashes on the first
  // handshake (measured 2026-12), so HTTPS is a TLS-terminating proxy's job (server_options.h).
  std::string listen;
  int64_t max_body_bytes = 16 << 20;  // gRPC's own receive limit
  int64_t max_streams = 16;           // WatchHeadroom event streams open at once (429 beyond)
  std::chrono::milliseconds call_timeout = std::chrono::seconds(60);
  // Streams send a comment line this often when nothing changed (proxies keep the connection,
  // and a client that went away is noticed).
  std::chrono::milliseconds stream_heartbeat = std::chrono::seconds(5);
  // A loopback listener may run without tokens; a web page elsewhere could then reach it through
  // DNS rebinding (its name re-pointed at 127.0.0.1, so the browser sees one origin). Set, only
  // requests whose Host is localhost or a loopback address are answered (403 otherwise).
  bool loopback_hosts_only = false;
};

class HttpGateway {
 public:
  // `channel`: an in-process channel to the server's services (grpc::Server::InProcessChannel).
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Start(const HttpGatewayOptions& options,
                                                            std::shared_ptr<grpc::Channel> channel);
  ~HttpGateway();
  HttpGateway(const HttpGateway&) = delete;
  HttpGateway& operator=(const HttpGateway&) = delete;

  int port() const { return port_; }
  // Ends the event streams (they answer their last event) and closes the listener.
  void Stop();

  class ApiHandler;
  class AssetHandler;

 private:
  HttpGateway() = default;

  HttpGatewayOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ApiHandler> api_;
  std::unique_ptr<AssetHandler> assets_;
  std::unique_ptr<CivetServer> http_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> streams_{0};
  int port_ = 0;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_HTTP_GATEWAY_H_
