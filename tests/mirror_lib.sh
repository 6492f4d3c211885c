# shellcheck shell=bash
# Helpers for the tests that build from the real Debian mirror a checked-in
# lock names (debian_base, disk_boot): the only ones that use the network.
# They are skipped (exit 77, SKIP_RETURN_CODE in CMake), not failed, when the
# mirror cannot be reached or no longer serves a locked version (kiln says the
# .deb "is gone from the mirror"; `kiln lock TEMPLATE` refreshes the lock).
# Source after lib.sh:
#   source "$(dirname "$0")/../mirror_lib.sh"
need_tool jq curl

# need_mirror LOCK: skips the test unless the mirror of LOCK's first
# repository answers for its suite's InRelease.
need_mirror() {
  step "the mirror the lock names can be reached"
  local mirror suite
  mirror=$(jq -r '.repositories[0].url' "$1")
  suite=$(jq -r '.repositories[0].suite' "$1")
  curl -sf -o /dev/null --connect-timeout 10 --max-time 30 "$mirror/dists/$suite/InRelease" ||
    skip "the Debian mirror $mirror cannot be reached (no network?); nothing was tested"
}

# build_locked NAME CMD...: CMD (a `kiln ... build TEMPLATE`, the template
# last) with --locked --json, into $T/NAME.json (stderr $T/NAME.err); skips
# the test when the mirror no longer serves a locked version (an environment
# error, exit 2), naming $LOCKED_TEMPLATE if set, else TEMPLATE, to re-lock.
build_locked() {
  local name=$1 rc=0
  shift
  local template=${LOCKED_TEMPLATE:-${*: -1}}
  "$@" --locked --json >"$T/$name.json" 2>"$T/$name.err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    if [[ $rc -eq 2 ]] && grep -q "is gone from the mirror" "$T/$name.err"; then
      skip "the mirror no longer serves a version the lock of $template pins (refresh it with kiln lock $template): $(grep 'kiln: error:' "$T/$name.err")"
    fi
    fail "$* --locked: exit $rc"$'\n'"$(cat "$T/$name.err")"
  fi
}
