#include "registry/auth.h"

#include <openssl/evp.h>

#include <cctype>

#include "core/base64.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/process.h"
#include "oci/model.h"

namespace kiln {
namespace {

// Docker Hub's credentials are stored under its legacy index URL.
std::vector<std::string> ConfigKeys(const std::string& host) {
  if (host == "docker.io" || host == "registry-1.docker.io" ||
      host == "index.docker.io") {
    return {"https://index.docker.io/v1/", "index.docker.io", "docker.io",
            "registry-1.docker.io"};
  }
  return {host, "https://" + host, "http://" + host, "https://" + host + "/v1/",
          "https://" + host + "/v2/"};
}

std::optional<Credentials> FromHelper(const std::string& helper,
                                      const std::string& host) {
  std::string program = "docker-credential-" + helper;
  if (!OnPath(program)) {
    throw UserError("credential helper " + program +
                    " (named in the docker config for " + host +
                    ") is not on PATH");
  }
  std::string server = ConfigKeys(host)[0];
  ProcessResult r = RunProcess({program, "get"}, server, 30);
  if (r.exit_code != 0) {
    // "credentials not found" is the protocol's way of saying none.
    if (r.out.find("not found") != std::string::npos ||
        r.err.find("not found") != std::string::npos) {
      return std::nullopt;
    }
    throw EnvError(program + " get failed for " + host + " (exit " +
                   std::to_string(r.exit_code) + ")");
  }
  nlohmann::json j;
  try {
    j = ParseJson(r.out, program + " get");
  } catch (const Error&) {
    throw EnvError(program + " get returned something that is not JSON");
  }
  // The protocol's answer: {"ServerURL": …, "Username": …, "Secret": …}.
  auto username = j.find("Username");  // end() when j is not an object
  auto secret = j.find("Secret");
  if (username == j.end() || !username->is_string() || secret == j.end() ||
      !secret->is_string()) {
    throw EnvError(program + " get for " + host +
                   " returned JSON without the strings Username and Secret");
  }
  Credentials c{username->get<std::string>(), secret->get<std::string>()};
  if (c.username == "<token>") {
    throw UserError(
        program + " holds an identity token for " + host +
        "; kiln needs a username and password or token (--creds USER:TOKEN)");
  }
  return c;
}

std::optional<Credentials> FromFile(const std::string& path,
                                    const std::string& host) {
  if (path.empty() || !PathExists(path)) return std::nullopt;
  nlohmann::json j = ParseJson(ReadFile(path, 4 << 20), path);
  if (!j.is_object()) return std::nullopt;
  std::vector<std::string> keys = ConfigKeys(host);
  if (auto helpers = j.find("credHelpers");
      helpers != j.end() && helpers->is_object()) {
    for (const auto& k : keys) {
      if (auto h = helpers->find(k); h != helpers->end() && h->is_string())
        return FromHelper(*h, host);
    }
  }
  if (auto auths = j.find("auths"); auths != j.end() && auths->is_object()) {
    for (const auto& k : keys) {
      auto a = auths->find(k);
      if (a == auths->end() || !a->is_object()) continue;
      if (a->contains("auth") && (*a)["auth"].is_string()) {
        auto decoded = Base64Decode((*a)["auth"].get<std::string>());
        size_t colon = decoded ? decoded->find(':') : std::string::npos;
        if (colon == std::string::npos)
          throw UserError(path + ": the auth entry for " + host +
                          " is not base64 of USER:PASS");
        return Credentials{decoded->substr(0, colon),
                           decoded->substr(colon + 1)};
      }
      if (a->contains("username") && a->contains("password")) {
        return Credentials{a->value("username", ""), a->value("password", "")};
      }
    }
  }
  if (auto store = j.find("credsStore"); store != j.end() &&
                                         store->is_string() &&
                                         !store->get<std::string>().empty()) {
    return FromHelper(*store, host);
  }
  return std::nullopt;
}

}  // namespace

std::optional<Credentials> LookupCredentials(const std::string& host,
                                             const CredentialOptions& o) {
  if (o.explicit_creds) return o.explicit_creds;
  std::string docker = !o.docker_config_dir.empty()
                           ? o.docker_config_dir + "/config.json"
                       : !o.home.empty() ? o.home + "/.docker/config.json"
                                         : "";
  if (auto c = FromFile(docker, host)) return c;
  std::string containers = !o.auth_file.empty() ? o.auth_file
                           : !o.runtime_dir.empty()
                               ? o.runtime_dir + "/containers/auth.json"
                               : "";
  return FromFile(containers, host);
}

std::vector<Challenge> ParseWwwAuthenticate(std::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == ',')) ++i;
  };
  auto token = [&] {
    size_t start = i;
    while (i < h.size() && h[i] != ' ' && h[i] != '\t' && h[i] != ',' &&
           h[i] != '=')
      ++i;
    std::string t(h.substr(start, i - start));
    for (auto& c : t)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return t;
  };
  while (true) {
    skip_space();
    if (i >= h.size()) break;
    Challenge c;
    c.scheme = token();
    if (c.scheme.empty()) {
      ++i;  // a stray '='
      continue;
    }
    // Parameters until the next scheme (a token not followed by '=').
    while (true) {
      skip_space();
      size_t mark = i;
      std::string key = token();
      while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
      if (key.empty() || i >= h.size() || h[i] != '=') {
        i = mark;
        break;
      }
      ++i;  // '='
      while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
      std::string value;
      if (i < h.size() && h[i] == '"') {
        ++i;
        while (i < h.size() && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < h.size()) ++i;
          value += h[i++];
        }
        if (i < h.size()) ++i;  // closing quote
      } else {
        while (i < h.size() && h[i] != ',' && h[i] != ' ' && h[i] != '\t')
          value += h[i++];
      }
      c.params[key] = value;
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace kiln
