// `fleetplan validate --cases FILE.jsonl`: scores the estimator on calibration cases (format of
// ../shared/calibration/README.md). Model paths are relative to the cases file.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "clients/cli.h"
#include "clients/vllm_command.h"
#include "clients/vllm_log.h"
#include "nlohmann/json.hpp"
#include "planner/common/status_macros.h"
#include "planner/estimator/calibration.h"
#include "planner/estimator/gpu_catalog.h"

namespace fleetplan::cli {
namespace {

using estimator::CaseResult;
using json = nlohmann::json;

json SummaryJson(const estimator::ValidationSummary& s, const std::vector<CaseResult>& results) {
  json out;
  out["cases"] = s.cases;
  out["scored"] = s.scored;
  out["skipped"] = json::array();
  for (const auto& [id, reason] : s.skipped)
    out["skipped"].push_back({{"case", id}, {"reason", reason}});
  out["metrics"] = json::object();
  for (const auto& [name, m] : s.metrics) {
    out["metrics"][name] = {{"n", m.n},
                            {"median_abs_rel_err", m.median_abs_rel_err},
                            {"p90_abs_rel_err", m.p90_abs_rel_err},
                            {"max_abs_rel_err", m.max_abs_rel_err},
                            {"median_rel_err", m.median_rel_err},
                            {"under_predicted_over_2pct", m.under_predicted_over_2pct}};
  }
  out["bands"] = json::object();
  for (const auto& [name, b] : s.bands) {
    out["bands"][name] = {{"n", b.n},
                          {"covered", b.covered},
                          {"coverage", b.coverage()},
                          {"median_width", b.median_width},
                          {"worst_case", b.worst_case}};
  }
  out["oom_cases"] = {{"n", s.oom_cases}, {"predicted_not_fit", s.oom_predicted_not_fit}};
  out["per_case"] = json::array();
  for (const CaseResult& r : results) {
    json c = {{"case", r.case_id}, {"engine", r.engine}};
    if (!r.skip_reason.empty()) c["skipped"] = r.skip_reason;
    if (r.measured_oom) c["oom"] = true;
    c["predicted_fits"] = r.predicted_fits;
    for (const auto& [name, pair] : r.metrics) {
      c["metrics"][name] = {
          {"measured", pair.measured}, {"predicted", pair.predicted}, {"rel_err", pair.rel_err()}};
    }
    for (const auto& [name, b] : r.bands) {
      c["bands"][name] = {{"measured", b.measured},
                          {"low", b.low},
                          {"point", b.point},
                          {"high", b.high},
                          {"covered", b.covered()}};
    }
    out["per_case"].push_back(c);
  }
  return out;
}

// Fills what the log does not say from the `vllm serve` line it ran with (--vllm).
absl::Status FillFromServeLine(const std::string& line, VllmLog& log) {
  ASSIGN_OR_RETURN(VllmCommandLine cmd, ParseVllmCommandLine(line));
  for (const std::string& flag : cmd.flags) {
    const std::pair<std::string, std::string> kv = absl::StrSplit(flag, absl::MaxSplits('=', 1));
    const std::string& v = kv.second;
    int64_t n = 0;
    double d = 0;
    if (kv.first == "--tp" && absl::SimpleAtoi(v, &n) && !log.tp) log.tp = n;
    if (kv.first == "--pp" && absl::SimpleAtoi(v, &n) && !log.pp) log.pp = n;
    if (kv.first == "--max-model-len" && absl::SimpleAtoi(v, &n) && !log.max_model_len)
      log.max_model_len = n;
    if (kv.first == "--max-num-seqs" && absl::SimpleAtoi(v, &n) && !log.max_num_seqs)
      log.max_num_seqs = n;
    if (kv.first == "--max-num-batched-tokens" && absl::SimpleAtoi(v, &n) &&
        !log.max_num_batched_tokens)
      log.max_num_batched_tokens = n;
    if (kv.first == "--block-size" && absl::SimpleAtoi(v, &n) && !log.block_size)
      log.block_size = n;
    if (kv.first == "--gpu-memory-utilization" && absl::SimpleAtod(v, &d) &&
        !log.gpu_memory_utilization)
      log.gpu_memory_utilization = d;
    if (kv.first == "--enforce-eager" && !log.enforce_eager) log.enforce_eager = v != "false";
    for (const char* key : {"dtype", "quantization", "kv-cache-dtype"}) {
      std::string k = key;
      std::replace(k.begin(), k.end(), '-', '_');
      if (kv.first == std::string("--") + key && log.config.count(k) == 0) log.config[k] = v;
    }
  }
  return absl::OkStatus();
}

// `validate --vllm-log=FILE --model=config.json`: one case from the user's own log, scored, and
// with --append added to a cases file.
int RunValidateLog(const Invocation& inv) {
  const FlagSet& f = inv.flags;
  const std::string log_path = f.GetString("vllm-log");
  const std::string model_path = f.GetString("model");
  if (model_path.empty()) {
    inv.err << "fleetplan validate: --vllm-log needs --model=config.json (the model it served)\n";
    return kExitUsage;
  }
  auto text = ReadFileText("vLLM log", log_path);
  if (!text.ok()) return ReportError(inv.err, "validate", text.status());
  auto model = ReadFileText("model", model_path);
  if (!model.ok()) return ReportError(inv.err, "validate", model.status());
  auto log = ParseVllmLog(*text, log_path);
  if (!log.ok()) {
    inv.err << "fleetplan validate: " << log.status().message() << "\n";
    return kExitUsage;
  }
  if (f.IsSet("vllm")) {
    if (absl::Status s = FillFromServeLine(f.GetString("vllm"), *log); !s.ok()) {
      inv.err << "fleetplan validate: --vllm: " << s.message() << "\n";
      return kExitUsage;
    }
  }
  CaseInputs in{.case_id = f.GetString("case-id"),
                .gpu = f.GetString("gpu"),
                .source = f.GetString("source").empty() ? log_path : f.GetString("source")};
  if (in.case_id.empty())
    in.case_id = "vllm/log-" + std::filesystem::path(log_path).stem().string();
  if (f.GetInt("gpu-memory-bytes") > 0) {
    in.gpu_total_bytes = f.GetInt("gpu-memory-bytes");
    in.gpu_total_source = "--gpu-memory-bytes";
  } else if (auto gpu = estimator::FindGpu(in.gpu); gpu.ok()) {
    in.gpu = gpu->name;
    in.gpu_total_bytes = gpu->memory_bytes;
    in.gpu_total_source = absl::StrCat("standard: built-in table (", gpu->source, ")");
  }
  // Model path as the case will hold it: relative to the cases file it goes into, else as given.
  const std::string append = f.GetString("append");
  in.model_path = model_path;
  if (!append.empty()) {
    std::error_code ec;
    const auto rel = std::filesystem::relative(
        std::filesystem::absolute(model_path, ec),
        std::filesystem::absolute(std::filesystem::path(append).parent_path(), ec), ec);
    if (!ec && !rel.empty()) in.model_path = rel.string();
  }
  auto c = CaseFromLog(*log, in);
  if (!c.ok()) {
    inv.err << "fleetplan validate: " << log_path << ": " << c.status().message() << "\n";
    return kExitUsage;
  }
  const std::string line = c->dump(-1, ' ', false, json::error_handler_t::replace);
  const CaseResult r = estimator::ScoreCase(line, *model);
  if (!append.empty()) {
    std::ofstream out(append, std::ios::app);
    out << line << "\n";
    if (!out) {
      inv.err << "fleetplan validate: cannot append to " << append << "\n";
      return kExitError;
    }
  }
  if (inv.output == OutputFormat::kJson) {
    json out = SummaryJson(estimator::Summarize({r}), {r});
    out["case_line"] = *c;
    inv.out << out.dump(2) << "\n";
    return r.skip_reason.empty() ? kExitOk : kExitError;
  }
  inv.out << absl::StrFormat(
      "%s: vLLM %s (%s), tp=%d, %s, max_model_len %d, utilization %.2f%s\n", in.case_id,
      (*c)["engine_version"].get<std::string>(), (*c)["engine_generation"].get<std::string>(),
      (*c)["tensor_parallel_size"].get<int64_t>(), in.gpu, (*c)["max_model_len"].get<int64_t>(),
      (*c)["gpu_memory_utilization"].get<double>(), log->failed ? ", FAILED to start" : "");
  if (!r.skip_reason.empty()) {
    inv.out << "not scored: " << r.skip_reason << "\n";
    return kExitError;
  }
  for (const auto& [name, pair] : r.metrics) {
    inv.out << absl::StrFormat("  %-26s measured %16d  predicted %16d  %+7.2f%%\n", name,
                               pair.measured, pair.predicted, 100 * pair.rel_err());
  }
  for (const auto& [name, b] : r.bands) {
    inv.out << absl::StrFormat("  band %-21s [%d, %d] around %d: %s\n", name, b.low, b.high,
                               b.point, b.covered() ? "measured inside" : "measured OUTSIDE");
  }
  if (r.measured_oom) {
    inv.out << (r.predicted_fits ? "  the estimator predicted it would fit: MISSED\n"
                                 : "  the estimator predicted it would not fit: ok\n");
  }
  if (!append.empty()) inv.out << "appended to " << append << "\n";
  return kExitOk;
}

int RunValidate(const Invocation& inv) {
  if (inv.flags.IsSet("vllm-log")) return RunValidateLog(inv);
  const std::string path = inv.flags.GetString("cases");
  if (path.empty()) {
    inv.err << "fleetplan validate: --cases=FILE.jsonl or --vllm-log=FILE is required\n";
    return kExitUsage;
  }
  auto text = ReadFileText("--cases", path);
  if (!text.ok()) return ReportError(inv.err, "validate", text.status());
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  std::vector<CaseResult> results;
  std::istringstream lines(*text);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto model_path = estimator::CaseModelPath(line);
    if (!model_path.ok()) {
      CaseResult r;
      r.case_id = absl::StrCat(path, ":", line_no);
      r.skip_reason = std::string(model_path.status().message());
      results.push_back(r);
      continue;
    }
    auto model = ReadFileText("model", (base / *model_path).string());
    if (!model.ok()) {
      CaseResult r = estimator::ScoreCase(line, "{}");
      r.skip_reason = std::string(model.status().message());
      results.push_back(r);
      continue;
    }
    results.push_back(estimator::ScoreCase(line, *model));
  }
  const estimator::ValidationSummary summary = estimator::Summarize(results);
  if (inv.output == OutputFormat::kJson) {
    inv.out << SummaryJson(summary, results).dump(2) << "\n";
    return kExitOk;
  }
  if (inv.flags.GetBool("per-case")) {
    for (const CaseResult& r : results) {
      if (!r.skip_reason.empty()) {
        inv.out << absl::StrFormat("%-58s skipped: %s\n", r.case_id, r.skip_reason);
        continue;
      }
      std::string row = absl::StrFormat("%-58s", r.case_id);
      for (const auto& [name, pair] : r.metrics) {
        if (name == "params") continue;
        absl::StrAppendFormat(&row, " %s %+.2f%%", name, 100 * pair.rel_err());
      }
      if (r.measured_oom)
        absl::StrAppend(&row, r.predicted_fits ? " OOM-MISSED" : " oom-predicted");
      inv.out << row << "\n";
    }
    inv.out << "\n";
  }
  inv.out << absl::StrFormat(
      "%s: %d cases, %d scored, %d skipped, OOM cases %d (predicted not to fit: %d)\n", path,
      summary.cases, summary.scored, summary.skipped.size(), summary.oom_cases,
      summary.oom_predicted_not_fit);
  for (const auto& [id, reason] : summary.skipped)
    inv.out << "  skipped " << id << ": " << reason << "\n";
  for (const auto& [name, m] : summary.metrics) {
    inv.out << absl::StrFormat(
        "%-26s n=%-4d median |err| %6.2f%%  p90 %6.2f%%  max %6.2f%%  median signed %+6.2f%%  "
        "under>2%% %d\n",
        name, m.n, 100 * m.median_abs_rel_err, 100 * m.p90_abs_rel_err, 100 * m.max_abs_rel_err,
        100 * m.median_rel_err, m.under_predicted_over_2pct);
  }
  for (const auto& [name, b] : summary.bands) {
    inv.out << absl::StrFormat(
        "band %-21s n=%-4d on the safe side %6.2f%% (%d)  median width %5.2f%%%s\n", name, b.n,
        100 * b.coverage(), b.covered, 100 * b.median_width,
        b.worst_case.empty() ? "" : absl::StrCat("  furthest outside: ", b.worst_case));
  }
  return kExitOk;
}

}  // namespace

std::vector<Command> ValidateCommands() {
  return {Command{
      .name = "validate",
      .summary = "score the estimator on measured calibration cases (JSON lines)",
      .make_flags =
          [] {
            FlagSet f("validate",
                      "--cases=FILE.jsonl [--per-case] | --vllm-log=FILE --model=config.json "
                      "[--append=CASES.jsonl] [--output=table|json]");
            AddOutputFlag(f);
            f.String("cases", "", "calibration cases file (model paths relative to it)");
            f.Bool("per-case", false, "print every case's errors before the summary (table)");
            f.String("vllm-log", "", "a vLLM startup log (V0 or V1): score the estimator on it");
            f.String("model", "", "--vllm-log: the config.json of the model it served");
            f.String("vllm", "",
                     "--vllm-log: the `vllm serve ...` line it ran with (fills what "
                     "the log does not print)");
            f.String("gpu", "H100-80GB",
                     "--vllm-log: the GPU (built-in table) when the log "
                     "does not print its total");
            f.Int("gpu-memory-bytes", 0, "--vllm-log: the GPU's total (cudaMemGetInfo) instead");
            f.String("case-id", "", "--vllm-log: the case id (default vllm/log-<file stem>)");
            f.String("source", "", "--vllm-log: where the log came from (default its path)");
            f.String("append", "", "--vllm-log: add the case to this cases file");
            return f;
          },
      .run = RunValidate,
  }};
}

}  // namespace fleetplan::cli
