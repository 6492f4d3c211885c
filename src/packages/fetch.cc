#include "packages/fetch.h"

#include <chrono>
#include <thread>

#include "core/error.h"
#include "core/strings.h"

namespace kiln {
namespace {

std::string Origin(const std::string& url) {
  size_t scheme = url.find("://");
  size_t path = scheme == std::string::npos ? std::string::npos
                                            : url.find('/', scheme + 3);
  return url.substr(0, path);
}

// Counts what arrives and refuses more than allowed.
class BoundedSink : public ByteSink {
 public:
  BoundedSink(ByteSink& next, uint64_t max, const std::string& url)
      : next_(next), max_(max), url_(url) {}
  void Write(const void* data, size_t n) override {
    count_ += n;
    if (count_ > max_) {
      exceeded_ = true;
      throw EnvError(url_ + " is larger than " + std::to_string(max_) +
                     " bytes");
    }
    next_.Write(data, n);
  }
  bool exceeded() const { return exceeded_; }

 private:
  ByteSink& next_;
  uint64_t max_;
  uint64_t count_ = 0;
  bool exceeded_ = false;
  const std::string& url_;
};

}  // namespace

bool Fetch(HttpTransport& http, const std::string& url, ByteSink& sink,
           const std::function<void()>& reset, const FetchOptions& o) {
  for (int attempt = 1;; ++attempt) {
    std::string current = url;
    BoundedSink bounded(sink, o.max_bytes, url);
    try {
      if (attempt > 1 && reset) reset();
      for (int hop = 0;; ++hop) {
        if (hop > 5) throw EnvError(url + ": too many redirects");
        HttpRequest q;
        q.url = current;
        q.download = &bounded;
        HttpResponse r = http.Send(q);
        if (r.status == 200) return true;
        if (r.status == 404 || r.status == 410) return false;
        std::string location = r.Header("location");
        if (r.status >= 300 && r.status < 400 && !location.empty()) {
          current = StartsWith(location, "http://") ||
                            StartsWith(location, "https://")
                        ? location
                        : Origin(current) +
                              (StartsWith(location, "/") ? "" : "/") + location;
          continue;
        }
        throw EnvError(url + ": HTTP " + std::to_string(r.status),
                       r.status >= 500 || r.status == 429);
      }
    } catch (const Error& e) {
      if (bounded.exceeded()) {
        throw EnvError(o.too_large
                           ? o.too_large()
                           : url + " is larger than " +
                                 std::to_string(o.max_bytes) + " bytes");
      }
      if (!e.retryable() || attempt >= o.attempts) {
        throw Error(e.kind(),
                    e.message() + (e.retryable() ? " (gave up after " +
                                                       std::to_string(attempt) +
                                                       " attempts)"
                                                 : ""));
      }
      std::this_thread::sleep_for(
          std::chrono::milliseconds(o.backoff_ms << (attempt - 1)));
    }
  }
}

std::optional<std::string> FetchText(HttpTransport& http,
                                     const std::string& url,
                                     uint64_t max_bytes) {
  std::string body;
  StringSink sink(&body);
  FetchOptions o;
  o.max_bytes = max_bytes;
  if (!Fetch(
          http, url, sink, [&] { body.clear(); }, o))
    return std::nullopt;
  return body;
}

}  // namespace kiln
