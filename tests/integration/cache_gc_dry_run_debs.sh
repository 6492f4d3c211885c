#!/usr/bin/env bash
# `kiln store gc --dry-run` reports what gc then does in a store with Debian
# packages: a package used every day but first fetched more than --keep-days
# ago keeps its file list (kiln/cache/deb-files/SHA.json, which no build
# refreshes) as long as its .deb stays, in the dry run as in the real run. (A
# regression: the dry run once judged the list by its own mtime and counted
# it in filesRemoved, which the real run then did not remove.)
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_APT_FIXTURE:?the APT fixture dir (tests/fixtures/aptrepo.sh start DIR)}/env"
# shellcheck source=../apt_lib.sh
source "$(dirname "$0")/../apt_lib.sh"

S=$T/store
TPL=$T/pkg/kiln.yaml
pkg_template "$TPL" pkgs "libbase"

step "packages fetched 20 days ago, used again today"
build_digest --store "$S" build "$TPL" >/dev/null
[[ -n $(find "$S/kiln/cache/deb-files" -type f) ]] || fail "no deb-files lists in the store"
find "$S/kiln" -type f ! -name gc.lock -exec touch -d '20 days ago' {} +
build_digest --store "$S" build "$TPL" >/dev/null
for f in "$S"/kiln/cache/debs/*.deb; do
  [[ $(stat -c %Y "$f") -ge $(($(date +%s) - 60)) ]] || fail "the build did not touch $f"
done

step "gc --dry-run reports what gc does"
FP=$(store_fingerprint "$S")
kiln_ok dry --store "$S" store gc --dry-run --json
assert_eq "$FP" "$(store_fingerprint "$S")" "the store after gc --dry-run"
kiln_ok real --store "$S" store gc --json
assert_eq "$(jq -c 'del(.dryRun)' "$T/real.out")" "$(jq -c 'del(.dryRun)' "$T/dry.out")" \
  "the dry run's numbers vs the real run's"
