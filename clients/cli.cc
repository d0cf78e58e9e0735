#include "clients/cli.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clients/rpc_util.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "nlohmann/json.hpp"
#include "planner/common/version.h"

namespace fleetplan::cli {
namespace {

// Flags every server-talking command takes, accepted before the command name too. All take a value.
const std::set<std::string>& GlobalFlags() {
  static const auto* const kFlags =
      new std::set<std::string>{"server",  "timeout",         "tls-ca",     "tls-cert",
                                "tls-key", "tls-server-name", "token-file", "output"};
  return *kFlags;
}

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

void PrintUsage(std::ostream& out, const std::vector<Command>& commands) {
  out << "fleetplan " << kVersion << ": plan where LLMs run on a GPU fleet\n\n"
      << "Usage: fleetplan <command> [verb] [flags]\n"
      << "       (--server, --token-file, --timeout, --tls-* and --output may also come first)\n\n"
      << "Commands:\n";
  for (const Command& c : commands) {
    std::string name = c.name;
    if (name.size() < 14) name.resize(14, ' ');
    out << "  " << name << " " << c.summary << "\n";
  }
  out << "\nRun `fleetplan <command> --help` for the flags of one command.\n"
      << "Exit codes: 0 ok, 1 operational error, 2 usage error, 3 plan committed in part.\n";
}

std::string VerbHelp(const Command& c) {
  if (c.verbs.empty()) return "";
  std::string out = "\nVerbs:\n";
  for (const Verb& v : c.verbs) {
    std::string head = absl::StrCat(v.name, v.args_usage.empty() ? "" : " ", v.args_usage);
    if (head.size() < 22) head.resize(22, ' ');
    absl::StrAppend(&out, "  ", head, " ", v.summary, "\n");
  }
  return out;
}

std::vector<std::string> VerbNames(const Command& c) {
  std::vector<std::string> names;
  for (const Verb& v : c.verbs) names.push_back(v.name);
  return names;
}

}  // namespace

std::vector<Command> AllCommands() {
  std::vector<Command> all;
  for (auto* group : {&SystemCommands, &EstimateCommands, &RecommendCommands, &GgufCommands,
                      &ServerCommands, &PlanCommands, &ValidateCommands, &CompletionCommands}) {
    for (auto& c : (*group)()) all.push_back(std::move(c));
  }
  return all;
}

absl::StatusOr<std::string> ReadFileText(const std::string& what, const std::string& path,
                                         int64_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat(what, " \"", path, "\": cannot read file"));
  const std::streamoff size = in.tellg();
  if (size < 0) return absl::NotFoundError(absl::StrCat(what, " \"", path, "\": cannot read file"));
  if (size > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, " \"", path, "\" is ", size, " bytes, more than ", max_bytes));
  }
  std::string text(static_cast<size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(text.data(), size)) {
    return absl::NotFoundError(absl::StrCat(what, " \"", path, "\": cannot read file"));
  }
  return text;
}

void AddOutputFlag(FlagSet& flags) {
  flags.String("output", "table", "output format: table (GiB, for people) or json (exact bytes)");
}

void AddServerFlags(FlagSet& flags) {
  flags.String("server", Env("FLEETPLAN_SERVER", "127.0.0.1:50051"),
               "fleetpland address host:port (env FLEETPLAN_SERVER)");
  flags.Double("timeout", 10, "RPC deadline in seconds");
  flags.String("tls-ca", Env("FLEETPLAN_TLS_CA", ""),
               "PEM CA bundle to verify the server (enables TLS; env FLEETPLAN_TLS_CA)");
  flags.String("tls-cert", Env("FLEETPLAN_TLS_CERT", ""),
               "PEM client certificate (mutual TLS; env FLEETPLAN_TLS_CERT)");
  flags.String("tls-key", Env("FLEETPLAN_TLS_KEY", ""),
               "PEM client private key (mutual TLS; env FLEETPLAN_TLS_KEY)");
  flags.String("tls-server-name", "", "override the TLS server name to verify");
  flags.String("token-file", Env("FLEETPLAN_TOKEN_FILE", ""),
               "file holding a bearer token (first line; env FLEETPLAN_TOKEN_FILE)");
}

absl::Status PrepareContext(const FlagSet& flags, grpc::ClientContext& context) {
  const double seconds = flags.GetDouble("timeout");
  if (!(seconds > 0) || seconds > 3600) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout=", seconds, " must be > 0 and <= 3600 seconds"));
  }
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  const std::string path = flags.GetString("token-file");
  if (!path.empty()) {
    auto text = ReadFileText("--token-file", path, 64 << 10);
    if (!text.ok()) return text.status();
    std::string token = text->substr(0, text->find('\n'));
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.empty())
      return absl::InvalidArgumentError(absl::StrCat("--token-file=\"", path, "\" is empty"));
    context.AddMetadata("authorization", "Bearer " + token);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const FlagSet& flags) {
  const std::string server = flags.GetString("server");
  if (server.empty()) return absl::InvalidArgumentError("--server must not be empty");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (flags.GetString("tls-ca").empty() && flags.GetString("tls-cert").empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!flags.GetString("tls-ca").empty()) {
      auto ca = ReadFileText("--tls-ca", flags.GetString("tls-ca"), 1 << 20);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (!flags.GetString("tls-cert").empty()) {
      auto cert = ReadFileText("--tls-cert", flags.GetString("tls-cert"), 1 << 20);
      if (!cert.ok()) return cert.status();
      auto key = ReadFileText("--tls-key", flags.GetString("tls-key"), 1 << 20);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    if (!flags.GetString("tls-server-name").empty()) {
      args.SetSslTargetNameOverride(flags.GetString("tls-server-name"));
    }
    creds = grpc::SslCredentials(ssl);
  }
  return grpc::CreateCustomChannel(server, creds, args);
}

absl::Status StatusFromGrpc(const grpc::Status& status) {
  return status.ok() ? absl::OkStatus()
                     : absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                                    status.error_message());
}

namespace {

// Fields that count things (not bytes): printed as JSON numbers rather than proto3's int64 strings.
bool CountField(const std::string& key) {
  static const auto* const kCounts = new std::set<std::string>{"tp",
                                                               "pp",
                                                               "ep",
                                                               "dp",
                                                               "replica",
                                                               "replicas",
                                                               "gpu_index",
                                                               "index",
                                                               "rank",
                                                               "gpus",
                                                               "free_gpus",
                                                               "nodes",
                                                               "concurrency",
                                                               "context_tokens",
                                                               "kv_cache_tokens",
                                                               "max_concurrency",
                                                               "generation",
                                                               "snapshot_generation",
                                                               "lower_bound_gpus",
                                                               "gpus_used",
                                                               "largest_free_nvlink_domain",
                                                               "nvlink_domain",
                                                               "nvlink_generation",
                                                               "num_layers",
                                                               "first_layer",
                                                               "pp_stage",
                                                               "max_model_len",
                                                               "schema_version",
                                                               "fleet_generation",
                                                               "id",
                                                               "placement_ids",
                                                               "code",
                                                               "best_eligible_gpus",
                                                               "largest_domain",
                                                               "spread_targets",
                                                               "max_tp",
                                                               "max_pp",
                                                               "max_num_seqs",
                                                               "max_num_batched_tokens",
                                                               "block_size",
                                                               "params",
                                                               "num_gpu_blocks",
                                                               "max_context_tokens",
                                                               "batch",
                                                               "prompt_tokens",
                                                               "new_tokens",
                                                               "images",
                                                               "created",
                                                               "updated",
                                                               "unchanged",
                                                               "absorbed",
                                                               "samples",
                                                               "unmatched_samples",
                                                               "observed_gpus",
                                                               "anomalies_total",
                                                               "placements"};
  return kCounts->count(key) > 0;
}

void NumbersForCounts(nlohmann::json& j) {
  if (j.is_array()) {
    for (auto& e : j) NumbersForCounts(e);
    return;
  }
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    auto& v = it.value();
    if (CountField(it.key())) {
      auto to_number = [](nlohmann::json& s) {
        if (!s.is_string()) return;
        try {
          s = std::stoll(s.get<std::string>());
        } catch (const std::exception&) {
        }
      };
      if (v.is_array()) {
        for (auto& e : v) to_number(e);
      } else {
        to_number(v);
      }
    }
    NumbersForCounts(v);
  }
}

}  // namespace

nlohmann::json ProtoToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  NumbersForCounts(j);
  return j;
}

std::string ProtoJson(const google::protobuf::Message& message) {
  return ProtoToJson(message).dump(2);
}

int ReportError(std::ostream& err, const std::string& command, const absl::Status& status) {
  err << "fleetplan " << command << ": " << absl::StatusCodeToString(status.code()) << ": "
      << status.message() << "\n";
  return kExitError;
}

int RunCli(const std::vector<std::string>& raw_args, std::ostream& out, std::ostream& err) {
  const std::vector<Command> commands = AllCommands();
  // Global flags before the command: carried over to the command's own flags.
  std::vector<std::string> globals;
  size_t first = 0;
  while (first < raw_args.size() && absl::StartsWith(raw_args[first], "--") &&
         raw_args[first] != "--help" && raw_args[first] != "--version") {
    const std::string body = raw_args[first].substr(2);
    const std::string name = body.substr(0, body.find('='));
    if (!GlobalFlags().count(name)) {
      err << "fleetplan: unknown global flag \"" << raw_args[first]
          << "\" (global flags: " << absl::StrJoin(GlobalFlags(), ", ") << ")\n";
      return kExitUsage;
    }
    globals.push_back(raw_args[first]);
    if (body.find('=') == std::string::npos) {
      if (first + 1 >= raw_args.size()) {
        err << "fleetplan: --" << name << " needs a value\n";
        return kExitUsage;
      }
      globals.push_back(raw_args[++first]);
    }
    ++first;
  }
  const std::vector<std::string> args(raw_args.begin() + static_cast<std::ptrdiff_t>(first),
                                      raw_args.end());
  if (args.empty()) {
    PrintUsage(err, commands);
    return kExitUsage;
  }
  const std::string& name = args[0];
  if (name == "--help" || name == "-h" || name == "help") {
    if (args.size() >= 2) {
      for (const Command& c : commands) {
        if (c.name == args[1]) {
          out << c.summary << "\n\n" << c.make_flags().Help() << VerbHelp(c);
          return kExitOk;
        }
      }
      err << "fleetplan: unknown command \"" << args[1] << "\"\n";
      return kExitUsage;
    }
    PrintUsage(out, commands);
    return kExitOk;
  }
  if (name == "--version") {
    out << "fleetplan " << kVersion << "\n";
    return kExitOk;
  }
  const Command* command = nullptr;
  for (const Command& c : commands) {
    if (c.name == name) command = &c;
  }
  if (command == nullptr) {
    err << "fleetplan: unknown command \"" << name << "\"\n\n";
    PrintUsage(err, commands);
    return kExitUsage;
  }
  FlagSet flags = command->make_flags();
  std::vector<std::string> rest = globals;
  rest.insert(rest.end(), args.begin() + 1, args.end());
  auto positional = flags.Parse(rest);
  if (!positional.ok()) {
    err << "fleetplan " << name << ": " << positional.status().message() << "\n\n" << flags.Help();
    return kExitUsage;
  }
  if (flags.help_requested()) {
    out << command->summary << "\n\n" << flags.Help() << VerbHelp(*command);
    return kExitOk;
  }
  OutputFormat output = OutputFormat::kTable;
  if (flags.Has("output")) {
    const std::string value = flags.GetString("output");
    if (value == "json") {
      output = OutputFormat::kJson;
    } else if (value != "table") {
      err << "fleetplan " << name << ": --output=\"" << value << "\" must be table or json\n";
      return kExitUsage;
    }
  }
  if (command->verbs.empty()) return command->run(Invocation{flags, *positional, output, out, err});
  const std::string choices = absl::StrJoin(VerbNames(*command), ", ");
  if (positional->empty()) {
    err << "fleetplan " << name << ": give a verb: " << choices << " (see --help)\n";
    return kExitUsage;
  }
  for (const Verb& v : command->verbs) {
    if (v.name != positional->front()) continue;
    const std::vector<std::string> verb_args(positional->begin() + 1, positional->end());
    if (static_cast<int64_t>(verb_args.size()) < v.min_args) {
      err << "fleetplan " << name << " " << v.name << ": give " << v.args_usage
          << " (see --help)\n";
      return kExitUsage;
    }
    return v.run(Invocation{flags, verb_args, output, out, err});
  }
  err << "fleetplan " << name << ": unknown verb \"" << positional->front()
      << "\" (verbs: " << choices << "; see --help)\n";
  return kExitUsage;
}

}  // namespace fleetplan::cli
