#!/usr/bin/env bash
# Reproducible package images, against the local APT repository
# fixtures/aptrepo.sh serves: the same template and lock build the same
# digests (manifest, config, every layer) with a cold and a warm package cache,
# in separate stores and in the same store twice, from another working
# directory, and from a warm cache with the repository gone (nothing is
# fetched) or at another URL (the image does not depend on where the .debs
# came from); per-package layers of the packages two templates share are the
# same blobs; grouped layering keeps to maxLayers with dependencies below what
# needs them; every layering flattens to the same tree; `kiln sbom` lists the
# packages with versions, checksums and purls (epoch and '+' escaped).
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_APT_FIXTURE:?the APT fixture dir (tests/fixtures/aptrepo.sh start DIR)}/env"
# shellcheck source=../apt_lib.sh
source "$(dirname "$0")/../apt_lib.sh"

export SOURCE_DATE_EPOCH=1700000000
A=$T/store-a
APP=$T/app/kiln.yaml
pkg_template "$APP" app "app" "layering: per-package"
"$KILN" --store "$A" lock "$APP" >/dev/null 2>&1 || fail "kiln lock failed"
assert_eq "$APP_CLOSURE" "$(lock_packages "$T/app/kiln.lock")" "the locked packages"

step "cold cache, warm cache (same store), another store, another working directory: one identity"
[[ ! -e $A/kiln/cache/debs ]] || [[ -z $(ls -A "$A/kiln/cache/debs") ]] || fail "the package cache is not cold"
build_json "$T/cold.json" --store "$A" build "$APP" --locked
assert_eq 7 "$(cache_debs "$A" | wc -l)" "cached .debs after the first build"
cache_before=$(cache_debs "$A")
build_json "$T/warm.json" --store "$A" build "$APP" --locked
assert_eq "$cache_before" "$(cache_debs "$A")" "the warm cache is used as it is"
build_json "$T/other-store.json" --store "$T/store-b" build "$APP" --locked
(cd "$T/app" && "$KILN" --store "$T/store-c" build kiln.yaml --locked --jobs 1 --json >"$T/cwd.json" 2>/dev/null) ||
  fail "build from the template's folder failed"
ID=$(build_identity "$T/cold.json")
assert_eq "$ID" "$(build_identity "$T/warm.json")" "warm cache, same store"
assert_eq "$ID" "$(build_identity "$T/other-store.json")" "cold cache, another store"
assert_eq "$ID" "$(build_identity "$T/cwd.json")" "another working directory, relative template path, --jobs 1"
assert_eq 7 "$(jq '.layers | length' "$T/cold.json")" "layers: one per package"

step "a warm cache needs no repository; another URL gives the same image"
apt_copy repro
W=$T/store-w
PKG_URL=$COPY_URL pkg_template "$T/copy/kiln.yaml" app "app" "layering: per-package"
"$KILN" --store "$W" lock "$T/copy/kiln.yaml" >/dev/null 2>&1 || fail "kiln lock against the copy failed"
assert_eq "$(jq -c '.packages' "$T/app/kiln.lock")" "$(jq -c '.packages' "$T/copy/kiln.lock")" \
  "the same packages locked from the copy"
build_json "$T/copy-cold.json" --store "$W" build "$T/copy/kiln.yaml" --locked
assert_eq "$ID" "$(build_identity "$T/copy-cold.json")" "the same image from the repository at another URL"
rm -rf "$COPY_DIR/pool"
build_json "$T/copy-warm.json" --store "$W" build "$T/copy/kiln.yaml" --locked
assert_eq "$ID" "$(build_identity "$T/copy-warm.json")" "from the warm cache, with the .debs gone from the server"
mkdir -p "$T/store-w2/kiln"
cp -a "$W/kiln/cache" "$T/store-w2/kiln/cache"
build_json "$T/copy-warm2.json" --store "$T/store-w2" build "$T/copy/kiln.yaml" --locked
assert_eq "$ID" "$(build_identity "$T/copy-warm2.json")" "from a copied cache in a new store"

step "per-package layers: the packages two templates share are the same blobs"
OTHER=$T/other/kiln.yaml
pkg_template "$OTHER" other "other" "layering: per-package"
build_json "$T/other.json" --store "$A" build "$OTHER"
assert_eq "data-common 1.0-1 all
libbase 1.0-1 amd64
libfoo 1.3-1 amd64
other 1.0-1 amd64" "$(lock_packages "$T/other/kiln.lock")" "other's packages"
layer_of() { jq -c --arg n "package $2" '.layers[] | select(.name == $n) | {digest, diffId, size}' "$1"; }
for p in data-common libbase libfoo; do
  got=$(layer_of "$T/other.json" "$p")
  [[ -n $got ]] || fail "other has no layer for $p"
  assert_eq "$(layer_of "$T/cold.json" "$p")" "$got" "the layer of $p in app and in other"
done
assert_ne "$(layer_of "$T/cold.json" app)" "$(layer_of "$T/other.json" other)" "app's and other's own layers"
# The same in a store that never saw app.
build_json "$T/other-alone.json" --store "$T/store-o" build "$OTHER" --locked
assert_eq "$(build_identity "$T/other.json")" "$(build_identity "$T/other-alone.json")" "other in a fresh store"

# deps_below LOCK REF: a line for each locked dependency in a layer above the
# package that needs it (nothing when they are all in its layer or below).
deps_below() {
  local lock=$1 ref=$2
  jq -r --slurpfile lock "$lock" '
    [.layers | to_entries[] | .key as $i | .value.files[]
      | select(.path | test("^/var/lib/dpkg/status.d/[^.]+$"))
      | {name: (.path | ltrimstr("/var/lib/dpkg/status.d/")), layer: $i}] as $at
    | ($at | map({(.name): .layer}) | add) as $layer
    | $lock[0].packages[] | .name as $p | .depends[]
    | select($layer[.] > $layer[$p]) | "\(.) is above \($p), which depends on it"' \
    <("$KILN" --store "$A" inspect "$ref" --files --json)
}

step "grouped layering: maxLayers 2 gives at most 2 layers, dependencies below what needs them"
G=$T/grouped/kiln.yaml
pkg_template "$G" app-grouped "app" "layering: grouped" "maxLayers: 2"
cp "$T/app/kiln.lock" "$T/grouped/kiln.lock"  # layering is not part of the lock
build_json "$T/grouped.json" --store "$A" build "$G" --locked
n=$(jq '.layers | length' "$T/grouped.json")
((n >= 1 && n <= 2)) || fail "grouped with maxLayers 2 gave $n layers"
assert_eq '["packages 1","packages 2"]' "$(jq -c '[.layers[].name]' "$T/grouped.json")" "the grouped layers"
assert_eq "" "$(deps_below "$T/app/kiln.lock" app-grouped:1.0.0)" "dependency order in grouped layers"
assert_eq "" "$(deps_below "$T/app/kiln.lock" app:1.0.0)" "dependency order in per-package layers"
G1=$T/grouped1/kiln.yaml
pkg_template "$G1" app-grouped1 "app" "layering: grouped" "maxLayers: 1"
cp "$T/app/kiln.lock" "$T/grouped1/kiln.lock"
build_json "$T/grouped1.json" --store "$A" build "$G1" --locked
assert_eq '["packages 1"]' "$(jq -c '[.layers[].name]' "$T/grouped1.json")" "grouped with maxLayers 1"
G2=$T/grouped2/kiln.yaml
pkg_template "$G2" app-grouped2 "app" "layering: grouped" "maxLayers: 2"
cp "$T/app/kiln.lock" "$T/grouped2/kiln.lock"
build_json "$T/grouped2.json" --store "$T/store-g" build "$G2" --locked
assert_eq "$(jq -c '[.layers[] | {digest, diffId}]' "$T/grouped.json")" "$(jq -c '[.layers[] | {digest, diffId}]' "$T/grouped2.json")" \
  "grouped layers are reproducible in another store"
SINGLE=$T/single/kiln.yaml
pkg_template "$SINGLE" app-single "app"
cp "$T/app/kiln.lock" "$T/single/kiln.lock"
build_json "$T/single.json" --store "$A" build "$SINGLE" --locked
assert_eq '["packages"]' "$(jq -c '[.layers[].name]' "$T/single.json")" "single layering (the default)"

step "every layering flattens to the same tree"
for ref in app-grouped:1.0.0 app-grouped1:1.0.0 app-single:1.0.0; do
  "$KILN" --store "$A" diff app:1.0.0 "$ref" --json >"$T/diff.json" || fail "kiln diff app:1.0.0 $ref failed"
  assert_eq true "$(jq .identical "$T/diff.json")" "app:1.0.0 (per-package) and $ref flattened: $(jq -c .changes "$T/diff.json" | head -c 600)"
done

step "kiln sbom: every package with its version, checksum and purl"
lock_purls() {
  jq -r '.packages[] | "\(.name) \(.version) \(.sha256) pkg:deb/debian/\(.name)@\(.version | gsub(":"; "%3A") | gsub("\\+"; "%2B"))?arch=\(.architecture)"' "$1" |
    LC_ALL=C sort
}
"$KILN" --store "$A" sbom app:1.0.0 >"$T/spdx.json" || fail "kiln sbom failed"
assert_eq "$(lock_purls "$T/app/kiln.lock")" \
  "$(jq -r '.packages[] | select(.primaryPackagePurpose == "LIBRARY")
      | "\(.name) \(.versionInfo) \(.checksums[0].checksumValue) \(.externalRefs[] | select(.referenceType == "purl") | .referenceLocator)"' \
      "$T/spdx.json" | LC_ALL=C sort)" "the SPDX SBOM's packages"
assert_eq MIT "$(jq -r '.packages[] | select(.name == "app" and .primaryPackagePurpose == "LIBRARY") | .licenseDeclared' "$T/spdx.json")" \
  "app's licence, from its machine-readable copyright file"
"$KILN" --store "$A" sbom app:1.0.0 --format cyclonedx >"$T/cdx.json" || fail "kiln sbom --format cyclonedx failed"
assert_eq "$(lock_purls "$T/app/kiln.lock")" \
  "$(jq -r '.components[] | select(.type == "library") | "\(.name) \(.version) \(.hashes[0].content) \(.purl)"' "$T/cdx.json" |
    LC_ALL=C sort)" "the CycloneDX SBOM's components"
assert_eq '[{"expression":"MIT"}]' "$(jq -c '.components[] | select(.name == "app") | .licenses' "$T/cdx.json")" \
  "app's licence in CycloneDX"
# Two builds, two stores: the same SBOM.
"$KILN" --store "$T/store-b" sbom app:1.0.0 >"$T/spdx-b.json" || fail "kiln sbom in store-b failed"
assert_file_eq "$T/spdx.json" "$T/spdx-b.json" "the SBOM of the same image built in another store"

E=$T/epoch/kiln.yaml
pkg_template "$E" epoch "epochpkg"
build_digest --store "$A" build "$E" >/dev/null
assert_eq "pkg:deb/debian/epochpkg@1%3A2.0%2Bdfsg-1?arch=all" \
  "$("$KILN" --store "$A" sbom epoch:1.0.0 | jq -r '.packages[] | select(.name == "epochpkg") | .externalRefs[0].referenceLocator')" \
  "the purl of a version with an epoch and a '+'"
assert_eq "1:2.0+dfsg-1" \
  "$("$KILN" --store "$A" sbom epoch:1.0.0 | jq -r '.packages[] | select(.name == "epochpkg") | .versionInfo')" \
  "the SBOM's version of epochpkg"
