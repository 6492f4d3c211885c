#!/usr/bin/env bash
# An oci: layout that holds one image and its signature and attestations is
# still named as oci:DIR — the sha256-<hex>.sig and .att manifests are
# attachments, not images of the layout:
#   kiln export hello:1.0.0 oci:lay && kiln sign oci:lay --key k.key
#   kiln verify oci:lay --key k.pub   # ok; so are inspect, sbom, sign again
# The same for kiln export of a signed image; oci:DIR:REF works as well.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

S=$T/store
k() { "$KILN" --store "$S" "$@"; }
"$KILN" keygen --out "$T/k" >/dev/null
D=$(build_digest --store "$S" build "$HELLO")

step "kiln sign oci:DIR, then verify, inspect, sbom and sign oci:DIR"
k export hello:1.0.0 "oci:$T/lay" >/dev/null
k sign "oci:$T/lay" --key "$T/k.key" --identity hello >/dev/null || fail "kiln sign oci:DIR of a one-image layout"
k verify "oci:$T/lay" --key "$T/k.pub" >/dev/null 2>"$T/verify.err" || fail "kiln verify oci:DIR: $(cat "$T/verify.err")"
assert_eq "$D" "$(k inspect "oci:$T/lay" --json 2>&1 | jq -r .digest)" "kiln inspect oci:DIR after signing"
k sbom "oci:$T/lay" >/dev/null 2>"$T/sbom.err" || fail "kiln sbom oci:DIR: $(cat "$T/sbom.err")"
k sign "oci:$T/lay" --key "$T/k.key" --identity hello >/dev/null 2>"$T/sign.err" || fail "kiln sign oci:DIR again: $(cat "$T/sign.err")"

step "kiln export of a signed image, then verify oci:DIR"
k sign hello:1.0.0 --key "$T/k.key" >/dev/null
k export hello:1.0.0 "oci:$T/exported" >/dev/null
k verify "oci:$T/exported" --key "$T/k.pub" --require sbom,provenance >/dev/null 2>"$T/verify2.err" ||
  fail "kiln verify oci:DIR of a signed export: $(cat "$T/verify2.err")"
