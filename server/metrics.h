#ifndef FLEETPLAN_SERVER_METRICS_H_
#define FLEETPLAN_SERVER_METRICS_H_

// Metrics: the one owner of every Prometheus family fleetpland exports (prometheus-cpp pull
// Exposer, like Triton's metrics class). Names are fleetplan_<thing>_<unit> in base units
// (_bytes, _seconds, _total, ratios 0..1); labels are low-cardinality (pool, node, gpu index,
// gpu type, gpu uuid; RPC method and code), never request ids.
//
// Two kinds of series:
//   - service metrics (RPCs by method and code, RPC latency, plan latency and gap, commit
//     conflicts, store errors, build info), updated as things happen;
//   - fleet metrics (per GPU, per pool, per GPU type), computed from a fresh store snapshot at
//     scrape time, so a commit is visible in the very next scrape. At 80,000 GPUs that is over half
//     a million samples: prometheus-cpp's generic serializer needed 2.3 s for them, so /metrics is
//     served by our own civetweb handler and the fleet families are written directly
//     (FleetExposition), next to the registry's service families.
// There is deliberately no per-placement series (fleetplan_placement_info): placements come and
// go with request ids and deployments, an unbounded label set that would grow the TSDB forever;
// ListPlacements answers "what runs where" and the per-GPU committed bytes carry the load.
//
// Thread safety: prometheus-cpp metrics are thread-safe; the collector only reads the store.

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/support/server_interceptor.h"
#include "planner/common/mutex.h"
#include "planner/placement/headroom.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/auth.h"
#include "server/metrics_detail.h"
#include "server/observed_usage.h"
#include "storage/live_fleet.h"
#include "storage/placement_store.h"

class CivetServer;

namespace fleetplan::server {

// The Prometheus text exposition of the fleet families for `h` at `detail` (kGpu needs h.gpus,
// kNode h.nodes). Label values are escaped per the exposition format.
std::string FleetExposition(const placement::FleetHeadroom& h,
                            MetricsDetail detail = MetricsDetail::kGpu);

// The observed-usage families (DCGM through Prometheus) for `observed` (null: none yet): per GPU
// at kGpu, per pool always, and the sample counts.
std::string ObservedExposition(const placement::FleetSnapshot& snapshot,
                               const ObservedUsage* observed, MetricsDetail detail,
                               int64_t now_unix_ms);

// gzip (RFC 1952) of `text`, for Accept-Encoding: gzip.
std::string Gzip(const std::string& text);
// Whether an Accept-Encoding header value accepts gzip (a "gzip" or "*" coding with q > 0).
bool AcceptsGzip(const std::string& accept_encoding);

class Metrics {
 public:
  // Service metrics; with a live fleet state, fleet metrics too (rendered from its current view:
  // no store read per scrape beyond the generation check). Starts an HTTP exporter on `listen`
  // ("host:port", port 0 picks one) serving /metrics, unless `listen` is empty. With an `auth`
  // that has tokens, /metrics needs "Authorization: Bearer <reader or writer token>".
  static absl::StatusOr<std::unique_ptr<Metrics>> Start(const std::string& listen,
                                                        storage::LiveFleet* fleet,
                                                        const Authorizer* auth = nullptr,
                                                        MetricsDetail detail = MetricsDetail::kGpu);
  ~Metrics();

  int port() const { return port_; }
  prometheus::Registry& registry() { return *registry_; }

  void RecordRpc(const std::string& method, int code, double seconds);
  void RecordPlan(double seconds, double gap);
  void RecordCommitConflict() { commit_conflicts_->Increment(); }
  void RecordStoreError() { store_errors_->Increment(); }
  // Per zone: replicas its failure would displace and the share the rest could absorb
  // (FailureWatch); zones not in `by_zone` lose their series.
  void SetZoneFailure(const std::map<std::string, std::pair<int64_t, double>>& by_zone);

  // Records every RPC's method, status code and latency.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

  // With DCGM observation on: the observed-usage families (observations older than `max_age`
  // are not shown). Call before serving.
  void SetObserved(const ObservedUsageHolder* observed, std::chrono::milliseconds max_age) {
    observed_ = observed;
    observed_max_age_ = max_age;
  }

  // The exposition text of all families: what GET /metrics returns (before any compression).
  std::string Scrape() const;

 private:
  class Handler;
  Metrics() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  storage::LiveFleet* fleet_ = nullptr;
  const ObservedUsageHolder* observed_ = nullptr;
  std::chrono::milliseconds observed_max_age_{0};
  MetricsDetail detail_ = MetricsDetail::kGpu;
  prometheus::Family<prometheus::Counter>* scrapes_ = nullptr;
  const Authorizer* auth_ = nullptr;
  std::unique_ptr<Handler> handler_;
  std::unique_ptr<CivetServer> http_;
  prometheus::Family<prometheus::Counter>* rpcs_ = nullptr;
  prometheus::Family<prometheus::Histogram>* rpc_seconds_ = nullptr;
  prometheus::Histogram* plan_seconds_ = nullptr;
  prometheus::Histogram* plan_gap_ = nullptr;
  prometheus::Counter* commit_conflicts_ = nullptr;
  prometheus::Counter* store_errors_ = nullptr;
  prometheus::Family<prometheus::Gauge>* zone_displaced_ = nullptr;
  prometheus::Family<prometheus::Gauge>* zone_absorbable_ = nullptr;
  Mutex zones_mu_;
  std::map<std::string, std::pair<prometheus::Gauge*, prometheus::Gauge*>> zone_gauges_
      ABSL_GUARDED_BY(zones_mu_);
  int port_ = 0;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_METRICS_H_
