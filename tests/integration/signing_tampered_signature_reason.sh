#!/usr/bin/env bash
# A tampered signature and a wrong key are refused each with its own reason.
# kiln names the signing key in each signature layer (dev.kiln.keyid, as on
# its attestation layers), so for its own signatures it can tell
#   …: no signature verifies with the key FPR2: signed with the key FPR1 (wrong key)
# from a signature whose bytes were altered (still valid DER, checked with
# the right key):
#   …: no signature verifies with the key FPR1: its signature was altered
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../sign_lib.sh
source "$(dirname "$0")/../sign_lib.sh"
need_tool perl

S=$T/store
"$KILN" keygen --out "$T/k1" >/dev/null
"$KILN" keygen --out "$T/k2" >/dev/null
D=$(build_digest --store "$S" build "$HELLO" --sign "$T/k1.key")
REF=hello:$(sig_tag "$D")
m=$(blob_path "$S" "$(ref_digest "$S" "$REF")")

step "the wrong key"
expect_error 1 "$D: " "$KILN" --store "$S" verify hello:1.0.0 --key "$T/k2.pub"
wrong_key=$ERR

step "a tampered signature, checked with the right key"
cp -a "$S" "$T/s-sig"
jq -r --arg a "$SIG_ANNOTATION" '.layers[0].annotations[$a]' "$m" | base64 -d |
  perl -0777 -pe 'substr($_, 10, 1) ^= "\x01"' >"$T/bad.der"
jq -c --arg a "$SIG_ANNOTATION" --arg s "$(base64 -w0 "$T/bad.der")" '.layers[0].annotations[$a] = $s' "$m" >"$T/bad.json"
repoint "$T/s-sig" "$REF" "$T/bad.json"
expect_error 1 "$D: " "$KILN" --store "$T/s-sig" verify hello:1.0.0 --key "$T/k1.pub"
tampered=$ERR

step "two reasons, not one (key fingerprints aside)"
mask() { sed -E 's/key [0-9a-f]{12}/key KEY/g' <<<"$1"; }
assert_ne "$(mask "$wrong_key")" "$(mask "$tampered")" "the wrong key's and the tampered signature's messages"
