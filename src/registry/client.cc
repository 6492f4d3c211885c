#include "registry/client.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include "core/base64.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/strings.h"

namespace kiln {
namespace {

constexpr char kManifestAccept[] =
    "Accept: application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr uint64_t kMaxManifestBytes = 4 << 20;

// "https://host:port" of a URL, to tell whether a redirect leaves it.
std::string Origin(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  size_t path = url.find('/', scheme + 3);
  return url.substr(0, path);
}

std::string UrlEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// What a registry's error body says ("MANIFEST_INVALID: manifest invalid").
std::string Explain(const HttpResponse& r) {
  std::string what = "HTTP " + std::to_string(r.status);
  try {
    auto j = nlohmann::json::parse(r.body);
    if (j.contains("errors") && j["errors"].is_array()) {
      for (const auto& e : j["errors"]) {
        what += "; " + e.value("code", std::string()) + ": " +
                e.value("message", std::string());
      }
    }
  } catch (const std::exception&) {
  }
  return what;
}

std::vector<std::string> WithoutAuthorization(
    const std::vector<std::string>& headers) {
  std::vector<std::string> out;
  for (const auto& h : headers) {
    std::string lower = h.substr(0, 14);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (lower != "authorization:") out.push_back(h);
  }
  return out;
}

// A file range as a streamed request body; counts what it sends.
class FileBody {
 public:
  FileBody(const std::string& path, uint64_t offset, uint64_t size,
           std::atomic<uint64_t>* sent,
           const std::function<void(uint64_t)>* progress,
           uint64_t progress_base)
      : fd_(OpenRead(path)),
        path_(path),
        offset_(offset),
        end_(offset + size),
        sent_(sent),
        progress_(progress),
        base_(progress_base),
        start_(offset) {}

  size_t Read(char* buf, size_t max) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(max, end_ - offset_));
    if (want == 0) return 0;
    ssize_t n = ::pread(fd_.get(), buf, want, static_cast<off_t>(offset_));
    if (n <= 0) throw SystemError("reading " + path_, n < 0 ? errno : EIO);
    offset_ += static_cast<uint64_t>(n);
    *sent_ += static_cast<uint64_t>(n);
    if (progress_ && *progress_) (*progress_)(base_ + offset_ - start_);
    return static_cast<size_t>(n);
  }

 private:
  UniqueFd fd_;
  std::string path_;
  uint64_t offset_, end_;
  std::atomic<uint64_t>* sent_;
  const std::function<void(uint64_t)>* progress_;
  uint64_t base_, start_;
};

// Counts what arrives; more than `max` bytes (a registry that sends without
// end) stops the transfer before the disk fills.
class CountingDownload : public ByteSink {
 public:
  CountingDownload(ByteSink& next, std::atomic<uint64_t>* received,
                   const std::function<void(uint64_t)>* progress, uint64_t max)
      : next_(next), received_(received), progress_(progress), max_(max) {}
  void Write(const void* data, size_t n) override {
    if (n > max_ - count_) {
      throw EnvError("more than the " + std::to_string(max_) +
                     " bytes the manifest gives arrived");
    }
    next_.Write(data, n);
    *received_ += n;
    count_ += n;
    if (progress_ && *progress_) (*progress_)(count_);
  }

 private:
  ByteSink& next_;
  std::atomic<uint64_t>* received_;
  const std::function<void(uint64_t)>* progress_;
  uint64_t max_;
  uint64_t count_ = 0;
};

}  // namespace

std::string Scope(const std::string& repo, bool push) {
  return "repository:" + repo + (push ? ":pull,push" : ":pull");
}

bool IsLoopback(const std::string& host) {
  std::string name =
      host.substr(0, host.rfind(':') == std::string::npos || host[0] == '['
                         ? host.size()
                         : host.rfind(':'));
  return name == "localhost" || StartsWith(name, "127.") || name == "[::1]";
}

RegistryClient::RegistryClient(std::string host, RegistryOptions options)
    : host_(std::move(host)), options_(std::move(options)) {
  if (options_.insecure) options_.tls.verify = false;
  transport_ =
      options_.transport
          ? options_.transport
          : std::shared_ptr<HttpTransport>(NewCurlTransport(options_.tls));
}

void RegistryClient::Warn(const std::string& message) const {
  if (options_.warn) options_.warn(message);
}

std::string RegistryClient::BaseUrl() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!base_url_.empty()) return base_url_;
  HttpRequest ping;
  ping.url = "https://" + host_ + "/v2/";
  try {
    transport_->Send(ping);
    base_url_ = "https://" + host_;
    if (options_.insecure)
      Warn(host_ + ": TLS certificates are not verified (--insecure)");
    return base_url_;
  } catch (const TlsTrustError& e) {
    throw EnvError(host_ + ": " + e.message());
  } catch (const Error& https_error) {
    if (!options_.insecure && !IsLoopback(host_)) {
      throw EnvError(host_ + ": " + https_error.message(),
                     https_error.retryable());
    }
    ping.url = "http://" + host_ + "/v2/";
    try {
      transport_->Send(ping);
    } catch (const Error&) {
      throw EnvError(host_ + ": " + https_error.message(),
                     https_error.retryable());
    }
    Warn(host_ + ": using plain HTTP, without TLS" +
         std::string(options_.insecure ? " (--insecure)"
                                       : " (a loopback registry)"));
    base_url_ = "http://" + host_;
    return base_url_;
  }
}

std::string RegistryClient::Absolute(const std::string& location) {
  if (StartsWith(location, "http://") || StartsWith(location, "https://"))
    return location;
  return BaseUrl() + (StartsWith(location, "/") ? "" : "/") + location;
}

std::string RegistryClient::AuthHeader(const std::string& scope) {
  std::lock_guard<std::mutex> lock(mu_);
  if (scheme_ == "basic" && creds_)
    return "Basic " + Base64Encode(creds_->username + ":" + creds_->password);
  if (scheme_ == "bearer") {
    auto it = tokens_.find(scope);
    if (it != tokens_.end()) return "Bearer " + it->second;
  }
  return "";
}

void RegistryClient::WillPush(const std::string& repo) {
  std::lock_guard<std::mutex> lock(mu_);
  push_repos_.insert(repo);
}

bool RegistryClient::Authenticate(const HttpResponse& r,
                                  const std::string& scope, bool already_fresh,
                                  const std::string& sent) {
  std::lock_guard<std::mutex> serial(auth_mu_);
  // Another thread may have fetched a token while this request was out.
  std::string now = AuthHeader(scope);
  if (!now.empty() && now != sent && !already_fresh) return true;
  std::vector<Challenge> challenges;
  for (const auto& h : r.headers.count("www-authenticate")
                           ? r.headers.at("www-authenticate")
                           : std::vector<std::string>{}) {
    for (auto& c : ParseWwwAuthenticate(h)) challenges.push_back(std::move(c));
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (!creds_loaded_) {
    creds_ = LookupCredentials(host_, options_.credentials);
    creds_loaded_ = true;
  }
  std::optional<Credentials> creds = creds_;
  lock.unlock();
  for (const auto& c : challenges) {
    if (c.scheme == "bearer" && c.params.count("realm")) {
      if (already_fresh) return false;
      std::string url = c.params.at("realm");
      std::string sep = url.find('?') == std::string::npos ? "?" : "&";
      if (c.params.count("service")) {
        url += sep + "service=" + UrlEncode(c.params.at("service"));
        sep = "&";
      }
      for (const auto& s : Split(scope, ' ')) {
        if (!s.empty()) url += sep + "scope=" + UrlEncode(s), sep = "&";
      }
      HttpRequest t;
      t.url = url;
      if (creds)
        t.headers.push_back(
            "Authorization: Basic " +
            Base64Encode(creds->username + ":" + creds->password));
      HttpResponse resp;
      for (int attempt = 1;; ++attempt) {
        try {
          resp = transport_->Send(t);
          if (resp.status < 500 || attempt >= options_.attempts) break;
        } catch (const Error& e) {
          if (!e.retryable() || attempt >= options_.attempts) {
            throw EnvError(host_ + ": fetching a token from " + Origin(url) +
                               ": " + e.message(),
                           e.retryable());
          }
        }
        Backoff(attempt, nullptr);
      }
      if (resp.status == 401 || resp.status == 403) {
        throw UserError(
            host_ + ": the token service " + Origin(url) + " refused " +
            (creds ? "the credentials"
                   : "anonymous access (docker login, --creds USER:PASS)"));
      }
      if (resp.status != 200)
        throw EnvError(host_ + ": token service " + Origin(url) + " answered " +
                       Explain(resp));
      std::string token;
      try {
        auto j = nlohmann::json::parse(resp.body);
        token = j.value("token", j.value("access_token", std::string()));
      } catch (const std::exception&) {
      }
      if (token.empty())
        throw EnvError(host_ + ": the token service " + Origin(url) +
                       " returned no token");
      lock.lock();
      scheme_ = "bearer";
      params_ = c.params;
      tokens_[scope] = token;
      return true;
    }
    if (c.scheme == "basic") {
      if (!creds || already_fresh) return false;
      lock.lock();
      scheme_ = "basic";
      return true;
    }
  }
  return false;
}

void RegistryClient::Backoff(int attempt, const HttpResponse* r) {
  int64_t ms = std::min<int64_t>(
      options_.max_backoff_ms,
      int64_t{options_.backoff_ms} << std::min(attempt - 1, 20));
  if (r) {
    std::string after = r->Header("retry-after");
    if (auto seconds = ParseUint(after))
      ms = std::min<int64_t>(static_cast<int64_t>(*seconds) * 1000, 120000);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

HttpResponse RegistryClient::SendFollowingRedirects(HttpRequest request) {
  std::string origin = Origin(request.url);
  for (int hop = 0; hop < 6; ++hop) {
    HttpResponse r = transport_->Send(request);
    bool redirect = r.status == 301 || r.status == 302 || r.status == 303 ||
                    r.status == 307 || r.status == 308;
    std::string location = r.Header("location");
    if (!redirect || location.empty()) return r;
    std::string next =
        StartsWith(location, "http://") || StartsWith(location, "https://")
            ? location
            : Origin(request.url) + (StartsWith(location, "/") ? "" : "/") +
                  location;
    // Credentials never follow a redirect to another host.
    if (Origin(next) != origin)
      request.headers = WithoutAuthorization(request.headers);
    if (r.status == 303) request.method = "GET";
    request.url = next;
  }
  throw EnvError(host_ + ": too many redirects for " + request.method);
}

HttpResponse RegistryClient::Do(const MakeRequest& make,
                                const std::string& requested_scope,
                                bool retry) {
  std::string scope = requested_scope;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& repo : push_repos_) {
      if (scope == Scope(repo, false)) scope = Scope(repo, true);
    }
  }
  bool fresh_auth = false;
  int attempt = 0;
  while (true) {
    HttpRequest request = make();
    if (StartsWith(request.url, "/")) request.url = BaseUrl() + request.url;
    std::string auth = AuthHeader(scope);
    if (!auth.empty()) request.headers.push_back("Authorization: " + auth);
    ++counters_.requests;
    HttpResponse r;
    try {
      r = SendFollowingRedirects(request);
    } catch (const Error& e) {
      if (!e.retryable() || !retry || ++attempt >= options_.attempts) {
        // Once the budget is spent, callers must not start another round.
        bool exhausted = retry && e.retryable();
        throw Error(e.kind(),
                    host_ + ": " + e.message() +
                        (exhausted ? " (gave up after " +
                                         std::to_string(attempt) + " attempts)"
                                   : ""),
                    e.retryable() && !exhausted);
      }
      ++counters_.retries;
      Backoff(attempt, nullptr);
      continue;
    }
    if (r.status == 401) {
      if (Authenticate(r, scope, fresh_auth, auth)) {
        fresh_auth = true;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      throw UserError(
          host_ + ": authentication " +
          (creds_ ? std::string("failed with the configured credentials")
                  : std::string("required (docker login, --creds USER:PASS or "
                                "KILN_REGISTRY_CREDS)")));
    }
    if (r.status == 403)
      throw UserError(host_ + ": access denied for " + scope + " (" +
                      Explain(r) + ")");
    if (retry && (r.status == 429 || r.status >= 500)) {
      if (++attempt < options_.attempts) {
        ++counters_.retries;
        Backoff(attempt, &r);
        continue;
      }
      throw EnvError(host_ + ": " + request.method + " " +
                         request.url.substr(Origin(request.url).size()) + ": " +
                         Explain(r) + " (gave up after " +
                         std::to_string(attempt) + " attempts)",
                     /*retryable=*/false);
    }
    return r;
  }
}

std::optional<int64_t> RegistryClient::BlobSize(const std::string& repo,
                                                const Digest& digest) {
  HttpResponse r = Do(
      [&] {
        HttpRequest q;
        q.method = "HEAD";
        q.url = "/v2/" + repo + "/blobs/" + digest.ToString();
        return q;
      },
      Scope(repo, false));
  if (r.status == 404) return std::nullopt;
  if (r.status != 200)
    throw EnvError(host_ + ": HEAD blob " + digest.ToString() + ": " +
                   Explain(r));
  auto size = ParseUint(r.Header("content-length"));
  return size ? static_cast<int64_t>(*size) : -1;
}

bool RegistryClient::MountBlob(const std::string& repo, const Digest& digest,
                               const std::string& from_repo) {
  HttpResponse r = Do(
      [&] {
        HttpRequest q;
        q.method = "POST";
        q.url = "/v2/" + repo +
                "/blobs/uploads/?mount=" + UrlEncode(digest.ToString()) +
                "&from=" + UrlEncode(from_repo);
        return q;
      },
      Scope(repo, true) + " " + Scope(from_repo, false));
  if (r.status == 201) return true;
  if (r.status == 202 && !r.Header("location").empty()) {
    // Not mounted: the registry opened an upload session instead; close it.
    std::string location = Absolute(r.Header("location"));
    Do(
        [&] {
          HttpRequest q;
          q.method = "DELETE";
          q.url = location;
          return q;
        },
        Scope(repo, true), false);
  }
  return false;
}

std::string RegistryClient::UploadUrl(const std::string& location,
                                      const Digest& digest) {
  std::string url = Absolute(location);
  return url + (url.find('?') == std::string::npos ? "?" : "&") +
         "digest=" + UrlEncode(digest.ToString());
}

void RegistryClient::UploadBlob(const std::string& repo, const Descriptor& d,
                                const std::string& path,
                                const std::function<void(uint64_t)>& progress) {
  const std::string scope = Scope(repo, true);
  const uint64_t size = static_cast<uint64_t>(d.size);
  const std::string what = host_ + ": uploading " + d.digest.ToString();
  std::optional<HttpResponse>
      last;  // the refusal to back off from (Retry-After)
  auto refuse = [&](const HttpResponse& r, const std::string& doing) {
    last = r;
    return EnvError(what + ": " + doing + Explain(r),
                    r.status >= 500 || r.status == 429);
  };
  auto start = [&] {
    HttpResponse r = Do(
        [&] {
          HttpRequest q;
          q.method = "POST";
          q.url = "/v2/" + repo + "/blobs/uploads/";
          return q;
        },
        scope);
    if (r.status != 202 || r.Header("location").empty())
      throw refuse(r, "starting: ");
    return Absolute(r.Header("location"));
  };
  auto body = [&](HttpRequest& q, uint64_t offset, uint64_t n) {
    auto file = std::make_shared<FileBody>(
        path, offset, n, &counters_.bytes_sent, &progress, offset);
    q.upload = [file](char* buf, size_t max) { return file->Read(buf, max); };
    q.upload_size = n;
    q.headers.push_back("Content-Type: application/octet-stream");
  };
  // Chunks, resuming from what the registry says it holds after a fault.
  // Registries append a PATCH at their own offset, so a resume needs the exact
  // one: "Range: 0-0" may mean 0 or 1 byte, and then the session starts over.
  auto chunked = [&](std::string location) {
    uint64_t offset = 0;
    int faults = 0;
    while (offset < size) {
      uint64_t n = std::min(options_.chunk_size, size - offset);
      HttpResponse r;
      try {
        r = Do(
            [&] {
              HttpRequest q;
              q.method = "PATCH";
              q.url = location;
              q.headers.push_back("Content-Range: " + std::to_string(offset) +
                                  "-" + std::to_string(offset + n - 1));
              body(q, offset, n);
              return q;
            },
            scope, false);
        if (r.status == 202) {
          if (!r.Header("location").empty())
            location = Absolute(r.Header("location"));
          offset += n;
          continue;
        }
        if (r.status < 500 && r.status != 429 && r.status != 416)
          throw refuse(r, "");
      } catch (const Error& e) {
        if (!e.retryable()) throw;
      }
      if (++faults >= options_.attempts)
        throw EnvError(what + ": too many faults in one upload session", true);
      ++counters_.retries;
      Backoff(faults, r.status ? &r : nullptr);
      HttpResponse status = Do(
          [&] {
            HttpRequest q;
            q.url = location;
            return q;
          },
          scope);
      std::string range = status.Header("range");  // "0-LAST"
      size_t dash = range.find('-');
      auto end = dash == std::string::npos ? std::nullopt
                                           : ParseUint(range.substr(dash + 1));
      if (status.status != 204 || !end || *end == 0) {
        throw EnvError(what + ": the upload session cannot be resumed",
                       true);  // start over
      }
      if (!status.Header("location").empty())
        location = Absolute(status.Header("location"));
      offset = *end + 1;
    }
    return location;
  };
  for (int attempt = 1;; ++attempt) {
    last.reset();
    try {
      std::string location = start();
      if (size > options_.monolithic_max) location = chunked(location);
      HttpResponse r = Do(
          [&] {
            HttpRequest q;
            q.method = "PUT";
            q.url = UploadUrl(location, d.digest);
            if (size <= options_.monolithic_max) {
              body(q, 0, size);
            } else {
              q.headers.push_back("Content-Type: application/octet-stream");
            }
            return q;
          },
          scope, false);
      if (r.status == 201) return;
      throw refuse(r, "");
    } catch (const Error& e) {
      if (!e.retryable()) throw;
      if (attempt >= options_.attempts) {
        throw Error(e.kind(),
                    e.message() + " (gave up after " + std::to_string(attempt) +
                        " attempts)",
                    true);
      }
      ++counters_.retries;
      Backoff(attempt, last ? &*last : nullptr);
    }
  }
}

Descriptor RegistryClient::UploadBytes(const std::string& repo,
                                       const std::string& bytes,
                                       const std::string& media_type) {
  Descriptor d;
  d.media_type = media_type;
  d.digest = Sha256Of(bytes);
  d.size = static_cast<int64_t>(bytes.size());
  if (BlobSize(repo, d.digest)) return d;
  HttpResponse start = Do(
      [&] {
        HttpRequest q;
        q.method = "POST";
        q.url = "/v2/" + repo + "/blobs/uploads/";
        return q;
      },
      Scope(repo, true));
  if (start.status != 202 || start.Header("location").empty()) {
    throw EnvError(host_ + ": starting the upload of " + d.digest.ToString() +
                   ": " + Explain(start));
  }
  std::string location = Absolute(start.Header("location"));
  HttpResponse r = Do(
      [&] {
        HttpRequest q;
        q.method = "PUT";
        q.url = UploadUrl(location, d.digest);
        q.headers.push_back("Content-Type: application/octet-stream");
        q.body = bytes;
        return q;
      },
      Scope(repo, true));
  if (r.status != 201)
    throw EnvError(host_ + ": uploading " + d.digest.ToString() + ": " +
                   Explain(r));
  counters_.bytes_sent += bytes.size();
  return d;
}

std::string RegistryClient::ReadBlob(const std::string& repo,
                                     const Descriptor& d, uint64_t max_bytes) {
  if (static_cast<uint64_t>(d.size) > max_bytes) {
    throw UserError(host_ + "/" + repo + ": blob " + d.digest.ToString() +
                    " is larger than " + std::to_string(max_bytes));
  }
  HttpResponse r = Do(
      [&] {
        HttpRequest q;
        q.url = "/v2/" + repo + "/blobs/" + d.digest.ToString();
        q.max_body = max_bytes;
        return q;
      },
      Scope(repo, false));
  if (r.status != 200)
    throw EnvError(host_ + "/" + repo + ": GET blob " + d.digest.ToString() +
                   ": " + Explain(r));
  if (Sha256Of(r.body) != d.digest) {
    throw EnvError(host_ + "/" + repo + ": blob " + d.digest.ToString() +
                   " arrived with other content");
  }
  counters_.bytes_received += r.body.size();
  return r.body;
}

void RegistryClient::DownloadBlob(
    const std::string& repo, const Descriptor& d, const Layout& into,
    const std::function<void(uint64_t)>& progress) {
  for (int attempt = 1;; ++attempt) {
    std::unique_ptr<BlobWriter> writer;
    std::unique_ptr<CountingDownload> counting;
    try {
      HttpResponse r = Do(
          [&] {
            writer = into.NewBlob();  // each attempt starts a fresh temp file
            counting = std::make_unique<CountingDownload>(
                *writer, &counters_.bytes_received, &progress,
                static_cast<uint64_t>(d.size));
            HttpRequest q;
            q.url = "/v2/" + repo + "/blobs/" + d.digest.ToString();
            q.download = counting.get();
            return q;
          },
          Scope(repo, false));
      if (r.status == 404)
        throw UserError(host_ + "/" + repo + ": blob " + d.digest.ToString() +
                        " is not in the registry");
      if (r.status != 200)
        throw EnvError(host_ + ": GET blob " + d.digest.ToString() + ": " +
                       Explain(r));
      if (writer->size() != static_cast<uint64_t>(d.size)) {
        throw EnvError(host_ + ": blob " + d.digest.ToString() +
                           " arrived with " + std::to_string(writer->size()) +
                           " bytes, expected " + std::to_string(d.size),
                       true);
      }
      try {
        writer->Commit(d.media_type,
                       d.digest);  // verified before it gets its name
      } catch (const Error& e) {
        throw EnvError(
            host_ + ": blob " + d.digest.ToString() + ": " + e.message(), true);
      }
      return;
    } catch (const Error& e) {
      if (!e.retryable()) throw;
      if (attempt >= options_.attempts) {
        throw Error(e.kind(),
                    e.message() + " (gave up after " + std::to_string(attempt) +
                        " attempts)",
                    true);
      }
      ++counters_.retries;
      Backoff(attempt, nullptr);
    }
  }
}

std::optional<RegistryClient::FetchedManifest> RegistryClient::GetManifest(
    const std::string& repo, const std::string& reference) {
  HttpResponse r = Do(
      [&] {
        HttpRequest q;
        q.url = "/v2/" + repo + "/manifests/" + reference;
        q.headers.push_back(kManifestAccept);
        q.max_body = kMaxManifestBytes;
        return q;
      },
      Scope(repo, false));
  if (r.status == 404) return std::nullopt;
  if (r.status != 200)
    throw EnvError(host_ + "/" + repo + ": GET manifest " + reference + ": " +
                   Explain(r));
  FetchedManifest m;
  m.bytes = std::move(r.body);
  m.digest = Sha256Of(m.bytes);
  std::string what = host_ + "/" + repo + ":" + reference;
  if (Digest::IsValid(reference) && m.digest.ToString() != reference) {
    throw EnvError(what + ": the registry returned content that hashes to " +
                   m.digest.ToString());
  }
  std::string claimed = r.Header("docker-content-digest");
  if (!claimed.empty() && claimed != m.digest.ToString()) {
    throw EnvError(what + ": the registry says " + claimed +
                   " but the content hashes to " + m.digest.ToString());
  }
  m.media_type = r.Header("content-type");
  if (size_t semi = m.media_type.find(';'); semi != std::string::npos)
    m.media_type.resize(semi);
  if (!IsManifestType(m.media_type) && !IsIndexType(m.media_type)) {
    auto j = ParseJson(m.bytes, what);
    m.media_type = j.is_object() ? j.value("mediaType", std::string()) : "";
  }
  if (!IsManifestType(m.media_type) && !IsIndexType(m.media_type)) {
    throw UserError(what + ": " + Quote(m.media_type) +
                    " is not an OCI or Docker v2 manifest or index");
  }
  return m;
}

std::optional<Digest> RegistryClient::ManifestDigest(
    const std::string& repo, const std::string& reference) {
  HttpResponse r = Do(
      [&] {
        HttpRequest q;
        q.method = "HEAD";
        q.url = "/v2/" + repo + "/manifests/" + reference;
        q.headers.push_back(kManifestAccept);
        return q;
      },
      Scope(repo, false));
  if (r.status == 404) return std::nullopt;
  std::string claimed = r.Header("docker-content-digest");
  if (r.status == 200 && Digest::IsValid(claimed))
    return Digest::Parse(claimed);
  // No digest header: fetch the manifest and hash it.
  auto m = GetManifest(repo, reference);
  return m ? std::optional<Digest>(m->digest) : std::nullopt;
}

void RegistryClient::PutManifest(const std::string& repo,
                                 const std::string& reference,
                                 const std::string& bytes,
                                 const std::string& media_type) {
  HttpResponse r = Do(
      [&] {
        HttpRequest q;
        q.method = "PUT";
        q.url = "/v2/" + repo + "/manifests/" + reference;
        q.headers.push_back("Content-Type: " + media_type);
        q.body = bytes;
        counters_.bytes_sent += bytes.size();
        return q;
      },
      Scope(repo, true));
  if (r.status != 201 && r.status != 200) {
    throw Error(
        r.status >= 400 && r.status < 500 ? ErrorKind::kUser
                                          : ErrorKind::kEnvironment,
        host_ + "/" + repo + ": PUT manifest " + reference + ": " + Explain(r));
  }
}

std::vector<std::string> RegistryClient::ListTags(const std::string& repo) {
  std::vector<std::string> tags;
  std::string url = "/v2/" + repo + "/tags/list?n=1000";
  for (int page = 0; page < 1000 && !url.empty(); ++page) {
    HttpResponse r = Do(
        [&] {
          HttpRequest q;
          q.url = url;
          return q;
        },
        Scope(repo, false));
    if (r.status == 404) return tags;
    if (r.status != 200)
      throw EnvError(host_ + "/" + repo + ": listing tags: " + Explain(r));
    auto j = ParseJson(r.body, host_ + "/" + repo + " tags");
    if (j.contains("tags") && j["tags"].is_array()) {
      for (const auto& t : j["tags"]) {
        if (t.is_string()) tags.push_back(t.get<std::string>());
      }
    }
    // Link: </v2/repo/tags/list?last=x&n=1000>; rel="next"
    std::string link = r.Header("link");
    size_t lt = link.find('<'), gt = link.find('>');
    url = lt != std::string::npos && gt != std::string::npos
              ? link.substr(lt + 1, gt - lt - 1)
              : "";
  }
  return tags;
}

}  // namespace kiln
