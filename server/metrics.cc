#include "server/metrics.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "planner/common/version.h"
#include "prometheus/gauge.h"

namespace fleetplan::server {

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Start(const std::string& listen) {
  auto metrics = std::unique_ptr<Metrics>(new Metrics());
  metrics->registry_ = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge()
      .Name("fleetplan_build_info")
      .Help("Build information of fleetpland; the value is always 1.")
      .Register(*metrics->registry_)
      .Add({{"version", kVersion}})
      .Set(1);
  try {
    // civetweb takes "host:port"; one worker thread is plenty for a scrape every few seconds.
    metrics->exposer_ = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics_listen=\"", listen, "\": cannot listen: ", e.what()));
  }
  metrics->exposer_->RegisterCollectable(metrics->registry_);
  auto ports = metrics->exposer_->GetListeningPorts();
  metrics->port_ = ports.empty() ? 0 : ports.front();
  return metrics;
}

}  // namespace fleetplan::server
