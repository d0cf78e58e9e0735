// Estimate RPC load on loopback: an in-process fleetpland and several client channels, each keeping
// a number of Estimate calls (a catalog model) in flight through gRPC's callback client API.
// Reports requests/s and p50/p99 latency. Goal: >= 20,000 req/s on the 2-core machine (vllm).
// --engine picks the engine the calls ask for: vllm (tp 2, 32 x 8k), sglang (tp 2), llama.cpp
// (the config converted to q4_K_M, -c 32768 -np 4: the conversion runs on every call).
//
//   ./build-release/bench/rpc_bench [--seconds=5] [--channels=4] [--inflight=16] [--engine=vllm]

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/estimator.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "server/server.h"

namespace {

int64_t Arg(int argc, char** argv, const std::string& name, int64_t fallback) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--" + name + "=", 0) == 0) return std::atoll(a.c_str() + name.size() + 3);
  }
  return fallback;
}

std::string StringArg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--" + name + "=", 0) == 0) return a.substr(name.size() + 3);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  // As fleetpland does: absl's debug-build deadlock detection costs a graph update per lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const int64_t seconds = Arg(argc, argv, "seconds", 5);
  const int64_t channels = Arg(argc, argv, "channels", 4);
  const int64_t per_channel = Arg(argc, argv, "inflight", 16);
  const std::string engine = StringArg(argc, argv, "engine", "vllm");
  if (engine != "vllm" && engine != "sglang" && engine != "llama.cpp") {
    std::fprintf(stderr, "--engine=%s: use vllm, sglang or llama.cpp\n", engine.c_str());
    return 2;
  }
  const std::string dir = std::filesystem::temp_directory_path() / "fleetplan_rpc_bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto server = fleetplan::server::FleetplanServer::Start(
      {.listen = "127.0.0.1:0", .metrics_listen = "", .store = {.path = dir + "/fleet.db"}});
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  const std::string target = "127.0.0.1:" + std::to_string((*server)->port());
  {
    std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/llama-3.1-8b-instruct.json");
    std::stringstream ss;
    ss << in.rdbuf();
    auto catalog = fleetplan::v1::CatalogService::NewStub(
        grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    fleetplan::v1::ImportModelRequest req;
    req.set_name("llama-8b");
    req.set_config_json(ss.str());
    fleetplan::v1::Model m;
    if (!catalog->ImportModel(&ctx, req, &m).ok()) return 1;
  }
  fleetplan::v1::EstimateRequest req;
  req.set_model_name("llama-8b");
  req.set_gpu_type("H100-80GB");
  req.mutable_parallelism()->set_tp(2);
  req.mutable_vllm()->set_max_model_len(8192);
  req.set_concurrency(32);
  req.set_context_tokens(8192);
  if (engine == "sglang") req.set_engine(fleetplan::v1::ENGINE_SGLANG);
  if (engine == "llama.cpp") {
    req.set_engine(fleetplan::v1::ENGINE_LLAMA_CPP);
    req.mutable_parallelism()->set_tp(1);
    req.mutable_vllm()->Clear();
    req.set_concurrency(4);
    req.mutable_llama_cpp()->set_file_type("q4_K_M");
  }

  // Callback-API clients: each channel keeps `inflight` calls outstanding; a completion records
  // its latency and issues the next call, so few threads drive many concurrent RPCs.
  struct Driver {
    std::unique_ptr<fleetplan::v1::EstimatorService::Stub> stub;
    absl::Mutex mu;
    std::vector<double> latencies;
    int64_t errors = 0;
    int64_t outstanding = 0;
  };
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<Driver>> drivers;
  struct Call {
    grpc::ClientContext ctx;
    fleetplan::v1::EstimateResponse resp;
    std::chrono::steady_clock::time_point t0;
  };
  std::function<void(Driver*)> issue = [&](Driver* d) {
    auto* call = new Call;
    call->t0 = std::chrono::steady_clock::now();
    d->stub->async()->Estimate(&call->ctx, &req, &call->resp, [&, d, call](grpc::Status s) {
      const double us =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - call->t0)
              .count();
      delete call;
      bool again = false;
      {
        absl::MutexLock lock(&d->mu);
        d->latencies.push_back(us);
        if (!s.ok()) ++d->errors;
        again = !stop.load();
        if (!again) --d->outstanding;
      }
      if (again) issue(d);
    });
  };
  for (int64_t c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("fleetplan.bench.channel", static_cast<int>(c));  // distinct channels, not shared
    auto d = std::make_unique<Driver>();
    d->stub = fleetplan::v1::EstimatorService::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
    drivers.push_back(std::move(d));
  }
  const auto start = std::chrono::steady_clock::now();
  for (auto& d : drivers) {
    for (int64_t i = 0; i < per_channel; ++i) {
      {
        absl::MutexLock lock(&d->mu);
        ++d->outstanding;
      }
      issue(d.get());
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& d : drivers) {
    auto drained = [&d]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(d->mu) { return d->outstanding == 0; };
    absl::MutexLock lock(&d->mu);
    d->mu.Await(absl::Condition(&drained));
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> all;
  int64_t errors = 0;
  for (auto& d : drivers) {
    absl::MutexLock lock(&d->mu);
    all.insert(all.end(), d->latencies.begin(), d->latencies.end());
    errors += d->errors;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double q) {
    return all.empty() ? 0.0
                       : all[std::min(all.size() - 1,
                                      static_cast<size_t>(q * static_cast<double>(all.size())))];
  };
  std::printf(
      "Estimate RPC (%s): %zu calls in %.2f s over %lld channels x %lld in flight: %.0f req/s, "
      "p50 %.0f us, p99 %.0f us, errors %lld\n",
      engine.c_str(), all.size(), elapsed, static_cast<long long>(channels),
      static_cast<long long>(per_channel), static_cast<double>(all.size()) / elapsed, pct(0.50),
      pct(0.99), static_cast<long long>(errors));
  (*server)->Shutdown(std::chrono::milliseconds(100));
  std::filesystem::remove_all(dir);
  return errors == 0 ? 0 : 1;
}
