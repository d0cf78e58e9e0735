// `fleetplan validate --cases FILE.jsonl`: scores the estimator on calibration cases (format of
// ../shared/calibration/README.md). Model paths are relative to the cases file.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/cli.h"
#include "nlohmann/json.hpp"
#include "planner/estimator/calibration.h"

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
    out["per_case"].push_back(c);
  }
  return out;
}

int RunValidate(const Invocation& inv) {
  const std::string path = inv.flags.GetString("cases");
  if (path.empty()) {
    inv.err << "fleetplan validate: --cases=FILE.jsonl is required\n";
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
  return kExitOk;
}

}  // namespace

std::vector<Command> ValidateCommands() {
  return {Command{
      .name = "validate",
      .summary = "score the estimator on measured calibration cases (JSON lines)",
      .make_flags =
          [] {
            FlagSet f("validate", "--cases=FILE.jsonl [--per-case] [--output=table|json]");
            AddOutputFlag(f);
            f.String("cases", "", "calibration cases file (model paths relative to it)");
            f.Bool("per-case", false, "print every case's errors before the summary (table)");
            return f;
          },
      .run = RunValidate,
  }};
}

}  // namespace fleetplan::cli
