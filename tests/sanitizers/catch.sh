#!/usr/bin/env bash
# Under KILN_SANITIZE (README, Development): each kind of bug the sanitizers
# are there for stops a program of this build with exit code 23, its report
# on stderr and a mark in $KILN_SANITIZER_REPORTS; a clean run leaves none;
# and a test script whose child was stopped by a report fails although it
# ignored that child's exit code. Without this the sanitizer run in CI could
# pass by never looking.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

CANARY=${KILN_CANARY:?the kiln_sanitizer_canary of a KILN_SANITIZE build}

reports() { find "$KILN_SANITIZER_REPORTS" -type f | wc -l; }

step "a clean run: exit 0, no mark"
"$CANARY" clean 0 || fail "the canary's clean mode failed"
assert_eq 0 "$(reports)" "marks after a clean run"

check() {  # MODE NUMBER EXPECTED-REPORT
  step "$1: exit 23, '$3' on stderr, one mark naming the program"
  local rc=0
  "$CANARY" "$1" "$2" 2>"$T/$1.err" || rc=$?
  assert_eq 23 "$rc" "exit code of the canary's $1"
  assert_contains "$(cat "$T/$1.err")" "$3" "the report of $1"
  local marks
  marks=$(find "$KILN_SANITIZER_REPORTS" -type f)
  [[ -n $marks ]] || fail "no mark in $KILN_SANITIZER_REPORTS after $1"
  assert_contains "$(cat "$marks")" "kiln_sanitizer_canary $1 $2" "the mark of $1"
  rm -f "$KILN_SANITIZER_REPORTS"/*
}
check heap-buffer-overflow 8 "ERROR: AddressSanitizer: heap-buffer-overflow"
check heap-use-after-free 1 "ERROR: AddressSanitizer: heap-use-after-free"
check leak 4096 "ERROR: LeakSanitizer: detected memory leaks"
check signed-overflow 2147483647 "runtime error: signed integer overflow"
check shift 40 "runtime error: shift exponent 40 is too large"

step "kiln itself is sanitized and carries the same options"
need_tool nm
nm "$KILN" >"$T/kiln.nm"
for symbol in __asan_report_store1 __ubsan_handle_add_overflow_abort \
  __asan_default_options __ubsan_on_report; do
  grep -q " [TU] $symbol\$" "$T/kiln.nm" || fail "$KILN has no $symbol"
done
kiln_ok version --version
assert_eq 0 "$(reports)" "marks after a clean run of kiln"

step "a test script that ignores its child's report still fails"
cat >"$T/ignores.sh" <<SCRIPT
source "$TESTS_DIR/lib.sh"
"$CANARY" heap-buffer-overflow 8 2>/dev/null || true
echo "ignored it"
SCRIPT
rc=0
bash "$T/ignores.sh" >"$T/ignores.out" 2>"$T/ignores.err" || rc=$?
assert_eq 1 "$rc" "exit code of a test script whose child had a report"
assert_contains "$(cat "$T/ignores.out")" "ignored it" "the script ran to its end"
assert_contains "$(cat "$T/ignores.err")" "FAIL: a sanitizer report (on its stderr) stopped: " "the script's verdict"
