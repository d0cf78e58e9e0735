#include "clients/cli.h"

#include <chrono>
#include <fstream>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "clients/rpc_util.h"
#include "google/protobuf/util/json_util.h"
#include "planner/common/version.h"

namespace fleetplan::cli {
namespace {

std::vector<Command> AllCommands() {
  std::vector<Command> all;
  for (auto& c : SystemCommands()) all.push_back(std::move(c));
  for (auto& c : EstimateCommands()) all.push_back(std::move(c));
  for (auto& c : ServerCommands()) all.push_back(std::move(c));
  for (auto& c : PlanCommands()) all.push_back(std::move(c));
  for (auto& c : ValidateCommands()) all.push_back(std::move(c));
  return all;
}

void PrintUsage(std::ostream& out, const std::vector<Command>& commands) {
  out << "fleetplan " << kVersion << ": plan where LLMs run on a GPU fleet\n\n"
      << "Usage: fleetplan <command> [flags]\n\nCommands:\n";
  for (const Command& c : commands) {
    std::string name = c.name;
    if (name.size() < 14) name.resize(14, ' ');
    out << "  " << name << " " << c.summary << "\n";
  }
  out << "\nRun `fleetplan <command> --help` for the flags of one command.\n"
      << "Exit codes: 0 ok, 1 operational error, 2 usage error.\n";
}

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--", flag, "=\"", path, "\": cannot read file"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

void AddOutputFlag(FlagSet& flags) {
  flags.String("output", "table", "output format: table (GiB, for people) or json (exact bytes)");
}

void AddServerFlags(FlagSet& flags) {
  flags.String("server", "127.0.0.1:50051", "fleetpland address host:port");
  flags.Double("timeout", 10, "RPC deadline in seconds");
  flags.String("tls-ca", "", "PEM CA bundle to verify the server (enables TLS)");
  flags.String("tls-cert", "", "PEM client certificate (mutual TLS)");
  flags.String("tls-key", "", "PEM client private key (mutual TLS)");
  flags.String("tls-server-name", "", "override the TLS server name to verify");
  flags.String("token-file", "", "file holding a bearer token (first line)");
}

absl::Status PrepareContext(const FlagSet& flags, grpc::ClientContext& context) {
  const double seconds = flags.GetDouble("timeout");
  if (!(seconds > 0) || seconds > 3600) {
    return absl::InvalidArgumentError(absl::StrCat("--timeout=", seconds, " must be > 0 and <= 3600 seconds"));
  }
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  const std::string path = flags.GetString("token-file");
  if (!path.empty()) {
    auto text = ReadPem("token-file", path);
    if (!text.ok()) return text.status();
    std::string token = text->substr(0, text->find('\n'));
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.empty()) return absl::InvalidArgumentError(absl::StrCat("--token-file=\"", path, "\" is empty"));
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
      auto ca = ReadPem("tls-ca", flags.GetString("tls-ca"));
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (!flags.GetString("tls-cert").empty()) {
      auto cert = ReadPem("tls-cert", flags.GetString("tls-cert"));
      if (!cert.ok()) return cert.status();
      auto key = ReadPem("tls-key", flags.GetString("tls-key"));
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
                     : absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::string ProtoJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

int ReportError(std::ostream& err, const std::string& command, const absl::Status& status) {
  err << "fleetplan " << command << ": " << absl::StatusCodeToString(status.code()) << ": "
      << status.message() << "\n";
  return kExitError;
}

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::vector<Command> commands = AllCommands();
  if (args.empty()) {
    PrintUsage(err, commands);
    return kExitUsage;
  }
  const std::string& name = args[0];
  if (name == "--help" || name == "-h" || name == "help") {
    if (args.size() >= 2) {
      for (const Command& c : commands) {
        if (c.name == args[1]) {
          out << c.summary << "\n\n" << c.make_flags().Help();
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
  auto positional =
      flags.Parse(std::vector<std::string>(args.begin() + 1, args.end()));
  if (!positional.ok()) {
    err << "fleetplan " << name << ": " << positional.status().message() << "\n\n" << flags.Help();
    return kExitUsage;
  }
  if (flags.help_requested()) {
    out << command->summary << "\n\n" << flags.Help();
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
  return command->run(Invocation{flags, *positional, output, out, err});
}

}  // namespace fleetplan::cli
