#include "server/plan_registry.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fleetplan::server {

int64_t ApproximateBytes(const StoredPlan& plan) {
  int64_t bytes = static_cast<int64_t>(sizeof(StoredPlan));
  for (const placement::Placement& p : plan.commit.placements) {
    bytes += static_cast<int64_t>(sizeof(p) + p.deployment.size() + p.model.size() +
                                  p.ranks.size() * sizeof(placement::PlacementRank));
    for (const placement::PlacementRank& r : p.ranks)
      bytes += static_cast<int64_t>(r.gpu.node.size());
  }
  for (const placement::DeploymentRecord& d : plan.commit.deployments) {
    bytes += static_cast<int64_t>(sizeof(d) + d.name.size() + d.model.size() + d.spec_json.size());
  }
  return bytes;
}

namespace {

std::string RandomInstance() {
  std::random_device device;
  const uint64_t bits = (uint64_t{device()} << 32) ^ device();
  return absl::StrFormat("%016x", bits);
}

}  // namespace

PlanRegistry::PlanRegistry(PlanRegistryOptions options)
    : options_(options), instance_(RandomInstance()) {}

std::string PlanRegistry::NewId(int64_t generation) {
  MutexLock lock(&mu_);
  return absl::StrCat("plan-", generation, "-", instance_, "-", next_id_++);
}

std::string PlanRegistry::Keep(StoredPlan plan) {
  const std::string id = NewId(plan.commit.snapshot_generation);
  KeepAs(id, std::move(plan));
  return id;
}

void PlanRegistry::KeepAs(const std::string& id, StoredPlan plan) {
  const int64_t size = ApproximateBytes(plan);
  const auto expires = std::chrono::steady_clock::now() + options_.lifetime;
  MutexLock lock(&mu_);
  auto [it, inserted] = plans_.try_emplace(id);
  if (!inserted) bytes_ -= it->second.bytes;
  it->second = Entry{std::move(plan), size, expires};
  bytes_ += size;
  if (inserted) order_.push_back(id);
  EvictLocked();
}

void PlanRegistry::EvictLocked() {
  const auto now = std::chrono::steady_clock::now();
  while (!order_.empty()) {
    auto it = plans_.find(order_.front());
    const bool over = plans_.size() > options_.max_plans || bytes_ > options_.max_bytes;
    const bool expired = it == plans_.end() || it->second.expires < now;
    if (!over && !expired) break;
    if (it != plans_.end()) {
      bytes_ -= it->second.bytes;
      plans_.erase(it);
    }
    order_.pop_front();
  }
}

std::optional<StoredPlan> PlanRegistry::Find(const std::string& id) {
  MutexLock lock(&mu_);
  auto it = plans_.find(id);
  if (it == plans_.end() || it->second.expires < std::chrono::steady_clock::now())
    return std::nullopt;
  return it->second.plan;
}

size_t PlanRegistry::size() {
  MutexLock lock(&mu_);
  return plans_.size();
}

int64_t PlanRegistry::bytes() {
  MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace fleetplan::server
