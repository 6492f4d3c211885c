#!/usr/bin/env bash
# kiln verify exits 1 (a refusal, with its reason) when an image's signature
# or attestation manifest no longer has the digest the index names it by — a
# digest mismatch of a signed artifact, like a tampered payload or envelope
# blob — not 2 (an environment fault):
#   (edit the bytes of the blob the store's NAME:sha256-<hex>.sig entry names)
#   kiln verify NAME:TAG --key k.pub   # exit 1, "… does not match its digest"
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
