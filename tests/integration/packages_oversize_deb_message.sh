#!/usr/bin/env bash
# A .deb that is larger on the server than the lock says (the usual shape of
# a tampered package) is refused (exit 2) with the package, its version and
# the SHA-256 and size the lock pins — as a changed .deb of the same size is:
#   kiln: error: package app 2.0-1: the .deb from URL is larger than N bytes, the lock pins … (N bytes); not used
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_APT_FIXTURE:?the APT fixture dir (tests/fixtures/aptrepo.sh start DIR)}/env"
# shellcheck source=../apt_lib.sh
source "$(dirname "$0")/../apt_lib.sh"

S=$T/store
apt_copy oversize
PKG_URL=$COPY_URL pkg_template "$T/app/kiln.yaml" app "app"
"$KILN" --store "$S" lock "$T/app/kiln.yaml" >/dev/null 2>&1 || fail "kiln lock failed"
locked=$(jq -r '.packages[] | select(.name == "app") | .sha256' "$T/app/kiln.lock")
size=$(jq -r '.packages[] | select(.name == "app") | .size' "$T/app/kiln.lock")
printf 'appended by the test' >>"$COPY_DIR/pool/main/a/app/app_2.0-1_amd64.deb"

step "an oversized .deb: the error names the package and what the lock pins"
expect_error 2 "package app 2.0-1" "$KILN" --store "$S" build "$T/app/kiln.yaml" --locked
assert_contains "$ERR" "$locked" "the error gives the SHA-256 the lock pins"
assert_contains "$ERR" "$size bytes" "the error gives the size the lock pins"
cache_is_clean "$S"
