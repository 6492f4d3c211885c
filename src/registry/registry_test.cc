#include <gtest/gtest.h>

#include <functional>

#include "core/base64.h"
#include "core/temp_dir.h"
#include "registry/auth.h"
#include "registry/channels.h"
#include "registry/client.h"
#include "registry/transfer.h"

namespace kiln {
namespace {

// An in-memory HTTP peer: answers through `handler`, records what it saw.
class FakeTransport : public HttpTransport {
 public:
  struct Seen {
    std::string method, url;
    std::vector<std::string> headers;
    std::string body;
  };
  std::function<HttpResponse(const HttpRequest&, const std::string& body)>
      handler;
  std::vector<Seen> seen;

  HttpResponse Send(const HttpRequest& r) override {
    std::string body = r.body;
    if (r.upload) {
      char buf[4096];
      while (size_t n = r.upload(buf, sizeof buf)) body.append(buf, n);
    }
    seen.push_back({r.method, r.url, r.headers, body});
    HttpResponse resp = handler(r, body);
    if (r.download && resp.status == 200)
      r.download->Write(resp.body.data(), resp.body.size());
    return resp;
  }
  bool SawHeader(size_t i, const std::string& prefix) const {
    for (const auto& h : seen[i].headers) {
      if (h.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }
};

HttpResponse Status(int status, std::map<std::string, std::string> headers = {},
                    std::string body = "") {
  HttpResponse r;
  r.status = status;
  for (auto& [k, v] : headers) r.headers[k].push_back(v);
  r.body = std::move(body);
  r.body_bytes = r.body.size();
  return r;
}

struct Fixture {
  std::shared_ptr<FakeTransport> fake = std::make_shared<FakeTransport>();
  std::vector<std::string> warnings;
  RegistryClient Client(const std::string& host = "127.0.0.1:5000",
                        std::optional<Credentials> creds = std::nullopt) {
    RegistryOptions o;
    o.transport = fake;
    o.backoff_ms = 0;
    o.credentials.explicit_creds = creds;
    o.warn = [this](const std::string& w) { warnings.push_back(w); };
    o.monolithic_max = 10;
    o.chunk_size = 4;
    return RegistryClient(host, o);
  }
};

TEST(WwwAuthenticate, ParsesChallengesAndQuotedValues) {
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push", Basic realm="x \"y\"")");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].params.at("realm"), "https://auth.example.com/token");
  EXPECT_EQ(c[0].params.at("scope"), "repository:a/b:pull,push");
  EXPECT_EQ(c[1].scheme, "basic");
  EXPECT_EQ(c[1].params.at("realm"), "x \"y\"");
  EXPECT_TRUE(ParseWwwAuthenticate("").empty());
  EXPECT_EQ(ParseWwwAuthenticate("Bearer realm=\"unterminated")
                .at(0)
                .params.at("realm"),
            "unterminated");
  EXPECT_EQ(ParseWwwAuthenticate("Basic").at(0).scheme, "basic");
  EXPECT_EQ(ParseWwwAuthenticate("Bearer ==,=").at(0).scheme, "bearer");
}

TEST(Base64, RoundTrips) {
  for (std::string s : {"", "a", "ab", "abc", "user:p@ss:word"})
    EXPECT_EQ(Base64Decode(Base64Encode(s)), s);
  EXPECT_EQ(Base64Encode("kiln:secret"), "a2lsbjpzZWNyZXQ=");
  EXPECT_FALSE(Base64Decode("abc").has_value());
}

TEST(Credentials, FromDockerConfigAndHelpers) {
  TempDir home;
  home.Write(".docker/config.json",
             R"({"auths":{"reg.example.com":{"auth":"a2lsbjpzZWNyZXQ="},
    "https://index.docker.io/v1/":{"auth":"aHViOmh1YnB3"}},"credHelpers":{"helped.example.com":"kilntest"}})");
  CredentialOptions o;
  o.home = home.path();
  auto c = LookupCredentials("reg.example.com", o);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->username, "kiln");
  EXPECT_EQ(c->password, "secret");
  EXPECT_EQ(LookupCredentials("docker.io", o)->username, "hub");
  EXPECT_FALSE(LookupCredentials("other.example.com", o));
  // A credential helper speaking the docker-credential protocol.
  home.Write(
      "bin/docker-credential-kilntest",
      "#!/bin/sh\nread server\n[ \"$server\" = helped.example.com ] || exit 1\n"
      "echo "
      "'{\"ServerURL\":\"helped.example.com\",\"Username\":\"bot\",\"Secret\":"
      "\"tok\"}'\n",
      0755);
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", (home.path() + "/bin:" + path).c_str(), 1);
  auto h = LookupCredentials("helped.example.com", o);
  setenv("PATH", path.c_str(), 1);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->username, "bot");
  EXPECT_EQ(h->password, "tok");
  o.explicit_creds = Credentials{"flag", "pw"};
  EXPECT_EQ(LookupCredentials("reg.example.com", o)->username, "flag");
}

TEST(Client, LoopbackFallsBackToPlainHttpWithAWarning) {
  Fixture f;
  f.fake->handler = [](const HttpRequest& r,
                       const std::string&) -> HttpResponse {
    if (r.url.rfind("https://", 0) == 0)
      throw EnvError("SSL connect error", true);
    return Status(r.url.find("/blobs/") != std::string::npos ? 404 : 200);
  };
  RegistryClient c = f.Client();
  EXPECT_FALSE(c.BlobSize("app", Sha256Of("x")).has_value());
  EXPECT_EQ(f.fake->seen.back().url,
            "http://127.0.0.1:5000/v2/app/blobs/" + Sha256Of("x").ToString());
  ASSERT_EQ(f.warnings.size(), 1u);
  EXPECT_EQ(
      f.warnings[0],
      "127.0.0.1:5000: using plain HTTP, without TLS (a loopback registry)");

  Fixture remote;
  remote.fake->handler = f.fake->handler;
  RegistryClient r = remote.Client("registry.example.com");
  EXPECT_THROW(r.BlobSize("app", Sha256Of("x")),
               Error);  // no downgrade for a remote host
}

TEST(Client, UntrustedCertificatesAreNeverDowngraded) {
  Fixture f;
  f.fake->handler = [](const HttpRequest& r,
                       const std::string&) -> HttpResponse {
    if (r.url.rfind("https://", 0) == 0)
      throw TlsTrustError("certificate not trusted");
    return Status(200);
  };
  RegistryClient c = f.Client();
  try {
    c.BlobSize("app", Sha256Of("x"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kEnvironment);
    EXPECT_FALSE(e.retryable());
  }
  for (const auto& s : f.fake->seen)
    EXPECT_EQ(s.url.rfind("http://", 0), std::string::npos);
}

TEST(Client, BearerTokensAreFetchedOncePerScope) {
  Fixture f;
  int token_requests = 0;
  f.fake->handler = [&](const HttpRequest& r,
                        const std::string&) -> HttpResponse {
    if (r.url == "https://reg/v2/") return Status(401);
    if (r.url.rfind("https://auth/token", 0) == 0) {
      ++token_requests;
      EXPECT_NE(r.url.find("service=reg"), std::string::npos);
      EXPECT_NE(r.url.find("scope=repository%3Aapp%3Apull"), std::string::npos);
      return Status(200, {}, R"({"token":"T1"})");
    }
    for (const auto& h : r.headers) {
      if (h == "Authorization: Bearer T1") return Status(404);
    }
    return Status(401,
                  {{"www-authenticate",
                    R"(Bearer realm="https://auth/token",service="reg")"}});
  };
  RegistryClient c = f.Client("reg", Credentials{"u", "p"});
  EXPECT_FALSE(c.BlobSize("app", Sha256Of("a")));
  EXPECT_FALSE(c.BlobSize("app", Sha256Of("b")));
  EXPECT_EQ(token_requests, 1);
  // The token request carried the credentials; the registry never saw them.
  for (size_t i = 0; i < f.fake->seen.size(); ++i) {
    bool to_auth = f.fake->seen[i].url.rfind("https://auth/", 0) == 0;
    EXPECT_EQ(f.fake->SawHeader(i, "Authorization: Basic"), to_auth)
        << f.fake->seen[i].url;
  }
}

TEST(Client, RefusedCredentialsAreTheUsersError) {
  Fixture f;
  f.fake->handler = [](const HttpRequest& r,
                       const std::string&) -> HttpResponse {
    return Status(401, {{"www-authenticate", R"(Basic realm="r")"}});
  };
  RegistryClient c = f.Client("reg", Credentials{"u", "wrong-password"});
  try {
    c.BlobSize("app", Sha256Of("a"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser);
    EXPECT_EQ(e.message(),
              "reg: authentication failed with the configured credentials");
    EXPECT_EQ(e.message().find("wrong-password"), std::string::npos);
  }
}

TEST(Client, RetriesServerErrorsAndHonoursRetryAfter) {
  Fixture f;
  int calls = 0;
  f.fake->handler = [&](const HttpRequest& r,
                        const std::string&) -> HttpResponse {
    if (r.url.find("/blobs/") == std::string::npos) return Status(200);
    ++calls;
    if (calls == 1) return Status(503);
    if (calls == 2) return Status(429, {{"retry-after", "0"}});
    if (calls == 3) throw EnvError("connection reset", true);
    return Status(200, {{"content-length", "5"}});
  };
  RegistryClient c = f.Client("reg");
  EXPECT_EQ(c.BlobSize("app", Sha256Of("a")), 5);
  EXPECT_EQ(c.counters().retries, 3u);

  calls = -100;  // fail for good
  f.fake->handler = [&](const HttpRequest& r,
                        const std::string&) -> HttpResponse {
    return r.url.find("/blobs/") == std::string::npos ? Status(200)
                                                      : Status(500);
  };
  try {
    c.BlobSize("app", Sha256Of("a"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kEnvironment);
    EXPECT_NE(e.message().find("gave up after 6 attempts"), std::string::npos)
        << e.message();
  }
}

TEST(Client, RedirectsNeverCarryCredentialsToAnotherHost) {
  Fixture f;
  std::string blob = "layer bytes";
  Descriptor d{media::kLayerGzip,
               Sha256Of(blob),
               static_cast<int64_t>(blob.size()),
               "",
               {},
               std::nullopt};
  f.fake->handler = [&](const HttpRequest& r,
                        const std::string&) -> HttpResponse {
    if (r.url == "https://reg/v2/") return Status(200);
    if (r.url.rfind("https://reg/", 0) == 0) {
      bool authed = false;
      for (const auto& h : r.headers)
        authed |= h.rfind("Authorization: Basic", 0) == 0;
      if (!authed)
        return Status(401, {{"www-authenticate", R"(Basic realm="r")"}});
      return Status(307, {{"location", "https://cdn.example.com/blob?sig=1"}});
    }
    return Status(200, {}, blob);
  };
  TempDir dir;
  Layout layout = Layout::Open(dir.path(), true);
  RegistryClient c = f.Client("reg", Credentials{"u", "p"});
  c.DownloadBlob("app", d, layout);
  EXPECT_TRUE(layout.HasBlob(d.digest));
  const auto& last = f.fake->seen.back();
  EXPECT_EQ(last.url, "https://cdn.example.com/blob?sig=1");
  for (const auto& h : last.headers)
    EXPECT_EQ(h.rfind("Authorization", 0), std::string::npos) << h;
}

TEST(Client, DownloadsAreVerifiedBeforeTheyEnterTheStore) {
  Fixture f;
  std::string blob = "the real bytes";
  Descriptor d{media::kLayerGzip,
               Sha256Of(blob),
               static_cast<int64_t>(blob.size()),
               "",
               {},
               std::nullopt};
  f.fake->handler = [&](const HttpRequest& r,
                        const std::string&) -> HttpResponse {
    return r.url.find("/blobs/") == std::string::npos
               ? Status(200)
               : Status(200, {}, "the fake bytes");
  };
  TempDir dir;
  Layout layout = Layout::Open(dir.path(), true);
  RegistryClient c = f.Client("reg");
  EXPECT_THROW(c.DownloadBlob("app", d, layout), Error);
  EXPECT_FALSE(layout.HasBlob(d.digest));
  EXPECT_FALSE(layout.HasBlob(Sha256Of("the fake bytes")));
}

TEST(Client, ChunkedUploadsResumeWhereTheRegistryStopped) {
  Fixture f;
  std::string data =
      "0123456789abcdefghij";  // 20 bytes: chunks of 4 (monolithic_max 10)
  std::string received;
  bool dropped = false;
  f.fake->handler = [&](const HttpRequest& r,
                        const std::string& body) -> HttpResponse {
    if (r.url == "https://reg/v2/") return Status(200);
    if (r.method == "POST")
      return Status(202, {{"location", "/v2/app/blobs/uploads/u1"}});
    if (r.method == "PATCH") {
      if (received.size() == 8 && !dropped) {  // the third chunk: half arrives,
                                               // then the connection drops
        dropped = true;
        received += body.substr(0, 2);
        throw EnvError("connection reset", true);
      }
      received += body;
      return Status(202,
                    {{"location", "/v2/app/blobs/uploads/u1"},
                     {"range", "0-" + std::to_string(received.size() - 1)}});
    }
    if (r.method == "GET")
      return Status(204,
                    {{"range", "0-" + std::to_string(received.size() - 1)}});
    if (r.method == "PUT") {
      EXPECT_NE(r.url.find("digest=sha256%3A"), std::string::npos);
      return Status(received == data ? 201 : 400);
    }
    return Status(500);
  };
  TempDir dir;
  std::string path = dir.Write("blob", data);
  Descriptor d{media::kLayerGzip,
               Sha256Of(data),
               static_cast<int64_t>(data.size()),
               "",
               {},
               std::nullopt};
  RegistryClient c = f.Client("reg");
  c.UploadBlob("app", d, path);
  EXPECT_TRUE(dropped);
  EXPECT_EQ(received, data);
}

TEST(Client, ManifestsAreCheckedAgainstTheirDigest) {
  Fixture f;
  std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
  f.fake->handler = [&](const HttpRequest& r,
                        const std::string&) -> HttpResponse {
    if (r.url == "https://reg/v2/") return Status(200);
    return Status(
        200, {{"content-type", "application/vnd.oci.image.manifest.v1+json"}},
        manifest);
  };
  RegistryClient c = f.Client("reg");
  auto m = c.GetManifest("app", "1.0.0");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->digest, Sha256Of(manifest));
  EXPECT_THROW(c.GetManifest("app", Sha256Of("other").ToString()), Error);
}

TEST(Tags, VersionsAreImmutableOthersMove) {
  for (const char* t : {"1.4.2", "v1.4.2", "1.0.0-rc.1", "2.0.0_build.5"})
    EXPECT_TRUE(IsVersionTag(t)) << t;
  for (const char* t :
       {"latest", "stable", "1.4", "1", "v2", "sha256-abc", "dev-1"})
    EXPECT_FALSE(IsVersionTag(t)) << t;
}

TEST(Channels, MovesHaveReservedTags) {
  EXPECT_EQ(MoveTagPrefix("stable"), "_kiln.move.stable.");
}

}  // namespace
}  // namespace kiln
