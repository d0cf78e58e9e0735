#ifndef FLEETPLAN_SERVER_REQUEST_CACHE_H_
#define FLEETPLAN_SERVER_REQUEST_CACHE_H_

// Idempotent retries for mutating RPCs (AIP-155): the response of a successful call is kept under
// (method, request_id), with a fingerprint of the request. A retry with the same request gets the
// same response; the same request_id with a different request is ALREADY_EXISTS. Bounded (oldest
// entries evicted first); in memory, so it covers retries within a server's life. Placement
// commits persist their request ids in the store instead.
//
// Thread-safe.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/message.h"

namespace fleetplan::server {

class RequestCache {
 public:
  explicit RequestCache(size_t capacity = 10000) : capacity_(capacity) {}

  // Empty request_id: no caching (nullopt). A known id: the stored response, or ALREADY_EXISTS
  // when the request differs.
  absl::StatusOr<std::optional<std::string>> Lookup(const std::string& method,
                                                    const std::string& request_id,
                                                    const google::protobuf::Message& request);
  void Store(const std::string& method, const std::string& request_id,
             const google::protobuf::Message& request, const google::protobuf::Message& response);

 private:
  struct Entry {
    std::string fingerprint;
    std::string response;
  };
  const size_t capacity_;
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_REQUEST_CACHE_H_
