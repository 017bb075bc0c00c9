// Registry credentials and authentication challenges: Basic credentials read from a
// docker config.json ("auths" section), and the WWW-Authenticate header a registry
// answers 401 with (Basic, or Bearer realm=...,service=...,scope=... for the token flow).
//
// Credentials are secrets: nothing here puts them in a Status message, and
// Credentials has no printing helper on purpose.
//
// Thread-safety: pure functions; value types.
#ifndef LAZYBLOB_REGISTRY_REGISTRY_AUTH_H_
#define LAZYBLOB_REGISTRY_REGISTRY_AUTH_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace lazyblob {

struct Credentials {
  std::string username;
  std::string password;
};

// $DOCKER_CONFIG/config.json when DOCKER_CONFIG is set, else $HOME/.docker/config.json.
std::string DefaultDockerConfigPath();

// The credentials config.json at `path` holds for registry `host` ("HOST[:PORT]"). Keys of
// "auths" match when equal to the host, or to it with an http(s):// prefix and/or a path
// ("https://index.docker.io/v1/" style). An entry has "auth" = base64("user:password") or
// "username" + "password". No entry: nullopt. kNotFound when the file is missing,
// kInvalidArgument (naming the file, never its content) when it does not parse.
Result<std::optional<Credentials>> LoadDockerCredentials(const std::string& path,
                                                         std::string_view host);

// "Basic " + base64("user:password").
std::string BasicAuthorization(const Credentials& c);

// One WWW-Authenticate challenge: scheme lower-cased ("basic", "bearer"), parameter
// names lower-cased, quoted values unquoted.
struct AuthChallenge {
  std::string scheme;
  std::map<std::string, std::string> params;
};
// kMalformed when the header is not `scheme [k=v[, k="v"]...]`.
Result<AuthChallenge> ParseAuthChallenge(std::string_view header);

std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_REGISTRY_AUTH_H_
