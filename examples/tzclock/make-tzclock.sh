#!/usr/bin/env bash
# Rebuilds bin/tzclock from tzclock.c against Debian 12's C library (the one
# debian-base installs). The binary is checked in so the example does not
# depend on the compiler on the machine; run this only when tzclock.c changes.
set -euo pipefail
cd "$(dirname "$0")"
gcc -O2 -Wall -Wextra -fno-asynchronous-unwind-tables -Wl,--build-id=none -s \
  -ffile-prefix-map="$PWD"=. -o bin/tzclock tzclock.c
ls -l bin/tzclock
