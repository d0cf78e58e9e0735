#ifndef FLEETPLAN_SERVER_OBSERVED_USAGE_H_
#define FLEETPLAN_SERVER_OBSERVED_USAGE_H_

// What GPUs really use, from the DCGM exporter through Prometheus' HTTP API, matched to the
// fleet's GPUs (by UUID, else by hostname and GPU index) and compared with what placements
// promise. The drift (observed - committed) per GPU, pool and deployment is the fleet's check of
// the estimator and of unplanned processes; ../shared/reference/inventory.md has the DCGM facts.
//
//   DcgmObserver polls <prometheus>/api/v1/query?query=DCGM_FI_DEV_FB_USED every interval and
//   keeps the latest ObservedUsage in an ObservedUsageHolder, which /metrics and the
//   GetObservedUsage RPC read.

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "planner/common/mutex.h"
#include "planner/placement/fleet.h"
#include "server/periodic.h"
#include "storage/live_fleet.h"
#include "storage/placement_store.h"

namespace fleetplan::server {

// One DCGM_FI_DEV_FB_USED sample: labels UUID, Hostname (hostname on newer exporters), gpu.
struct DcgmSample {
  std::string uuid;
  std::string hostname;
  int64_t gpu = -1;        // -1: no gpu label
  int64_t used_bytes = 0;  // the gauge is MiB
};

// A Prometheus instant-query answer ({"status":"success","data":{"resultType":"vector",
// "result":[{"metric":{...},"value":[ts,"v"]}]}}) -> samples. INVALID_ARGUMENT naming what is
// wrong; never throws. Samples with a non-finite or negative value are dropped.
absl::StatusOr<std::vector<DcgmSample>> ParseDcgmQuery(const std::string& body);

struct ObservedUsage {
  int64_t observed_unix_ms = 0;
  std::map<placement::GpuRef, int64_t> used_bytes;  // matched GPUs
  int64_t samples = 0;
  int64_t unmatched = 0;  // samples no GPU of the fleet matched
};

// Matches samples to the snapshot's GPUs: UUID first, then (hostname, gpu) with the hostname
// equal to the node's name or to its first DNS label.
ObservedUsage MatchDcgm(const placement::FleetSnapshot& snapshot,
                        const std::vector<DcgmSample>& samples, int64_t now_unix_ms);

// The latest observation, shared by the observer (writer) and its readers.
class ObservedUsageHolder {
 public:
  void Set(std::shared_ptr<const ObservedUsage> u) {
    MutexLock lock(&mu_);
    current_ = std::move(u);
  }
  // Null until the first successful poll, and again once the last one is older than `max_age`.
  std::shared_ptr<const ObservedUsage> Get(std::chrono::milliseconds max_age) const;

 private:
  mutable Mutex mu_;
  std::shared_ptr<const ObservedUsage> current_ ABSL_GUARDED_BY(mu_);
};

// Per deployment: what its placements promise and what their GPUs show (a GPU shared by several
// placements is split by their committed bytes).
struct DeploymentUsage {
  std::string deployment, model;
  int64_t placements = 0, gpus = 0, observed_gpus = 0;
  int64_t committed_bytes = 0;  // on observed GPUs
  int64_t observed_bytes = 0;
};
// GPUs whose use disagrees with their placements.
struct UsageAnomaly {
  enum class Kind { kUnplanned, kIdle };
  Kind kind = Kind::kUnplanned;
  placement::GpuRef gpu;
  int64_t committed_bytes = 0, observed_bytes = 0;
};
struct UsageReport {
  std::vector<DeploymentUsage> deployments;  // by name
  std::vector<UsageAnomaly> anomalies;       // by GPU
};
// kUnplanned: observed exceeds committed by more than max(unplanned_bytes, 5% of the GPU);
// kIdle: committed > 0 and observed below idle_bytes (a dead replica holding capacity).
UsageReport BuildUsageReport(const placement::FleetSnapshot& snapshot,
                             const std::vector<placement::Placement>& active,
                             const ObservedUsage& observed, int64_t unplanned_bytes,
                             int64_t idle_bytes);

// GET with libcurl: the body of a 2xx answer, UNAVAILABLE otherwise (naming the URL and why).
absl::StatusOr<std::string> HttpGet(const std::string& url, std::chrono::milliseconds timeout);

class DcgmObserver {
 public:
  // `prometheus_url`: http(s)://host:port[/prefix] of a Prometheus that scrapes dcgm-exporter.
  DcgmObserver(std::string prometheus_url, std::chrono::milliseconds interval,
               storage::LiveFleet* fleet, ObservedUsageHolder* out);
  ~DcgmObserver();
  void Shutdown();
  // One poll now: query, parse, match, publish. The error of a failed poll (the last one is kept
  // by the holder until it ages out).
  absl::Status PollOnce();
  int64_t failures() const;

 private:
  const std::string url_;
  storage::LiveFleet* fleet_;
  ObservedUsageHolder* out_;
  mutable Mutex mu_;
  int64_t failures_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<Periodic> periodic_;  // last: stopped before the members it uses go
};

// OK for http:// or https:// URLs; INVALID_ARGUMENT naming `field` otherwise.
absl::Status ValidatePrometheusUrl(const std::string& field, const std::string& url);

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_OBSERVED_USAGE_H_
