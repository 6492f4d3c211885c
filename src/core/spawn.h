// Starting a program with every condition of its run chosen: argv, the whole
// environment, working directory, umask, the CPUs it may use, its user, and
// the host name it sees. kiln repro runs its builds this way.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is a path; PATH is not searched
  std::vector<std::string> env;   // "NAME=VALUE": all the program gets
  std::string cwd;                // empty: the caller's
  std::optional<unsigned> umask;
  std::optional<int> cpu;  // runs on this one CPU only
  // Runs as this user and group, without supplementary groups (root only).
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  // In a UTS namespace of its own, with this host and domain name (needs
  // CAP_SYS_ADMIN; see CanSetHostname).
  std::optional<std::string> hostname;
  std::string stdout_path;  // files its output goes to (created or
  std::string stderr_path;  // truncated); empty: /dev/null
};

// Starts the program and returns its pid. Throws EnvError if a condition
// cannot be set or the program cannot be started, with the reason.
pid_t Spawn(const SpawnOptions& options);

// Waits for a spawned program: its exit code, or 128 + the signal that
// ended it.
int WaitFor(pid_t pid);

// Whether this process may give a child a host name of its own (a new UTS
// namespace): tried in a short-lived child.
bool CanSetHostname();

}  // namespace kiln
