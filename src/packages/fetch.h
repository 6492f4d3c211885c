// Plain HTTP(S) downloads for package repositories: redirects followed (mirrors
// use them), connection faults and 5xx retried with backoff, sizes bounded.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "registry/http.h"

namespace kiln {

struct FetchOptions {
  int attempts = 5;
  int backoff_ms = 250;
  uint64_t max_bytes = uint64_t{4} << 30;
  // The message when the server sends more than max_bytes (default: the URL
  // and the limit).
  std::function<std::string()> too_large;
};

// Streams `url` into `sink` (made fresh for each attempt by `reset`).
// Returns false for 404; throws EnvError for other failures, and when more
// than max_bytes arrive (not retried).
bool Fetch(HttpTransport& http, const std::string& url, ByteSink& sink,
           const std::function<void()>& reset,
           const FetchOptions& options = {});
// A small document in memory; nullopt for 404.
std::optional<std::string> FetchText(HttpTransport& http,
                                     const std::string& url,
                                     uint64_t max_bytes = 256 << 20);

}  // namespace kiln
