// Compiled into every executable of a KILN_SANITIZE=ON build (see the
// top-level CMakeLists.txt): the default options of AddressSanitizer,
// LeakSanitizer and UndefinedBehaviorSanitizer, and a mark left for the tests
// when a report stops the program. In the binary, not in the environment: kiln
// runs as a child of the tests, of `kiln repro` (with only the environment it
// needs) and by hand, and its options must be the same however it was started.
// ASAN_OPTIONS, LSAN_OPTIONS and UBSAN_OPTIONS in the environment still
// override them (e.g. detect_leaks=0 while debugging).
#include <fcntl.h>
#include <sanitizer/common_interface_defs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#define KILN_SANITIZER_HOOK                              \
  extern "C" __attribute__((visibility("default"), used, \
                            no_sanitize("address", "undefined")))

// Every report stops the program with exit code 23: none of kiln's own codes
// (0 to 3), nor the tests' skip code (77), so a test that expects kiln to
// refuse something with exit 1 or 2 still fails on a report.
KILN_SANITIZER_HOOK const char* __asan_default_options() {
  return "halt_on_error=1:detect_leaks=1:exitcode=23"
         ":detect_stack_use_after_return=1:strict_string_checks=1";
}

KILN_SANITIZER_HOOK const char* __lsan_default_options() {
  return "exitcode=23";
}

KILN_SANITIZER_HOOK const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1:exitcode=23";
}

namespace {

// When $KILN_SANITIZER_REPORTS names a directory (tests/lib.sh), a process a
// report stops leaves the file PID there with its command line: the test fails
// on it even where it does not look at that kiln's exit code (kiln inside
// "$(...)" as an argument). The report itself is on the process's stderr.
// System calls only: this may run in a signal handler (a SEGV ASan caught).
__attribute__((no_sanitize("address", "undefined"))) void MarkReport() {
  const char* dir = std::getenv("KILN_SANITIZER_REPORTS");
  if (dir == nullptr || *dir == '\0') return;
  char path[4096];
  int n = std::snprintf(path, sizeof path, "%s/%ld", dir,
                        static_cast<long>(::getpid()));
  if (n < 0 || static_cast<size_t>(n) >= sizeof path) return;
  char cmdline[4096];
  ssize_t len = 0;
  int in = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (in >= 0) {
    len = ::read(in, cmdline, sizeof cmdline - 1);
    ::close(in);
  }
  if (len < 0) len = 0;
  for (ssize_t i = 0; i < len; ++i) {
    if (cmdline[i] == '\0') cmdline[i] = ' ';
  }
  cmdline[len++] = '\n';
  int out = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) return;
  ssize_t written = ::write(out, cmdline, static_cast<size_t>(len));
  (void)written;
  ::close(out);
}

// ASan and LSan call it as they stop the program.
__attribute__((constructor)) void RegisterMarkReport() {
  __sanitizer_set_death_callback(MarkReport);
}

}  // namespace

// UBSan calls it for each report (GCC's UBSan runtime is a library of its own,
// which does not call ASan's death callback).
KILN_SANITIZER_HOOK void __ubsan_on_report() { MarkReport(); }
