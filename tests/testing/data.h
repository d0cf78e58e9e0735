#ifndef FLEETPLAN_TESTS_TESTING_DATA_H_
#define FLEETPLAN_TESTS_TESTING_DATA_H_

// Test data shared by the integration tests: files under tests/data, calibration models, and a
// small fleet written straight into a database file. Tests only.

#include <string>

namespace fleetplan::testing {

// The whole file at `path` ("" when it cannot be read).
std::string ReadText(const std::string& path);

// tests/data/calibration/models/<slug>.json.
std::string CalibrationModel(const std::string& slug);
// The config.json text of tests/data/models/<slug>.json (published configs outside the
// calibration set: GLM-4.5-Air, DeepSeek-V3).
std::string TestModel(const std::string& slug);

// Writes GPU type "H100" (80 GiB class), `nodes` nodes "n0".. of 8 such GPUs in pool "p", and the
// model "small" (Qwen2.5-0.5B) into the database file at `path`. Returns "" or what failed.
std::string MakeSmallFleet(const std::string& path, int nodes);

// The H100's memory in MakeSmallFleet, in bytes (what nvidia-smi reports as 81559 MiB).
inline constexpr int64_t kSmallFleetGpuBytes = 85017493504;

}  // namespace fleetplan::testing

#endif  // FLEETPLAN_TESTS_TESTING_DATA_H_
