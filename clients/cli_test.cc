#include "clients/cli.h"

#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/common/version.h"

namespace fleetplan::cli {
namespace {

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunArgs(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = RunCli(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(CliTest, NoArgumentsIsUsageError) {
  Result r = RunArgs({});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("Usage: fleetplan <command>"), std::string::npos);
}

TEST(CliTest, UnknownCommandIsUsageError) {
  Result r = RunArgs({"frobnicate"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("unknown command \"frobnicate\""), std::string::npos);
}

TEST(CliTest, HelpListsCommands) {
  Result r = RunArgs({"--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_NE(r.out.find("version"), std::string::npos);
  EXPECT_NE(r.out.find("health"), std::string::npos);
}

TEST(CliTest, EverySubcommandHasHelp) {
  for (const std::string name : {"version", "health"}) {
    Result r = RunArgs({name, "--help"});
    EXPECT_EQ(r.code, kExitOk) << name;
    EXPECT_NE(r.out.find("Usage: fleetplan " + name), std::string::npos) << name;
    Result via_help = RunArgs({"help", name});
    EXPECT_EQ(via_help.out, r.out) << name;
  }
}

TEST(CliTest, VersionTableAndJson) {
  Result table = RunArgs({"version"});
  EXPECT_EQ(table.code, kExitOk);
  EXPECT_EQ(table.out, std::string("fleetplan ") + kVersion + "\n");
  Result json = RunArgs({"version", "--output=json"});
  ASSERT_EQ(json.code, kExitOk);
  EXPECT_EQ(nlohmann::json::parse(json.out)["client_version"], kVersion);
}

TEST(CliTest, BadOutputFormatIsUsageError) {
  Result r = RunArgs({"version", "--output=yaml"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("--output=\"yaml\" must be table or json"), std::string::npos);
}

TEST(CliTest, UnknownFlagIsUsageError) {
  Result r = RunArgs({"version", "--frob"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("unknown flag --frob"), std::string::npos);
}

TEST(CliTest, BadTimeoutIsUsageError) {
  Result r = RunArgs({"health", "--timeout=0"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("--timeout=0"), std::string::npos);
}

TEST(CliTest, UnreachableServerIsOperationalError) {
  // Port 1 on loopback: nothing listens there; the deadline keeps the test short.
  Result r = RunArgs({"health", "--server=127.0.0.1:1", "--timeout=0.5"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_NE(r.err.find("fleetplan health: UNAVAILABLE"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fleetplan::cli
