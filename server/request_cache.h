#ifndef FLEETPLAN_SERVER_REQUEST_CACHE_H_
#define FLEETPLAN_SERVER_REQUEST_CACHE_H_

// Idempotent retries for mutating RPCs (AIP-155): the response of a successful call is kept under
// (method, request_id), with a fingerprint (a 128-bit hash) of the request, for `ttl`. A retry with
// the same request gets the same response; the same request_id with a different request is
// ALREADY_EXISTS. Bounded in entries and in bytes (oldest evicted first); a response larger than
// max_entry_bytes is not kept (its retry runs again, which every handler here tolerates: creates
// answer ALREADY_EXISTS, deletes NOT_FOUND). In memory, so it covers retries within a server's
// life; placement commits persist their request ids in the store instead.
//
// Thread-safe.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "planner/common/mutex.h"

namespace fleetplan::server {

struct RequestCacheOptions {
  size_t max_entries = 10000;
  int64_t max_bytes = 32 << 20;
  int64_t max_entry_bytes = 256 << 10;
  std::chrono::milliseconds ttl = std::chrono::minutes(10);
};

class RequestCache {
 public:
  explicit RequestCache(RequestCacheOptions options = {}) : options_(options) {}

  // Empty request_id: no caching (nullopt). A known id: the stored response, or ALREADY_EXISTS
  // when the request differs.
  absl::StatusOr<std::optional<std::string>> Lookup(const std::string& method,
                                                    const std::string& request_id,
                                                    const google::protobuf::Message& request);
  void Store(const std::string& method, const std::string& request_id,
             const google::protobuf::Message& request, const google::protobuf::Message& response);

  int64_t bytes();
  size_t size();

 private:
  struct Entry {
    std::string fingerprint;  // 16 bytes
    std::string response;
    std::chrono::steady_clock::time_point expires;
  };
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RequestCacheOptions options_;
  Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_REQUEST_CACHE_H_
