#include "core/spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "core/error.h"
#include "core/fs.h"

namespace kiln {
namespace {

// What the child was doing when it failed, reported through a pipe.
enum Stage : int {
  kRedirect,
  kNamespace,
  kHostname,
  kCpu,
  kGroups,
  kGid,
  kUid,
  kChdir,
  kExec,
};

const char* StageName(int stage) {
  switch (stage) {
    case kRedirect:
      return "redirecting its output";
    case kNamespace:
      return "making a UTS namespace";
    case kHostname:
      return "setting the host name";
    case kCpu:
      return "choosing its CPU";
    case kGroups:
      return "dropping supplementary groups";
    case kGid:
      return "setting its group";
    case kUid:
      return "setting its user";
    case kChdir:
      return "changing to its working directory";
    default:
      return "starting it";
  }
}

// A descriptor above 2, so that redirecting one standard stream in the
// child cannot close another's source.
UniqueFd AboveStdio(int fd, const std::string& what) {
  if (fd < 0) throw SystemError("opening " + what, errno);
  UniqueFd owned(fd);
  if (fd > 2) return owned;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (moved < 0) throw SystemError("opening " + what, errno);
  return UniqueFd(moved);
}

UniqueFd OpenOutput(const std::string& path) {
  if (path.empty())
    return AboveStdio(::open("/dev/null", O_WRONLY | O_CLOEXEC), "/dev/null");
  return AboveStdio(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644),
      path);
}

// Only async-signal-safe calls from here to execve: the parent may have
// threads.
[[noreturn]] void Child(const SpawnOptions& o, char* const* argv,
                        char* const* envp, int in, int out, int err,
                        int report) {
  auto fail = [&](int stage) {
    int record[2] = {stage, errno};
    ssize_t ignored = ::write(report, record, sizeof record);
    (void)ignored;
    ::_exit(127);
  };
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, nullptr);
  if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0)
    fail(kRedirect);
  if (o.hostname) {
    if (::unshare(CLONE_NEWUTS) != 0) fail(kNamespace);
    if (::sethostname(o.hostname->data(), o.hostname->size()) != 0 ||
        ::setdomainname(o.hostname->data(), o.hostname->size()) != 0)
      fail(kHostname);
  }
  if (o.cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(*o.cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) fail(kCpu);
  }
  if (o.uid || o.gid) {
    if (::setgroups(0, nullptr) != 0) fail(kGroups);
    if (o.gid && ::setresgid(*o.gid, *o.gid, *o.gid) != 0) fail(kGid);
    if (o.uid && ::setresuid(*o.uid, *o.uid, *o.uid) != 0) fail(kUid);
  }
  if (o.umask) ::umask(static_cast<mode_t>(*o.umask));
  if (!o.cwd.empty() && ::chdir(o.cwd.c_str()) != 0) fail(kChdir);
  ::execve(argv[0], argv, envp);
  fail(kExec);
  ::_exit(127);
}

}  // namespace

pid_t Spawn(const SpawnOptions& o) {
  if (o.argv.empty()) throw InternalError("Spawn: no program");
  std::vector<char*> argv, envp;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : o.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  UniqueFd stdin_fd =
      AboveStdio(::open("/dev/null", O_RDONLY | O_CLOEXEC), "/dev/null");
  UniqueFd out = OpenOutput(o.stdout_path);
  UniqueFd err = OpenOutput(o.stderr_path);
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw SystemError("pipe", errno);
  UniqueFd read_end(report[0]), write_end(report[1]);
  pid_t pid = ::fork();
  if (pid < 0) throw SystemError("starting " + o.argv[0], errno);
  if (pid == 0) {
    Child(o, argv.data(), envp.data(), stdin_fd.get(), out.get(), err.get(),
          write_end.get());
  }
  write_end = UniqueFd();
  // Nothing to read once execve has closed the pipe: the program runs.
  int record[2];
  ssize_t n;
  do {
    n = ::read(read_end.get(), record, sizeof record);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof record)) {
    WaitFor(pid);
    throw SystemError(std::string(StageName(record[0])) + " for " + o.argv[0],
                      record[1]);
  }
  return pid;
}

int WaitFor(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw SystemError("waiting for a child process", errno);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 128;
}

bool CanSetHostname() {
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    static const char kName[] = "kiln-probe";
    bool ok = ::unshare(CLONE_NEWUTS) == 0 &&
              ::sethostname(kName, sizeof kName - 1) == 0;
    ::_exit(ok ? 0 : 1);
  }
  return WaitFor(pid) == 0;
}

}  // namespace kiln
