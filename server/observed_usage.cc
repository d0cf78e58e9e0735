#include "server/observed_usage.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "planner/common/units.h"

namespace fleetplan::server {
namespace {

using json = nlohmann::json;

std::string Label(const json& metric, const char* key) {
  auto it = metric.find(key);
  return it != metric.end() && it->is_string() ? it->get<std::string>() : std::string();
}

size_t Append(char* data, size_t size, size_t n, void* out) {
  auto* body = static_cast<std::string*>(out);
  constexpr size_t kMaxBody = 256 << 20;             // a query answer for 100k GPUs is ~40 MB
  if (body->size() + size * n > kMaxBody) return 0;  // aborts the transfer
  body->append(data, size * n);
  return size * n;
}

}  // namespace

absl::StatusOr<std::vector<DcgmSample>> ParseDcgmQuery(const std::string& body) {
  // Prometheus' answers nest 5 levels; refuse deeper before parsing (bounded recursion).
  int depth = 0, most = 0;
  bool quoted = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (quoted) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        quoted = false;
      continue;
    }
    if (c == '"') quoted = true;
    if (c == '{' || c == '[') most = std::max(most, ++depth);
    if (c == '}' || c == ']') --depth;
  }
  if (most > 16) return absl::InvalidArgumentError("Prometheus answer nests too deep");
  const json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("Prometheus answer is not a JSON object");
  }
  if (Label(doc, "status") != "success") {
    return absl::InvalidArgumentError(absl::StrCat(
        "Prometheus answered status=\"", Label(doc, "status"), "\": ", Label(doc, "error")));
  }
  auto data = doc.find("data");
  if (data == doc.end() || !data->is_object() || Label(*data, "resultType") != "vector") {
    return absl::InvalidArgumentError("Prometheus answer has no data of resultType vector");
  }
  auto result = data->find("result");
  if (result == data->end() || !result->is_array()) {
    return absl::InvalidArgumentError("Prometheus answer has no data.result list");
  }
  std::vector<DcgmSample> out;
  for (const json& r : *result) {
    if (!r.is_object()) continue;
    auto metric = r.find("metric");
    auto value = r.find("value");
    if (metric == r.end() || !metric->is_object() || value == r.end() || !value->is_array() ||
        value->size() != 2 || !(*value)[1].is_string()) {
      continue;
    }
    double mib = 0;
    if (!absl::SimpleAtod((*value)[1].get<std::string>(), &mib) || !std::isfinite(mib) || mib < 0 ||
        mib > static_cast<double>(int64_t{1} << 40)) {
      continue;
    }
    DcgmSample s;
    s.uuid = Label(*metric, "UUID");
    s.hostname = Label(*metric, "Hostname");
    if (s.hostname.empty()) s.hostname = Label(*metric, "hostname");
    int64_t gpu = -1;
    if (absl::SimpleAtoi(Label(*metric, "gpu"), &gpu) && gpu >= 0) s.gpu = gpu;
    s.used_bytes = static_cast<int64_t>(std::llround(mib * static_cast<double>(kMiB)));
    out.push_back(std::move(s));
  }
  return out;
}

ObservedUsage MatchDcgm(const placement::FleetSnapshot& snapshot,
                        const std::vector<DcgmSample>& samples, int64_t now_unix_ms) {
  std::map<std::string, placement::GpuRef> by_uuid;
  std::map<std::pair<std::string, int64_t>, placement::GpuRef> by_host;
  for (const placement::Node& n : snapshot.nodes) {
    const std::string short_name = n.name.substr(0, n.name.find('.'));
    for (const placement::Gpu& g : n.gpus) {
      const placement::GpuRef ref{.node = n.name, .index = g.index};
      if (!g.uuid.empty()) by_uuid[g.uuid] = ref;
      by_host[{n.name, g.index}] = ref;
      by_host.emplace(std::make_pair(short_name, g.index), ref);
    }
  }
  ObservedUsage out{.observed_unix_ms = now_unix_ms,
                    .samples = static_cast<int64_t>(samples.size())};
  for (const DcgmSample& s : samples) {
    const placement::GpuRef* ref = nullptr;
    if (auto it = by_uuid.find(s.uuid); !s.uuid.empty() && it != by_uuid.end()) ref = &it->second;
    if (ref == nullptr && s.gpu >= 0) {
      auto it = by_host.find({s.hostname, s.gpu});
      if (it == by_host.end())
        it = by_host.find({s.hostname.substr(0, s.hostname.find('.')), s.gpu});
      if (it != by_host.end()) ref = &it->second;
    }
    if (ref == nullptr) {
      ++out.unmatched;
      continue;
    }
    out.used_bytes[*ref] = s.used_bytes;
  }
  return out;
}

std::shared_ptr<const ObservedUsage> ObservedUsageHolder::Get(
    std::chrono::milliseconds max_age) const {
  MutexLock lock(&mu_);
  if (current_ == nullptr) return nullptr;
  const int64_t now = absl::ToUnixMillis(absl::Now());
  if (now - current_->observed_unix_ms > max_age.count()) return nullptr;
  return current_;
}

UsageReport BuildUsageReport(const placement::FleetSnapshot& snapshot,
                             const std::vector<placement::Placement>& active,
                             const ObservedUsage& observed, int64_t unplanned_bytes,
                             int64_t idle_bytes) {
  UsageReport report;
  std::map<placement::GpuRef, int64_t> committed;
  for (const placement::Placement& p : active) {
    if (p.state != placement::PlacementState::kCommitted) continue;
    for (const placement::PlacementRank& r : p.ranks) committed[r.gpu] += r.bytes;
  }
  std::map<std::string, DeploymentUsage> by_deployment;
  for (const placement::Placement& p : active) {
    if (p.state != placement::PlacementState::kCommitted) continue;
    DeploymentUsage& d = by_deployment[p.deployment];
    d.deployment = p.deployment;
    d.model = p.model;
    ++d.placements;
    for (const placement::PlacementRank& r : p.ranks) {
      ++d.gpus;
      auto seen = observed.used_bytes.find(r.gpu);
      if (seen == observed.used_bytes.end()) continue;
      ++d.observed_gpus;
      d.committed_bytes += r.bytes;
      const int64_t on_gpu = committed[r.gpu];
      d.observed_bytes += on_gpu > 0 ? static_cast<int64_t>(static_cast<double>(seen->second) *
                                                            static_cast<double>(r.bytes) /
                                                            static_cast<double>(on_gpu))
                                     : 0;
    }
  }
  for (auto& [name, d] : by_deployment) report.deployments.push_back(std::move(d));
  for (const placement::Node& n : snapshot.nodes) {
    for (const placement::Gpu& g : n.gpus) {
      const placement::GpuRef ref{.node = n.name, .index = g.index};
      auto seen = observed.used_bytes.find(ref);
      if (seen == observed.used_bytes.end()) continue;
      const placement::GpuType* type = snapshot.FindGpuType(g.gpu_type);
      const int64_t five_percent = type != nullptr ? type->memory_bytes / 20 : 0;
      const int64_t c = committed.count(ref) > 0 ? committed[ref] : 0;
      if (seen->second - c > std::max(unplanned_bytes, five_percent)) {
        report.anomalies.push_back({UsageAnomaly::Kind::kUnplanned, ref, c, seen->second});
      } else if (c > 0 && seen->second < idle_bytes) {
        report.anomalies.push_back({UsageAnomaly::Kind::kIdle, ref, c, seen->second});
      }
    }
  }
  return report;
}

absl::StatusOr<std::string> HttpGet(const std::string& url, std::chrono::milliseconds timeout) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::UnavailableError("libcurl: cannot start a transfer");
  std::string body;
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // gzip when the server offers it
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("GET ", url, ": ", error[0] != 0 ? error : curl_easy_strerror(rc)));
  }
  if (status < 200 || status >= 300) {
    return absl::UnavailableError(
        absl::StrCat("GET ", url, ": HTTP ", status, ": ", body.substr(0, 200)));
  }
  return body;
}

absl::Status ValidatePrometheusUrl(const std::string& field, const std::string& url) {
  if ((absl::StartsWith(url, "http://") || absl::StartsWith(url, "https://")) &&
      url.find_first_of(" \t\r\n?#") == std::string::npos && url.size() < 2048) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      field, "=\"", url.substr(0, 200), "\" must be an http:// or https:// Prometheus URL"));
}

DcgmObserver::DcgmObserver(std::string prometheus_url, std::chrono::milliseconds interval,
                           storage::LiveFleet* fleet, ObservedUsageHolder* out)
    : url_(std::move(prometheus_url)), fleet_(fleet), out_(out) {
  // A failed poll is counted in failures(); the holder ages the last good answer out.
  periodic_ = std::make_unique<Periodic>(interval, [this] { (void)PollOnce(); });
}

DcgmObserver::~DcgmObserver() { Shutdown(); }

void DcgmObserver::Shutdown() { periodic_->Stop(); }

int64_t DcgmObserver::failures() const {
  MutexLock lock(&mu_);
  return failures_;
}

absl::Status DcgmObserver::PollOnce() {
  std::string base = url_;
  while (!base.empty() && base.back() == '/') base.pop_back();
  absl::StatusOr<std::string> body =
      HttpGet(base + "/api/v1/query?query=DCGM_FI_DEV_FB_USED", std::chrono::seconds(10));
  absl::Status status = body.status();
  if (body.ok()) {
    absl::StatusOr<std::vector<DcgmSample>> samples = ParseDcgmQuery(*body);
    absl::StatusOr<std::shared_ptr<const storage::FleetView>> view = fleet_->Current();
    status = !samples.ok() ? samples.status() : view.status();
    if (status.ok()) {
      out_->Set(std::make_shared<const ObservedUsage>(
          MatchDcgm((*view)->snapshot(), *samples, absl::ToUnixMillis(absl::Now()))));
    }
  }
  if (!status.ok()) {
    MutexLock lock(&mu_);
    ++failures_;
  }
  return status;
}

}  // namespace fleetplan::server
