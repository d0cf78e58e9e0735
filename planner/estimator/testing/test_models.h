#ifndef FLEETPLAN_PLANNER_ESTIMATOR_TESTING_TEST_MODELS_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_TESTING_TEST_MODELS_H_

// Tests only: the published configs kept in tests/data/models (each says where it comes from in
// its _source), read by name. The test target defines FLEETPLAN_TESTDATA_DIR.

#include <fstream>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"

namespace fleetplan::estimator::testing {

// tests/data/models/<file> as text ("" when missing: the parse then fails and says so).
inline std::string TestModelText(const std::string& file) {
  std::ifstream in(std::string(FLEETPLAN_TESTDATA_DIR) + "/models/" + file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json TestModelJson(const std::string& file) {
  return nlohmann::json::parse(TestModelText(file), nullptr, /*allow_exceptions=*/false);
}

}  // namespace fleetplan::estimator::testing

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_TESTING_TEST_MODELS_H_
