// A tiny static program for the hello example: prints /etc/hello.txt (the
// template writes it from ${GREETING}), or a default line. No libc, so the
// binary is ~1 KB and the same bytes on every machine: see make-hello.sh.
static long Syscall(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("syscall"
                   : "=a"(r)
                   : "a"(n), "D"(a), "S"(b), "d"(c)
                   : "rcx", "r11", "memory");
  return r;
}

enum { kRead = 0, kWrite = 1, kOpen = 2, kExit = 60 };

void _start(void) {
  static const char kDefault[] = "hello from kiln\n";
  char buf[512];
  long fd = Syscall(kOpen, (long)"/etc/hello.txt", 0, 0);
  long n = fd >= 0 ? Syscall(kRead, fd, (long)buf, sizeof buf) : -1;
  long w = n > 0 ? Syscall(kWrite, 1, (long)buf, n)
                 : Syscall(kWrite, 1, (long)kDefault, sizeof kDefault - 1);
  Syscall(kExit, w < 0 ? 1 : 0, 0, 0);
  for (;;) {
  }
}
