#!/usr/bin/env bash
# What the lock trusts, and what the SBOM says of where packages came from:
# an ASCII-armored keyring (.asc, as apt takes) verifies like its binary form;
# an InRelease past its Valid-Until is refused (a stale mirror, or a replayed
# Release), one valid until 2100 is not; no scratch copy of an InRelease is
# left in the cache, verified or not; another keyring in the template makes
# the lock stale, another order of include does not; the SBOMs give each
# package's download location and Debian source package.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_APT_FIXTURE:?the APT fixture dir (tests/fixtures/aptrepo.sh start DIR)}/env"
# shellcheck source=../apt_lib.sh
source "$(dirname "$0")/../apt_lib.sh"

S=$T/store
work_dirs() { find "$S/kiln/cache" -maxdepth 3 -name 'work-*' 2>/dev/null | sort; }

step "an armored keyring verifies as the binary one does"
pkg_template "$T/bin/kiln.yaml" app "app"
kiln_ok lock-bin --store "$S" lock "$T/bin/kiln.yaml"
PKG_KEYRING=$APT_ARMORED_KEYRING pkg_template "$T/asc/kiln.yaml" app "app"
kiln_ok lock-asc --store "$S" lock "$T/asc/kiln.yaml"
assert_eq "$(jq -c '.packages' "$T/bin/kiln.lock")" "$(jq -c '.packages' "$T/asc/kiln.lock")" \
  "the packages locked with the armored and the binary keyring"
assert_eq "" "$(work_dirs)" "scratch folders left in the cache after verifying"

step "an armored file that is not a key block: refused, naming the keyring"
printf -- '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64!\n-----END PGP PUBLIC KEY BLOCK-----\n' >"$T/bad.asc"
PKG_KEYRING=$T/bad.asc pkg_template "$T/badasc/kiln.yaml" app "app"
expect_error 1 "keyring $T/bad.asc: the armored key block is not base64" "$KILN" --store "$S" lock "$T/badasc/kiln.yaml"
assert_eq "" "$(work_dirs)" "scratch folders left in the cache after a refusal"

step "the wrong keyring: refused, no scratch copy left"
PKG_KEYRING=$APT_WRONG_KEYRING pkg_template "$T/wrong/kiln.yaml" app "app"
expect_error 1 "InRelease is not signed by a key in $APT_WRONG_KEYRING" "$KILN" --store "$S" lock "$T/wrong/kiln.yaml"
assert_eq "" "$(work_dirs)" "scratch folders left in the cache after a refused InRelease"
[[ ! -e $T/wrong/kiln.lock ]] || fail "a lock was written from an unverified InRelease"

step "Valid-Until: an expired Release is refused, one valid until 2100 is not"
pkg_template "$T/expired/kiln.yaml" app "app"
sed -i 's/suite: stable/suite: expired/' "$T/expired/kiln.yaml"
expect_error 1 "dists/expired/InRelease expired at Wed, 15 Nov 2023 22:13:20 UTC (Valid-Until)" \
  "$KILN" --store "$S" lock "$T/expired/kiln.yaml"
[[ ! -e $T/expired/kiln.lock ]] || fail "a lock was written from an expired Release"
pkg_template "$T/valid/kiln.yaml" app "app"
sed -i 's/suite: stable/suite: valid/' "$T/valid/kiln.yaml"
kiln_ok lock-valid --store "$S" lock "$T/valid/kiln.yaml"
assert_eq "$(jq -c '.packages' "$T/bin/kiln.lock")" "$(jq -c '.packages' "$T/valid/kiln.lock")" \
  "the packages locked from the suite valid until 2100"

step "another keyring makes the lock stale; another order of include does not"
pkg_template "$T/order/kiln.yaml" both "app, other"
kiln_ok lock-order --store "$S" lock "$T/order/kiln.yaml"
sed -i 's/include: \[app, other\]/include: [other, app]/' "$T/order/kiln.yaml"
kiln_ok build-order --store "$S" build "$T/order/kiln.yaml" --locked
sed -i "s|keyring: $APT_KEYRING|keyring: $APT_ARMORED_KEYRING|" "$T/order/kiln.yaml"
expect_error 1 "$T/order/kiln.lock no longer matches the template's packages (repositories, keyrings, include or exclude changed)" \
  "$KILN" --store "$S" build "$T/order/kiln.yaml" --locked

step "the SBOMs: each package's download location and source package"
kiln_ok build-app --store "$S" build "$T/bin/kiln.yaml" --locked
"$KILN" --store "$S" sbom app:1.0.0 >"$T/spdx.json" || fail "kiln sbom"
"$KILN" --store "$S" sbom app:1.0.0 --format cyclonedx >"$T/cdx.json" || fail "kiln sbom --format cyclonedx"
assert_eq "$APT_URL/pool/main/a/app/app_2.0-1_amd64.deb" \
  "$(jq -r '.packages[] | select(.name == "app" and (.SPDXID | startswith("SPDXRef-Package-"))) | .downloadLocation' "$T/spdx.json")" "SPDX downloadLocation of app"
assert_eq "built from the Debian source package app" \
  "$(jq -r '.packages[] | select(.name == "app" and (.SPDXID | startswith("SPDXRef-Package-"))) | .sourceInfo' "$T/spdx.json")" "SPDX sourceInfo of app"
assert_eq "$APT_URL/pool/main/a/app/app_2.0-1_amd64.deb" \
  "$(jq -r '.components[] | select(.name == "app" and .type == "library") | .externalReferences[] | select(.type == "distribution") | .url' "$T/cdx.json")" \
  "CycloneDX distribution reference of app"
assert_eq "app" \
  "$(jq -r '.components[] | select(.name == "app" and .type == "library") | .properties[] | select(.name == "debian:source") | .value' "$T/cdx.json")" \
  "CycloneDX debian:source of app"
assert_eq 0 "$(jq '[.packages[] | select(.SPDXID | startswith("SPDXRef-Package-")) | select(.downloadLocation == "NOASSERTION")] | length' "$T/spdx.json")" \
  "packages without a download location"
