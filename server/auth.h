#ifndef FLEETPLAN_SERVER_AUTH_H_
#define FLEETPLAN_SERVER_AUTH_H_

// Bearer-token authorization. Tokens come from a file (--auth_tokens_file), one per line:
//   <token> <role>        role: reader | writer   (# starts a comment)
// A writer may also read. Without a file every call is allowed (the zero-config loopback default).
// Tokens are compared in constant time and never logged.
//
// Thread-safe: immutable after Load.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"

namespace fleetplan::server {

enum class Role { kReader, kWriter };

class Authorizer {
 public:
  // No tokens: everything allowed.
  static std::unique_ptr<Authorizer> AllowAll();
  // Parses a tokens file's text; `source` names it in errors.
  static absl::StatusOr<std::unique_ptr<Authorizer>> FromText(const std::string& text,
                                                              const std::string& source);

  // UNAUTHENTICATED when the call carries no known "authorization: Bearer <token>";
  // PERMISSION_DENIED when the token's role is too weak.
  absl::Status Check(const grpc::ServerContextBase& context, Role needed) const;
  // The same check on an HTTP "Authorization" header's value (empty when absent).
  absl::Status CheckHeader(absl::string_view authorization, Role needed) const;
  bool enabled() const { return !tokens_.empty(); }

 private:
  struct Token {
    std::string secret;
    Role role;
  };
  std::vector<Token> tokens_;
};

// Constant-time equality (time depends only on the lengths).
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_AUTH_H_
