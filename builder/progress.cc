#include "progress.h"

#include <unistd.h>

#include <cstdlib>

#include "core/strings.h"

namespace kiln::cli {
namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string Rate(uint64_t bytes, double seconds) {
  if (seconds < 0.001) seconds = 0.001;  // below the clock's resolution
  return HumanBytes(
             static_cast<uint64_t>(static_cast<double>(bytes) / seconds)) +
         "/s";
}

}  // namespace

ProgressPrinter::Style ProgressPrinter::Detect(bool quiet) {
  if (quiet) return Style::kQuiet;
  const char* ci = std::getenv("CI");
  if ((ci && *ci) || !isatty(STDERR_FILENO)) return Style::kPlain;
  return Style::kLive;
}

void ProgressPrinter::ClearLine() {
  if (style_ == Style::kLive) std::fprintf(stderr, "\r\033[K");
}

void ProgressPrinter::LayerStarted(size_t index, size_t count,
                                   const std::string& name, size_t entries,
                                   uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  Layer& l = layers_[index];
  l.prefix = "[" + std::to_string(index + 1) + "/" + std::to_string(count) +
             "] " + name;
  l.entries = entries;
  l.start = Clock::now();
  if (style_ == Style::kPlain) {
    std::fprintf(stderr, "%s: %zu entries, %s\n", l.prefix.c_str(), entries,
                 HumanBytes(bytes).c_str());
  }
}

void ProgressPrinter::LayerProgress(size_t index, size_t entries_done,
                                    uint64_t bytes_done) {
  std::lock_guard<std::mutex> lock(mu_);
  if (style_ != Style::kLive) return;
  auto now = Clock::now();
  if (Seconds(now - last_) < 0.1) return;
  last_ = now;
  const Layer& l = layers_[index];
  std::fprintf(stderr, "\r\033[K%s: %zu/%zu files, %s, %s", l.prefix.c_str(),
               entries_done, l.entries, HumanBytes(bytes_done).c_str(),
               Rate(bytes_done, Seconds(now - l.start)).c_str());
  std::fflush(stderr);
}

void ProgressPrinter::LayerFinished(size_t index, const LayerResult& r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (style_ == Style::kQuiet) return;
  const Layer& l = layers_[index];
  double s = Seconds(Clock::now() - l.start);
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.2f s", s);
  ClearLine();
  std::fprintf(stderr, "%s: %zu entries, %s -> %s %s (%s, %s)\n",
               l.prefix.c_str(), r.entries,
               HumanBytes(r.uncompressed_size).c_str(),
               HumanBytes(static_cast<uint64_t>(r.blob.size)).c_str(),
               r.blob.digest.Short().c_str(), secs,
               Rate(r.uncompressed_size, s).c_str());
}

void ProgressPrinter::Warning(const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  ClearLine();
  std::fprintf(stderr, "kiln: warning: %s\n", message.c_str());
}

void ProgressPrinter::DiskStage(const std::string& stage) {
  std::lock_guard<std::mutex> lock(mu_);
  if (style_ == Style::kQuiet) return;
  ClearLine();
  std::fprintf(stderr, "disk: %s\n", stage.c_str());
}

void ProgressPrinter::LayerCache(size_t index, const std::string& name,
                                 bool hit,
                                 const std::vector<std::string>& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (style_ == Style::kQuiet && !explain_) return;
  if (hit) {
    std::fprintf(stderr, "layer %zu %s: cached%s%s\n", index + 1, name.c_str(),
                 why.empty() ? "" : ", ", why.empty() ? "" : why[0].c_str());
    return;
  }
  if (!explain_) return;
  std::fprintf(stderr, "layer %zu %s: rebuilt, because\n", index + 1,
               name.c_str());
  for (size_t i = 0; i < why.size(); ++i) {
    if (i == 20) {
      std::fprintf(stderr, "    ... and %zu more changes\n", why.size() - 20);
      break;
    }
    std::fprintf(stderr, "    %s\n", why[i].c_str());
  }
}

}  // namespace kiln::cli
