#ifndef FLEETPLAN_SERVER_HEADROOM_SERVICE_H_
#define FLEETPLAN_SERVER_HEADROOM_SERVICE_H_

// fleetplan.v1.HeadroomService: fleet headroom now, and a stream of it that updates whenever the
// fleet generation changes. A poller thread reads the generation every `poll_interval` (so changes
// made by another process on the same database are seen too), computes headroom once per change
// and hands it to every watcher; a watcher that is still writing gets the newest one next.
//
// Thread-safe. Shutdown() stops the poller; it runs before the service is destroyed.

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "planner/common/mutex.h"
#include "server/handler.h"

namespace fleetplan::server {

// Bounds on open WatchHeadroom streams (see ServerOptions).
struct WatchLimits {
  int64_t per_client = 32;
  int64_t total = 1024;
};

class HeadroomServiceImpl final : public v1::HeadroomService::CallbackService {
 public:
  HeadroomServiceImpl(ServiceDeps deps, std::chrono::milliseconds poll_interval,
                      WatchLimits limits = {});
  ~HeadroomServiceImpl() override;

  void Shutdown();
  // Open streams, in all (tests, metrics).
  int64_t open_watches();

  grpc::ServerUnaryReactor* GetFleetHeadroom(grpc::CallbackServerContext* c,
                                             const v1::GetFleetHeadroomRequest* req,
                                             v1::FleetHeadroom* resp) override;
  grpc::ServerUnaryReactor* GetObservedUsage(grpc::CallbackServerContext* c,
                                             const v1::GetObservedUsageRequest* req,
                                             v1::ObservedUsage* resp) override;
  grpc::ServerWriteReactor<v1::FleetHeadroom>* WatchHeadroom(
      grpc::CallbackServerContext* c, const v1::WatchHeadroomRequest* req) override;

  class Watcher;

 private:
  friend class Watcher;
  void Unregister(const Watcher* w);
  void PollLoop();

  ServiceDeps deps_;
  const std::chrono::milliseconds poll_interval_;
  const WatchLimits limits_;
  Mutex mu_;
  std::set<std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> watches_by_client_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // The store pushed a change (PostgreSQL NOTIFY): look now, not at the next poll.
  bool pushed_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar stop_changed_;  // signalled when stop_ or pushed_ is set
  int64_t subscription_ = 0;    // the store's change subscription (0: none, poll only)
  std::thread poller_;
};

// Current headroom as a proto (shared by the unary call, the watchers and tests).
absl::StatusOr<v1::FleetHeadroom> HeadroomNow(storage::LiveFleet& fleet, bool include_gpus);

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_HEADROOM_SERVICE_H_
