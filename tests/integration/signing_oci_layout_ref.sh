#!/usr/bin/env bash
# Known bug (issue 4): an oci: layout that holds one image and its signature
# and attestations can no longer be named as oci:DIR — kiln counts the
# sha256-<hex>.sig and .att manifests as images. So kiln sign oci:DIR works on
# an exported image, and the very next kiln verify oci:DIR (or inspect, sbom,
# sign again) refuses it:
#   kiln export hello:1.0.0 oci:lay && kiln sign oci:lay --key k.key   # ok
#   kiln verify oci:lay --key k.pub
#   kiln: error: oci:lay: the layout holds 3 images; name one as oci:DIR:REF   exit 1
# The same for kiln export of a signed image. (The attachments are not images
# of the layout; oci:DIR:REF still works.)
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
