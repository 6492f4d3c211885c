// A fixed set of worker threads running queued tasks (compression blocks,
// parallel layers). Tasks run in submission order; results come back through
// futures, so callers keep the output order themselves.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Exceptions thrown by the task surface from the future's get().
  std::future<void> Submit(std::function<void()> task);
  int size() const { return static_cast<int>(workers_.size()); }

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// The worker count to use when the user gives none: the CPUs this process may
// run on.
int DefaultThreads();

}  // namespace kiln
