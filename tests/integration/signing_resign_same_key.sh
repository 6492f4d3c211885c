#!/usr/bin/env bash
# Signing an image again with the same key adds nothing: re-running
# `kiln build --sign` on an unchanged template leaves the sha256-<hex>.sig
# manifest as it was (cosign's DupeDetector does the same), as kiln does for
# attestations (one envelope per key and predicate type):
#   kiln build T --sign k.key; kiln build T --sign k.key
#   kiln verify NAME:TAG --key k.pub --json | jq .signatures   # 1
# Only another key (or another identity) adds a layer.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../sign_lib.sh
source "$(dirname "$0")/../sign_lib.sh"

S=$T/store
k() { "$KILN" --store "$S" "$@"; }
"$KILN" keygen --out "$T/k1" >/dev/null
"$KILN" keygen --out "$T/k2" >/dev/null
D=$(build_digest --store "$S" build "$HELLO" --sign "$T/k1.key")
sig_layers() { jq '.layers | length' "$(blob_path "$S" "$(ref_digest "$S" "hello:$(sig_tag "$D")")")"; }
att_layers() { jq '.layers | length' "$(blob_path "$S" "$(ref_digest "$S" "hello:$(att_tag "$D")")")"; }
assert_eq 1 "$(sig_layers)" "signature layers after build --sign"
first=$(ref_digest "$S" "hello:$(sig_tag "$D")")

step "build --sign again, and kiln sign, with the same key: no second signature"
build_digest --store "$S" build "$HELLO" --sign "$T/k1.key" >/dev/null
k sign hello:1.0.0 --key "$T/k1.key" >/dev/null
assert_eq 1 "$(sig_layers)" "signature layers after signing twice more with the same key"
assert_eq "$first" "$(ref_digest "$S" "hello:$(sig_tag "$D")")" "the signature manifest is unchanged"
assert_eq 3 "$(att_layers)" "attestation layers (one per predicate type and key)"
assert_eq 1 "$(k verify hello:1.0.0 --key "$T/k1.pub" --json | jq .signatures)" "signatures verify reports"

step "another key and another identity each add one"
k sign hello:1.0.0 --key "$T/k2.key" >/dev/null
assert_eq 2 "$(sig_layers)" "signature layers after signing with another key"
k sign hello:1.0.0 --key "$T/k2.key" --identity registry.example.com/hello >/dev/null
assert_eq 3 "$(sig_layers)" "signature layers after signing for another identity"
