// HTTP for the registry client: one request at a time, no redirects followed
// and no retries here (the client decides both). The real transport is
// libcurl; tests can put a fake behind the same interface.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "rootfs/entry.h"

namespace kiln {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // a small body
  // A streamed body of `upload_size` bytes: fill(buf, max) returns the bytes
  // written to buf (0 only at the end).
  std::function<size_t(char* buf, size_t max)> upload;
  uint64_t upload_size = 0;
  // A streamed response body; without it the body is kept (up to max_body).
  ByteSink* download = nullptr;
  uint64_t max_body = 16 << 20;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::vector<std::string>> headers;  // lower-case names
  std::string body;
  uint64_t body_bytes = 0;  // what arrived, streamed or kept

  // The first value of a header, or "".
  std::string Header(const std::string& lower_name) const;
};

struct TlsOptions {
  bool verify = true;  // false only with --insecure
  std::string
      ca_file;  // extra CA bundle (--ca-file); the system store otherwise
};

// A server whose certificate is not trusted: never a reason to fall back to
// plain HTTP, and retrying does not help.
class TlsTrustError : public Error {
 public:
  explicit TlsTrustError(std::string message)
      : Error(ErrorKind::kEnvironment, std::move(message)) {}
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // Sends one request. A connection, TLS or timeout failure throws a
  // retryable EnvError; any HTTP status is returned, not thrown.
  virtual HttpResponse Send(const HttpRequest& request) = 0;
};

std::unique_ptr<HttpTransport> NewCurlTransport(const TlsOptions& tls);

}  // namespace kiln
