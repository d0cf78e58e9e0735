#include "clients/deployments_file.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "planner/common/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace fleetplan::cli {
namespace {

using json = nlohmann::json;

// Nesting YAML (or JSON) this deep is no deployments file; refusing it keeps the recursive
// conversions below bounded.
constexpr int kMaxDepth = 32;

// The deepest nesting of [ and { outside quoted strings (JSON, or YAML's flow style).
int MaxNesting(const std::string& text) {
  int depth = 0, most = 0;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote != 0) {
      if (c == '\\' && quote == '"') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      most = std::max(most, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return most;
}

absl::StatusOr<json> ToJson(const YAML::Node& node, int depth, const std::string& source) {
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": nests deeper than ", kMaxDepth, " levels"));
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return json(nullptr);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& e : node) {
        absl::StatusOr<json> v = ToJson(e, depth + 1, source);
        if (!v.ok()) return v.status();
        out.push_back(*std::move(v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return absl::InvalidArgumentError(absl::StrCat(
              source, ": line ", kv.first.Mark().line + 1, ": keys must be plain words"));
        }
        absl::StatusOr<json> v = ToJson(kv.second, depth + 1, source);
        if (!v.ok()) return v.status();
        out[kv.first.Scalar()] = *std::move(v);
      }
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return json(s);  // quoted: a string as written
      int64_t i = 0;
      double d = 0;
      if (absl::SimpleAtoi(s, &i)) return json(i);
      if (s == "true" || s == "false") return json(s == "true");
      if (absl::SimpleAtod(s, &d) && s.find_first_of("0123456789") != std::string::npos) {
        return json(d);
      }
      return json(s);
    }
  }
  return json(nullptr);
}

}  // namespace

absl::Status CheckJsonNesting(const std::string& text, const std::string& source) {
  if (MaxNesting(text) <= kMaxDepth) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": nests deeper than ", kMaxDepth, " levels"));
}

absl::StatusOr<std::string> YamlToJson(const std::string& text, const std::string& source) {
  // yaml-cpp recurses per nesting level while parsing: bound the flow nesting first so a hostile
  // file cannot run the parser out of stack (block nesting is bounded by ToJson below).
  if (absl::Status s = CheckJsonNesting(text, source); !s.ok()) return s;
  try {
    const YAML::Node root = YAML::Load(text);
    absl::StatusOr<json> j = ToJson(root, 0, source);
    if (!j.ok()) return j.status();
    return j->dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": line ", e.mark.line + 1, ", column ",
                                                   e.mark.column + 1, ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
}

absl::Status ParseJsonOrYaml(const std::string& text, const std::string& source,
                             const std::string& list_key, google::protobuf::Message* out) {
  if (absl::Status s = CheckJsonNesting(text, source); !s.ok()) return s;
  std::string doc = text;
  const size_t first = text.find_first_not_of(" \t\r\n");
  const bool json_text = first != std::string::npos && (text[first] == '{' || text[first] == '[');
  if (!json_text) {
    absl::StatusOr<std::string> converted = YamlToJson(text, source);
    if (!converted.ok()) return converted.status();
    doc = *std::move(converted);
  }
  const size_t start = doc.find_first_not_of(" \t\r\n");
  if (start != std::string::npos && doc[start] == '[') doc = "{\"" + list_key + "\": " + doc + "}";
  google::protobuf::util::JsonParseOptions options;
  auto status = google::protobuf::util::JsonStringToMessage(doc, out, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", status.message().as_string()));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::PlanPlacementRequest> ParseDeployments(const std::string& text,
                                                          const std::string& source) {
  v1::PlanPlacementRequest req;
  RETURN_IF_ERROR(ParseJsonOrYaml(text, source, "deployments", &req));
  return req;
}

absl::StatusOr<v1::ListNodesResponse> ParseNodes(const std::string& text,
                                                 const std::string& source) {
  v1::ListNodesResponse nodes;
  RETURN_IF_ERROR(ParseJsonOrYaml(text, source, "nodes", &nodes));
  return nodes;
}

}  // namespace fleetplan::cli
