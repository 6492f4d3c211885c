// Registry credentials and challenges. Credentials come from --creds (or the
// environment, read by the front end), then the ecosystem's files:
// $DOCKER_CONFIG/config.json or ~/.docker/config.json ("auths" with base64
// "auth", "credHelpers", "credsStore" via `docker-credential-NAME get`),
// then $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json.
// Nothing here ever puts a secret in a message.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct Credentials {
  std::string username;
  std::string password;
};

struct CredentialOptions {
  std::optional<Credentials> explicit_creds;  // --creds USER:PASS
  std::string home;                           // $HOME
  std::string docker_config_dir;              // $DOCKER_CONFIG
  std::string auth_file;                      // $REGISTRY_AUTH_FILE
  std::string runtime_dir;                    // $XDG_RUNTIME_DIR
};

// The credentials for a registry host ("localhost:5000", "docker.io"), if any.
std::optional<Credentials> LookupCredentials(const std::string& host,
                                             const CredentialOptions& options);

// One challenge of a WWW-Authenticate header: `Bearer realm="…",service="…"`.
struct Challenge {
  std::string scheme;                         // lower case: "bearer", "basic"
  std::map<std::string, std::string> params;  // lower-case keys
};
// Parses a WWW-Authenticate value (RFC 7235: several challenges, quoted
// strings with escapes, tokens). Malformed input yields what could be read.
std::vector<Challenge> ParseWwwAuthenticate(std::string_view header);

}  // namespace kiln
