#include "core/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>

#include "core/error.h"
#include "core/fs.h"
#include "core/strings.h"

extern char** environ;

namespace kiln {

bool OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (const auto& dir : Split(path ? path : "/usr/bin:/bin", ':')) {
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0)
      return true;
  }
  return false;
}

ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::string& input, int timeout_seconds) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) ||
      ::pipe2(err, O_CLOEXEC)) {
    throw SystemError("pipe", errno);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  UniqueFd to(in[1]), from(out[0]), errs(err[0]);
  if (rc != 0) throw SystemError("starting " + argv[0], rc);

  ProcessResult result;
  size_t written = 0;
  if (input.empty()) to = UniqueFd();
  ::fcntl(to.get(), F_SETFL, O_NONBLOCK);
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (from.valid() || errs.valid()) {
    std::vector<pollfd> fds;
    if (to.valid()) fds.push_back({to.get(), POLLOUT, 0});
    if (from.valid()) fds.push_back({from.get(), POLLIN, 0});
    if (errs.valid()) fds.push_back({errs.get(), POLLIN, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 &&
        errno != EINTR)
      break;
    for (const auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == to.get()) {
        ssize_t n =
            ::write(to.get(), input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<size_t>(n);
        if (n < 0 || written == input.size()) to = UniqueFd();
        continue;
      }
      char buf[65536];
      ssize_t n = ::read(p.fd, buf, sizeof buf);
      std::string& sink = p.fd == from.get() ? result.out : result.err;
      if (n > 0) {
        sink.append(buf, static_cast<size_t>(n));
      } else if (p.fd == from.get()) {
        from = UniqueFd();
      } else {
        errs = UniqueFd();
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace kiln
