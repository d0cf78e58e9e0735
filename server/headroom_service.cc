#include "server/headroom_service.h"

#include <memory>

#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "planner/common/limits.h"
#include "planner/common/units.h"
#include "planner/placement/headroom.h"
#include "server/convert.h"
#include "server/observed_usage.h"
#include "storage/validation.h"

namespace fleetplan::server {

absl::StatusOr<v1::FleetHeadroom> HeadroomNow(storage::LiveFleet& fleet, bool include_gpus) {
  ASSIGN_OR_RETURN(std::shared_ptr<const storage::FleetView> view, fleet.Current());
  v1::FleetHeadroom out;
  ToProto(placement::ComputeHeadroom(view->snapshot(), include_gpus), &out);
  return out;
}

class HeadroomServiceImpl::Watcher final : public grpc::ServerWriteReactor<v1::FleetHeadroom> {
 public:
  Watcher(HeadroomServiceImpl* service, bool include_gpus, std::string client)
      : service_(service), include_gpus_(include_gpus), client_(std::move(client)) {}

  const std::string& client() const { return client_; }

  bool include_gpus() const { return include_gpus_; }

  // Queues `h` unless an equal or newer generation was already sent.
  void Offer(std::shared_ptr<const v1::FleetHeadroom> h) {
    MutexLock lock(&mu_);
    if (finished_ || h->generation() <= sent_generation_) return;
    pending_ = std::move(h);
    if (!writing_) WriteNextLocked();
  }

  void FinishWith(const grpc::Status& status) {
    MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    writing_ = false;
    current_.reset();
    if (!ok) {
      if (!finished_) {
        finished_ = true;
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broken"));
      }
      return;
    }
    if (pending_ != nullptr && !finished_) WriteNextLocked();
  }

  void OnCancel() override { FinishWith(grpc::Status::CANCELLED); }

  // The service's set and the poller hold shared references; the last one frees the reactor.
  void OnDone() override {
    std::shared_ptr<Watcher> self = std::move(self_);
    service_->Unregister(this);
  }

  void SetSelf(std::shared_ptr<Watcher> self) { self_ = std::move(self); }

 private:
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    current_ = std::move(pending_);
    sent_generation_ = current_->generation();
    writing_ = true;
    StartWrite(current_.get());
  }

  HeadroomServiceImpl* const service_;
  const bool include_gpus_;
  const std::string client_;
  std::shared_ptr<Watcher> self_;
  Mutex mu_;
  std::shared_ptr<const v1::FleetHeadroom> pending_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const v1::FleetHeadroom> current_ ABSL_GUARDED_BY(mu_);
  int64_t sent_generation_ ABSL_GUARDED_BY(mu_) = -1;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

HeadroomServiceImpl::HeadroomServiceImpl(ServiceDeps deps, std::chrono::milliseconds poll_interval,
                                         WatchLimits limits)
    : deps_(deps), poll_interval_(poll_interval), limits_(limits) {
  // Where the database pushes changes (another replica's commit), streams hear of them at once;
  // the poll stays as the fallback and for databases that cannot push.
  subscription_ = deps_.store->SubscribeToChanges([this] {
    MutexLock lock(&mu_);
    pushed_ = true;
    stop_changed_.SignalAll();
  });
  poller_ = std::thread([this] { PollLoop(); });
}

HeadroomServiceImpl::~HeadroomServiceImpl() { Shutdown(); }

void HeadroomServiceImpl::Shutdown() {
  if (subscription_ != 0) deps_.store->Unsubscribe(subscription_);  // no callback after this
  std::set<std::shared_ptr<Watcher>> watchers;
  {
    MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
    stop_changed_.SignalAll();
    watchers = watchers_;
  }
  for (const auto& w : watchers)
    w->FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
  if (poller_.joinable()) poller_.join();
}

void HeadroomServiceImpl::Unregister(const Watcher* w) {
  MutexLock lock(&mu_);
  for (auto it = watchers_.begin(); it != watchers_.end(); ++it) {
    if (it->get() == w) {
      if (auto c = watches_by_client_.find(w->client()); c != watches_by_client_.end()) {
        if (--c->second <= 0) watches_by_client_.erase(c);
      }
      watchers_.erase(it);
      return;
    }
  }
}

int64_t HeadroomServiceImpl::open_watches() {
  MutexLock lock(&mu_);
  return static_cast<int64_t>(watchers_.size());
}

namespace {

// Who a stream belongs to for its per-client bound: its bearer token (hashed, never kept), or the
// peer's host without the port when there is no token.
std::string ClientKey(const grpc::CallbackServerContext& c) {
  const auto& md = c.client_metadata();
  if (auto it = md.find("authorization"); it != md.end()) {
    return absl::StrCat(
        "token:", absl::Hash<std::string>()(std::string(it->second.data(), it->second.size())));
  }
  std::string peer = c.peer();
  if (size_t colon = peer.rfind(':'); colon != std::string::npos && colon > 5) peer.resize(colon);
  return peer;
}

}  // namespace

void HeadroomServiceImpl::PollLoop() {
  int64_t last = -1;
  while (true) {
    {
      MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || pushed_; };
      mu_.WaitUntil(stop_changed_, woken, absl::Now() + absl::Milliseconds(poll_interval_.count()));
      if (stop_) return;
      pushed_ = false;
      if (watchers_.empty()) continue;
    }
    absl::StatusOr<int64_t> generation = deps_.store->FleetGeneration();
    if (!generation.ok() || *generation == last) continue;
    last = *generation;
    std::set<std::shared_ptr<Watcher>> watchers;
    {
      MutexLock lock(&mu_);
      watchers = watchers_;
    }
    std::shared_ptr<const v1::FleetHeadroom> with_gpus, without;
    for (const auto& w : watchers) {
      auto& slot = w->include_gpus() ? with_gpus : without;
      if (slot == nullptr) {
        absl::StatusOr<v1::FleetHeadroom> h = HeadroomNow(*deps_.fleet, w->include_gpus());
        if (!h.ok()) continue;
        slot = std::make_shared<const v1::FleetHeadroom>(std::move(*h));
      }
      w->Offer(slot);
    }
  }
}

grpc::ServerUnaryReactor* HeadroomServiceImpl::GetObservedUsage(
    grpc::CallbackServerContext* c, const v1::GetObservedUsageRequest* req,
    v1::ObservedUsage* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    for (const auto& [field, v] : {std::pair{"unplanned_bytes", req->unplanned_bytes()},
                                   std::pair{"idle_bytes", req->idle_bytes()}}) {
      if (v < 0 || v > limits::kMaxGpuMemoryBytes) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, "=", v, " must be in [0, ", limits::kMaxGpuMemoryBytes, "]"));
      }
    }
    if (deps_.observed == nullptr) {
      return absl::FailedPreconditionError(
          "GPU usage is not observed: start fleetpland with --dcgm_prometheus_url");
    }
    std::shared_ptr<const ObservedUsage> observed = deps_.observed->Get(deps_.observed_max_age);
    if (observed == nullptr) {
      return absl::FailedPreconditionError(
          "no recent answer from Prometheus with DCGM_FI_DEV_FB_USED (see the server log and "
          "fleetplan_dcgm_samples)");
    }
    ASSIGN_OR_RETURN(std::shared_ptr<const storage::FleetView> view, deps_.fleet->Current());
    ASSIGN_OR_RETURN(std::vector<placement::Placement> active, deps_.store->ListPlacements({}));
    const UsageReport report =
        BuildUsageReport(view->snapshot(), active, *observed,
                         req->unplanned_bytes() > 0 ? req->unplanned_bytes() : 2 * kGiB,
                         req->idle_bytes() > 0 ? req->idle_bytes() : kGiB);
    resp->set_observed_unix_ms(observed->observed_unix_ms);
    resp->set_samples(observed->samples);
    resp->set_unmatched_samples(observed->unmatched);
    resp->set_observed_gpus(static_cast<int64_t>(observed->used_bytes.size()));
    for (const DeploymentUsage& d : report.deployments) {
      v1::DeploymentUsage* p = resp->add_deployments();
      p->set_deployment(d.deployment);
      p->set_model(d.model);
      p->set_placements(d.placements);
      p->set_gpus(d.gpus);
      p->set_observed_gpus(d.observed_gpus);
      p->set_committed_bytes(d.committed_bytes);
      p->set_observed_bytes(d.observed_bytes);
      p->set_drift_ratio(
          d.committed_bytes > 0
              ? static_cast<double>(d.observed_bytes) / static_cast<double>(d.committed_bytes) - 1
              : 0);
    }
    constexpr size_t kMaxAnomalies = 1000;
    resp->set_anomalies_total(static_cast<int64_t>(report.anomalies.size()));
    for (size_t i = 0; i < report.anomalies.size() && i < kMaxAnomalies; ++i) {
      const UsageAnomaly& a = report.anomalies[i];
      v1::UsageAnomaly* p = resp->add_anomalies();
      p->set_kind(a.kind == UsageAnomaly::Kind::kUnplanned ? v1::UsageAnomaly::UNPLANNED
                                                           : v1::UsageAnomaly::IDLE);
      p->set_node(a.gpu.node);
      p->set_gpu_index(a.gpu.index);
      p->set_committed_bytes(a.committed_bytes);
      p->set_observed_bytes(a.observed_bytes);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HeadroomServiceImpl::GetFleetHeadroom(
    grpc::CallbackServerContext* c, const v1::GetFleetHeadroomRequest* req,
    v1::FleetHeadroom* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    if (req->page_size() < 0 || req->page_size() > limits::kMaxPageSize) {
      return absl::InvalidArgumentError(absl::StrCat("page_size=", req->page_size(),
                                                     " must be in [0, ", limits::kMaxPageSize,
                                                     "] (0: ", limits::kMaxPageSize, ")"));
    }
    const int64_t page_size = req->page_size() == 0 ? limits::kMaxPageSize : req->page_size();
    ASSIGN_OR_RETURN(*resp, HeadroomNow(*deps_.fleet, req->include_gpus()));
    if (!req->include_gpus()) return absl::OkStatus();
    // The token is the last row's "node/index" (rows are ordered by node, then index).
    auto* gpus = resp->mutable_gpus();
    int first = 0;
    if (!req->page_token().empty()) {
      const size_t slash = req->page_token().rfind('/');
      int64_t index = 0;
      if (slash == std::string::npos ||
          !absl::SimpleAtoi(req->page_token().substr(slash + 1), &index)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "page_token=\"", storage::Shown(req->page_token()), "\" is not a headroom page token"));
      }
      const std::string node = req->page_token().substr(0, slash);
      while (first < gpus->size() &&
             std::make_pair(gpus->Get(first).node(), gpus->Get(first).index()) <=
                 std::make_pair(node, index)) {
        ++first;
      }
    }
    const int end = static_cast<int>(std::min<int64_t>(gpus->size(), first + page_size));
    if (end < gpus->size()) {
      resp->set_next_page_token(
          absl::StrCat(gpus->Get(end - 1).node(), "/", gpus->Get(end - 1).index()));
    }
    gpus->DeleteSubrange(end, gpus->size() - end);
    gpus->DeleteSubrange(0, first);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::FleetHeadroom>* HeadroomServiceImpl::WatchHeadroom(
    grpc::CallbackServerContext* c, const v1::WatchHeadroomRequest* req) {
  auto watcher = std::make_shared<Watcher>(this, req->include_gpus(), ClientKey(*c));
  watcher->SetSelf(watcher);
  absl::Status allowed = deps_.auth->Check(*c, Role::kReader);
  absl::StatusOr<v1::FleetHeadroom> first = allowed.ok()
                                                ? HeadroomNow(*deps_.fleet, req->include_gpus())
                                                : absl::StatusOr<v1::FleetHeadroom>(allowed);
  bool stopping = false;
  {
    MutexLock lock(&mu_);
    stopping = stop_;
    int64_t& mine = watches_by_client_[watcher->client()];
    if (allowed.ok() && mine >= limits_.per_client) {
      allowed = absl::ResourceExhaustedError(
          absl::StrCat("this client already has ", mine, " WatchHeadroom streams open (limit ",
                       limits_.per_client, "); close one first"));
    } else if (allowed.ok() && static_cast<int64_t>(watchers_.size()) >= limits_.total) {
      allowed = absl::ResourceExhaustedError(
          absl::StrCat(watchers_.size(), " WatchHeadroom streams are open on this server (limit ",
                       limits_.total, "); retry later"));
    }
    ++mine;
    watchers_.insert(watcher);
  }
  if (stopping) {
    watcher->FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
    return watcher.get();
  }
  if (!allowed.ok()) {
    watcher->FinishWith(ToGrpcStatus(allowed));
  } else if (!first.ok()) {
    watcher->FinishWith(ToGrpcStatus(first.status()));
  } else {
    watcher->Offer(std::make_shared<const v1::FleetHeadroom>(std::move(*first)));
  }
  return watcher.get();
}

}  // namespace fleetplan::server
