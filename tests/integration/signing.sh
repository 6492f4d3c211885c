#!/usr/bin/env bash
# Signing and attestations without a registry (issue 4): kiln keygen (modes,
# PKCS#8, never overwrites, encrypted with KILN_PASSWORD), build --sign, and
# kiln verify — and, independently of kiln's verifier, the signature and every
# DSSE attestation checked with the openssl command line over the bytes read
# straight from the store's layout and from an oci: export. Then each way a
# signature can be wrong, refused with exit 1 and its own message: wrong key,
# RSA (and P-384) key, tampered payload, tampered signature, tampered manifest,
# a signature for another image, identity mismatch, unsigned image, missing
# attestation, an attestation about another image. A second key appends a
# second signature; both verify.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../sign_lib.sh
source "$(dirname "$0")/../sign_lib.sh"
need_tool jq openssl perl

S=$T/store
k() { "$KILN" --store "$S" "$@"; }

# --- keys
step "keygen: PKCS#8 P-256 key 0600 and public key 0644, even under umask 000"
(umask 000 && k keygen --out "$T/k1" >"$T/keygen.out" 2>"$T/keygen.err") || fail "keygen failed: $(cat "$T/keygen.err")"
assert_eq 600 "$(stat -c %a "$T/k1.key")" "mode of the private key"
assert_eq 644 "$(stat -c %a "$T/k1.pub")" "mode of the public key"
assert_eq "-----BEGIN PRIVATE KEY-----" "$(head -1 "$T/k1.key")" "the private key is unencrypted PKCS#8"
assert_eq "-----BEGIN PUBLIC KEY-----" "$(head -1 "$T/k1.pub")" "the public key is a SubjectPublicKeyInfo"
assert_contains "$(openssl pkey -in "$T/k1.key" -noout -text 2>/dev/null)" "ASN1 OID: prime256v1" "k1.key is a P-256 key"
openssl pkey -in "$T/k1.key" -pubout | cmp -s - "$T/k1.pub" || fail "k1.pub is not k1.key's public key"
FP1=$(key_id "$T/k1.pub")
assert_eq "$T/k1.key $T/k1.pub (key ${FP1:0:12})" "$(cat "$T/keygen.out")" "keygen's output names the key by its fingerprint"
k keygen --out "$T/k2" --json >"$T/keygen2.json"
FP2=$(key_id "$T/k2.pub")
assert_eq "{\"privateKey\":\"$T/k2.key\",\"publicKey\":\"$T/k2.pub\",\"fingerprint\":\"$FP2\"}" \
  "$(jq -c '{privateKey, publicKey, fingerprint}' "$T/keygen2.json")" "keygen --json"
assert_ne "$FP1" "$FP2" "two keygens give two keys"
assert_not_contains "$(cat "$T/keygen.out" "$T/keygen.err" "$T/keygen2.json")" "PRIVATE KEY" "keygen prints no key"

step "keygen never overwrites a key"
before=$(sha256sum "$T/k1.key" "$T/k1.pub")
expect_error 1 "$T/k1.key exists; kiln keygen never overwrites a key" k keygen --out "$T/k1"
assert_eq "$before" "$(sha256sum "$T/k1.key" "$T/k1.pub")" "k1 after a refused keygen"
cp "$T/k2.pub" "$T/half.pub"
expect_error 1 "$T/half.pub exists; kiln keygen never overwrites a key" k keygen --out "$T/half"
[[ ! -e $T/half.key ]] || fail "a refused keygen left $T/half.key"
cmp -s "$T/k2.pub" "$T/half.pub" || fail "a refused keygen changed half.pub"

step "keygen with KILN_PASSWORD: an encrypted PKCS#8 key"
# shellcheck disable=SC2016  # a literal $ in the passphrase
PASS='correct horse $battery staple'
KILN_PASSWORD=$PASS k keygen --out "$T/enc" >"$T/keygen-enc.out" 2>&1 || fail "encrypted keygen: $(cat "$T/keygen-enc.out")"
assert_eq 600 "$(stat -c %a "$T/enc.key")" "mode of the encrypted key"
assert_eq "-----BEGIN ENCRYPTED PRIVATE KEY-----" "$(head -1 "$T/enc.key")" "KILN_PASSWORD encrypts the key"
openssl pkey -in "$T/enc.key" -passin "pass:$PASS" -pubout 2>/dev/null | cmp -s - "$T/enc.pub" ||
  fail "openssl cannot open enc.key with the passphrase, or enc.pub is not its public key"
if openssl pkey -in "$T/enc.key" -passin pass:another -noout 2>/dev/null; then fail "openssl opened enc.key with another passphrase"; fi
assert_not_contains "$(cat "$T/keygen-enc.out")" "$PASS" "keygen prints the passphrase"
KILN_PASSWORD='' k keygen --out "$T/plain" >/dev/null
assert_eq "-----BEGIN PRIVATE KEY-----" "$(head -1 "$T/plain.key")" "an empty KILN_PASSWORD means no passphrase"

# --- two images: app (signed at build time; a UTF-8 file name, so that the
# statements hold multi-byte characters) and other (unsigned)
mkdir -p "$T/ctx" "$T/ctx2"
cp "$HELLO_DIR/bin/hello" "$T/ctx/hello"
cat >"$T/ctx/kiln.yaml" <<'EOF'
apiVersion: kiln.dev/v1
extends: nonroot
name: app
version: 1.0.0
layers:
  - name: app
    files:
      - {src: hello, dest: /usr/bin/hello}
      - {dest: "/etc/grüße.txt", content: "grüß dich ☃\n"}
config:
  entrypoint: [/usr/bin/hello]
EOF
cat >"$T/ctx2/kiln.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: other
version: 1.0.0
layers:
  - name: data
    files:
      - {dest: /data.txt, content: "other\n"}
EOF
step "build --sign"
"$KILN" --store "$S" build "$T/ctx/kiln.yaml" --sign "$T/k1.key" --json >"$T/app.json" 2>"$T/app.err" ||
  fail "build --sign failed: $(cat "$T/app.err")"
A=$(jq -r .digest "$T/app.json")
assert_contains "$(cat "$T/app.err")" "signed app:1.0.0 for app (3 attestations)"
B=$(build_digest --store "$S" build "$T/ctx2/kiln.yaml")
SIG_A="app:$(sig_tag "$A")"
ATT_A="app:$(att_tag "$A")"
assert_eq "$(printf '%s\n' "$ATT_A" "$SIG_A" app:1.0.0 other:1.0.0 | LC_ALL=C sort)" "$(ref_names "$S")" \
  "the store holds the image and its .sig and .att entries"

step "kiln images: attachments hidden, SIGNED column"
images=$(k images)
assert_eq 3 "$(wc -l <<<"$images")" "kiln images lists two images (and the header):"$'\n'"$images"
[[ $(grep '^app:1.0.0 ' <<<"$images") =~ \ yes$ ]] || fail "app:1.0.0 is not shown SIGNED yes:"$'\n'"$images"
[[ $(grep '^other:1.0.0 ' <<<"$images") =~ \ -$ ]] || fail "other:1.0.0 is not shown unsigned:"$'\n'"$images"
assert_eq '[{"name":"app:1.0.0","signed":true},{"name":"other:1.0.0","signed":false}]' \
  "$(k images --json | jq -c '[.[] | {name, signed}] | sort_by(.name)')" "kiln images --json"

step "kiln verify"
k verify app:1.0.0 --key "$T/k1.pub" >"$T/verify.out" || fail "kiln verify app:1.0.0 failed"
assert_eq "verified $A: signed by key ${FP1:0:12} for app" "$(cat "$T/verify.out")"
k verify app:1.0.0 --key "$T/k1.pub" --require sbom,spdx,cyclonedx,provenance --identity app --json >"$T/verify.json" ||
  fail "kiln verify --require sbom,spdx,cyclonedx,provenance failed"
assert_eq "$(jq -cn --arg d "$A" --arg k "$FP1" '{image: "app:1.0.0", digest: $d, verified: true, signatures: 1,
  identity: "app", attestations: ["https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1",
  "https://spdx.dev/Document"], key: $k}')" "$(jq -c '{image, digest, verified, signatures, identity, attestations, key}' "$T/verify.json")" \
  "kiln verify --json"
assert_eq "$A" "$(k verify "app@$A" --key "$T/k1.pub" --require provenance --json | jq -r .digest)" "verify NAME@DIGEST"

step "openssl: the signature and each attestation, read from the store's layout"
check_layout_openssl "$S" "$SIG_A" "$ATT_A" "$T/k1.pub" "$A"
sig_manifest=$(blob_path "$S" "$(ref_digest "$S" "$SIG_A")")
assert_eq 1 "$(jq '.layers | length' "$sig_manifest")" "one signature layer"
assert_eq 1 "$(check_sig_manifest "$sig_manifest" "$S/blobs/sha256" "$T/k1.pub" "$A" app)" \
  "openssl: the payload names identity app and verifies with k1"
assert_eq 0 "$(check_sig_manifest "$sig_manifest" "$S/blobs/sha256" "$T/k2.pub" "$A")" "openssl: k2 does not verify it"
# The statements hold UTF-8 (the file name), so the PAE's byte lengths were
# not character counts: the check above would have failed otherwise.
spdx_statement=$(grep -l '"predicateType":"https://spdx.dev/Document"' "$T"/attcheck/*.statement)
[[ $(wc -c <"$spdx_statement") -gt $(LC_ALL=C.UTF-8 wc -m <"$spdx_statement") ]] ||
  fail "the SPDX statement has no multi-byte character (the PAE length check proves less)"
assert_contains "$(cat "$spdx_statement")" "./etc/grüße.txt" "the SPDX statement names the UTF-8 file raw"
for f in "$T"/attcheck/*.statement; do
  assert_eq "app" "$(jq -r '.subject[0].name' "$f")" "statement subject name"
done
# The statements' SBOMs are what kiln sbom prints.
assert_eq "$(k sbom app:1.0.0 --json | jq -cS .)" "$(jq -cS .predicate "$spdx_statement")" "kiln sbom vs the SPDX statement"
assert_eq "$(k sbom app:1.0.0 --format cyclonedx --json | jq -cS .)" \
  "$(jq -cS .predicate "$(grep -l '"predicateType":"https://cyclonedx.org/bom"' "$T"/attcheck/*.statement)")" \
  "kiln sbom --format cyclonedx vs the CycloneDX statement"
slsa=$(grep -l '"predicateType":"https://slsa.dev/provenance/v1"' "$T"/attcheck/*.statement)
assert_eq "https://kiln.dev/build/v1" "$(jq -r .predicate.buildDefinition.buildType "$slsa")" "provenance buildType"
assert_eq "$(sha256sum "$T/ctx/kiln.yaml" | cut -d' ' -f1)" \
  "$(jq -r '.predicate.buildDefinition.resolvedDependencies[0].digest.sha256' "$slsa")" "provenance: the template's digest"

# --- what must be refused, each with its own reason
S_CLEAN=$(store_fingerprint "$S")
step "refused: an unsigned image"
expect_error 1 "$B is not signed (no $(sig_tag "$B") in $S)" k verify other:1.0.0 --key "$T/k1.pub"

step "refused: the wrong key (and openssl agrees)"
expect_error 1 "$A: no signature verifies with the key ${FP2:0:12}: signed with the key ${FP1:0:12} (wrong key)" k verify app:1.0.0 --key "$T/k2.pub"
WRONG_KEY_ERR=$ERR

step "refused: RSA and P-384 keys, for verifying and for signing"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa.key" 2>/dev/null
openssl pkey -in "$T/rsa.key" -pubout -out "$T/rsa.pub"
expect_error 1 "$T/rsa.pub is an RSA key; kiln signs and verifies with ECDSA P-256 keys" k verify app:1.0.0 --key "$T/rsa.pub"
expect_error 1 "$T/rsa.key is an RSA key; kiln signs and verifies with ECDSA P-256 keys" k sign app:1.0.0 --key "$T/rsa.key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$T/p384.key" 2>/dev/null
openssl pkey -in "$T/p384.key" -pubout -out "$T/p384.pub"
expect_error 1 "$T/p384.pub is an ECDSA key on curve secp384r1, not P-256" k verify app:1.0.0 --key "$T/p384.pub"
expect_error 1 "$T/k1.key is not a PEM public key" k verify app:1.0.0 --key "$T/k1.key"
expect_error 1 "$T/k1.pub is not a PEM private key" k sign app:1.0.0 --key "$T/k1.pub"

step "refused: identity mismatch"
expect_error 1 "$A: the signature is for identity \"app\", not \"other\"" k verify app:1.0.0 --key "$T/k1.pub" --identity other
expect_error 1 "--require attestations: kiln knows sbom, spdx, cyclonedx and provenance" \
  k verify app:1.0.0 --key "$T/k1.pub" --require attestations
assert_eq "$S_CLEAN" "$(store_fingerprint "$S")" "the store after refused verifications and signings"

step "refused: a tampered payload (the blob no longer has its digest)"
cp -a "$S" "$T/s-payload"
payload=$(blob_path "$T/s-payload" "$(jq -r '.layers[0].digest' "$sig_manifest")")
chmod u+w "$payload"
sed -i 's/"docker-reference":"app"/"docker-reference":"APP"/' "$payload"
assert_contains "$(cat "$payload")" '"APP"' "the payload was edited"
expect_error 1 "$A: a signature's payload does not match its digest (tampered payload)" \
  "$KILN" --store "$T/s-payload" verify app:1.0.0 --key "$T/k1.pub"
jq -r --arg a "$SIG_ANNOTATION" '.layers[0].annotations[$a]' "$sig_manifest" | base64 -d >"$T/sig-a.der"
if openssl_verify "$T/k1.pub" "$T/sig-a.der" "$payload"; then fail "openssl verified the tampered payload"; fi

step "refused: a tampered signature (manifest rewritten under its new digest, index repointed)"
cp -a "$S" "$T/s-sig"
# Flip one bit inside r of the DER signature: still well-formed DER, wrong value.
perl -0777 -pe 'substr($_, 10, 1) ^= "\x01"' "$T/sig-a.der" >"$T/sig-bad.der"
[[ $(cmp "$T/sig-a.der" "$T/sig-bad.der" | wc -l) -eq 1 ]] || fail "the signature was not changed"
openssl asn1parse -inform DER -in "$T/sig-bad.der" >/dev/null || fail "the tampered signature is no longer DER"
jq -c --arg a "$SIG_ANNOTATION" --arg s "$(base64 -w0 "$T/sig-bad.der")" '.layers[0].annotations[$a] = $s' \
  "$sig_manifest" >"$T/sig-bad.json"
repoint "$T/s-sig" "$SIG_A" "$T/sig-bad.json"
expect_error 1 "$A: no signature verifies with the key ${FP1:0:12}: its signature was altered" \
  "$KILN" --store "$T/s-sig" verify app:1.0.0 --key "$T/k1.pub"
assert_not_contains "$ERR" "digest" "a well-formed manifest with a bad signature is not a digest problem"
TAMPERED_SIG_ERR=$ERR
assert_ne "$WRONG_KEY_ERR" "$TAMPERED_SIG_ERR" "wrong key vs tampered signature"
if openssl_verify "$T/k1.pub" "$T/sig-bad.der" "$(blob_path "$S" "$(jq -r '.layers[0].digest' "$sig_manifest")")"; then
  fail "openssl verified the tampered signature"
fi
step "refused: a signature that is not base64"
jq -c --arg a "$SIG_ANNOTATION" '.layers[0].annotations[$a] = "not base64!"' "$sig_manifest" >"$T/sig-nob64.json"
cp -a "$S" "$T/s-nob64"
repoint "$T/s-nob64" "$SIG_A" "$T/sig-nob64.json"
expect_error 1 "$A: a signature layer carries no readable signature" \
  "$KILN" --store "$T/s-nob64" verify app:1.0.0 --key "$T/k1.pub"

step "refused: a signature for another image (app's .sig copied to other's)"
cp -a "$S" "$T/s-other"
copy_ref "$T/s-other" "$SIG_A" "other:$(sig_tag "$B")"
expect_error 1 "$B: the signature is for $A, not this image ($B)" \
  "$KILN" --store "$T/s-other" verify other:1.0.0 --key "$T/k1.pub"

step "refused: a missing attestation (.att entry removed)"
cp -a "$S" "$T/s-noatt"
drop_ref "$T/s-noatt" "$ATT_A"
"$KILN" --store "$T/s-noatt" verify app:1.0.0 --key "$T/k1.pub" >/dev/null || fail "the signature alone should verify"
expect_error 1 "$A: no provenance attestation verifies (no $(att_tag "$A"))" \
  "$KILN" --store "$T/s-noatt" verify app:1.0.0 --key "$T/k1.pub" --require provenance
expect_error 1 "$A: no sbom attestation verifies (no $(att_tag "$A"))" \
  "$KILN" --store "$T/s-noatt" verify app:1.0.0 --key "$T/k1.pub" --require sbom

step "refused: a tampered attestation envelope"
cp -a "$S" "$T/s-envelope"
att_manifest=$(blob_path "$S" "$(ref_digest "$S" "$ATT_A")")
env_blob=$(blob_path "$T/s-envelope" "$(jq -r --arg p "$SLSA_PREDICATE" '.layers[] | select(.annotations.predicateType == $p) | .digest' "$att_manifest")")
chmod u+w "$env_blob"
perl -0777 -pi -e 's/"sig":"M/"sig":"N/' "$env_blob"
expect_error 1 "$A: no provenance attestation verifies (attestation $SLSA_PREDICATE:" \
  "$KILN" --store "$T/s-envelope" verify app:1.0.0 --key "$T/k1.pub" --require provenance
assert_contains "$ERR" "does not match its digest"
"$KILN" --store "$T/s-envelope" verify app:1.0.0 --key "$T/k1.pub" --require sbom >/dev/null ||
  fail "the untouched SBOM attestations should still verify"

step "refused: an attestation about another image (app's .att copied to other's)"
cp -a "$S" "$T/s-attother"
"$KILN" --store "$T/s-attother" sign other:1.0.0 --key "$T/k1.key" >/dev/null
drop_ref "$T/s-attother" "other:$(att_tag "$B")"
copy_ref "$T/s-attother" "$ATT_A" "other:$(att_tag "$B")"
"$KILN" --store "$T/s-attother" verify other:1.0.0 --key "$T/k1.pub" >/dev/null || fail "other's own signature should verify"
expect_error 1 "is about another image, not $B" \
  "$KILN" --store "$T/s-attother" verify other:1.0.0 --key "$T/k1.pub" --require sbom

step "refused: --require provenance on an image signed where it has no build record"
k export other:1.0.0 "oci:$T/elsewhere" >/dev/null
"$KILN" --store "$T/store-elsewhere" sign "oci:$T/elsewhere:1.0.0" --key "$T/k1.key" --identity other >"$T/sign-elsewhere.out" ||
  fail "kiln sign oci:… failed"
assert_eq "signed oci:$T/elsewhere:1.0.0@$B for other ($(sig_tag "$B"), attestations: https://spdx.dev/Document, https://cyclonedx.org/bom)" \
  "$(cat "$T/sign-elsewhere.out")" "an image without build record: SBOMs from its layers, no provenance"
"$KILN" --store "$T/store-elsewhere" verify "oci:$T/elsewhere:1.0.0" --key "$T/k1.pub" >/dev/null ||
  fail "the signature made in the oci: layout should verify"
expect_error 1 "$B: no provenance attestation verifies ($(att_tag "$B") holds none)" \
  "$KILN" --store "$T/store-elsewhere" verify "oci:$T/elsewhere:1.0.0" --key "$T/k1.pub" --require provenance
assert_eq 1 "$(check_sig_manifest "$(blob_path "$T/elsewhere" "$(ref_digest "$T/elsewhere" "$(sig_tag "$B")")")" \
  "$T/elsewhere/blobs/sha256" "$T/k1.pub" "$B" other)" "openssl: the signature in the oci: layout"

# --- an encrypted key
step "an encrypted key: wrong or missing passphrase refused, nothing secret printed"
enc_secrets=("$PASS" "not-the-Passphrase-42" "PRIVATE KEY")
while IFS= read -r line; do
  [[ $line == -----* ]] || enc_secrets+=("$line")
done <"$T/enc.key"
no_secrets() {  # WHAT: $OUT and $ERR_ALL show neither passphrase nor key
  local s
  for s in "${enc_secrets[@]}"; do
    assert_not_contains "$OUT$ERR_ALL" "$s" "$1 shows a secret"
  done
}
S_BEFORE=$(store_fingerprint "$S")
KILN_PASSWORD=not-the-Passphrase-42 expect_error 1 "$T/enc.key: wrong passphrase" k sign other:1.0.0 --key "$T/enc.key"
no_secrets "a wrong passphrase"
no_tty() { "$@" </dev/null; }  # kiln asks on the terminal only if stdin is one
expect_error 1 "$T/enc.key: " no_tty env -u KILN_PASSWORD "$KILN" --store "$S" sign other:1.0.0 --key "$T/enc.key"
no_secrets "no passphrase"
KILN_PASSWORD='' expect_error 1 "$T/enc.key: " k sign other:1.0.0 --key "$T/enc.key"
no_secrets "an empty passphrase"
KILN_PASSWORD=not-the-Passphrase-42 expect_error 1 "$T/enc.key: wrong passphrase" \
  k build "$T/ctx2/kiln.yaml" --sign "$T/enc.key"
no_secrets "build --sign with a wrong passphrase"
assert_eq "$S_BEFORE" "$(store_fingerprint "$S")" "the store after refused signings"
KILN_PASSWORD=$PASS k sign other:1.0.0 --key "$T/enc.key" >"$T/.out" 2>"$T/.err" || fail "signing with the passphrase: $(cat "$T/.err")"
OUT=$(cat "$T/.out") ERR_ALL=$(cat "$T/.err")
no_secrets "signing with the passphrase"
assert_eq "signed other:1.0.0@$B for other ($(sig_tag "$B"), attestations: $SPDX_PREDICATE, $CYCLONEDX_PREDICATE, $SLSA_PREDICATE)" "$OUT"
k verify other:1.0.0 --key "$T/enc.pub" --require sbom,provenance >/dev/null || fail "the encrypted key's signature does not verify"
check_layout_openssl "$S" "other:$(sig_tag "$B")" "other:$(att_tag "$B")" "$T/enc.pub" "$B"

# --- a second key
step "signing again with another key appends a second signature; both verify"
first_layer=$(jq -c '.layers[0]' "$sig_manifest")
k sign app:1.0.0 --key "$T/k2.key" >/dev/null
sig_manifest=$(blob_path "$S" "$(ref_digest "$S" "$SIG_A")")
assert_eq 2 "$(jq '.layers | length' "$sig_manifest")" "signature layers after a second key"
assert_eq "$first_layer" "$(jq -c '.layers[0]' "$sig_manifest")" "the first signature is kept as it was"
for key in k1 k2; do
  k verify app:1.0.0 --key "$T/$key.pub" --require sbom,provenance --json >"$T/v-$key.json" || fail "$key does not verify"
  assert_eq 1 "$(jq .signatures "$T/v-$key.json")" "signatures verified by $key"
  assert_eq 1 "$(check_sig_manifest "$sig_manifest" "$S/blobs/sha256" "$T/$key.pub" "$A" app)" "openssl: $key's signature"
  check_layout_openssl "$S" "$SIG_A" "$ATT_A" "$T/$key.pub" "$A"
done
assert_eq 6 "$(jq '.layers | length' "$(blob_path "$S" "$(ref_digest "$S" "$ATT_A")")")" "attestations of two keys"
expect_error 1 "no signature verifies with the key $(key_id "$T/plain.pub" | cut -c1-12)" k verify app:1.0.0 --key "$T/plain.pub"

# --- export
step "kiln export … oci:DIR carries the signatures and attestations"
k export app:1.0.0 "oci:$T/exported" >/dev/null
assert_eq "$(printf '%s\n' 1.0.0 "$(att_tag "$A")" "$(sig_tag "$A")" | LC_ALL=C sort)" "$(ref_names "$T/exported")" \
  "ref names in the exported layout"
for key in k1 k2; do
  k verify "oci:$T/exported:1.0.0" --key "$T/$key.pub" --require sbom,spdx,cyclonedx,provenance --identity app >/dev/null ||
    fail "verify oci:$T/exported:1.0.0 with $key"
  check_layout_openssl "$T/exported" "$(sig_tag "$A")" "$(att_tag "$A")" "$T/$key.pub" "$A"
done
assert_eq "$A" "$(skopeo inspect "oci:$T/exported:1.0.0" | jq -r .Digest)" "skopeo reads the exported image"

step "build --sign --output oci:DIR writes the signed copy"
"$KILN" --store "$T/store-out" build "$T/ctx/kiln.yaml" --sign "$T/k2.key" --output "oci:$T/built" -q >/dev/null 2>&1 ||
  fail "build --sign --output failed"
k verify "oci:$T/built:1.0.0" --key "$T/k2.pub" --require sbom,provenance >/dev/null || fail "verify the --output copy"
check_layout_openssl "$T/built" "$(sig_tag "$A")" "$(att_tag "$A")" "$T/k2.pub" "$A"
