// How a build shows progress: a live line per layer on a terminal, plain
// lines in CI (CI set, or stderr not a terminal), nothing with --quiet.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "build/build.h"

namespace kiln::cli {

class ProgressPrinter : public BuildObserver {
 public:
  enum class Style { kLive, kPlain, kQuiet };
  static Style Detect(bool quiet);
  explicit ProgressPrinter(Style style) : style_(style) {}

  void LayerStarted(size_t index, size_t count, const std::string& name,
                    size_t entries, uint64_t bytes) override;
  void LayerProgress(size_t index, size_t entries_done,
                     uint64_t bytes_done) override;
  void LayerFinished(size_t index, const LayerResult& result) override;
  void Warning(const std::string& message) override;

 private:
  using Clock = std::chrono::steady_clock;
  std::string Prefix() const;

  Style style_;
  size_t count_ = 0, index_ = 0, entries_ = 0;
  uint64_t bytes_ = 0, done_bytes_ = 0;
  std::string name_;
  Clock::time_point start_, last_;
};

}  // namespace kiln::cli
