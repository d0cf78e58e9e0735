#include "server/request_cache.h"

#include "absl/strings/str_cat.h"

namespace fleetplan::server {
namespace {

std::string Key(const std::string& method, const std::string& request_id) {
  return absl::StrCat(method, "\n", request_id);
}

std::string Fingerprint(const google::protobuf::Message& request) {
  std::string out;
  request.SerializeToString(&out);  // deterministic enough for one binary's retries
  return out;
}

}  // namespace

absl::StatusOr<std::optional<std::string>> RequestCache::Lookup(
    const std::string& method, const std::string& request_id,
    const google::protobuf::Message& request) {
  if (request_id.empty()) return std::optional<std::string>();
  if (request_id.size() > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("request_id is ", request_id.size(), " characters long, more than 256"));
  }
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(Key(method, request_id));
  if (it == entries_.end()) return std::optional<std::string>();
  if (it->second.fingerprint != Fingerprint(request)) {
    return absl::AlreadyExistsError(
        absl::StrCat("request_id \"", request_id, "\" was already used for a different request"));
  }
  return std::optional<std::string>(it->second.response);
}

void RequestCache::Store(const std::string& method, const std::string& request_id,
                         const google::protobuf::Message& request,
                         const google::protobuf::Message& response) {
  if (request_id.empty()) return;
  std::string serialized;
  response.SerializeToString(&serialized);
  absl::MutexLock lock(&mu_);
  const std::string key = Key(method, request_id);
  if (entries_.emplace(key, Entry{Fingerprint(request), serialized}).second) order_.push_back(key);
  while (order_.size() > capacity_) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
}

}  // namespace fleetplan::server
