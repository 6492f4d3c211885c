// A client for the OCI distribution API (one registry host): blobs (HEAD,
// GET verified by digest, cross-repository mount, monolithic or chunked
// upload with resume), manifests, tags. Every call authenticates as the
// registry asks (anonymous, basic, bearer tokens fetched per scope and
// cached), follows redirects without carrying credentials to another host,
// and retries connection faults, 5xx and 429 (honouring Retry-After) with
// exponential backoff.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "oci/model.h"
#include "registry/auth.h"
#include "registry/http.h"
#include "store/layout.h"

namespace kiln {

struct RegistryOptions {
  CredentialOptions credentials;
  TlsOptions tls;
  // Plain HTTP and unverified TLS for any host. Loopback registries fall
  // back to plain HTTP without it, with a warning.
  bool insecure = false;
  int attempts = 6;  // per request, the first included
  int backoff_ms = 250;
  int max_backoff_ms = 16000;
  uint64_t monolithic_max = 32 << 20;  // larger blobs go up in chunks
  uint64_t chunk_size = 32 << 20;
  std::function<void(const std::string&)> warn;
  std::shared_ptr<HttpTransport> transport;  // default: libcurl with `tls`
};

struct TransferCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> retries{0};
};

class RegistryClient {
 public:
  RegistryClient(std::string host, RegistryOptions options);

  const std::string& host() const { return host_; }
  // This client will push to `repo`: ask for pull,push tokens from the start,
  // so reads and writes share one token.
  void WillPush(const std::string& repo);
  TransferCounters& counters() { return counters_; }
  void Warn(const std::string& message) const;

  // The size of a blob the repository has, or nullopt.
  std::optional<int64_t> BlobSize(const std::string& repo,
                                  const Digest& digest);
  // Asks the registry to link a blob from another repository; true if it did.
  bool MountBlob(const std::string& repo, const Digest& digest,
                 const std::string& from_repo);
  // Uploads a local file as the blob `d` (progress gets bytes sent so far).
  void UploadBlob(const std::string& repo, const Descriptor& d,
                  const std::string& path,
                  const std::function<void(uint64_t)>& progress = nullptr);
  // Uploads a small blob held in memory (unless the registry has it).
  Descriptor UploadBytes(const std::string& repo, const std::string& bytes,
                         const std::string& media_type);
  // Reads a small blob into memory, verified.
  std::string ReadBlob(const std::string& repo, const Descriptor& d,
                       uint64_t max_bytes = 16 << 20);
  // Downloads `d` into the layout, verified by digest and size.
  void DownloadBlob(const std::string& repo, const Descriptor& d,
                    const Layout& into,
                    const std::function<void(uint64_t)>& progress = nullptr);

  struct FetchedManifest {
    std::string bytes;
    std::string media_type;
    Digest digest;  // of `bytes`, checked against the reference and the
                    // registry's header
  };
  // A manifest or index by tag or digest; nullopt if the registry has none.
  std::optional<FetchedManifest> GetManifest(const std::string& repo,
                                             const std::string& reference);
  std::optional<Digest> ManifestDigest(const std::string& repo,
                                       const std::string& reference);
  void PutManifest(const std::string& repo, const std::string& reference,
                   const std::string& bytes, const std::string& media_type);
  std::vector<std::string> ListTags(const std::string& repo);

 private:
  using MakeRequest = std::function<HttpRequest()>;
  std::string BaseUrl();
  // Auth, redirects and retries around one logical request. `make` is called
  // for each attempt, so streamed bodies start over.
  HttpResponse Do(const MakeRequest& make, const std::string& scope,
                  bool retry = true);
  HttpResponse SendFollowingRedirects(HttpRequest request);
  std::string AuthHeader(const std::string& scope);
  bool Authenticate(const HttpResponse& challenge, const std::string& scope,
                    bool already_fresh, const std::string& sent);
  void Backoff(int attempt, const HttpResponse* response);
  std::string UploadUrl(const std::string& location, const Digest& digest);
  std::string Absolute(const std::string& location);

  std::string host_;
  RegistryOptions options_;
  std::shared_ptr<HttpTransport> transport_;
  TransferCounters counters_;

  std::mutex mu_;
  std::string base_url_;  // "https://host" once probed
  std::optional<Credentials> creds_;
  bool creds_loaded_ = false;
  std::string scheme_;  // "bearer" or "basic" once challenged
  std::map<std::string, std::string> params_;  // the bearer challenge
  std::map<std::string, std::string> tokens_;  // scope -> token
  std::set<std::string> push_repos_;
  std::mutex auth_mu_;  // one token fetch at a time
};

// "repository:REPO:pull" or "...:pull,push".
std::string Scope(const std::string& repo, bool push);
bool IsLoopback(const std::string& host);

}  // namespace kiln
