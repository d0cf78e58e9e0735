#ifndef FLEETPLAN_SERVER_METRICS_H_
#define FLEETPLAN_SERVER_METRICS_H_

// Metrics: the one owner of every Prometheus family fleetpland exports (prometheus-cpp pull
// Exposer, like Triton's metrics class). Names are fleetplan_<thing>_<unit> in base units; labels
// are low-cardinality (pool, node, gpu index, gpu type), never request ids.
//
// Thread safety: prometheus-cpp metrics are thread-safe; Metrics adds no mutable state of its own.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace fleetplan::server {

class Metrics {
 public:
  // Starts an HTTP exporter on `listen` ("host:port", port 0 picks one) serving /metrics.
  static absl::StatusOr<std::unique_ptr<Metrics>> Start(const std::string& listen);

  int port() const { return port_; }
  prometheus::Registry& registry() { return *registry_; }

 private:
  Metrics() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_METRICS_H_
