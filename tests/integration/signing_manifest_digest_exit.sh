#!/usr/bin/env bash
# Known bug (issue 4): kiln verify exits 2 (an environment fault) instead of 1
# when an image's signature or attestation manifest no longer has the digest
# the index names it by — a digest mismatch of a signed artifact, which the
# issue and README list among the refusals that exit 1 with their reason (as a
# tampered payload or envelope blob already does):
#   (edit the bytes of the blob the store's NAME:sha256-<hex>.sig entry names)
#   kiln verify NAME:TAG --key k.pub
#   kiln: error: STORE: blob sha256:… does not match its digest or size (run kiln store fsck)   exit 2
# The .sig or .att manifest is read (sign.cc, LayoutStore::Get) outside the
# checks that turn digest errors into verification failures.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../sign_lib.sh
source "$(dirname "$0")/../sign_lib.sh"

S=$T/store
"$KILN" keygen --out "$T/k" >/dev/null
D=$(build_digest --store "$S" build "$HELLO" --sign "$T/k.key")

# tamper_manifest STORE REF: changes one byte of the manifest REF names (a space
# after the first comma: still the same JSON), leaving index.json as it is.
tamper_manifest() {
  local m
  m=$(blob_path "$1" "$(ref_digest "$1" "$2")")
  chmod u+w "$m"
  sed -i 's/,/, /' "$m"
  jq -e . "$m" >/dev/null || fail "the edited manifest should still be JSON"
}

step "a signature manifest edited in place: exit 1 with the digest mismatch"
cp -a "$S" "$T/s-sig"
tamper_manifest "$T/s-sig" "hello:$(sig_tag "$D")"
expect_error 1 "does not match its digest" "$KILN" --store "$T/s-sig" verify hello:1.0.0 --key "$T/k.pub"

step "an attestation manifest edited in place: exit 1 with the digest mismatch"
cp -a "$S" "$T/s-att"
tamper_manifest "$T/s-att" "hello:$(att_tag "$D")"
expect_error 1 "does not match its digest" "$KILN" --store "$T/s-att" verify hello:1.0.0 --key "$T/k.pub" --require sbom
