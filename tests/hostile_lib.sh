# shellcheck shell=bash
# Helpers for the hostile-input tests (integration/hostile*.sh). Source after
# lib.sh:
#   source "$(dirname "$0")/../lib.sh"
#   source "$(dirname "$0")/../hostile_lib.sh"
# The corpus is made at test time by hostile/make.py (hostile/README.md lists
# the cases); servers the tests start are stopped by PID when they exit.
# Needs python3 and jq.

need_tool python3 jq
HOSTILE=$TESTS_DIR/hostile
# Every request goes straight to 127.0.0.1.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# How many cases ran, for the summary line.
CASES=0
case_done() { CASES=$((CASES + 1)); }

# make_corpus KIND DIR [ARGS...]: hostile/make.py KIND DIR ARGS.
make_corpus() {
  python3 "$HOSTILE/make.py" "$@" || fail "hostile/make.py $* failed"
}

# start_server URL LOG CMD...: runs CMD in the background until URL answers;
# it is stopped by PID when the test exits.
start_server() {
  local url=$1 log=$2 _
  shift 2
  "$@" >"$log" 2>&1 &
  BACKGROUND_PIDS+=($!)
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "$url"; then return 0; fi
    sleep 0.1
  done
  fail "$* did not come up at $url: $(cat "$log")"
}


# tree_state DIR...: every path below DIR with its type and mode, and for
# all but directories size and mtime, so a write anywhere shows (cheaper than
# hashing the big cases; a directory's own mtime moves with scratch files).
tree_state() {
  find "$@" \( -type d -printf '%y %m %p\n' \) -o -printf '%y %m %s %T@ %p -> %l\n' 2>/dev/null |
    LC_ALL=C sort
}

# store_clean STORE: `kiln store fsck` finds nothing corrupt or missing, and
# every file under blobs/ holds what its name says.
store_clean() {
  local store=$1 rc=0 f
  [[ -d $store ]] || return 0
  "$KILN" --store "$store" store fsck --json >"$T/.fsck.json" 2>"$T/.fsck.err" || rc=$?
  [[ $rc -eq 0 ]] || fail "store fsck of $store: exit $rc: $(cat "$T/.fsck.json" "$T/.fsck.err")"
  assert_eq '{"ok":true,"corrupt":[],"missing":[]}' \
    "$(jq -c '{ok, corrupt, missing}' "$T/.fsck.json")" "store fsck of $store"
  while IFS= read -r -d '' f; do
    [[ ${f##*/} == .* ]] && continue  # a temporary file: not a blob yet
    assert_eq "sha256:${f##*/}" "$(sha256_of "$f")" "blob $f holds other content than its name"
  done < <(find "$store/blobs" -type f -print0 2>/dev/null)
}

# image_names STORE: the images a store names, sorted.
image_names() {
  "$KILN" --store "$1" images --json | jq -r '.[].name' | LC_ALL=C sort
}

# first_line: the first line of $ERR (the "kiln: error: ..." line).
first_line() { sed -n 1p <<<"$ERR"; }
