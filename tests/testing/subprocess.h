#ifndef FLEETPLAN_TESTS_TESTING_SUBPROCESS_H_
#define FLEETPLAN_TESTS_TESTING_SUBPROCESS_H_

// Test helpers to run our binaries as real processes (posix_spawn), capture their output, and
// wait for them with a deadline. Tests only.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fleetplan::testing {

struct ProcessResult {
  int exit_code = -1;  // exit status, or -signal when killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs `argv` to completion (stdin is /dev/null) and captures stdout and stderr.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         std::chrono::seconds timeout = std::chrono::seconds(60));

// A background process; killed with SIGKILL in the destructor if still running.
class Process {
 public:
  // Starts argv with stdout and stderr sent to `log_path`.
  static std::optional<Process> Start(const std::vector<std::string>& argv,
                                      const std::string& log_path);
  Process(Process&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  pid_t pid() const { return pid_; }
  void Signal(int sig) const;
  // Waits up to `timeout`; returns the exit code (or -signal), nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  explicit Process(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

// Polls for `path` to exist and be non-empty; returns its content or nullopt after `timeout`.
std::optional<std::string> WaitForFile(const std::string& path, std::chrono::milliseconds timeout);

// An HTTP response: the status code, headers (names lower-cased) and the raw body.
struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
};

// HTTP/1.0 GET of http://127.0.0.1:port/path on loopback; nullopt when nothing parsable came back.
std::optional<HttpResponse> HttpRequest(int port, const std::string& path,
                                        const std::string& headers = "");

// HTTP/1.0 GET of http://127.0.0.1:port/path on loopback; the body, or nullopt on failure.
// `headers`: extra header lines, each ending in "\r\n". nullopt unless the status is 200.
std::optional<std::string> HttpGet(int port, const std::string& path,
                                   const std::string& headers = "");

// A fresh empty directory under the test temp dir, removed by the caller.
std::string MakeTempDir(const std::string& prefix);

}  // namespace fleetplan::testing

#endif  // FLEETPLAN_TESTS_TESTING_SUBPROCESS_H_
