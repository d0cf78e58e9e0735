#include "clients/flag_set.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fleetplan::cli {

void FlagSet::String(const std::string& name, std::string default_value, std::string help) {
  flags_[name] = Flag{Type::kString, std::move(default_value), std::move(help)};
}
void FlagSet::Int(const std::string& name, int64_t default_value, std::string help) {
  flags_[name] = Flag{Type::kInt, absl::StrCat(default_value), std::move(help)};
}
void FlagSet::Double(const std::string& name, double default_value, std::string help) {
  flags_[name] = Flag{Type::kDouble, absl::StrCat(default_value), std::move(help)};
}
void FlagSet::Bool(const std::string& name, bool default_value, std::string help) {
  flags_[name] = Flag{Type::kBool, default_value ? "true" : "false", std::move(help)};
}

absl::Status FlagSet::Assign(const std::string& name, Flag& flag, const std::string& value) {
  switch (flag.type) {
    case Type::kInt: {
      int64_t v = 0;
      if (!absl::SimpleAtoi(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, "=\"", value, "\" is not an integer"));
      }
      break;
    }
    case Type::kDouble: {
      double v = 0;
      if (!absl::SimpleAtod(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, "=\"", value, "\" is not a number"));
      }
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, "=\"", value, "\" must be a finite number"));
      }
      break;
    }
    case Type::kBool: {
      bool v = false;
      if (!absl::SimpleAtob(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, "=\"", value, "\" is not true or false"));
      }
      flag.value = v ? "true" : "false";
      flag.set = true;
      return absl::OkStatus();
    }
    case Type::kString:
      break;
  }
  flag.value = value;
  flag.set = true;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                        args.end());
      break;
    }
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      positional.push_back(arg);
      continue;
    }
    std::string body = arg.substr(2);
    std::string name = body;
    std::optional<std::string> value;
    if (size_t eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
    }
    auto it = flags_.find(name);
    if (it == flags_.end() && !value && absl::StartsWith(name, "no")) {
      auto negated = flags_.find(name.substr(2));
      if (negated != flags_.end() && negated->second.type == Type::kBool) {
        negated->second.value = "false";
        negated->second.set = true;
        continue;
      }
    }
    if (it == flags_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " for `fleetplan ", command_, "` (see --help)"));
    }
    if (!value) {
      if (it->second.type == Type::kBool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
    }
    if (absl::Status s = Assign(name, it->second, *value); !s.ok()) return s;
  }
  return positional;
}

bool FlagSet::IsSet(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && it->second.set;
}

const FlagSet::Flag& FlagSet::Find(const std::string& name, Type type) const {
  auto it = flags_.find(name);
  if (it == flags_.end() || it->second.type != type) {
    // A programming error in a subcommand's definition, not user input.
    std::abort();
  }
  return it->second;
}

std::string FlagSet::GetString(const std::string& name) const {
  return Find(name, Type::kString).value;
}
int64_t FlagSet::GetInt(const std::string& name) const {
  int64_t v = 0;
  (void)absl::SimpleAtoi(Find(name, Type::kInt).value, &v);
  return v;
}
double FlagSet::GetDouble(const std::string& name) const {
  double v = 0;
  (void)absl::SimpleAtod(Find(name, Type::kDouble).value, &v);
  return v;
}
bool FlagSet::GetBool(const std::string& name) const {
  return Find(name, Type::kBool).value == "true";
}

std::string FlagSet::Help() const {
  std::string out = absl::StrCat("Usage: fleetplan ", command_, " ", usage_, "\n");
  if (!flags_.empty()) absl::StrAppend(&out, "\nFlags:\n");
  for (const auto& [name, flag] : flags_) {
    std::string left = absl::StrCat("  --", name);
    if (flag.type != Type::kBool) absl::StrAppend(&left, "=VALUE");
    if (left.size() < 28) left.resize(28, ' ');
    absl::StrAppend(&out, left, " ", flag.help);
    if (!flag.value.empty()) absl::StrAppend(&out, " (default: ", flag.value, ")");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::vector<std::string> FlagSet::Names() const {
  std::vector<std::string> names;
  names.reserve(flags_.size());
  for (const auto& [name, flag] : flags_) names.push_back(name);
  return names;
}

absl::StatusOr<std::map<std::string, std::string>> ParseKeyValues(const std::string& flag,
                                                                  const std::string& text) {
  std::map<std::string, std::string> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (kv.first.empty() || part.find('=') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=\"", text, "\": \"", part, "\" is not key=value"));
    }
    out[kv.first] = kv.second;
  }
  return out;
}

}  // namespace fleetplan::cli
