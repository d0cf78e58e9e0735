#include "server/metrics.h"

#include <chrono>
#include <exception>

#include "absl/strings/str_cat.h"
#include "planner/common/version.h"
#include "planner/placement/headroom.h"
#include "prometheus/text_serializer.h"

namespace fleetplan::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Gauge(const std::string& name, const std::string& help) {
  return MetricFamily{name, help, MetricType::Gauge, {}};
}

void Add(MetricFamily& f, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

int RiskValue(placement::RiskLevel r) {
  switch (r) {
    case placement::RiskLevel::kLow:
      return 0;
    case placement::RiskLevel::kMedium:
      return 1;
    case placement::RiskLevel::kHigh:
      return 2;
  }
  return 2;
}

// Aggregates (pool, GPU type) as gauge families with one label.
void AddAggregates(std::vector<MetricFamily>& out, const std::string& prefix, const std::string& label,
                   const std::vector<placement::Headroom>& rows) {
  MetricFamily total = Gauge(prefix + "_memory_total_bytes", "GPU memory (driver total) by " + label + ".");
  MetricFamily reserved = Gauge(prefix + "_memory_reserved_bytes", "Bytes held by unexpired reservations by " + label + ".");
  MetricFamily committed = Gauge(prefix + "_memory_committed_bytes", "Bytes held by committed placements by " + label + ".");
  MetricFamily free = Gauge(prefix + "_memory_free_bytes", "Schedulable free bytes by " + label + ".");
  MetricFamily ratio = Gauge(prefix + "_headroom_ratio", "Free share of memory (0..1) by " + label + ".");
  MetricFamily risk = Gauge(prefix + "_memory_risk_level", "Worst GPU memory risk (0 low, 1 medium, 2 high) by " + label + ".");
  MetricFamily gpus = Gauge(prefix + "_gpus", "GPUs by " + label + ".");
  MetricFamily free_gpus = Gauge(prefix + "_free_gpus", "Schedulable GPUs with nothing placed, by " + label + ".");
  MetricFamily domain = Gauge(prefix + "_largest_free_nvlink_domain_gpus",
                              "Most wholly free GPUs in one NVLink domain (the largest TP group that still fits), by " + label + ".");
  for (const placement::Headroom& h : rows) {
    const std::vector<ClientMetric::Label> l = {{label, h.key}};
    Add(total, l, static_cast<double>(h.total_bytes));
    Add(reserved, l, static_cast<double>(h.reserved_bytes));
    Add(committed, l, static_cast<double>(h.committed_bytes));
    Add(free, l, static_cast<double>(h.free_bytes));
    Add(ratio, l, h.headroom_ratio);
    Add(risk, l, RiskValue(h.risk));
    Add(gpus, l, static_cast<double>(h.gpus));
    Add(free_gpus, l, static_cast<double>(h.free_gpus));
    Add(domain, l, static_cast<double>(h.largest_free_nvlink_domain));
  }
  for (auto* f : {&total, &reserved, &committed, &free, &ratio, &risk, &gpus, &free_gpus, &domain}) {
    out.push_back(std::move(*f));
  }
}

class RpcInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcInterceptor(Metrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      metrics_->RecordRpc(method_, static_cast<int>(methods->GetSendStatus().error_code()), seconds);
    }
    methods->Proceed();
  }

 private:
  Metrics* metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
};

class RpcInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    std::string method = info->method() != nullptr ? info->method() : "unknown";
    // "/fleetplan.v1.EstimatorService/Estimate" -> "EstimatorService/Estimate": short, bounded.
    if (size_t dot = method.rfind('.', method.find('/', 1)); dot != std::string::npos) method = method.substr(dot + 1);
    return new RpcInterceptor(metrics_, method);
  }

 private:
  Metrics* metrics_;
};

const char* CodeName(int code) {
  static const char* const kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                       "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                       "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN";
}

}  // namespace

std::vector<MetricFamily> FleetCollector::Collect() const {
  std::vector<MetricFamily> out;
  absl::StatusOr<placement::FleetSnapshot> snap = store_->LoadSnapshot();
  if (!snap.ok()) {
    if (store_errors_ != nullptr) store_errors_->Increment();
    return out;
  }
  const placement::FleetHeadroom h = placement::ComputeHeadroom(*snap, /*include_gpus=*/true);
  MetricFamily generation = Gauge("fleetplan_fleet_generation", "Fleet generation: bumped by every change that affects capacity.");
  Add(generation, {}, static_cast<double>(h.generation));
  out.push_back(std::move(generation));

  MetricFamily total = Gauge("fleetplan_gpu_memory_total_bytes", "GPU memory as the driver reports it.");
  MetricFamily reserved = Gauge("fleetplan_gpu_memory_reserved_bytes", "Bytes held on the GPU by unexpired reservations.");
  MetricFamily committed = Gauge("fleetplan_gpu_memory_committed_bytes", "Bytes held on the GPU by committed placements.");
  MetricFamily free = Gauge("fleetplan_gpu_memory_free_bytes", "Schedulable free bytes (0 on cordoned, draining, down or unhealthy).");
  MetricFamily ratio = Gauge("fleetplan_gpu_headroom_ratio", "Free share of the GPU's memory (0..1).");
  MetricFamily risk = Gauge("fleetplan_gpu_memory_risk_level", "Memory risk of what is placed: 0 low, 1 medium (>=90% promised), 2 high (>=97%).");
  MetricFamily peak = Gauge("fleetplan_gpu_estimated_peak_bytes", "Estimated peak bytes of the placements on the GPU (committed + reserved estimates).");
  for (const placement::GpuHeadroom& g : h.gpus) {
    std::vector<ClientMetric::Label> l = {{"pool", g.pool}, {"node", g.node}, {"gpu", std::to_string(g.index)},
                                          {"gpu_type", g.gpu_type}, {"gpu_uuid", g.uuid}};
    Add(total, l, static_cast<double>(g.headroom.total_bytes));
    Add(reserved, l, static_cast<double>(g.headroom.reserved_bytes));
    Add(committed, l, static_cast<double>(g.headroom.committed_bytes));
    Add(free, l, static_cast<double>(g.headroom.free_bytes));
    Add(ratio, l, g.headroom.headroom_ratio);
    Add(risk, l, RiskValue(g.headroom.risk));
    Add(peak, l, static_cast<double>(g.headroom.committed_bytes + g.headroom.reserved_bytes));
  }
  for (auto* f : {&total, &reserved, &committed, &free, &ratio, &risk, &peak}) out.push_back(std::move(*f));
  AddAggregates(out, "fleetplan_pool", "pool", h.pools);
  AddAggregates(out, "fleetplan_gpu_type", "gpu_type", h.gpu_types);
  return out;
}

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Start(const std::string& listen,
                                                        storage::PlacementStore* store) {
  auto metrics = std::unique_ptr<Metrics>(new Metrics());
  metrics->registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Registry& r = *metrics->registry_;
  prometheus::BuildGauge()
      .Name("fleetplan_build_info")
      .Help("Build information of fleetpland; the value is always 1.")
      .Register(r)
      .Add({{"version", kVersion}})
      .Set(1);
  metrics->rpcs_ = &prometheus::BuildCounter().Name("fleetplan_rpc_requests_total").Help("RPCs by method and status code.").Register(r);
  metrics->rpc_seconds_ = &prometheus::BuildHistogram().Name("fleetplan_rpc_duration_seconds").Help("RPC latency by method.").Register(r);
  metrics->plan_seconds_ = &prometheus::BuildHistogram()
                                .Name("fleetplan_plan_duration_seconds")
                                .Help("PlanPlacement latency (snapshot, model resolution, planning).")
                                .Register(r)
                                .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5});
  metrics->plan_gap_ = &prometheus::BuildHistogram()
                            .Name("fleetplan_plan_gap_ratio")
                            .Help("Plans' GPU count over their lower bound, minus 1.")
                            .Register(r)
                            .Add({}, prometheus::Histogram::BucketBoundaries{0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5});
  metrics->commit_conflicts_ = &prometheus::BuildCounter()
                                    .Name("fleetplan_commit_conflicts_total")
                                    .Help("CommitPlan calls answered ABORTED because the fleet changed under the plan.")
                                    .Register(r)
                                    .Add({});
  metrics->store_errors_ = &prometheus::BuildCounter()
                                .Name("fleetplan_store_errors_total")
                                .Help("Store reads or writes that failed for a reason other than the request.")
                                .Register(r)
                                .Add({});
  if (store != nullptr) metrics->fleet_ = std::make_shared<FleetCollector>(store, metrics->store_errors_);
  if (listen.empty()) return metrics;
  try {
    metrics->exposer_ = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics_listen=\"", listen, "\": cannot listen: ", e.what()));
  }
  metrics->exposer_->RegisterCollectable(metrics->registry_);
  if (metrics->fleet_ != nullptr) metrics->exposer_->RegisterCollectable(metrics->fleet_);
  auto ports = metrics->exposer_->GetListeningPorts();
  metrics->port_ = ports.empty() ? 0 : ports.front();
  return metrics;
}

Metrics::~Metrics() {
  if (exposer_ != nullptr) {
    exposer_->RemoveCollectable(registry_);
    if (fleet_ != nullptr) exposer_->RemoveCollectable(fleet_);
  }
}

void Metrics::RecordRpc(const std::string& method, int code, double seconds) {
  rpcs_->Add({{"method", method}, {"code", CodeName(code)}}).Increment();
  rpc_seconds_->Add({{"method", method}}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1})
      .Observe(seconds);
}

void Metrics::RecordPlan(double seconds, double gap) {
  plan_seconds_->Observe(seconds);
  plan_gap_->Observe(gap);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> Metrics::InterceptorFactory() {
  return std::make_unique<RpcInterceptorFactory>(this);
}

std::string Metrics::Scrape() const {
  std::vector<MetricFamily> families = registry_->Collect();
  if (fleet_ != nullptr) {
    std::vector<MetricFamily> fleet = fleet_->Collect();
    families.insert(families.end(), std::make_move_iterator(fleet.begin()), std::make_move_iterator(fleet.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace fleetplan::server
