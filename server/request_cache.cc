#include "server/request_cache.h"

#include "absl/strings/str_cat.h"

namespace fleetplan::server {
namespace {

constexpr size_t kMaxRequestIdLength = 256;

std::string Key(const std::string& method, const std::string& request_id) {
  return absl::StrCat(method, "\n", request_id);
}

// Two FNV-1a 64 hashes with different offsets over the serialized request: 16 bytes instead of the
// request (which may be a 16 MiB config.json). Deterministic for one binary's retries.
std::string Fingerprint(const google::protobuf::Message& request) {
  std::string serialized;
  request.SerializeToString(&serialized);
  uint64_t a = 14695981039346656037ull, b = 1099511628211ull * 31;
  for (char c : serialized) {
    a = (a ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    b = (b ^ static_cast<unsigned char>(c)) * 1099511628211ull + 0x9e3779b97f4a7c15ull;
  }
  std::string out(16, '\0');
  for (int i = 0; i < 8; ++i) {
    out[static_cast<size_t>(i)] = static_cast<char>(a >> (8 * i));
    out[static_cast<size_t>(8 + i)] = static_cast<char>(b >> (8 * i));
  }
  return out;
}

int64_t EntryBytes(const std::string& key, const std::string& response) {
  return static_cast<int64_t>(key.size() + response.size() + 16 + 64);
}

}  // namespace

absl::StatusOr<std::optional<std::string>> RequestCache::Lookup(
    const std::string& method, const std::string& request_id,
    const google::protobuf::Message& request) {
  if (request_id.empty()) return std::optional<std::string>();
  if (request_id.size() > kMaxRequestIdLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request_id is ", request_id.size(), " characters long, more than ", kMaxRequestIdLength));
  }
  const std::string fingerprint = Fingerprint(request);
  MutexLock lock(&mu_);
  EvictLocked();
  auto it = entries_.find(Key(method, request_id));
  if (it == entries_.end()) return std::optional<std::string>();
  if (it->second.fingerprint != fingerprint) {
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
  const std::string key = Key(method, request_id);
  const int64_t size = EntryBytes(key, serialized);
  if (size > options_.max_entry_bytes) return;
  Entry entry{Fingerprint(request), std::move(serialized),
              std::chrono::steady_clock::now() + options_.ttl};
  MutexLock lock(&mu_);
  auto [it, inserted] = entries_.try_emplace(key);
  if (!inserted) bytes_ -= EntryBytes(key, it->second.response);
  it->second = std::move(entry);
  bytes_ += size;
  if (inserted) order_.push_back(key);
  EvictLocked();
}

void RequestCache::EvictLocked() {
  const auto now = std::chrono::steady_clock::now();
  while (!order_.empty()) {
    auto it = entries_.find(order_.front());
    const bool over = entries_.size() > options_.max_entries || bytes_ > options_.max_bytes;
    const bool expired = it == entries_.end() || it->second.expires < now;
    if (!over && !expired) break;
    if (it != entries_.end()) {
      bytes_ -= EntryBytes(it->first, it->second.response);
      entries_.erase(it);
    }
    order_.pop_front();
  }
}

int64_t RequestCache::bytes() {
  MutexLock lock(&mu_);
  return bytes_;
}

size_t RequestCache::size() {
  MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace fleetplan::server
