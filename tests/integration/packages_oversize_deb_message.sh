#!/usr/bin/env bash
# Known bug: a .deb that is larger on the server than the lock says (the
# usual shape of a tampered package) is refused, but the error names neither
# the package nor what the lock pins — only the URL:
#   kiln: error: GET http://…/app_2.0-1_amd64.deb: http://…/app_2.0-1_amd64.deb is larger than 1444 bytes
# whereas a changed .deb of the same size (or smaller) gets
#   kiln: error: package app 2.0-1: the .deb from URL has sha256 … (N bytes), the lock pins … (M bytes); not used
# Expected: the same kind of message, naming the package, its version and the
# locked SHA-256 and size.
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
