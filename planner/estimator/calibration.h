#ifndef FLEETPLAN_PLANNER_ESTIMATOR_CALIBRATION_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_CALIBRATION_H_

// Scoring the estimator against measured calibration cases (the JSON-lines format of
// ../shared/calibration/README.md). Pure: the caller reads the files and hands over text.
//
// For each case we build the EstimateRequest the case describes, predict the measured quantities
// and pair them. Cases we cannot express are returned with a skip reason, never dropped.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetplan::estimator {

struct MetricPair {
  int64_t measured = 0;
  int64_t predicted = 0;
  double rel_err() const;  // (predicted - measured) / measured
};

// A measured value against the estimate's uncertainty band (uncertainty.h). For memory the safe
// side is measured <= high; for a capacity (KV tokens) it is measured >= low.
struct BandCheck {
  int64_t measured = 0;
  int64_t low = 0;
  int64_t point = 0;
  int64_t high = 0;
  bool capacity = false;
  bool covered() const { return capacity ? measured >= low : measured <= high; }
  // How far the safe end lies from the point estimate, relative to it.
  double width() const;
};

struct CaseResult {
  std::string case_id;
  std::string engine;
  std::string skip_reason;  // non-empty: not scored
  std::map<std::string, MetricPair> metrics;
  std::map<std::string, BandCheck> bands;
  bool measured_oom = false;   // the run ran out of memory (or vLLM failed to start)
  bool predicted_fits = true;  // what the estimator says
};

// Returns the model path a case refers to (its "model" key), or an error for a malformed line.
absl::StatusOr<std::string> CaseModelPath(absl::string_view case_line);

// Scores one case line given the text of its model config.
CaseResult ScoreCase(absl::string_view case_line, absl::string_view model_config);

struct MetricSummary {
  int64_t n = 0;
  double median_abs_rel_err = 0;
  double p90_abs_rel_err = 0;
  double max_abs_rel_err = 0;
  double median_rel_err = 0;  // signed: < 0 means we under-predict
  int64_t under_predicted_over_2pct = 0;
};

struct BandSummary {
  int64_t n = 0;
  int64_t covered = 0;  // on the safe side of the band
  double coverage() const {
    return n > 0 ? static_cast<double>(covered) / static_cast<double>(n) : 1.0;
  }
  double median_width = 0;  // BandCheck::width, median
  std::string worst_case;   // the uncovered case furthest outside, or ""
};

struct ValidationSummary {
  int64_t cases = 0;
  int64_t scored = 0;
  std::vector<std::pair<std::string, std::string>> skipped;  // case, reason
  std::map<std::string, MetricSummary> metrics;
  std::map<std::string, BandSummary> bands;
  int64_t oom_cases = 0;
  int64_t oom_predicted_not_fit = 0;
};

ValidationSummary Summarize(const std::vector<CaseResult>& results);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_CALIBRATION_H_
