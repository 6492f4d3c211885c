# Shared helpers for kiln's integration tests. Source it first:
#   source "$(dirname "$0")/../lib.sh"
# Each test gets a fresh temp dir ($T, removed on exit unless KILN_TEST_KEEP=1)
# and a store inside it; nothing outside $T (and CLEANUP_DIRS) is written.
# Needs bash, coreutils, jq, perl (perl-base only), GNU tar; the tests that
# use them also skopeo and umoci (setup.sh installs all of them).
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$TESTS_DIR/.." && pwd)
HELLO_DIR=$SRC_DIR/examples/hello
HELLO=$HELLO_DIR/kiln.yaml

KILN=${KILN_BIN:-$SRC_DIR/build/kiln}
[[ $KILN == /* ]] || KILN=$PWD/$KILN  # absolute: tests cd elsewhere
if [[ ! -x $KILN ]]; then
  echo "FAIL: no kiln binary at $KILN (build it, or set KILN_BIN)" >&2
  exit 1
fi

# The caller's environment must not leak into builds: every test that wants
# a build date or a store says so. Stock templates come from this checkout
# wherever the binary was built (kiln looks beside the binary otherwise,
# which finds them only for a build dir directly below the source dir).
unset SOURCE_DATE_EPOCH KILN_STORE
export KILN_TEMPLATE_PATH=$SRC_DIR/templates
export LC_ALL=C TZ=UTC

T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-test.XXXXXX")
chmod 755 "$T"  # tests may run kiln as another user below it
# A KILN_SANITIZE build (README) leaves a file here, named by its PID, for each
# process a sanitizer report stopped (tests/sanitizers/options.cc): the test
# fails on it even where it does not check that kiln's exit code (23).
export KILN_SANITIZER_REPORTS=$T/.sanitizer-reports
mkdir -m 1777 "$KILN_SANITIZER_REPORTS"
export HOME=$T/home XDG_DATA_HOME=$T/xdg
mkdir -p "$HOME"
export KILN_STORE=$T/store  # the default for `kiln` calls that pass no --store

# More temp dirs to remove on exit (e.g. on another file system).
CLEANUP_DIRS=()
# Background processes a test started (servers, proxies): stopped by PID on
# exit, skip included, before $T goes.
BACKGROUND_PIDS=()

_stop_background() {
  local pid
  for pid in "${BACKGROUND_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  BACKGROUND_PIDS=()
}

_cleanup() {
  local rc=$? d
  _stop_background
  for d in "$T/.sanitizer-reports"/*; do
    [[ -e $d ]] || continue
    echo "FAIL: a sanitizer report (on its stderr) stopped: $(cat "$d")" >&2
    [[ $rc -ne 0 ]] || rc=1
  done
  if [[ -n ${KILN_TEST_KEEP:-} ]]; then
    echo "kept $T ${CLEANUP_DIRS[*]}" >&2
  else
    for d in "$T" "${CLEANUP_DIRS[@]}"; do
      chmod -R u+rwX "$d" 2>/dev/null || true
      rm -rf "$d"
    done
  fi
  if [[ $rc -eq 0 ]]; then
    echo "PASS: $(basename "$0")" >&2
  else
    echo "FAIL: $(basename "$0") (exit $rc)" >&2
  fi
  exit "$rc"
}
trap _cleanup EXIT

# Where a failing assertion was called from, for the message (the test
# script's line, not a helper's in lib.sh or a *_lib.sh).
_where() {
  local i=2
  while [[ ${BASH_SOURCE[$i]:-} == "${BASH_SOURCE[0]}" || ${BASH_SOURCE[$i]:-} == *_lib.sh ]]; do
    i=$((i + 1))
  done
  echo "$(basename "${BASH_SOURCE[$i]:-?}"):${BASH_LINENO[$((i - 1))]:-?}"
}

fail() {
  echo "FAIL at $(_where): $*" >&2
  exit 1
}

# A heading in the log, so a failure shows which case it was in.
step() { echo "--- $*" >&2; }

# skip WHY...: ends the test as skipped (exit 77, SKIP_RETURN_CODE in CMake),
# saying why; runs the command in $SKIP_CLEANUP first when the test set one
# (stopping a VM, unmounting). A sanitizer report met before fails the test
# instead: a skip must not hide it.
skip() {
  if [[ -n $(find "$KILN_SANITIZER_REPORTS" -type f) ]]; then
    fail "about to skip ($*), but a sanitizer report stopped a process"
  fi
  echo "SKIP: $(basename "$0"): $*" >&2
  [[ -z ${SKIP_CLEANUP:-} ]] || $SKIP_CLEANUP || true
  _stop_background
  trap - EXIT
  rm -rf "$T"
  exit 77
}

need_tool() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || fail "$t is not installed (./setup.sh installs the test tools)"
  done
}

assert_eq() {  # EXPECTED ACTUAL [WHAT]
  if [[ "$1" != "$2" ]]; then
    fail "${3:-values differ}"$'\n'"  expected: $1"$'\n'"  actual:   $2"
  fi
}

assert_ne() {  # UNEXPECTED ACTUAL [WHAT]
  if [[ "$1" == "$2" ]]; then
    fail "${3:-values are equal but should differ}: $1"
  fi
}

assert_contains() {  # HAYSTACK NEEDLE [WHAT]
  if [[ "$1" != *"$2"* ]]; then
    fail "${3:-text does not contain the expected part}"$'\n'"  expected to contain: $2"$'\n'"  in: $1"
  fi
}

assert_not_contains() {  # HAYSTACK NEEDLE [WHAT]
  if [[ "$1" == *"$2"* ]]; then
    fail "${3:-text contains what it should not}"$'\n'"  unexpected: $2"$'\n'"  in: $1"
  fi
}

assert_file_eq() {  # EXPECTED_FILE ACTUAL_FILE [WHAT]
  if ! cmp -s "$1" "$2"; then
    fail "${3:-files differ}: $1 vs $2"$'\n'"$(diff -u "$1" "$2" | head -40)"
  fi
}

# Everything in a store directory: each path with its type and mode, and the
# sha256 of each file. Equal fingerprints mean the store was not changed.
store_fingerprint() {
  local store=$1
  [[ -d $store ]] || fail "store_fingerprint: no store at $store"
  (
    cd "$store"
    find . -printf '%y %m %p -> %l\n' | LC_ALL=C sort
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
  )
}

# expect_error EXPECTED_EXIT EXPECTED_SUBSTRING CMD...
# Runs CMD; checks its exit code, that stderr has a "kiln: error: " line
# (progress lines may come before it) and that the error contains
# EXPECTED_SUBSTRING. Leaves stderr from the error line on in $ERR, all of
# stderr in $ERR_ALL and stdout in $OUT.
expect_error() {
  local want_rc=$1 want_msg=$2
  shift 2
  local rc=0
  "$@" >"$T/.out" 2>"$T/.err" || rc=$?
  OUT=$(cat "$T/.out")
  ERR_ALL=$(cat "$T/.err")
  ERR=$(sed -n '/^kiln: error: /,$p' "$T/.err")
  if [[ $rc -ne $want_rc ]]; then
    fail "exit $rc, expected $want_rc: $*"$'\n'"  stderr: $ERR_ALL"$'\n'"  stdout: $OUT"
  fi
  if [[ -z $ERR ]]; then
    fail "no 'kiln: error: ' line on stderr: $*"$'\n'"  stderr: $ERR_ALL"
  fi
  assert_contains "$ERR" "$want_msg" "stderr of: $*"
}

# expect_template_error FILE LINE COL EXPECTED_SUBSTRING CMD...
# As expect_error with exit 1, and checks the ninja-style location report:
#   kiln: error: FILE:LINE:COL: message
#   <line LINE of FILE>
#   <COL-1 spaces>^
# FILE is matched as kiln shows it (as given on the command line).
expect_template_error() {
  local file=$1 line=$2 col=$3 msg=$4
  shift 4
  expect_error 1 "$msg" "$@"
  # Templates are checked whole before any layer is written, so nothing comes first.
  assert_eq "$ERR" "$ERR_ALL" "stderr before the template error"
  local first src caret
  first=$(sed -n 1p <<<"$ERR")
  src=$(sed -n 2p <<<"$ERR")
  caret=$(sed -n 3p <<<"$ERR")
  assert_contains "$first" "kiln: error: $file:$line:$col: " "location of the error"
  assert_contains "$first" "$msg" "message on the location line"
  assert_eq "$(sed -n "${line}p" "$file")" "$src" "second stderr line is the template's line $line"
  assert_eq "$(printf '%*s^' $((col - 1)) '')" "$caret" "third stderr line is a caret under column $col"
}

# kiln_ok NAME ARGS...: runs `kiln ARGS...`, stdout to $T/NAME.out, stderr to
# $T/NAME.err; fails the test (showing both) unless it exits 0.
kiln_ok() {
  local name=$1
  shift
  local rc=0
  "$KILN" "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    fail "exit $rc: kiln $*"$'\n'"  stderr: $(cat "$T/$name.err")"$'\n'"  stdout: $(cat "$T/$name.out")"
  fi
}

# loc FILE TEXT: "LINE COL" of the first occurrence of TEXT in FILE.
loc() {
  perl -ne 'BEGIN { $t = shift } if ((my $c = index($_, $t)) >= 0) { print "$. ", $c + 1, "\n"; $found = 1; exit }
            END { exit 1 unless $found }' "$2" "$1" || fail "loc: '$2' is not in $1"
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# build_digest ARGS...: `kiln ARGS...` (a build), prints the manifest digest.
build_digest() {
  local out
  out=$("$KILN" "$@" -q) || fail "build failed: kiln $*"
  local d=${out##* }
  [[ $d == sha256:* && ${#d} -eq 71 ]] || fail "no digest in build output: $out"
  echo "$d"
}

# build_json FILE ARGS...: `kiln ARGS... --json` (a build) into FILE.
build_json() {
  local file=$1
  shift
  "$KILN" "$@" --json >"$file" 2>"$file.stderr" || fail "build failed: kiln $*"$'\n'"$(cat "$file.stderr")"
}

# What must be identical between two reproducible builds: manifest, config,
# and every layer's blob digest and diff_id.
build_identity() {
  jq -c '{digest, config, layers: [.layers[] | {name, digest, diffId}]}' "$1"
}

# The sha256 of a file, as "sha256:HEX".
sha256_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# Path of a blob in an OCI layout.
blob_path() { echo "$1/blobs/${2%%:*}/${2#*:}"; }
