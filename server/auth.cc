#include "server/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace fleetplan::server {

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

std::unique_ptr<Authorizer> Authorizer::AllowAll() { return std::make_unique<Authorizer>(); }

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::FromText(const std::string& text,
                                                                 const std::string& source) {
  auto auth = std::make_unique<Authorizer>();
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_no, ": expected \"<token> <reader|writer>\""));
    }
    if (parts[0].size() < 16) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_no, ": token is shorter than 16 characters"));
    }
    Role role;
    if (parts[1] == "reader") {
      role = Role::kReader;
    } else if (parts[1] == "writer") {
      role = Role::kWriter;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_no, ": role \"", parts[1], "\" must be reader or writer"));
    }
    auth->tokens_.push_back(Token{parts[0], role});
  }
  if (auth->tokens_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no tokens"));
  }
  return auth;
}

absl::Status Authorizer::Check(const grpc::ServerContextBase& context, Role needed) const {
  if (tokens_.empty()) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError("missing \"authorization: Bearer <token>\" metadata");
  }
  return CheckHeader(absl::string_view(it->second.data(), it->second.size()), needed);
}

absl::Status Authorizer::CheckHeader(absl::string_view authorization, Role needed) const {
  if (tokens_.empty()) return absl::OkStatus();
  if (authorization.empty()) {
    return absl::UnauthenticatedError("missing \"Authorization: Bearer <token>\"");
  }
  absl::string_view v = authorization;
  if (!absl::ConsumePrefix(&v, "Bearer ") && !absl::ConsumePrefix(&v, "bearer ")) {
    return absl::UnauthenticatedError("authorization metadata is not a Bearer token");
  }
  const std::string presented(v);
  const Token* match = nullptr;
  for (const Token& t : tokens_) {  // no early exit: every token is compared
    if (ConstantTimeEquals(t.secret, presented) && match == nullptr) match = &t;
  }
  if (match == nullptr) return absl::UnauthenticatedError("unknown token");
  if (needed == Role::kWriter && match->role != Role::kWriter) {
    return absl::PermissionDeniedError("this call needs a writer token; the token is a reader");
  }
  return absl::OkStatus();
}

}  // namespace fleetplan::server
