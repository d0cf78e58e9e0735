// storage_stress: a child process for the storage concurrency and crash tests.
//
//   storage_stress stress DB SEED ROUNDS   race to commit (and release) overlapping placements;
//                                          prints "ok N" / "aborted N" / "error MSG" at the end
//   storage_stress crash DB SEED           commit forever; after each commit that returned OK
//   prints
//                                          "done REQUEST_ID RANKS" (the parent SIGKILLs it)
// The database must already hold GPU type "H100", nodes n0..n3 with 4 GPUs each, and model "m".

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "storage/sql_store.h"
#include "storage/store_test_util.h"

namespace {

using fleetplan::kGiB;
using fleetplan::storage::CommitRequest;
using fleetplan::storage::SqlStore;
using fleetplan::storage::testing::MakePlacement;

fleetplan::storage::Placement RandomPlacement(std::mt19937_64& rng, int64_t bytes) {
  const std::string node = "n" + std::to_string(rng() % 4);
  const int64_t first = static_cast<int64_t>(rng() % 4);
  std::vector<int64_t> gpus = {first};
  if (rng() % 2 == 0) gpus.push_back((first + 1) % 4);
  return MakePlacement(node, gpus, bytes);
}

int Stress(SqlStore& store, uint64_t seed, int64_t rounds) {
  std::mt19937_64 rng(seed);
  int64_t ok = 0, aborted = 0;
  std::vector<int64_t> mine;
  for (int64_t i = 0; i < rounds; ++i) {
    auto snap = store.LoadSnapshot();
    if (!snap.ok()) {
      std::printf("error snapshot: %s\n", snap.status().ToString().c_str());
      return 1;
    }
    const int64_t bytes = static_cast<int64_t>(10 + rng() % 30) * kGiB;
    CommitRequest req{.request_id = "s" + std::to_string(seed) + "-" + std::to_string(i),
                      .snapshot_generation = snap->generation,
                      .placements = {RandomPlacement(rng, bytes)}};
    auto r = store.CommitPlacements(req);
    if (r.ok()) {
      ++ok;
      mine.push_back(r->placement_ids[0]);
    } else if (r.status().code() == absl::StatusCode::kAborted ||
               r.status().code() == absl::StatusCode::kResourceExhausted) {
      ++aborted;
    } else {
      std::printf("error commit: %s\n", r.status().ToString().c_str());
      return 1;
    }
    if (!mine.empty() && rng() % 3 == 0) {
      const size_t k = rng() % mine.size();
      auto rel = store.ReleasePlacement(mine[k]);
      if (!rel.ok()) {
        std::printf("error release: %s\n", rel.status().ToString().c_str());
        return 1;
      }
      mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(k));
    }
  }
  std::printf("ok %lld\naborted %lld\n", static_cast<long long>(ok),
              static_cast<long long>(aborted));
  return 0;
}

int Crash(SqlStore& store, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int64_t i = 0;; ++i) {
    auto gen = store.FleetGeneration();
    if (!gen.ok()) return 1;
    fleetplan::storage::Placement p = RandomPlacement(rng, 1 << 20);
    CommitRequest req{.request_id = "c" + std::to_string(seed) + "-" + std::to_string(i),
                      .snapshot_generation = *gen,
                      .placements = {p}};
    auto r = store.CommitPlacements(req);
    if (r.ok()) {
      std::printf("done %s %zu\n", req.request_id.c_str(), p.ranks.size());
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: storage_stress stress|crash DB SEED [ROUNDS]\n");
    return 2;
  }
  const std::string mode = argv[1];
  auto store =
      SqlStore::Open({.path = argv[2], .busy_timeout = std::chrono::milliseconds(30000)});
  if (!store.ok()) {
    std::printf("error open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  const uint64_t seed = std::strtoull(argv[3], nullptr, 10);
  if (mode == "stress" && argc >= 5)
    return Stress(**store, seed, std::strtoll(argv[4], nullptr, 10));
  if (mode == "crash") return Crash(**store, seed);
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
