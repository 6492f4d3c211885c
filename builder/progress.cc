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

std::string ProgressPrinter::Prefix() const {
  return "[" + std::to_string(index_ + 1) + "/" + std::to_string(count_) +
         "] " + name_;
}

void ProgressPrinter::LayerStarted(size_t index, size_t count,
                                   const std::string& name, size_t entries,
                                   uint64_t bytes) {
  index_ = index;
  count_ = count;
  name_ = name;
  entries_ = entries;
  bytes_ = bytes;
  done_bytes_ = 0;
  start_ = last_ = Clock::now();
  if (style_ == Style::kPlain) {
    std::fprintf(stderr, "%s: %zu entries, %s\n", Prefix().c_str(), entries,
                 HumanBytes(bytes).c_str());
  }
}

void ProgressPrinter::LayerProgress(size_t index, size_t entries_done,
                                    uint64_t bytes_done) {
  done_bytes_ = bytes_done;
  if (style_ != Style::kLive) return;
  auto now = Clock::now();
  if (Seconds(now - last_) < 0.1) return;
  last_ = now;
  std::fprintf(stderr, "\r\033[K%s: %zu/%zu files, %s, %s", Prefix().c_str(),
               entries_done, entries_, HumanBytes(bytes_done).c_str(),
               Rate(bytes_done, Seconds(now - start_)).c_str());
  std::fflush(stderr);
}

void ProgressPrinter::LayerFinished(size_t index, const LayerResult& r) {
  if (style_ == Style::kQuiet) return;
  double s = Seconds(Clock::now() - start_);
  std::string line =
      Prefix() + ": " + std::to_string(r.entries) + " entries, " +
      HumanBytes(r.uncompressed_size) + " -> " +
      HumanBytes(static_cast<uint64_t>(r.blob.size)) + " " +
      r.blob.digest.Short() + " (" +
      std::to_string(s).substr(0, std::to_string(s).find('.') + 3) + " s, " +
      Rate(r.uncompressed_size, s) + ")";
  if (style_ == Style::kLive) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", line.c_str());
}

void ProgressPrinter::Warning(const std::string& message) {
  if (style_ == Style::kLive) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "kiln: warning: %s\n", message.c_str());
}

}  // namespace kiln::cli
