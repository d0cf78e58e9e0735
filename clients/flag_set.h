#ifndef FLEETPLAN_CLIENTS_FLAG_SET_H_
#define FLEETPLAN_CLIENTS_FLAG_SET_H_

// FlagSet: the options of one `fleetplan` subcommand. Each subcommand declares its own flags with
// their help, so `fleetplan SUBCOMMAND --help` lists exactly what that subcommand takes (absl flags
// are process-global and cannot do that). Accepts `--name=value`, `--name value`, `--flag` /
// `--noflag` for booleans, and `--` to end options.
//
// Not thread-safe; one per command invocation.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fleetplan::cli {

class FlagSet {
 public:
  FlagSet(std::string command, std::string usage)
      : command_(std::move(command)), usage_(std::move(usage)) {}

  void String(const std::string& name, std::string default_value, std::string help);
  void Int(const std::string& name, int64_t default_value, std::string help);
  void Double(const std::string& name, double default_value, std::string help);
  void Bool(const std::string& name, bool default_value, std::string help);

  // Parses `args`; returns the positional arguments. INVALID_ARGUMENT names the flag and value.
  // `--help` / `-h` sets help_requested() instead of failing.
  absl::StatusOr<std::vector<std::string>> Parse(const std::vector<std::string>& args);

  bool help_requested() const { return help_requested_; }
  // True when the subcommand declares the flag.
  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  // True when the user gave the flag explicitly (defaults do not count).
  bool IsSet(const std::string& name) const;

  std::string GetString(const std::string& name) const;
  int64_t GetInt(const std::string& name) const;
  double GetDouble(const std::string& name) const;
  bool GetBool(const std::string& name) const;

  std::string Help() const;
  // The declared flag names, sorted.
  std::vector<std::string> Names() const;

 private:
  enum class Type { kString, kInt, kDouble, kBool };
  struct Flag {
    Type type;
    std::string value;  // canonical text
    std::string help;
    bool set = false;
  };
  absl::Status Assign(const std::string& name, Flag& flag, const std::string& value);
  const Flag& Find(const std::string& name, Type type) const;

  std::string command_;
  std::string usage_;
  std::map<std::string, Flag> flags_;
  bool help_requested_ = false;
};

// A list flag of key=value pairs ("k=v,k2=v2"); INVALID_ARGUMENT names --flag and the bad part.
absl::StatusOr<std::map<std::string, std::string>> ParseKeyValues(const std::string& flag,
                                                                  const std::string& text);

}  // namespace fleetplan::cli

#endif  // FLEETPLAN_CLIENTS_FLAG_SET_H_
