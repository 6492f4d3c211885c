#!/usr/bin/env bash
# Rebuilds bin/hello from hello.c. The binary is checked in so the example (and
# its golden digest in tests/) does not depend on the compiler on the machine;
# run this only when hello.c changes, then regenerate the golden digest
# (tests/golden/regenerate.sh).
set -euo pipefail
cd "$(dirname "$0")"
gcc -Os -static -nostdlib -fno-pie -no-pie -fno-asynchronous-unwind-tables -fno-stack-protector \
  -Wl,--build-id=none -s -o bin/hello hello.c
ls -l bin/hello
