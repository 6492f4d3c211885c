#!/usr/bin/env bash
# The fuzzers in CI (ctest's fuzz.build and fuzz.run), or by hand:
#   fuzz/ci.sh build DIR            configure DIR once (clang, KILN_FUZZ=ON), then build
#   fuzz/ci.sh run DIR [SECONDS]    each fuzzer SECONDS (30) over its seed corpus,
#                                   $KILN_FUZZ_JOBS (2) at a time
# A run starts from fuzz/corpus/<target>/ and writes what it finds to
# DIR/ci/<target>/, never to the checked-in corpus. A crash, leak, timeout or
# sanitizer report fails it, and the input is printed in base64 (CI's build
# folder is thrown away).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:?usage: fuzz/ci.sh build|run DIR [SECONDS]}
dir=${2:?usage: fuzz/ci.sh build|run DIR [SECONDS]}
targets=(template tar deb oci auth)

case $cmd in
build)
  cmake=${KILN_CMAKE:-cmake}
  cxx=${KILN_FUZZ_CXX:-clang++-14}
  command -v "$cxx" >/dev/null ||
    { echo "fuzz: $cxx not found (./setup.sh installs clang-14)" >&2; exit 1; }
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    "$cmake" -S "$src" -B "$dir" -G Ninja -DKILN_FUZZ=ON \
      -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  fi
  "$cmake" --build "$dir"
  ;;
run)
  seconds=${3:-30}
  jobs=${KILN_FUZZ_JOBS:-2}
  for s in /usr/lib/llvm-14/bin/llvm-symbolizer /usr/bin/llvm-symbolizer; do
    if [ -x "$s" ]; then export ASAN_SYMBOLIZER_PATH=$s; break; fi
  done
  # fuzz_one TARGET: runs it, leaving its log and exit code in DIR/ci/TARGET.
  fuzz_one() {
    local t=$1 w=$dir/ci/$1
    rm -rf "$w" && mkdir -p "$w/corpus"
    local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
      -print_final_stats=1 -print_funcs=0 -artifact_prefix="$w/")
    [ -f "$src/fuzz/dict/$t.dict" ] && args+=(-dict="$src/fuzz/dict/$t.dict")
    local rc=0
    "$dir/fuzz/${t}_fuzzer" "${args[@]}" "$w/corpus" "$src/fuzz/corpus/$t" \
      >"$w/log" 2>&1 </dev/null || rc=$?
    echo "$rc" >"$w/rc"
  }
  running=0
  for t in "${targets[@]}"; do
    [ -x "$dir/fuzz/${t}_fuzzer" ] ||
      { echo "fuzz: $dir/fuzz/${t}_fuzzer is not built (fuzz/ci.sh build $dir)" >&2; exit 1; }
    if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
    fuzz_one "$t" &
    running=$((running + 1))
  done
  wait
  failed=()
  for t in "${targets[@]}"; do
    w=$dir/ci/$t
    final_stat() { sed -n "s/^stat::$1: *//p" "$w/log" | tail -1; }
    seeds=$(find "$src/fuzz/corpus/$t" -type f | wc -l)
    found=$(find "$w/corpus" -type f | wc -l)
    printf 'fuzz: %-8s %9s runs in %ss, %6s exec/s, %3s seeds, %4s new inputs: %s\n' \
      "$t" "$(final_stat number_of_executed_units)" "$seconds" \
      "$(final_stat average_exec_per_sec)" "$seeds" "$found" \
      "$([ "$(cat "$w/rc")" = 0 ] && echo ok || echo "FAILED (exit $(cat "$w/rc"))")"
    [ "$(cat "$w/rc")" = 0 ] || failed+=("$t")
  done
  for t in "${failed[@]}"; do
    w=$dir/ci/$t
    echo
    echo "=== ${t}_fuzzer: the end of $w/log"
    grep -v -e '^#[0-9]' -e 'NEW_FUNC' "$w/log" | tail -60
    for a in "$w"/crash-* "$w"/leak-* "$w"/timeout-* "$w"/oom-*; do
      [ -f "$a" ] || continue
      echo "--- input $(basename "$a") (base64; reproduce: base64 -d >x && $dir/fuzz/${t}_fuzzer x)"
      base64 "$a"
    done
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: ${#failed[@]} failed: ${failed[*]}"
    exit 1
  fi
  echo "fuzz: ${#targets[@]} passed, 0 failed"
  ;;
*)
  echo "usage: fuzz/ci.sh build|run DIR [SECONDS]" >&2
  exit 2
  ;;
esac
