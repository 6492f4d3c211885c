// How a build shows progress: a live line on a terminal, plain lines in CI (CI
// set, or stderr not a terminal), nothing with --quiet. Layers may be written
// two at a time, so each keeps its own state.
#pragma once

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "build/build.h"

namespace kiln::cli {

class ProgressPrinter : public BuildObserver {
 public:
  enum class Style { kLive, kPlain, kQuiet };
  static Style Detect(bool quiet);
  ProgressPrinter(Style style, bool explain = false)
      : style_(style), explain_(explain) {}

  void LayerStarted(size_t index, size_t count, const std::string& name,
                    size_t entries, uint64_t bytes) override;
  void LayerProgress(size_t index, size_t entries_done,
                     uint64_t bytes_done) override;
  void LayerFinished(size_t index, const LayerResult& result) override;
  void Warning(const std::string& message) override;
  void DiskStage(const std::string& stage) override;
  bool Explains() const override { return explain_; }
  void LayerCache(size_t index, const std::string& name, bool hit,
                  const std::vector<std::string>& why) override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Layer {
    std::string prefix;  // "[2/3] app"
    size_t entries = 0;
    Clock::time_point start;
  };
  void ClearLine();

  Style style_;
  bool explain_;
  std::mutex mu_;
  std::map<size_t, Layer> layers_;
  Clock::time_point last_;
};

}  // namespace kiln::cli
