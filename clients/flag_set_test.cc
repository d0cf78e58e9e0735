#include "clients/flag_set.h"

#include "gtest/gtest.h"

namespace fleetplan::cli {
namespace {

FlagSet MakeFlags() {
  FlagSet f("estimate", "--model FILE");
  f.String("model", "", "config.json");
  f.Int("tp", 1, "tensor parallel size");
  f.Double("util", 0.9, "gpu memory utilization");
  f.Bool("eager", false, "enforce eager");
  return f;
}

TEST(FlagSetTest, ParsesAllForms) {
  FlagSet f = MakeFlags();
  auto pos =
      f.Parse({"--model=a.json", "--tp", "4", "pos1", "--util=0.95", "--eager", "--", "--tp"});
  ASSERT_TRUE(pos.ok()) << pos.status();
  EXPECT_EQ(f.GetString("model"), "a.json");
  EXPECT_EQ(f.GetInt("tp"), 4);
  EXPECT_DOUBLE_EQ(f.GetDouble("util"), 0.95);
  EXPECT_TRUE(f.GetBool("eager"));
  EXPECT_TRUE(f.IsSet("tp"));
  EXPECT_EQ(*pos, (std::vector<std::string>{"pos1", "--tp"}));
}

TEST(FlagSetTest, DefaultsAndNegation) {
  FlagSet f = MakeFlags();
  ASSERT_TRUE(f.Parse({"--noeager"}).ok());
  EXPECT_FALSE(f.GetBool("eager"));
  EXPECT_TRUE(f.IsSet("eager"));
  EXPECT_FALSE(f.IsSet("tp"));
  EXPECT_EQ(f.GetInt("tp"), 1);
}

TEST(FlagSetTest, BadInputNamesFlagAndValue) {
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const Case cases[] = {
      {{"--tp=four"}, "--tp=\"four\" is not an integer"},
      {{"--util=high"}, "--util=\"high\" is not a number"},
      {{"--eager=maybe"}, "--eager=\"maybe\" is not true or false"},
      {{"--bogus=1"}, "unknown flag --bogus"},
      {{"--model"}, "flag --model needs a value"},
  };
  for (const Case& c : cases) {
    FlagSet f = MakeFlags();
    auto pos = f.Parse(c.args);
    ASSERT_FALSE(pos.ok()) << c.args[0];
    EXPECT_EQ(pos.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(pos.status().message().find(c.expect), std::string::npos) << pos.status();
  }
}

TEST(FlagSetTest, HelpListsFlags) {
  FlagSet f = MakeFlags();
  ASSERT_TRUE(f.Parse({"--help"}).ok());
  EXPECT_TRUE(f.help_requested());
  const std::string help = f.Help();
  EXPECT_NE(help.find("Usage: fleetplan estimate --model FILE"), std::string::npos);
  EXPECT_NE(help.find("--tp=VALUE"), std::string::npos);
  EXPECT_NE(help.find("(default: 0.9)"), std::string::npos);
}

}  // namespace
}  // namespace fleetplan::cli
