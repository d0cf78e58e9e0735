// fleetplan_soak: a real fleetpland process under mixed load for a set time, from a bounded number
// of loopback clients: estimates, plans and commits, releases, headroom reads, node lists,
// inventory writes, WatchHeadroom streams opened and closed, /metrics scrapes and bad requests.
// Every few seconds it samples the server's RSS, open file descriptors and threads (/proc/<pid>).
// It fails when, after the warm-up, RSS grows faster than the stated slope or fds/threads grow by
// more than the stated count, when any request fails in a way its operation does not allow, or when
// the server does not stop cleanly on SIGTERM. deploy/soak.sh runs it; ctest runs 60 seconds.
//
//   fleetplan_soak --fleetpland=PATH [--seconds=60] [--clients=4] [--sample_ms=2000]
//                  [--warmup_fraction=0.33] [--max_rss_slope_mib_per_min=8]
//                  [--max_fd_growth=16] [--max_thread_growth=16] [--report=FILE.json]

#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fleetplan/v1/estimator.grpc.pb.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "fleetplan/v1/planner.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "nlohmann/json.hpp"
#include "tests/testing/data.h"
#include "tests/testing/subprocess.h"

namespace fleetplan::soak {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string fleetpland;
  double seconds = 60;
  int clients = 4;
  int sample_ms = 2000;
  double warmup_fraction = 0.33;
  double max_rss_slope_mib_per_min = 8;
  int64_t max_fd_growth = 16;
  int64_t max_thread_growth = 16;
  std::string report;
};

std::optional<Options> ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) {
      std::fprintf(stderr, "argument \"%s\": expected --name=value\n", a.c_str());
      return std::nullopt;
    }
    const std::string name = a.substr(2, eq - 2), value = a.substr(eq + 1);
    bool ok = true;
    if (name == "fleetpland") {
      o.fleetpland = value;
    } else if (name == "report") {
      o.report = value;
    } else if (name == "seconds") {
      ok = absl::SimpleAtod(value, &o.seconds) && o.seconds > 0 && o.seconds <= 24 * 3600;
    } else if (name == "clients") {
      ok = absl::SimpleAtoi(value, &o.clients) && o.clients >= 1 && o.clients <= 64;
    } else if (name == "sample_ms") {
      ok = absl::SimpleAtoi(value, &o.sample_ms) && o.sample_ms >= 100 && o.sample_ms <= 60000;
    } else if (name == "warmup_fraction") {
      ok = absl::SimpleAtod(value, &o.warmup_fraction) && o.warmup_fraction >= 0 &&
           o.warmup_fraction < 0.9;
    } else if (name == "max_rss_slope_mib_per_min") {
      ok =
          absl::SimpleAtod(value, &o.max_rss_slope_mib_per_min) && o.max_rss_slope_mib_per_min >= 0;
    } else if (name == "max_fd_growth") {
      ok = absl::SimpleAtoi(value, &o.max_fd_growth) && o.max_fd_growth >= 0;
    } else if (name == "max_thread_growth") {
      ok = absl::SimpleAtoi(value, &o.max_thread_growth) && o.max_thread_growth >= 0;
    } else {
      std::fprintf(stderr, "unknown flag --%s\n", name.c_str());
      return std::nullopt;
    }
    if (!ok) {
      std::fprintf(stderr, "--%s=%s: out of range or not a number\n", name.c_str(), value.c_str());
      return std::nullopt;
    }
  }
  if (o.fleetpland.empty()) {
    std::fprintf(stderr, "--fleetpland=PATH is required\n");
    return std::nullopt;
  }
  return o;
}

// One sample of the server process.
struct Sample {
  double t_s = 0;
  int64_t rss_bytes = 0;
  int64_t fds = 0;
  int64_t threads = 0;
};

std::optional<Sample> SampleProcess(pid_t pid, double t_s) {
  Sample s{.t_s = t_s};
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  bool rss = false, threads = false;
  while (std::getline(status, line)) {
    absl::string_view v = line;
    auto number = [&](absl::string_view prefix, int64_t* out) {
      if (v.substr(0, prefix.size()) != prefix) return false;
      absl::string_view rest = absl::StripAsciiWhitespace(v.substr(prefix.size()));
      rest = rest.substr(0, rest.find(' '));
      return absl::SimpleAtoi(rest, out);
    };
    if (number("VmRSS:", &s.rss_bytes)) {
      s.rss_bytes *= 1024;  // kB
      rss = true;
    } else if (number("Threads:", &s.threads)) {
      threads = true;
    }
  }
  DIR* dir = opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (dir == nullptr || !rss || !threads) {
    if (dir != nullptr) closedir(dir);
    return std::nullopt;
  }
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++s.fds;
  }
  closedir(dir);
  return s;
}

// Least-squares slope of y over t.
double Slope(const std::vector<double>& t, const std::vector<double>& y) {
  const double n = static_cast<double>(t.size());
  if (t.size() < 2) return 0;
  double st = 0, sy = 0, stt = 0, sty = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    st += t[i];
    sy += y[i];
    stt += t[i] * t[i];
    sty += t[i] * y[i];
  }
  const double d = n * stt - st * st;
  return d == 0 ? 0 : (n * sty - st * sy) / d;
}

// Latencies of one operation: (seconds since start, microseconds).
struct Latencies {
  std::vector<std::pair<double, double>> calls;
  int64_t ok = 0;
  int64_t expected_errors = 0;  // errors the operation allows (a stale plan, a refused delete)
  std::map<std::string, int64_t> unexpected;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

class Load {
 public:
  Load(std::shared_ptr<grpc::Channel> channel, int metrics_port, Clock::time_point start)
      : estimator_(v1::EstimatorService::NewStub(channel)),
        planner_(v1::PlannerService::NewStub(channel)),
        inventory_(v1::InventoryService::NewStub(channel)),
        headroom_(v1::HeadroomService::NewStub(channel)),
        metrics_port_(metrics_port),
        start_(start) {}

  // One client: runs the mix until `until`. Keeps at most 16 live placements of its own.
  void Client(int id, Clock::time_point until) {
    std::vector<int64_t> live;
    for (int64_t i = 0; Clock::now() < until; ++i) {
      switch (i % 10) {
        case 0:
        case 5:
          Estimate(i);
          break;
        case 1:
        case 6:
          PlanAndCommit(id, i, &live);
          break;
        case 2:
          Headroom();
          break;
        case 3:
          ListNodes();
          break;
        case 4:
          NodeChurn(id, i);
          break;
        case 7:
          Watch();
          break;
        case 8:
          Scrape();
          break;
        case 9:
          BadRequest(i);
          break;
      }
      while (live.size() > 16) {
        Release(live.front());
        live.erase(live.begin());
      }
    }
    for (int64_t p : live) Release(p);
  }

  std::map<std::string, Latencies> Results() {
    std::lock_guard<std::mutex> lock(mu_);
    return ops_;
  }

 private:
  static grpc::ClientContext* Deadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return &ctx;
  }

  // Records one call of `op`: ok, an allowed error, or an unexpected one (named by its status).
  void Record(const std::string& op, Clock::time_point began, const grpc::Status& s,
              std::initializer_list<grpc::StatusCode> allowed = {}) {
    const auto now = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    Latencies& l = ops_[op];
    l.calls.emplace_back(std::chrono::duration<double>(now - start_).count(),
                         std::chrono::duration<double, std::micro>(now - began).count());
    if (s.ok()) {
      ++l.ok;
    } else if (std::find(allowed.begin(), allowed.end(), s.error_code()) != allowed.end()) {
      ++l.expected_errors;
    } else {
      ++l.unexpected[absl::StrCat(s.error_code(), ": ", s.error_message().substr(0, 200))];
    }
  }

  void Estimate(int64_t i) {
    v1::EstimateRequest req;
    req.set_model_name("small");
    req.set_gpu_type("H100");
    req.set_concurrency(1 + i % 64);
    req.set_context_tokens(1024 << (i % 5));
    grpc::ClientContext ctx;
    v1::EstimateResponse resp;
    const auto began = Clock::now();
    Record("estimate", began, estimator_->Estimate(Deadline(ctx), req, &resp));
  }

  void PlanAndCommit(int id, int64_t i, std::vector<int64_t>* live) {
    v1::PlanPlacementRequest req;
    v1::DeploymentSpec* d = req.add_deployments();
    d->set_name(absl::StrCat("c", id, "-", i % 8));  // a few deployments, many replicas
    d->set_model("small");
    d->set_replicas(1 + i % 2);
    d->set_shared(true);
    d->set_context_tokens(4096);
    grpc::ClientContext pc;
    v1::Plan plan;
    auto began = Clock::now();
    grpc::Status s = planner_->PlanPlacement(Deadline(pc), req, &plan);
    // RESOURCE_EXHAUSTED: admission control refused a plan over its slots, which it may.
    Record("plan", began, s, {grpc::StatusCode::RESOURCE_EXHAUSTED});
    if (!s.ok() || plan.replicas_size() == 0) return;
    grpc::ClientContext cc;
    v1::CommitPlanRequest commit;
    commit.set_plan_id(plan.plan_id());
    v1::CommitPlanResponse resp;
    began = Clock::now();
    s = planner_->CommitPlan(Deadline(cc), commit, &resp);
    // ABORTED: another client changed a GPU this plan uses (re-plan).
    Record("commit", began, s, {grpc::StatusCode::ABORTED});
    if (s.ok()) live->insert(live->end(), resp.placement_ids().begin(), resp.placement_ids().end());
  }

  void Release(int64_t placement) {
    v1::ReleasePlacementRequest req;
    req.set_placement_id(placement);
    grpc::ClientContext ctx;
    v1::PlacementRecord resp;
    const auto began = Clock::now();
    Record("release", began, planner_->ReleasePlacement(Deadline(ctx), req, &resp));
  }

  void Headroom() {
    v1::GetFleetHeadroomRequest req;
    req.set_include_gpus(true);
    grpc::ClientContext ctx;
    v1::FleetHeadroom resp;
    const auto began = Clock::now();
    Record("headroom", began, headroom_->GetFleetHeadroom(Deadline(ctx), req, &resp));
  }

  void ListNodes() {
    grpc::ClientContext ctx;
    v1::ListNodesResponse resp;
    const auto began = Clock::now();
    Record("list_nodes", began, inventory_->ListNodes(Deadline(ctx), {}, &resp));
  }

  // Adds a node, cordons it and deletes it (nothing is placed on a cordoned node, so the delete
  // succeeds unless a plan took the node between the add and the cordon).
  void NodeChurn(int id, int64_t i) {
    const std::string name = absl::StrCat("churn", id, "-", i);
    v1::CreateNodeRequest create;
    create.mutable_node()->set_name(name);
    create.mutable_node()->set_pool("p");
    for (int g = 0; g < 8; ++g) {
      v1::Gpu* gpu = create.mutable_node()->add_gpus();
      gpu->set_index(g);
      gpu->set_gpu_type("H100");
      gpu->set_healthy(true);
    }
    {
      grpc::ClientContext ctx;
      v1::Node node;
      const auto began = Clock::now();
      Record("node_create", began, inventory_->CreateNode(Deadline(ctx), create, &node));
    }
    {
      v1::CordonNodeRequest req;
      req.set_name(name);
      grpc::ClientContext ctx;
      v1::Node node;
      const auto began = Clock::now();
      Record("node_cordon", began, inventory_->CordonNode(Deadline(ctx), req, &node));
    }
    {
      v1::DeleteNodeRequest req;
      req.set_name(name);
      grpc::ClientContext ctx;
      google::protobuf::Empty empty;
      const auto began = Clock::now();
      Record("node_delete", began, inventory_->DeleteNode(Deadline(ctx), req, &empty),
             {grpc::StatusCode::FAILED_PRECONDITION});
    }
  }

  // Opens a stream, reads its first update and closes it.
  void Watch() {
    grpc::ClientContext ctx;
    Deadline(ctx);
    const auto began = Clock::now();
    auto reader = headroom_->WatchHeadroom(&ctx, {});
    v1::FleetHeadroom h;
    const bool first = reader->Read(&h);
    ctx.TryCancel();
    while (reader->Read(&h)) {
    }
    grpc::Status s = reader->Finish();
    if (first && s.error_code() == grpc::StatusCode::CANCELLED) s = grpc::Status::OK;
    Record("watch", began, s);
  }

  void Scrape() {
    const auto began = Clock::now();
    auto body = testing::HttpGet(metrics_port_, "/metrics");
    const bool ok = body.has_value() && body->find("fleetplan_") != std::string::npos;
    Record("scrape", began,
           ok ? grpc::Status::OK
              : grpc::Status(grpc::StatusCode::UNAVAILABLE, "GET /metrics failed or was empty"));
  }

  // Requests every server must refuse with INVALID_ARGUMENT (or NOT_FOUND for unknown names).
  void BadRequest(int64_t i) {
    v1::EstimateRequest req;
    if (i % 20 == 9) {
      req.set_config_json("{\"hidden_size\": [[[[");
    } else {
      req.set_model_name("small");
      req.set_gpu_type("H100");
      req.set_context_tokens(-5);
    }
    grpc::ClientContext ctx;
    v1::EstimateResponse resp;
    const auto began = Clock::now();
    grpc::Status s = estimator_->Estimate(Deadline(ctx), req, &resp);
    Record("bad_request", began,
           s.error_code() == grpc::StatusCode::INVALID_ARGUMENT
               ? grpc::Status::OK
               : grpc::Status(grpc::StatusCode::UNKNOWN,
                              absl::StrCat("a bad request was answered ", s.error_code(), " ",
                                           s.error_message())));
  }

  std::unique_ptr<v1::EstimatorService::Stub> estimator_;
  std::unique_ptr<v1::PlannerService::Stub> planner_;
  std::unique_ptr<v1::InventoryService::Stub> inventory_;
  std::unique_ptr<v1::HeadroomService::Stub> headroom_;
  const int metrics_port_;
  const Clock::time_point start_;
  std::mutex mu_;
  std::map<std::string, Latencies> ops_;
};

int Run(const Options& o) {
  const std::string dir = testing::MakeTempDir("soak_");
  if (std::string made = testing::MakeSmallFleet(dir + "/fleet.db", 8); !made.empty()) {
    std::fprintf(stderr, "making the fleet: %s\n", made.c_str());
    return 1;
  }
  auto server =
      testing::Process::Start({o.fleetpland, "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0", "--http_listen=",
                               "--db=" + dir + "/fleet.db", "--port_file=" + dir + "/port",
                               "--metrics_port_file=" + dir + "/metrics_port"},
                              dir + "/server.log");
  if (!server.has_value()) {
    std::fprintf(stderr, "cannot start %s\n", o.fleetpland.c_str());
    return 1;
  }
  auto port = testing::WaitForFile(dir + "/port", std::chrono::seconds(30));
  auto metrics_port = testing::WaitForFile(dir + "/metrics_port", std::chrono::seconds(30));
  int grpc_port = 0, http_port = 0;
  if (!port || !metrics_port || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*port), &grpc_port) ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(*metrics_port), &http_port)) {
    std::fprintf(stderr, "the server did not report its ports (log: %s/server.log)\n", dir.c_str());
    return 1;
  }
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_port),
                                     grpc::InsecureChannelCredentials());
  const auto start = Clock::now();
  const auto until =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  Load load(channel, http_port, start);

  std::vector<Sample> samples;
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done) {
      const double t = std::chrono::duration<double>(Clock::now() - start).count();
      if (auto s = SampleProcess(server->pid(), t)) samples.push_back(*s);
      for (int waited = 0; waited < o.sample_ms && !done; waited += 50)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::vector<std::thread> clients;
  for (int c = 0; c < o.clients; ++c) clients.emplace_back([&, c] { load.Client(c, until); });
  for (auto& c : clients) c.join();
  done = true;
  sampler.join();

  server->Signal(SIGTERM);
  const std::optional<int> exit_code = server->Wait(std::chrono::seconds(30));

  // Verdicts.
  std::vector<std::string> failures;
  const double warmup_s = o.seconds * o.warmup_fraction;
  std::vector<double> t, rss;
  const Sample* at_warmup = nullptr;
  int64_t max_fds = 0, max_threads = 0;
  for (const Sample& s : samples) {
    if (s.t_s < warmup_s) continue;
    if (at_warmup == nullptr) at_warmup = &s;
    t.push_back(s.t_s / 60.0);
    rss.push_back(static_cast<double>(s.rss_bytes) / (1 << 20));
    max_fds = std::max(max_fds, s.fds);
    max_threads = std::max(max_threads, s.threads);
  }
  const double slope = Slope(t, rss);
  if (at_warmup == nullptr || t.size() < 3) {
    failures.push_back("too few samples after the warm-up (raise --seconds)");
  } else {
    if (slope > o.max_rss_slope_mib_per_min)
      failures.push_back(absl::StrFormat("RSS grows %.2f MiB/min after the warm-up (limit %.2f)",
                                         slope, o.max_rss_slope_mib_per_min));
    if (max_fds - at_warmup->fds > o.max_fd_growth)
      failures.push_back(absl::StrCat("open fds grew from ", at_warmup->fds, " to ", max_fds,
                                      " (limit +", o.max_fd_growth, ")"));
    if (max_threads - at_warmup->threads > o.max_thread_growth)
      failures.push_back(absl::StrCat("threads grew from ", at_warmup->threads, " to ", max_threads,
                                      " (limit +", o.max_thread_growth, ")"));
  }
  if (exit_code != 0)
    failures.push_back(absl::StrCat("fleetpland did not exit 0 on SIGTERM (",
                                    exit_code ? absl::StrCat(*exit_code) : "timeout", ")"));

  nlohmann::json report = {{"seconds", o.seconds},
                           {"clients", o.clients},
                           {"warmup_seconds", warmup_s},
                           {"rss_slope_mib_per_min", slope},
                           {"samples", nlohmann::json::array()},
                           {"operations", nlohmann::json::object()}};
  for (const Sample& s : samples)
    report["samples"].push_back(
        {{"t_s", s.t_s}, {"rss_bytes", s.rss_bytes}, {"fds", s.fds}, {"threads", s.threads}});
  std::printf("%-12s %9s %8s %8s %10s %10s %12s %12s\n", "operation", "calls", "allowed", "failed",
              "p50_ms", "p99_ms", "p99_first_ms", "p99_last_ms");
  int64_t total_calls = 0;
  for (const auto& [op, l] : load.Results()) {
    std::vector<double> all, first, last;
    const double tenth = o.seconds / 10;
    for (const auto& [when, us] : l.calls) {
      all.push_back(us / 1000);
      if (when < tenth) first.push_back(us / 1000);
      if (when >= o.seconds - tenth) last.push_back(us / 1000);
    }
    int64_t unexpected = 0;
    for (const auto& [what, n] : l.unexpected) {
      unexpected += n;
      failures.push_back(absl::StrCat(op, ": ", n, " x ", what));
    }
    total_calls += static_cast<int64_t>(all.size());
    std::printf("%-12s %9zu %8lld %8lld %10.2f %10.2f %12.2f %12.2f\n", op.c_str(), all.size(),
                static_cast<long long>(l.expected_errors), static_cast<long long>(unexpected),
                Percentile(all, 0.5), Percentile(all, 0.99), Percentile(first, 0.99),
                Percentile(last, 0.99));
    report["operations"][op] = {{"calls", all.size()},
                                {"allowed_errors", l.expected_errors},
                                {"unexpected_errors", unexpected},
                                {"p50_ms", Percentile(all, 0.5)},
                                {"p99_ms", Percentile(all, 0.99)},
                                {"p99_first_tenth_ms", Percentile(first, 0.99)},
                                {"p99_last_tenth_ms", Percentile(last, 0.99)}};
  }
  if (!samples.empty()) {
    std::printf(
        "%lld calls in %.0f s; RSS %.1f -> %.1f MiB (slope after %.0f s warm-up: %.2f MiB/min), "
        "fds %lld -> %lld, threads %lld -> %lld\n",
        static_cast<long long>(total_calls), o.seconds,
        static_cast<double>(samples.front().rss_bytes) / (1 << 20),
        static_cast<double>(samples.back().rss_bytes) / (1 << 20), warmup_s, slope,
        static_cast<long long>(samples.front().fds), static_cast<long long>(samples.back().fds),
        static_cast<long long>(samples.front().threads),
        static_cast<long long>(samples.back().threads));
  }
  report["failures"] = failures;
  if (!o.report.empty()) std::ofstream(o.report) << report.dump(2) << "\n";
  for (const std::string& f : failures) std::printf("FAIL: %s\n", f.c_str());
  if (failures.empty()) {
    std::filesystem::remove_all(dir);
    std::printf("soak passed\n");
    return 0;
  }
  std::printf("soak failed (server log kept in %s)\n", dir.c_str());
  return 1;
}

}  // namespace
}  // namespace fleetplan::soak

int main(int argc, char** argv) {
  auto options = fleetplan::soak::ParseArgs(argc, argv);
  if (!options) return 2;
  return fleetplan::soak::Run(*options);
}
