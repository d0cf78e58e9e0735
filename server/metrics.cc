#include "server/metrics.h"

#include <zlib.h>

#include <chrono>
#include <exception>

#include "CivetServer.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "planner/common/version.h"
#include "planner/placement/headroom.h"
#include "prometheus/text_serializer.h"
#include "server/grpc_status.h"

namespace fleetplan::server {
namespace {

// fleetplan_*_memory_risk_level: 0 low, 1 medium, 2 high.
int RiskValue(Risk r) {
  switch (r) {
    case Risk::kLow:
      return 0;
    case Risk::kMedium:
      return 1;
    case Risk::kHigh:
      return 2;
  }
  return 2;
}

// Label value escaping of the text exposition format: backslash, double quote, newline.
void AppendEscaped(std::string& out, absl::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// The label set of a GPU's series. One builder: the observed-usage families must carry exactly
// the headroom families' labels, or the alerts' `and` between them matches nothing.
std::string GpuLabelSet(absl::string_view pool, absl::string_view node, int64_t index,
                        absl::string_view gpu_type, absl::string_view uuid) {
  std::string l = "{pool=\"";
  AppendEscaped(l, pool);
  l += "\",node=\"";
  AppendEscaped(l, node);
  absl::StrAppend(&l, "\",gpu=\"", index, "\",gpu_type=\"");
  AppendEscaped(l, gpu_type);
  l += "\",gpu_uuid=\"";
  AppendEscaped(l, uuid);
  l += "\"}";
  return l;
}

// {label="value"}
std::string OneLabel(absl::string_view label, absl::string_view value) {
  std::string l = absl::StrCat("{", label, "=\"");
  AppendEscaped(l, value);
  l += "\"}";
  return l;
}

void Header(std::string& out, absl::string_view name, absl::string_view help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " gauge\n");
}

// One gauge family over `rows`, each with a precomputed label set "{...}".
template <typename Rows, typename Value>
void Family(std::string& out, absl::string_view name, absl::string_view help, const Rows& rows,
            const std::vector<std::string>& labels, Value value) {
  Header(out, name, help);
  for (size_t i = 0; i < rows.size(); ++i)
    absl::StrAppend(&out, name, labels[i], " ", value(rows[i]), "\n");
}

void Aggregates(std::string& out, absl::string_view prefix, absl::string_view label,
                const std::vector<placement::Headroom>& rows) {
  std::vector<std::string> labels;
  labels.reserve(rows.size());
  for (const placement::Headroom& h : rows) labels.push_back(OneLabel(label, h.key));
  const std::string by = absl::StrCat(" by ", label, ".");
  using H = placement::Headroom;
  Family(out, absl::StrCat(prefix, "_memory_total_bytes"),
         absl::StrCat("GPU memory (driver total)", by), rows, labels,
         [](const H& h) { return h.total_bytes; });
  Family(out, absl::StrCat(prefix, "_memory_reserved_bytes"),
         absl::StrCat("Bytes held by unexpired reservations", by), rows, labels,
         [](const H& h) { return h.reserved_bytes; });
  Family(out, absl::StrCat(prefix, "_memory_committed_bytes"),
         absl::StrCat("Bytes held by committed placements", by), rows, labels,
         [](const H& h) { return h.committed_bytes; });
  Family(out, absl::StrCat(prefix, "_memory_free_bytes"),
         absl::StrCat("Schedulable free bytes", by), rows, labels,
         [](const H& h) { return h.free_bytes; });
  Family(out, absl::StrCat(prefix, "_headroom_ratio"),
         absl::StrCat("Free share of memory (0..1)", by), rows, labels,
         [](const H& h) { return h.headroom_ratio; });
  Family(out, absl::StrCat(prefix, "_memory_risk_level"),
         absl::StrCat("Worst GPU memory risk (0 low, 1 medium, 2 high)", by), rows, labels,
         [](const H& h) { return RiskValue(h.risk); });
  Family(out, absl::StrCat(prefix, "_gpus"), absl::StrCat("GPUs", by), rows, labels,
         [](const H& h) { return h.gpus; });
  Family(out, absl::StrCat(prefix, "_free_gpus"),
         absl::StrCat("Schedulable GPUs with nothing placed", by), rows, labels,
         [](const H& h) { return h.free_gpus; });
  Family(
      out, absl::StrCat(prefix, "_largest_free_nvlink_domain_gpus"),
      absl::StrCat(
          "Most wholly free GPUs in one NVLink domain (the largest TP group that still fits)", by),
      rows, labels, [](const H& h) { return h.largest_free_nvlink_domain; });
}

class RpcInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcInterceptor(Metrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      unparsable_ = true;  // deserialization failed (gRPC answers UNIMPLEMENTED with no message)
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      if (unparsable_ && status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          status.error_message().empty()) {
        status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              absl::StrCat("the request to ", method_,
                                           " could not be parsed: a string field is not valid "
                                           "UTF-8, or the bytes are not this method's request"));
        methods->ModifySendStatus(status);
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      metrics_->RecordRpc(method_, static_cast<int>(status.error_code()), seconds);
    }
    methods->Proceed();
  }

 private:
  Metrics* metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
  bool unparsable_ = false;
};

class RpcInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    std::string method = info->method() != nullptr ? info->method() : "unknown";
    // "/fleetplan.v1.EstimatorService/Estimate" -> "EstimatorService/Estimate": short, bounded.
    if (size_t dot = method.rfind('.', method.find('/', 1)); dot != std::string::npos)
      method = method.substr(dot + 1);
    return new RpcInterceptor(metrics_, method);
  }

 private:
  Metrics* metrics_;
};

}  // namespace

std::string Gzip(const std::string& text) {
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer. Level 1: a scrape is rewritten every time, and
  // this text (long runs of repeated label sets) compresses well even at the fastest level.
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return "";
  std::string out(deflateBound(&z, static_cast<uLong>(text.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : "";
}

bool AcceptsGzip(const std::string& accept_encoding) {
  for (absl::string_view coding : absl::StrSplit(accept_encoding, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(coding, ';');
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(parts[0]));
    if (name != "gzip" && name != "*") continue;
    double q = 1;
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view p = absl::StripAsciiWhitespace(parts[i]);
      if (absl::ConsumePrefix(&p, "q=") && !absl::SimpleAtod(p, &q)) q = 0;
    }
    if (q > 0) return true;
  }
  return false;
}

std::string FleetExposition(const placement::FleetHeadroom& h, MetricsDetail detail) {
  std::string out;
  out.reserve((detail == MetricsDetail::kGpu ? h.gpus.size() * 7 * 120 : 0) +
              (detail == MetricsDetail::kNode ? h.nodes.size() * 9 * 60 : 0) + 4096);
  Header(out, "fleetplan_fleet_generation",
         "Fleet generation: bumped by every change that affects capacity.");
  absl::StrAppend(&out, "fleetplan_fleet_generation ", h.generation, "\n");
  if (detail == MetricsDetail::kNode) Aggregates(out, "fleetplan_node", "node", h.nodes);
  if (detail != MetricsDetail::kGpu) {
    Aggregates(out, "fleetplan_pool", "pool", h.pools);
    Aggregates(out, "fleetplan_gpu_type", "gpu_type", h.gpu_types);
    return out;
  }
  std::vector<std::string> labels;
  labels.reserve(h.gpus.size());
  for (const placement::GpuHeadroom& g : h.gpus) {
    labels.push_back(GpuLabelSet(g.pool, g.node, g.index, g.gpu_type, g.uuid));
  }
  using G = placement::GpuHeadroom;
  Family(out, "fleetplan_gpu_memory_total_bytes", "GPU memory as the driver reports it.", h.gpus,
         labels, [](const G& g) { return g.headroom.total_bytes; });
  Family(out, "fleetplan_gpu_memory_reserved_bytes",
         "Bytes held on the GPU by unexpired reservations.", h.gpus, labels,
         [](const G& g) { return g.headroom.reserved_bytes; });
  Family(out, "fleetplan_gpu_memory_committed_bytes",
         "Bytes held on the GPU by committed placements.", h.gpus, labels,
         [](const G& g) { return g.headroom.committed_bytes; });
  Family(out, "fleetplan_gpu_memory_free_bytes",
         "Schedulable free bytes (0 on cordoned, draining, down or unhealthy).", h.gpus, labels,
         [](const G& g) { return g.headroom.free_bytes; });
  Family(out, "fleetplan_gpu_headroom_ratio", "Free share of the GPU's memory (0..1).", h.gpus,
         labels, [](const G& g) { return g.headroom.headroom_ratio; });
  Family(out, "fleetplan_gpu_memory_risk_level",
         "Memory risk of what is placed: 0 low, 1 medium (>=90% promised), 2 high (>=97%).", h.gpus,
         labels, [](const G& g) { return RiskValue(g.headroom.risk); });
  Family(out, "fleetplan_gpu_estimated_peak_bytes",
         "Estimated peak bytes of the placements on the GPU (committed + reserved estimates).",
         h.gpus, labels,
         [](const G& g) { return g.headroom.committed_bytes + g.headroom.reserved_bytes; });
  Aggregates(out, "fleetplan_pool", "pool", h.pools);
  Aggregates(out, "fleetplan_gpu_type", "gpu_type", h.gpu_types);
  return out;
}

std::string ObservedExposition(const placement::FleetSnapshot& snapshot,
                               const ObservedUsage* observed, MetricsDetail detail,
                               int64_t now_unix_ms) {
  std::string out;
  Header(out, "fleetplan_dcgm_samples",
         "DCGM_FI_DEV_FB_USED samples in the last Prometheus answer (0 without one).");
  absl::StrAppend(&out, "fleetplan_dcgm_samples ", observed ? observed->samples : 0, "\n");
  Header(out, "fleetplan_dcgm_unmatched_samples",
         "Samples that matched no GPU of the fleet by UUID or hostname and index.");
  absl::StrAppend(&out, "fleetplan_dcgm_unmatched_samples ", observed ? observed->unmatched : 0,
                  "\n");
  if (observed == nullptr) return out;
  Header(out, "fleetplan_dcgm_observation_age_seconds", "Age of the observation shown.");
  absl::StrAppend(&out, "fleetplan_dcgm_observation_age_seconds ",
                  static_cast<double>(now_unix_ms - observed->observed_unix_ms) / 1000.0, "\n");
  struct Row {
    std::string labels;
    int64_t used = 0, drift = 0;
  };
  std::vector<Row> gpus;
  std::map<std::string, std::pair<int64_t, int64_t>> pools;  // used, drift
  for (const placement::Node& n : snapshot.nodes) {
    for (const placement::Gpu& g : n.gpus) {
      auto it = observed->used_bytes.find(placement::GpuRef{.node = n.name, .index = g.index});
      if (it == observed->used_bytes.end()) continue;
      const int64_t drift = it->second - g.committed_bytes;
      auto& pool = pools[n.pool];
      pool.first += it->second;
      pool.second += drift;
      if (detail != MetricsDetail::kGpu) continue;
      gpus.push_back(
          Row{GpuLabelSet(n.pool, n.name, g.index, g.gpu_type, g.uuid), it->second, drift});
    }
  }
  if (detail == MetricsDetail::kGpu) {
    std::vector<std::string> labels;
    for (const Row& r : gpus) labels.push_back(r.labels);
    Family(out, "fleetplan_gpu_memory_observed_used_bytes",
           "Framebuffer bytes the GPU really uses (DCGM_FI_DEV_FB_USED).", gpus, labels,
           [](const Row& r) { return r.used; });
    Family(out, "fleetplan_gpu_memory_drift_bytes",
           "Observed used bytes minus committed bytes: > 0 more than the placements promise "
           "(an unplanned process or an under-estimate), < 0 less.",
           gpus, labels, [](const Row& r) { return r.drift; });
  }
  std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> rows(pools.begin(), pools.end());
  std::vector<std::string> labels;
  for (const auto& [pool, v] : rows) labels.push_back(OneLabel("pool", pool));
  using P = std::pair<std::string, std::pair<int64_t, int64_t>>;
  Family(out, "fleetplan_pool_memory_observed_used_bytes",
         "Observed used bytes of the pool's observed GPUs.", rows, labels,
         [](const P& p) { return p.second.first; });
  Family(out, "fleetplan_pool_memory_drift_bytes",
         "Observed minus committed bytes over the pool's observed GPUs.", rows, labels,
         [](const P& p) { return p.second.second; });
  return out;
}

// GET /metrics: the registry's service families, then the fleet from a fresh snapshot.
class Metrics::Handler final : public CivetHandler {
 public:
  explicit Handler(const Metrics* metrics) : metrics_(metrics) {}
  bool handleGet(CivetServer* /*server*/, mg_connection* conn) override {
    if (metrics_->auth_ != nullptr && metrics_->auth_->enabled()) {
      const char* header = mg_get_header(conn, "Authorization");
      absl::Status allowed =
          metrics_->auth_->CheckHeader(header == nullptr ? "" : header, Role::kReader);
      if (!allowed.ok()) {
        const std::string body = absl::StrCat(allowed.message(), "\n");
        mg_printf(conn,
                  "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Type: "
                  "text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                  body.size());
        mg_write(conn, body.data(), body.size());
        return true;
      }
    }
    std::string body = metrics_->Scrape();
    const char* accept = mg_get_header(conn, "Accept-Encoding");
    const bool gzip = accept != nullptr && AcceptsGzip(accept);
    if (gzip) {
      std::string compressed = Gzip(body);
      if (compressed.empty()) return false;  // zlib failed: a 500 from civetweb
      body = std::move(compressed);
    }
    metrics_->scrapes_->Add({{"encoding", gzip ? "gzip" : "identity"}}).Increment();
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
              "%sVary: Accept-Encoding\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
              gzip ? "Content-Encoding: gzip\r\n" : "", body.size());
    mg_write(conn, body.data(), body.size());
    return true;
  }

 private:
  const Metrics* metrics_;
};

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Start(const std::string& listen,
                                                        storage::LiveFleet* fleet,
                                                        const Authorizer* auth,
                                                        MetricsDetail detail) {
  auto metrics = std::unique_ptr<Metrics>(new Metrics());
  metrics->auth_ = auth;
  metrics->detail_ = detail;
  metrics->registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Registry& r = *metrics->registry_;
  prometheus::BuildGauge()
      .Name("fleetplan_build_info")
      .Help("Build information of fleetpland; the value is always 1.")
      .Register(r)
      .Add({{"version", kVersion}})
      .Set(1);
  metrics->rpcs_ = &prometheus::BuildCounter()
                        .Name("fleetplan_rpc_requests_total")
                        .Help("RPCs by method and status code.")
                        .Register(r);
  metrics->rpc_seconds_ = &prometheus::BuildHistogram()
                               .Name("fleetplan_rpc_duration_seconds")
                               .Help("RPC latency by method.")
                               .Register(r);
  metrics->plan_seconds_ =
      &prometheus::BuildHistogram()
           .Name("fleetplan_plan_duration_seconds")
           .Help("PlanPlacement latency (snapshot, model resolution, planning).")
           .Register(r)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1, 0.25, 0.5, 1, 2.5});
  metrics->plan_gap_ =
      &prometheus::BuildHistogram()
           .Name("fleetplan_plan_gap_ratio")
           .Help("Plans' GPU count over their lower bound, minus 1.")
           .Register(r)
           .Add({}, prometheus::Histogram::BucketBoundaries{0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5});
  metrics->commit_conflicts_ =
      &prometheus::BuildCounter()
           .Name("fleetplan_commit_conflicts_total")
           .Help("CommitPlan calls answered ABORTED because the fleet changed under the plan.")
           .Register(r)
           .Add({});
  metrics->store_errors_ =
      &prometheus::BuildCounter()
           .Name("fleetplan_store_errors_total")
           .Help("Store reads or writes that failed for a reason other than the request.")
           .Register(r)
           .Add({});
  metrics->zone_displaced_ =
      &prometheus::BuildGauge()
           .Name("fleetplan_zone_failure_displaced_replicas")
           .Help(
               "Replicas a failure of the zone would displace (active placements with a rank "
               "there), as last simulated.")
           .Register(r);
  metrics->zone_absorbable_ =
      &prometheus::BuildGauge()
           .Name("fleetplan_zone_failure_absorbable_ratio")
           .Help(
               "Share of the replicas a failure of the zone would displace that the rest of the "
               "fleet could re-place now (1: N+1 safe), as last simulated.")
           .Register(r);
  metrics->scrapes_ = &prometheus::BuildCounter()
                           .Name("fleetplan_metrics_scrapes_total")
                           .Help("GET /metrics answered, by content encoding (gzip or identity).")
                           .Register(r);
  metrics->fleet_ = fleet;
  if (listen.empty()) return metrics;
  metrics->handler_ = std::make_unique<Handler>(metrics.get());
  try {
    std::vector<std::string> options = {"listening_ports", listen, "num_threads", "2"};
    metrics->http_ = std::make_unique<CivetServer>(options);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics_listen=\"", listen, "\": cannot listen: ", e.what()));
  }
  metrics->http_->addHandler("/metrics", metrics->handler_.get());
  std::vector<int> ports = metrics->http_->getListeningPorts();
  metrics->port_ = ports.empty() ? 0 : ports.front();
  return metrics;
}

Metrics::~Metrics() {
  if (http_ != nullptr) {
    http_->removeHandler("/metrics");
    http_->close();
  }
}

void Metrics::RecordRpc(const std::string& method, int code, double seconds) {
  rpcs_->Add({{"method", method}, {"code", CodeName(static_cast<grpc::StatusCode>(code))}})
      .Increment();
  rpc_seconds_
      ->Add({{"method", method}},
            prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                    0.01, 0.025, 0.05, 0.1, 0.25, 1})
      .Observe(seconds);
}

void Metrics::SetZoneFailure(const std::map<std::string, std::pair<int64_t, double>>& by_zone) {
  MutexLock lock(&zones_mu_);
  for (auto it = zone_gauges_.begin(); it != zone_gauges_.end();) {
    if (by_zone.count(it->first) > 0) {
      ++it;
      continue;
    }
    zone_displaced_->Remove(it->second.first);
    zone_absorbable_->Remove(it->second.second);
    it = zone_gauges_.erase(it);
  }
  for (const auto& [zone, figures] : by_zone) {
    auto it = zone_gauges_.find(zone);
    if (it == zone_gauges_.end()) {
      it = zone_gauges_
               .emplace(zone, std::make_pair(&zone_displaced_->Add({{"zone", zone}}),
                                             &zone_absorbable_->Add({{"zone", zone}})))
               .first;
    }
    it->second.first->Set(static_cast<double>(figures.first));
    it->second.second->Set(figures.second);
  }
}

void Metrics::RecordPlan(double seconds, double gap) {
  plan_seconds_->Observe(seconds);
  plan_gap_->Observe(gap);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
Metrics::InterceptorFactory() {
  return std::make_unique<RpcInterceptorFactory>(this);
}

std::string Metrics::Scrape() const {
  std::string out = prometheus::TextSerializer().Serialize(registry_->Collect());
  if (fleet_ == nullptr) return out;
  absl::StatusOr<std::shared_ptr<const storage::FleetView>> view = fleet_->Current();
  if (!view.ok()) {
    store_errors_->Increment();
    return out;
  }
  switch (detail_) {
    case MetricsDetail::kGpu:
      out += FleetExposition(placement::ComputeHeadroom((*view)->snapshot(), /*include_gpus=*/true),
                             detail_);
      break;
    case MetricsDetail::kNode:
      out += FleetExposition(placement::ComputeHeadroom((*view)->snapshot(), false), detail_);
      break;
    case MetricsDetail::kPool: {
      // From the view's headroom sums: no walk over the fleet at all.
      placement::FleetHeadroom h{.generation = (*view)->generation(),
                                 .fleet = (*view)->headroom().Fleet(),
                                 .pools = (*view)->headroom().Pools(),
                                 .gpu_types = (*view)->headroom().Types()};
      out += FleetExposition(h, detail_);
      break;
    }
  }
  if (observed_ != nullptr) {
    out += ObservedExposition((*view)->snapshot(), observed_->Get(observed_max_age_).get(), detail_,
                              absl::ToUnixMillis(absl::Now()));
  }
  return out;
}

}  // namespace fleetplan::server
