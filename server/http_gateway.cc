#include "server/http_gateway.h"

#include <exception>
#include <future>
#include <map>
#include <vector>

#include "CivetServer.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "fleetplan/v1/catalog.pb.h"
#include "fleetplan/v1/estimator.pb.h"
#include "fleetplan/v1/headroom.pb.h"
#include "fleetplan/v1/inventory.pb.h"
#include "fleetplan/v1/planner.pb.h"
#include "fleetplan/v1/system.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "nlohmann/json.hpp"
#include "server/grpc_status.h"
#include "server/web_assets.h"

namespace fleetplan::server {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

constexpr absl::string_view kApiPrefix = "/api/v1/";
constexpr size_t kMaxQueryParameters = 256;

// No inline script or style anywhere, nothing from another origin, never framed.
constexpr char kSecurityHeaders[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n";

void Send(mg_connection* conn, int status, absl::string_view content_type, absl::string_view body,
          absl::string_view extra_headers = "") {
  const std::string head =
      absl::StrCat("HTTP/1.1 ", status, " ", mg_get_response_code_text(conn, status),
                   "\r\nContent-Type: ", content_type, "\r\nContent-Length: ", body.size(), "\r\n",
                   kSecurityHeaders, extra_headers, "Connection: close\r\n\r\n");
  mg_write(conn, head.data(), head.size());
  mg_write(conn, body.data(), body.size());
}

// Bounded like the gRPC status messages (a parse error may quote the body), and valid UTF-8
// whatever the input held (dump replaces what is not).
std::string ErrorJson(grpc::StatusCode code, absl::string_view message) {
  constexpr size_t kMaxMessage = 4096;
  std::string text(message.substr(0, kMaxMessage));
  if (message.size() > kMaxMessage) text += "... (truncated)";
  return nlohmann::json{
      {"error",
       {{"code", HttpStatusFor(code)}, {"status", CodeName(code)}, {"message", std::move(text)}}}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void SendError(mg_connection* conn, grpc::StatusCode code, absl::string_view message,
               absl::string_view extra_headers = "") {
  Send(conn, HttpStatusFor(code), "application/json", ErrorJson(code, message),
       absl::StrCat("Cache-Control: no-store\r\n", extra_headers));
}

// The services the API serves, by their short names. Each generated file is reached through one
// of its messages, which also links it in.
const ServiceDescriptor* FindService(absl::string_view name) {
  static const auto* services = [] {
    auto* m = new std::map<std::string, const ServiceDescriptor*, std::less<>>();
    for (const google::protobuf::FileDescriptor* f :
         {v1::ServerInfo::descriptor()->file(), v1::Node::descriptor()->file(),
          v1::Model::descriptor()->file(), v1::EstimateRequest::descriptor()->file(),
          v1::FleetHeadroom::descriptor()->file(), v1::Plan::descriptor()->file()}) {
      for (int i = 0; i < f->service_count(); ++i) (*m)[f->service(i)->name()] = f->service(i);
    }
    return m;
  }();
  auto it = services->find(name);
  return it == services->end() ? nullptr : it->second;
}

std::unique_ptr<Message> NewMessage(const Descriptor* type) {
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type);
  return std::unique_ptr<Message>(prototype->New());
}

grpc::ByteBuffer ToBuffer(const Message& m) {
  std::string wire;
  m.SerializeToString(&wire);
  grpc::Slice slice(wire);
  return grpc::ByteBuffer(&slice, 1);
}

bool FromBuffer(const grpc::ByteBuffer& buffer, Message* m) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string wire;
  for (const grpc::Slice& s : slices)
    wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return m->ParseFromString(wire);
}

std::string ToJson(const Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

std::string UrlDecode(absl::string_view s) {
  std::string out(s.size() + 1, '\0');
  const int n = mg_url_decode(s.data(), static_cast<int>(s.size()), out.data(),
                              static_cast<int>(out.size()), /*is_form_url_encoded=*/1);
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

// A GET's query string as the request's JSON: each parameter names a field (its proto or JSON
// name); repeated fields take the parameter repeated; a message field cannot be a parameter.
absl::StatusOr<std::string> QueryToJson(const char* query, const Descriptor* type) {
  nlohmann::json object = nlohmann::json::object();
  if (query == nullptr || *query == '\0') return object.dump();
  const std::vector<absl::string_view> pairs = absl::StrSplit(query, '&', absl::SkipEmpty());
  if (pairs.size() > kMaxQueryParameters) {
    return absl::InvalidArgumentError(
        absl::StrCat(pairs.size(), " query parameters, more than ", kMaxQueryParameters));
  }
  for (absl::string_view pair : pairs) {
    const size_t eq = pair.find('=');
    const std::string key = UrlDecode(pair.substr(0, eq));
    const std::string value = eq == absl::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1));
    const FieldDescriptor* field = type->FindFieldByName(key);
    if (field == nullptr) field = type->FindFieldByCamelcaseName(key);
    if (field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("query parameter \"", key, "\" is not a field of ", type->full_name()));
    }
    if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
      return absl::InvalidArgumentError(
          absl::StrCat("query parameter \"", key, "\" is a message: POST a JSON body instead"));
    }
    nlohmann::json v = value;
    if (field->type() == FieldDescriptor::TYPE_BOOL) {
      if (value != "true" && value != "false") {
        return absl::InvalidArgumentError(
            absl::StrCat("query parameter ", key, "=\"", value, "\" is not true or false"));
      }
      v = value == "true";
    }
    if (field->is_repeated()) {
      object[field->json_name()].push_back(v);
    } else {
      object[field->json_name()] = v;
    }
  }
  try {
    return object.dump();
  } catch (const nlohmann::json::type_error&) {
    return absl::InvalidArgumentError("query: a parameter is not valid UTF-8");
  }
}

// JSON -> the request message, naming what is wrong ("body: ...").
absl::Status ParseJson(const std::string& json, Message* m, absl::string_view where) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(json, m, options);
  if (status.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", std::string(status.message())));
}

bool PrintableHeader(absl::string_view v) {
  for (char c : v) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Host header -> true when it names this machine's loopback ("localhost", 127.0.0.0/8, [::1]),
// with or without a port.
bool LoopbackHost(absl::string_view host) {
  if (absl::StartsWith(host, "[")) {
    return absl::StartsWith(host, "[::1]");
  }
  host = host.substr(0, host.find(':'));
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  const std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4 || parts[0] != "127") return false;
  for (absl::string_view p : parts) {
    int v = 0;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &v) || v < 0 || v > 255) return false;
  }
  return true;
}

// Refuses a request whose Host is not loopback when the gateway only answers those.
bool HostRefused(mg_connection* conn, bool loopback_only) {
  if (!loopback_only) return false;
  const char* host = mg_get_header(conn, "Host");
  if (host != nullptr && LoopbackHost(host)) return false;
  SendError(conn, grpc::StatusCode::PERMISSION_DENIED,
            absl::StrCat("Host \"", absl::string_view(host == nullptr ? "" : host).substr(0, 100),
                         "\" is not this loopback server's: open it as localhost or 127.0.0.1"));
  return true;
}

std::string MethodPath(const MethodDescriptor* m) {
  return absl::StrCat("/", m->service()->full_name(), "/", m->name());
}

}  // namespace

class HttpGateway::ApiHandler final : public CivetHandler {
 public:
  explicit ApiHandler(HttpGateway* gateway) : gw_(gateway) {}

  bool handleGet(CivetServer* /*server*/, mg_connection* conn) override {
    return Guarded(conn, /*post=*/false);
  }
  bool handlePost(CivetServer* /*server*/, mg_connection* conn) override {
    return Guarded(conn, /*post=*/true);
  }
  bool handlePut(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }
  bool handleDelete(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }
  bool handlePatch(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }
  bool handleOptions(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }

 private:
  // Nothing a request holds may end the process: a library throwing is a 500, logged by nothing
  // but the answer.
  bool Guarded(mg_connection* conn, bool post) {
    try {
      Handle(conn, post);
    } catch (const std::exception& e) {
      SendError(conn, grpc::StatusCode::INTERNAL, absl::StrCat("the gateway failed: ", e.what()));
    }
    return true;
  }

  bool NotAllowed(mg_connection* conn) {
    SendError(conn, grpc::StatusCode::UNIMPLEMENTED,
              "the API takes POST (every method) or GET (Get*, List*, WatchHeadroom)",
              "Allow: GET, POST\r\n");
    return true;
  }

  void Handle(mg_connection* conn, bool post) {
    if (HostRefused(conn, gw_->options_.loopback_hosts_only)) return;
    const mg_request_info* info = mg_get_request_info(conn);
    const absl::string_view uri = info->local_uri != nullptr ? info->local_uri : "";
    const std::vector<absl::string_view> parts =
        absl::StrSplit(absl::StripPrefix(uri, kApiPrefix), '/');
    const ServiceDescriptor* service = parts.size() == 2 ? FindService(parts[0]) : nullptr;
    const MethodDescriptor* method =
        service != nullptr ? service->FindMethodByName(std::string(parts[1])) : nullptr;
    if (method == nullptr) {
      SendError(conn, grpc::StatusCode::NOT_FOUND,
                absl::StrCat("no method ", uri.substr(0, 200),
                             ": routes are /api/v1/<Service>/<Method> of fleetplan.v1"));
      return;
    }
    const char* auth = mg_get_header(conn, "Authorization");
    if (auth != nullptr && !PrintableHeader(auth)) {
      SendError(conn, grpc::StatusCode::UNAUTHENTICATED,
                "the Authorization header holds non-printable characters");
      return;
    }
    const bool streaming = method->server_streaming() || method->client_streaming();
    const bool readable = absl::StartsWith(method->name(), "Get") ||
                          absl::StartsWith(method->name(), "List") ||
                          (method->server_streaming() && !method->client_streaming());
    std::unique_ptr<Message> request = NewMessage(method->input_type());
    if (post) {
      if (streaming) {
        SendError(conn, grpc::StatusCode::INVALID_ARGUMENT,
                  absl::StrCat(method->name(), " streams: GET it (server-sent events)"));
        return;
      }
      const char* type = mg_get_header(conn, "Content-Type");
      if (type == nullptr || !absl::StartsWithIgnoreCase(type, "application/json")) {
        Send(
            conn, 415, "application/json",
            ErrorJson(grpc::StatusCode::INVALID_ARGUMENT, "Content-Type must be application/json"));
        return;
      }
      absl::StatusOr<std::string> body = ReadBody(conn);
      if (!body.ok()) {
        if (body.status().code() == absl::StatusCode::kResourceExhausted) {
          Send(conn, 413, "application/json",
               ErrorJson(grpc::StatusCode::RESOURCE_EXHAUSTED, body.status().message()));
        } else {
          SendError(conn, grpc::StatusCode::INVALID_ARGUMENT, body.status().message());
        }
        return;
      }
      if (absl::Status parsed = ParseJson(body->empty() ? "{}" : *body, request.get(), "body");
          !parsed.ok()) {
        SendError(conn, grpc::StatusCode::INVALID_ARGUMENT, parsed.message());
        return;
      }
    } else {
      if (!readable) {
        SendError(conn, grpc::StatusCode::UNIMPLEMENTED,
                  absl::StrCat(method->name(), " changes or computes: POST it a JSON body"),
                  "Allow: POST\r\n");
        return;
      }
      absl::StatusOr<std::string> json = QueryToJson(info->query_string, method->input_type());
      absl::Status parsed = json.ok() ? ParseJson(*json, request.get(), "query") : json.status();
      if (!parsed.ok()) {
        SendError(conn, grpc::StatusCode::INVALID_ARGUMENT, parsed.message());
        return;
      }
    }
    if (streaming) {
      Stream(conn, method, *request, auth);
    } else {
      Unary(conn, method, *request, auth);
    }
  }

  absl::StatusOr<std::string> ReadBody(mg_connection* conn) {
    const int64_t limit = gw_->options_.max_body_bytes;
    const mg_request_info* info = mg_get_request_info(conn);
    if (info->content_length > limit) {
      return absl::ResourceExhaustedError(
          absl::StrCat("body of ", info->content_length, " bytes, more than ", limit, " bytes"));
    }
    std::string body;
    char chunk[16384];
    for (;;) {
      const int n = mg_read(conn, chunk, sizeof(chunk));
      if (n < 0) return absl::InvalidArgumentError("body: the connection failed mid-body");
      if (n == 0) break;
      body.append(chunk, static_cast<size_t>(n));
      if (static_cast<int64_t>(body.size()) > limit) {
        return absl::ResourceExhaustedError(absl::StrCat("body of more than ", limit, " bytes"));
      }
    }
    return body;
  }

  void Prepare(grpc::ClientContext& ctx, const char* auth) {
    if (auth != nullptr) ctx.AddMetadata("authorization", auth);
  }

  void Unary(mg_connection* conn, const MethodDescriptor* method, const Message& request,
             const char* auth) {
    grpc::GenericStub stub(gw_->channel_);
    grpc::ClientContext ctx;
    Prepare(ctx, auth);
    ctx.set_deadline(std::chrono::system_clock::now() + gw_->options_.call_timeout);
    const grpc::ByteBuffer in = ToBuffer(request);
    grpc::ByteBuffer out;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, MethodPath(method), grpc::StubOptions(), &in, &out,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    const grpc::Status status = done.get_future().get();
    if (!status.ok()) {
      SendError(conn, status.error_code(), status.error_message());
      return;
    }
    std::unique_ptr<Message> response = NewMessage(method->output_type());
    if (!FromBuffer(out, response.get())) {
      SendError(conn, grpc::StatusCode::INTERNAL, "the service's answer did not parse");
      return;
    }
    Send(conn, 200, "application/json", ToJson(*response), "Cache-Control: no-store\r\n");
  }

  // A server-streaming method as server-sent events: one "event: <name>" per message, a comment
  // line every heartbeat. The HTTP status waits for the first message (or the call's error).
  void Stream(mg_connection* conn, const MethodDescriptor* method, const Message& request,
              const char* auth) {
    if (gw_->streams_.fetch_add(1) >= gw_->options_.max_streams) {
      gw_->streams_.fetch_sub(1);
      SendError(conn, grpc::StatusCode::RESOURCE_EXHAUSTED,
                absl::StrCat(gw_->options_.max_streams, " event streams are open: try later"));
      return;
    }
    grpc::CompletionQueue cq;
    grpc::GenericStub stub(gw_->channel_);
    grpc::ClientContext ctx;
    Prepare(ctx, auth);
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
        stub.PrepareCall(&ctx, MethodPath(method), &cq);
    // Waits for the one operation in flight; polls the gateway's stop and the heartbeat.
    bool headers_sent = false, gone = false;
    auto last_write = std::chrono::steady_clock::now();
    auto wait = [&]() {
      void* tag = nullptr;
      bool ok = false;
      for (;;) {
        const auto next = cq.AsyncNext(
            &tag, &ok, std::chrono::system_clock::now() + std::chrono::milliseconds(200));
        if (next == grpc::CompletionQueue::GOT_EVENT) return ok;
        if (next == grpc::CompletionQueue::SHUTDOWN) return false;
        if (gw_->stopping_.load()) ctx.TryCancel();
        if (headers_sent && !gone &&
            std::chrono::steady_clock::now() - last_write >= gw_->options_.stream_heartbeat) {
          if (mg_write(conn, ":\n\n", 3) <= 0) {
            gone = true;
            ctx.TryCancel();
          }
          last_write = std::chrono::steady_clock::now();
        }
      }
    };
    const grpc::ByteBuffer in = ToBuffer(request);
    call->StartCall(reinterpret_cast<void*>(1));
    bool ok = wait();
    if (ok) {
      call->Write(in, reinterpret_cast<void*>(2));
      ok = wait();
    }
    if (ok) {
      call->WritesDone(reinterpret_cast<void*>(3));
      ok = wait();
    }
    const std::string event =
        absl::StrCat("event: ", absl::AsciiStrToLower(absl::StripPrefix(method->name(), "Watch")));
    while (ok) {
      grpc::ByteBuffer buffer;
      call->Read(&buffer, reinterpret_cast<void*>(4));
      if (!wait()) break;
      std::unique_ptr<Message> message = NewMessage(method->output_type());
      if (!FromBuffer(buffer, message.get())) break;
      if (!headers_sent) {
        const std::string head = absl::StrCat(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n",
            kSecurityHeaders, "Connection: close\r\n\r\n");
        gone = mg_write(conn, head.data(), head.size()) <= 0;
        headers_sent = true;
      }
      const std::string data = absl::StrCat(event, "\ndata: ", ToJson(*message), "\n\n");
      if (!gone && mg_write(conn, data.data(), data.size()) <= 0) gone = true;
      last_write = std::chrono::steady_clock::now();
      if (gone) ctx.TryCancel();
    }
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(5));
    (void)wait();
    cq.Shutdown();
    void* tag = nullptr;
    while (cq.Next(&tag, &ok)) {
    }
    if (!headers_sent) {
      SendError(conn, status.ok() ? grpc::StatusCode::UNAVAILABLE : status.error_code(),
                status.ok() ? "the stream ended before its first event" : status.error_message());
    } else if (!status.ok() && !gone) {
      const std::string data = absl::StrCat(
          "event: error\ndata: ", ErrorJson(status.error_code(), status.error_message()), "\n\n");
      mg_write(conn, data.data(), data.size());
    }
    gw_->streams_.fetch_sub(1);
  }

  HttpGateway* gw_;
};

class HttpGateway::AssetHandler final : public CivetHandler {
 public:
  explicit AssetHandler(bool loopback_only) : loopback_only_(loopback_only) {}
  bool handleGet(CivetServer* /*server*/, mg_connection* conn) override {
    if (HostRefused(conn, loopback_only_)) return true;
    const mg_request_info* info = mg_get_request_info(conn);
    absl::string_view path = info->local_uri != nullptr ? info->local_uri : "/";
    if (path == "/") path = "/index.html";
    for (const WebAsset& a : WebAssets()) {
      if (a.path == path) {
        Send(conn, 200, a.content_type, a.body, "Cache-Control: no-cache\r\n");
        return true;
      }
    }
    Send(conn, 404, "text/plain; charset=utf-8", "not found\n");
    return true;
  }

 private:
  bool loopback_only_;
};

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(
    const HttpGatewayOptions& options, std::shared_ptr<grpc::Channel> channel) {
  auto gw = std::unique_ptr<HttpGateway>(new HttpGateway());
  gw->options_ = options;
  gw->channel_ = std::move(channel);
  const std::string& ports = options.listen;  // civetweb spells addresses as gRPC does
  const std::vector<std::string> civet = {
      "listening_ports",    ports,   "num_threads",       std::to_string(options.max_streams + 8),
      "request_timeout_ms", "30000", "enable_keep_alive", "no"};
  gw->api_ = std::make_unique<ApiHandler>(gw.get());
  gw->assets_ = std::make_unique<AssetHandler>(options.loopback_hosts_only);
  try {
    gw->http_ = std::make_unique<CivetServer>(civet);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("http_listen=\"", options.listen, "\": cannot listen: ", e.what()));
  }
  gw->http_->addHandler("/api/", gw->api_.get());
  gw->http_->addHandler("/", gw->assets_.get());
  std::vector<int> bound = gw->http_->getListeningPorts();
  gw->port_ = bound.empty() ? 0 : bound.front();
  return gw;
}

void HttpGateway::Stop() {
  stopping_.store(true);
  if (http_ != nullptr) {
    http_->close();  // joins the workers; open streams end within one poll
    http_.reset();
  }
}

HttpGateway::~HttpGateway() { Stop(); }

}  // namespace fleetplan::server
