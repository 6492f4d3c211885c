// A program with one deliberate bug per mode, built only under KILN_SANITIZE:
// tests/sanitizers/catch.sh runs it to prove that a sanitized build stops on
// each kind of report with exit code 23 and leaves the tests their mark, so the
// sanitizer run in CI can fail. The inputs come from the command line so the
// compiler cannot see the bugs coming.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

namespace {

int HeapOverflow(int index) {
  char* p = new char[8];
  std::memset(p, 0, 8);
  p[index] = 1;  // index 8: one past the end
  int r = p[0];
  delete[] p;
  return r;
}

int UseAfterFree(int index) {
  int* p = new int[4]();
  delete[] p;
  return p[index];
}

// In a thread that ends before the check: no stale copy of the pointer is
// left on a stack LeakSanitizer scans, so the report cannot be missed.
int Leak(int size) {
  std::thread([size] {
    void* p = std::malloc(static_cast<size_t>(size));
    std::memset(p, 0, static_cast<size_t>(size));
  }).join();
  return 0;  // LeakSanitizer reports the lost block at exit
}

int SignedOverflow(int value) {
  int r = value + 1;  // value INT_MAX
  return r & 1;
}

int OutOfBoundsShift(int bits) { return 1 << bits; }  // bits 40

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: kiln_sanitizer_canary MODE NUMBER\n";
    return 2;
  }
  std::string mode = argv[1];
  int n = std::atoi(argv[2]);
  if (mode == "clean") return 0;
  if (mode == "heap-buffer-overflow") return HeapOverflow(n);
  if (mode == "heap-use-after-free") return UseAfterFree(n);
  if (mode == "leak") return Leak(n);
  if (mode == "signed-overflow") return SignedOverflow(n);
  if (mode == "shift") return OutOfBoundsShift(n);
  std::cerr << "unknown mode " << mode << "\n";
  return 2;
}
