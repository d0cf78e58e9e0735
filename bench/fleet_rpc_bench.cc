// The path a scheduler takes, at fleet scale: PlanPlacement, CommitPlan and ImportNodes through a
// real fleetpland over loopback, on fleets of 100, 10,000 and 100,000 nodes x 8 GPUs (H100 in
// NVLink domains of 8 and A100-40GB in domains of 4, 8 pools, a quarter of the nodes already
// holding placements). The pure planner on the same fleet is measured beside it, so the RPC
// overhead shows as a ratio.
//
// The plan and commit benchmarks run on SQLite (the default store) and again on PostgreSQL (a
// private server this benchmark starts, storage/testing/postgres_server.h), so the cost of the
// shared database of several replicas shows beside the embedded one (the /pg variants).
//
// Goals (issue 13): one deployment p99 <= 5 ms at 80k GPUs and p99(10k nodes) / p99(100 nodes) <=
// 3; a batch of 1,000 deployments <= 1 s at 80k GPUs; >= 3,000 placements/s committed by 8 clients
// with fsync on; 10,000 nodes imported in seconds.
//
//   ./build-release/bench/fleet_rpc_bench [--benchmark_filter=...]

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "planner/common/limits.h"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "planner/placement/planner.h"
#include "server/server.h"
#include "storage/sql_store.h"
#include "storage/testing/postgres_server.h"
#include "tests/testing/data.h"

namespace fleetplan {
namespace {

const char* const kModels[] = {
    "llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "llama-3.3-70b-instruct-fp8-dynamic",
    "mixtral-8x7b-v0.1-4l",  "qwen2.5-0.5b",        "deepseek-v2-lite"};

std::string TempPath(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         absl::StrCat("fleetplan_fleet_rpc_bench_", ::getpid(), "_", name);
}

placement::Node BenchNode(int64_t i) {
  const bool h100 = i % 3 != 0;
  placement::Node n{.name = absl::StrFormat("node-%06d", i),
                    .pool = absl::StrCat("pool-", i % 8),
                    .zone = absl::StrCat("zone-", i % 3)};
  for (int64_t g = 0; g < 8; ++g) {
    n.gpus.push_back(placement::Gpu{.index = g,
                                    .gpu_type = h100 ? "H100" : "A100-40GB",
                                    .nvlink_domain = h100 ? 0 : g / 4,
                                    .uuid = absl::StrFormat("GPU-%06d-%d", i, g)});
  }
  return n;
}

// The benchmarks' PostgreSQL server (started on first use, stopped at exit).
storage::testing::PostgresServer* postgres_server = nullptr;
storage::testing::PostgresServer& Postgres() {
  if (postgres_server == nullptr) {
    auto started = storage::testing::PostgresServer::Start();
    if (!started.ok()) {
      std::fprintf(stderr, "cannot start PostgreSQL: %s\n", started.status().ToString().c_str());
      std::abort();
    }
    postgres_server = started->release();
    std::atexit([] { delete postgres_server; });
  }
  return *postgres_server;
}

// The fleet and the catalog written into the store at `target`.
void BuildFleet(const std::string& target, int64_t nodes) {
  auto store = storage::SqlStore::Open({.path = target});
  if (!store.ok()) std::abort();
  (void)(*store)->CreateGpuType({.name = "A100-40GB", .memory_bytes = 42505273344});
  (void)(*store)->CreateGpuType({.name = "H100", .memory_bytes = 85017493504});
  std::vector<placement::Node> batch;
  for (int64_t i = 0; i < nodes; ++i) {
    batch.push_back(BenchNode(i));
    if (static_cast<int64_t>(batch.size()) == limits::kMaxNodesPerImport || i + 1 == nodes) {
      if (!(*store)->ImportNodes(batch, {}).ok()) std::abort();
      batch.clear();
    }
  }
  for (const char* slug : kModels) {
    const std::string config = testing::CalibrationModel(slug);
    auto spec = estimator::ParseModelConfig(config);
    if (!spec.ok()) std::abort();
    const estimator::ModelSummary s = estimator::SummarizeModel(*spec);
    (void)(*store)->CreateModel({.name = slug,
                                 .config_json = config,
                                 .model_type = spec->model_type,
                                 .params = s.params,
                                 .weights_bytes = s.weights_bytes,
                                 .kv_bytes_per_token = s.kv_bytes_per_token});
  }
  // A quarter of the nodes hold a 30 GiB placement on each of three GPUs.
  storage::CommitRequest busy{.request_id = "busy",
                              .snapshot_generation = *(*store)->FleetGeneration()};
  for (int64_t i = 0; i < nodes; i += 4) {
    placement::Placement p{.deployment = "existing", .model = "qwen2.5-0.5b", .tp = 3};
    for (int64_t g = 0; g < 3; ++g) {
      p.ranks.push_back({.rank = g, .gpu = {BenchNode(i).name, g}, .bytes = 30 * kGiB});
    }
    busy.placements.push_back(std::move(p));
  }
  busy.deployments.push_back({.name = "existing", .model = "qwen2.5-0.5b", .replicas = 1});
  if (!busy.placements.empty() && !(*store)->CommitPlacements(busy).ok()) std::abort();
}

// A database file holding the fleet and the catalog (built once per size).
const std::string& FleetDatabase(int64_t nodes) {
  static auto* built = new std::map<int64_t, std::string>();
  auto it = built->find(nodes);
  if (it != built->end()) return it->second;
  const std::string path = TempPath(absl::StrCat(nodes, ".db"));
  std::filesystem::remove(path);
  BuildFleet(path, nodes);
  return built->emplace(nodes, path).first->second;
}

// The same fleet in a PostgreSQL database named fleet_<nodes> (built once per size), used as the
// template of each benchmark's copy.
const std::string& FleetPostgresDatabase(int64_t nodes) {
  static auto* built = new std::map<int64_t, std::string>();
  auto it = built->find(nodes);
  if (it != built->end()) return it->second;
  const std::string name = absl::StrCat("fleet_", nodes);
  auto uri = Postgres().CreateDatabase(name);
  if (!uri.ok()) std::abort();
  BuildFleet(*uri, nodes);
  // Statistics for the planner, as autovacuum would have gathered on a live database by now (the
  // copies made from this template inherit them).
  if (!Postgres().Query(name, "ANALYZE").ok()) std::abort();
  return built->emplace(nodes, name).first->second;
}

enum Backend : int64_t { kSqlite = 0, kPostgres = 1 };

// A server over a copy of the fleet's database (so writes in one benchmark do not leak into the
// next), with stubs.
struct Running {
  std::unique_ptr<server::FleetplanServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::PlannerService::Stub> planner;
};

Running Start(int64_t nodes, const std::string& copy_name, int64_t backend = kSqlite) {
  std::string target;
  if (backend == kPostgres) {
    const std::string name =
        std::filesystem::path(copy_name).stem().string();  // "commit.db" -> "commit"
    const std::string& from = FleetPostgresDatabase(nodes);
    if (!Postgres().Query("postgres", "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").ok() ||
        !Postgres().Query("postgres", "CREATE DATABASE " + name + " TEMPLATE " + from).ok()) {
      std::abort();
    }
    target = Postgres().Uri(name);
  } else {
    target = TempPath(copy_name);
    std::filesystem::remove(target);
    std::filesystem::remove(target + "-wal");
    std::filesystem::copy_file(FleetDatabase(nodes), target);
  }
  auto server = server::FleetplanServer::Start(
      {.listen = "127.0.0.1:0", .metrics_listen = "", .store = {.path = target}});
  if (!server.ok()) std::abort();
  Running r{.server = std::move(*server)};
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  r.channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(r.server->port()),
                                        grpc::InsecureChannelCredentials(), args);
  r.planner = v1::PlannerService::NewStub(r.channel);
  return r;
}

v1::DeploymentSpec Dep(int64_t i, bool shared, const std::string& pool = "") {
  v1::DeploymentSpec d;
  d.set_name(absl::StrCat("dep-", i));
  d.set_model(kModels[i % 6]);
  d.set_concurrency(8 + i % 24);
  d.set_context_tokens(4096 + 1024 * (i % 5));
  d.set_replicas(1 + i % 2);
  d.set_shared(shared);
  d.mutable_vllm()->set_max_model_len(8192);
  if (!pool.empty()) d.add_pools(pool);
  return d;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Server-side planning time: the mean of fleetplan_plan_duration_seconds since `before`.
struct PlanClock {
  double sum = 0;
  uint64_t count = 0;
};
PlanClock ReadPlanClock(server::FleetplanServer& s) {
  PlanClock c;
  for (const auto& family : s.metrics().registry().Collect()) {
    if (family.name != "fleetplan_plan_duration_seconds") continue;
    for (const auto& m : family.metric) {
      c.sum += m.histogram.sample_sum;
      c.count += m.histogram.sample_count;
    }
  }
  return c;
}

void PlanOne(benchmark::State& state, v1::HeadroomView view) {
  const int64_t nodes = state.range(0);
  Running r = Start(nodes, "plan_one.db", state.range(1));
  std::vector<double> ms;
  size_t bytes = 0;
  int64_t i = 0;
  const PlanClock before = ReadPlanClock(*r.server);
  for (auto _ : state) {
    v1::PlanPlacementRequest req;
    const int64_t k = i++;
    *req.add_deployments() = Dep(k, /*shared=*/k % 2 == 0);
    req.set_headroom_view(view);
    grpc::ClientContext ctx;
    v1::Plan plan;
    const auto t0 = std::chrono::steady_clock::now();
    grpc::Status s = r.planner->PlanPlacement(&ctx, req, &plan);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (!s.ok()) state.SkipWithError(s.error_message().c_str());
    bytes = plan.ByteSizeLong();
  }
  const PlanClock after = ReadPlanClock(*r.server);
  state.counters["p50_ms"] = Percentile(ms, 0.5);
  state.counters["p99_ms"] = Percentile(ms, 0.99);
  state.counters["answer_bytes"] = static_cast<double>(bytes);
  state.counters["server_plan_ms"] =
      after.count > before.count
          ? 1000 * (after.sum - before.sum) / static_cast<double>(after.count - before.count)
          : 0;
  state.counters["gpus"] = static_cast<double>(nodes * 8);
}

void BM_PlanOneDeployment(benchmark::State& state) { PlanOne(state, v1::HEADROOM_VIEW_TOUCHED); }
// Args: nodes, backend (0 SQLite, 1 PostgreSQL).
BENCHMARK(BM_PlanOneDeployment)
    ->Args({100, kSqlite})
    ->Args({10000, kSqlite})
    ->Args({100000, kSqlite})
    ->Args({100, kPostgres})
    ->Args({10000, kPostgres})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);

void BM_PlanOneDeploymentFullHeadroom(benchmark::State& state) {
  PlanOne(state, v1::HEADROOM_VIEW_FULL);
}
BENCHMARK(BM_PlanOneDeploymentFullHeadroom)->Args({10000, kSqlite})->Unit(benchmark::kMillisecond);

// The same deployments on the same fleet, straight into the planner (no RPC, no store).
void BM_PurePlanner(benchmark::State& state) {
  const int64_t nodes = state.range(0);
  auto store = storage::SqlStore::Open({.path = FleetDatabase(nodes)});
  auto snap = (*store)->LoadSnapshot();
  const placement::PackingState base(*snap);
  std::map<std::string, estimator::ModelSpec> specs;
  for (const char* slug : kModels)
    specs[slug] = *estimator::ParseModelConfig(testing::CalibrationModel(slug));
  std::vector<double> ms;
  int64_t i = 0;
  for (auto _ : state) {
    const int64_t k = i++;
    const v1::DeploymentSpec p = Dep(k, k % 2 == 0);
    placement::DeploymentSpec d{.name = p.name(),
                                .model = p.model(),
                                .spec = &specs[p.model()],
                                .vllm = {.max_model_len = 8192},
                                .concurrency = p.concurrency(),
                                .context_tokens = p.context_tokens(),
                                .replicas = p.replicas(),
                                .shared = p.shared()};
    const auto t0 = std::chrono::steady_clock::now();
    auto plan = placement::PlanPlacement(base, placement::PlacementRequest{{d}});
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    benchmark::DoNotOptimize(plan);
  }
  state.counters["p50_ms"] = Percentile(ms, 0.5);
  state.counters["p99_ms"] = Percentile(ms, 0.99);
}
BENCHMARK(BM_PurePlanner)->Arg(100)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);

void BM_PlanBatch1000(benchmark::State& state) {
  Running r = Start(state.range(0), "batch.db");
  v1::PlanPlacementRequest req;
  for (int64_t i = 0; i < 1000; ++i) *req.add_deployments() = Dep(i, i % 2 == 0);
  for (auto _ : state) {
    grpc::ClientContext ctx;
    v1::Plan plan;
    grpc::Status s = r.planner->PlanPlacement(&ctx, req, &plan);
    if (!s.ok()) state.SkipWithError(s.error_message().c_str());
    state.counters["replicas_placed"] = plan.replicas_size();
    state.counters["unplaced"] = plan.unplaced_size();
  }
}
BENCHMARK(BM_PlanBatch1000)->Arg(10000)->Unit(benchmark::kMillisecond)->Iterations(3);

// A scheduler's loop: plan one replica, commit it. Every commit moves the fleet generation, so
// every plan finds the live state one write behind and refreshes it.
void BM_PlanThenCommit(benchmark::State& state) {
  Running r = Start(state.range(0), "plan_commit.db", state.range(1));
  std::vector<double> ms;
  int64_t i = 0;
  for (auto _ : state) {
    v1::PlanPlacementRequest req;
    v1::DeploymentSpec d = Dep(i++, true);
    d.set_replicas(1);
    *req.add_deployments() = d;
    const auto t0 = std::chrono::steady_clock::now();
    grpc::ClientContext pc;
    v1::Plan plan;
    grpc::Status s = r.planner->PlanPlacement(&pc, req, &plan);
    if (!s.ok()) state.SkipWithError(s.error_message().c_str());
    grpc::ClientContext cc;
    v1::CommitPlanRequest commit;
    commit.set_plan_id(plan.plan_id());
    v1::CommitPlanResponse resp;
    s = r.planner->CommitPlan(&cc, commit, &resp);
    if (!s.ok()) state.SkipWithError(s.error_message().c_str());
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  state.counters["p50_ms"] = Percentile(ms, 0.5);
  state.counters["p99_ms"] = Percentile(ms, 0.99);
  const storage::LiveFleetStats stats = r.server->fleet().stats();
  state.counters["full_reads"] = static_cast<double>(stats.full_reads);
  state.counters["incremental_reads"] = static_cast<double>(stats.incremental_reads);
}
BENCHMARK(BM_PlanThenCommit)
    ->Args({10000, kSqlite})
    ->Args({100000, kSqlite})
    ->Args({10000, kPostgres})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);

// Eight clients committing at once, fsync on. First (untimed) each client reserves 120 plans of
// one shared replica in its own pool (reservations hold their GPUs, so later plans go elsewhere);
// then all eight commit them concurrently: CommitPlan throughput, placements per second.
void BM_CommitThroughput8Clients(benchmark::State& state) {
  Running r = Start(state.range(0), "commit.db", state.range(1));
  constexpr int kClients = 8, kPlans = 120;  // 960 kept plans: under the registry's 1,000
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<std::vector<std::string>> plans(kClients);
    {
      std::vector<std::thread> planners;
      for (int c = 0; c < kClients; ++c) {
        planners.emplace_back([&, c] {
          auto planner = v1::PlannerService::NewStub(r.channel);
          for (int i = 0; i < kPlans; ++i) {
            v1::PlanPlacementRequest req;
            v1::DeploymentSpec d = Dep(i, true, absl::StrCat("pool-", c));
            d.set_name(absl::StrCat("c", c, "-", i % 16));
            d.set_replicas(1);
            *req.add_deployments() = d;
            req.set_reserve_ttl_ms(600000);
            req.set_headroom_view(v1::HEADROOM_VIEW_NONE);
            grpc::ClientContext pc;
            v1::Plan plan;
            if (planner->PlanPlacement(&pc, req, &plan).ok() && plan.reserved())
              plans[static_cast<size_t>(c)].push_back(plan.plan_id());
          }
        });
      }
      for (auto& t : planners) t.join();
    }
    const int64_t batches_before = r.server->store().group_batches();
    const int64_t writes_before = r.server->store().group_writes();
    state.ResumeTiming();
    std::atomic<int64_t> committed{0}, failed{0};
    std::vector<double> commit_ms[kClients];
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        auto planner = v1::PlannerService::NewStub(r.channel);
        for (const std::string& id : plans[static_cast<size_t>(c)]) {
          grpc::ClientContext cc;
          v1::CommitPlanRequest commit;
          commit.set_plan_id(id);
          v1::CommitPlanResponse resp;
          const auto c0 = std::chrono::steady_clock::now();
          grpc::Status s = planner->CommitPlan(&cc, commit, &resp);
          commit_ms[c].push_back(
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c0)
                  .count());
          if (s.ok()) {
            committed += resp.placement_ids_size();
          } else {
            ++failed;
          }
        }
      });
    }
    for (auto& t : clients) t.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<double> all;
    for (auto& v : commit_ms) all.insert(all.end(), v.begin(), v.end());
    state.counters["placements_per_s"] = static_cast<double>(committed.load()) / seconds;
    state.counters["failed"] = static_cast<double>(failed.load());
    state.counters["commit_p50_ms"] = Percentile(all, 0.5);
    state.counters["commit_p99_ms"] = Percentile(all, 0.99);
    const int64_t batches = r.server->store().group_batches() - batches_before;
    state.counters["writes_per_transaction"] =
        batches > 0 ? static_cast<double>(r.server->store().group_writes() - writes_before) /
                          static_cast<double>(batches)
                    : 0;
  }
}
BENCHMARK(BM_CommitThroughput8Clients)
    ->Args({10000, kSqlite})
    ->Args({10000, kPostgres})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();

// The whole scheduler loop from eight clients at once: plan one shared replica in the client's
// own pool, commit it, again (plans and commits compete for the two cores).
void BM_PlanAndCommit8Clients(benchmark::State& state) {
  Running r = Start(state.range(0), "plan_commit8.db", state.range(1));
  for (auto _ : state) {
    std::atomic<int64_t> committed{0}, aborted{0};
    const auto t0 = std::chrono::steady_clock::now();
    const auto until = t0 + std::chrono::seconds(5);
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&, c] {
        auto planner = v1::PlannerService::NewStub(r.channel);
        for (int64_t i = 0; std::chrono::steady_clock::now() < until; ++i) {
          v1::PlanPlacementRequest req;
          v1::DeploymentSpec d = Dep(i, true, absl::StrCat("pool-", c));
          d.set_name(absl::StrCat("c", c, "-", i % 16));
          d.set_replicas(1);
          *req.add_deployments() = d;
          req.set_headroom_view(v1::HEADROOM_VIEW_NONE);
          grpc::ClientContext pc;
          v1::Plan plan;
          if (!planner->PlanPlacement(&pc, req, &plan).ok() || plan.replicas_size() == 0) continue;
          grpc::ClientContext cc;
          v1::CommitPlanRequest commit;
          commit.set_plan_id(plan.plan_id());
          v1::CommitPlanResponse resp;
          if (planner->CommitPlan(&cc, commit, &resp).ok()) {
            committed += resp.placement_ids_size();
          } else {
            ++aborted;
          }
        }
      });
    }
    for (auto& t : clients) t.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.counters["placements_per_s"] = static_cast<double>(committed.load()) / seconds;
    state.counters["aborted"] = static_cast<double>(aborted.load());
  }
}
BENCHMARK(BM_PlanAndCommit8Clients)
    ->Args({10000, kSqlite})
    ->Args({10000, kPostgres})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();

// 10,000 nodes through the ImportNodes RPC into an empty fleet (in the CLI's batches of 5,000).
void BM_ImportNodes(benchmark::State& state) {
  const int64_t nodes = state.range(0);
  for (auto _ : state) {
    state.PauseTiming();
    const std::string path = TempPath("import.db");
    std::filesystem::remove(path);
    std::filesystem::remove(path + "-wal");
    {
      auto store = storage::SqlStore::Open({.path = path});
      (void)(*store)->CreateGpuType({.name = "A100-40GB", .memory_bytes = 42505273344});
      (void)(*store)->CreateGpuType({.name = "H100", .memory_bytes = 85017493504});
    }
    auto server = server::FleetplanServer::Start(
        {.listen = "127.0.0.1:0", .metrics_listen = "", .store = {.path = path}});
    auto inventory = v1::InventoryService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string((*server)->port()), grpc::InsecureChannelCredentials()));
    std::vector<v1::ImportNodesRequest> batches;
    for (int64_t i = 0; i < nodes; ++i) {
      if (i % 5000 == 0) batches.emplace_back();
      const placement::Node n = BenchNode(i);
      v1::Node* p = batches.back().add_nodes();
      p->set_name(n.name);
      p->set_pool(n.pool);
      p->set_zone(n.zone);
      for (const auto& g : n.gpus) {
        v1::Gpu* pg = p->add_gpus();
        pg->set_index(g.index);
        pg->set_gpu_type(g.gpu_type);
        pg->set_nvlink_domain(g.nvlink_domain);
        pg->set_uuid(g.uuid);
      }
    }
    state.ResumeTiming();
    for (const auto& b : batches) {
      grpc::ClientContext ctx;
      v1::ImportNodesResponse resp;
      grpc::Status s = inventory->ImportNodes(&ctx, b, &resp);
      if (!s.ok()) state.SkipWithError(s.error_message().c_str());
    }
    state.PauseTiming();
    (*server)->Shutdown(std::chrono::milliseconds(0));
    state.ResumeTiming();
  }
}
BENCHMARK(BM_ImportNodes)->Arg(10000)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace fleetplan

BENCHMARK_MAIN();
