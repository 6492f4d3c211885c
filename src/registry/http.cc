#include "registry/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.h"
#include "core/strings.h"

namespace kiln {

std::string HttpResponse::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() || it->second.empty() ? "" : it->second.front();
}

namespace {

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

struct Transfer {
  const HttpRequest* request;
  HttpResponse* response;
  std::string error;  // set when a callback refuses
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n'))
    line.pop_back();
  if (StartsWith(line, "HTTP/")) {
    t->response->headers.clear();  // a new response (after 100 Continue)
    size_t sp = line.find(' ');
    if (sp != std::string::npos)
      t->response->status = std::atoi(line.c_str() + sp + 1);
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    size_t start = line.find_first_not_of(' ', colon + 1);
    t->response->headers[name].push_back(
        start == std::string::npos ? "" : line.substr(start));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t bytes = size * n;
  t->response->body_bytes += bytes;
  try {
    // Error bodies are kept for messages; success bodies may stream.
    if (t->request->download && t->response->status >= 200 &&
        t->response->status < 300) {
      t->request->download->Write(data, bytes);
    } else {
      if (t->response->body.size() + bytes > t->request->max_body) {
        t->error = "response body larger than " +
                   std::to_string(t->request->max_body) + " bytes";
        return 0;
      }
      t->response->body.append(data, bytes);
    }
  } catch (const std::exception& e) {
    t->error = e.what();
    return 0;
  }
  return bytes;
}

size_t OnUpload(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  try {
    return t->request->upload(buf, size * n);
  } catch (const std::exception& e) {
    t->error = e.what();
    return CURL_READFUNC_ABORT;
  }
}

class CurlTransport : public HttpTransport {
 public:
  explicit CurlTransport(TlsOptions tls) : tls_(std::move(tls)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }

  HttpResponse Send(const HttpRequest& request) override {
    std::unique_ptr<CURL, CurlFree> handle = Take();
    CURL* c = handle.get();
    curl_easy_reset(c);
    HttpResponse response;
    Transfer t{&request, &response, ""};
    curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    // Only the web: a token realm or a mirror URL naming file://, gopher://
    // or dict:// must not make kiln read local files or talk to other
    // services.
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    // A stalled transfer (under 1 kB/s for a minute) is a connection fault.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "kiln");
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, tls_.verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, tls_.verify ? 2L : 0L);
    if (!tls_.ca_file.empty())
      curl_easy_setopt(c, CURLOPT_CAINFO, tls_.ca_file.c_str());
    struct curl_slist* headers = nullptr;
    for (const auto& h : request.headers)
      headers = curl_slist_append(headers, h.c_str());
    // Uploads are sent at once: "Expect: 100-continue" costs a round trip.
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    const std::string& m = request.method;
    if (m == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (request.upload) {
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(c, CURLOPT_READFUNCTION, OnUpload);
      curl_easy_setopt(c, CURLOPT_READDATA, &t);
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
                       static_cast<curl_off_t>(request.upload_size));
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
    } else if (m != "GET") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
    Give(std::move(handle));
    if (rc != CURLE_OK) {
      if (!t.error.empty() && rc != CURLE_ABORTED_BY_CALLBACK &&
          rc != CURLE_WRITE_ERROR && rc != CURLE_READ_ERROR) {
        t.error.clear();
      }
      if (!t.error.empty())
        throw EnvError(m + " " + request.url + ": " + t.error);
      if (rc == CURLE_PEER_FAILED_VERIFICATION ||
          rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM) {
        // A certificate nobody vouches for will not start vouching on retry.
        throw TlsTrustError(m + " " + request.url + ": " +
                            curl_easy_strerror(rc) +
                            " (trust its CA with --ca-file CA.pem)");
      }
      throw EnvError(m + " " + request.url + ": " + curl_easy_strerror(rc),
                     /*retryable=*/true);
    }
    return response;
  }

 private:
  std::unique_ptr<CURL, CurlFree> Take() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        auto h = std::move(idle_.back());
        idle_.pop_back();
        return h;
      }
    }
    CURL* c = curl_easy_init();
    if (!c) throw InternalError("libcurl: cannot create a handle");
    return std::unique_ptr<CURL, CurlFree>(c);
  }
  void Give(std::unique_ptr<CURL, CurlFree> h) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(
        std::move(h));  // keeps its connections for the next request
  }

  TlsOptions tls_;
  std::mutex mu_;
  std::vector<std::unique_ptr<CURL, CurlFree>> idle_;
};

}  // namespace

std::unique_ptr<HttpTransport> NewCurlTransport(const TlsOptions& tls) {
  return std::make_unique<CurlTransport>(tls);
}

}  // namespace kiln
