#include "core/spawn.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>

#include "core/error.h"
#include "core/fs.h"
#include "core/temp_dir.h"

namespace kiln {
namespace {

// Runs `script` with /bin/sh under `o`; returns its stdout.
std::string RunShell(SpawnOptions o, const std::string& script, int* code) {
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  o.argv = {"/bin/sh", "-c", script};
  o.stdout_path = dir.path() + "/out";
  o.stderr_path = dir.path() + "/err";
  *code = WaitFor(Spawn(o));
  return ReadFile(o.stdout_path);
}

TEST(Spawn, GivesExactlyTheEnvironmentWorkingDirectoryAndUmask) {
  ::setenv("KILN_SPAWN_TEST_LEAK", "1", 1);
  TempDir cwd;
  SpawnOptions o;
  o.env = {"PATH=/usr/bin:/bin", "ONLY_THIS=yes"};
  o.cwd = cwd.path();
  o.umask = 027;
  int code = -1;
  std::string out =
      RunShell(o,
               "echo \"$ONLY_THIS ${KILN_SPAWN_TEST_LEAK:-unset}\"; "
               "pwd; umask",
               &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "yes unset\n" + cwd.path() + "\n0027\n");
  ::unsetenv("KILN_SPAWN_TEST_LEAK");
}

TEST(Spawn, ExitCodesAndSignals) {
  SpawnOptions o;
  int code = -1;
  RunShell(o, "exit 3", &code);
  EXPECT_EQ(code, 3);
  RunShell(o, "kill -9 $$", &code);
  EXPECT_EQ(code, 128 + 9);
}

TEST(Spawn, OneCpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  int cpu = 0;
  while (!CPU_ISSET(cpu, &set)) ++cpu;
  SpawnOptions o;
  o.cpu = cpu;
  int code = -1;
  std::string out =
      RunShell(o, "grep Cpus_allowed_list /proc/self/status | cut -f2", &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, std::to_string(cpu) + "\n");
}

TEST(Spawn, HostnameInItsOwnNamespace) {
  if (!CanSetHostname()) GTEST_SKIP() << "no permission for a UTS namespace";
  char mine[256] = {};
  ::gethostname(mine, sizeof mine - 1);
  SpawnOptions o;
  o.hostname = "kiln-spawn-test";
  int code = -1;
  EXPECT_EQ(RunShell(o, "cat /proc/sys/kernel/hostname", &code),
            "kiln-spawn-test\n");
  EXPECT_EQ(code, 0);
  char after[256] = {};
  ::gethostname(after, sizeof after - 1);
  EXPECT_STREQ(mine, after);  // the caller's is unchanged
}

TEST(Spawn, AnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  SpawnOptions o;
  o.uid = 65534;
  o.gid = 65534;
  int code = -1;
  EXPECT_EQ(RunShell(o, "echo $(id -u):$(id -g):$(id -G)", &code),
            "65534:65534:65534\n");
  EXPECT_EQ(code, 0);
}

TEST(Spawn, FailuresNameTheStep) {
  SpawnOptions o;
  o.argv = {"/nonexistent/kiln"};
  try {
    Spawn(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kEnvironment);
    EXPECT_NE(e.message().find("starting it for /nonexistent/kiln"),
              std::string::npos)
        << e.message();
  }
  o.argv = {"/bin/true"};
  o.cwd = "/nonexistent";
  try {
    Spawn(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("changing to its working directory"),
              std::string::npos)
        << e.message();
  }
}

}  // namespace
}  // namespace kiln
