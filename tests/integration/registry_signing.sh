#!/usr/bin/env bash
# Signatures and attestations in a real registry (issue 4), checked without
# kiln's verifier: kiln push carries a signed image's sha256-<hex>.sig and
# .att manifests along; containers/image (skopeo copy with a registries.d
# `use-sigstore-attachments: true`) pulls the .sig attachment and writes
# signature-N files, verified here with openssl (Debian's skopeo cannot verify
# sigstore signatures itself); the manifests and blobs fetched with curl from
# the registry API verify with openssl too. kiln verify docker://… requires
# sbom and provenance, and refuses a payload or envelope the registry serves
# falsified (through the fault proxy); kiln push --sign signs for the
# destination repository (docker-reference HOST:PORT/REPO) and kiln verify
# --identity accepts it.
# kiln pull --verify-key stores nothing with the wrong key (or an unsigned
# image, or a signature copied from another image), and with the right key
# the image and its attachments, which then verify in the store.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?start the fixture: tests/fixtures/registry.sh start DIR}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"
# shellcheck source=../sign_lib.sh
source "$(dirname "$0")/../sign_lib.sh"
need_tool skopeo curl openssl jq

S=$T/store
k() { "$KILN" --store "$S" "$@"; }
NS=signing-$RUN
REPO=$NS/hello      # pushed as built: the build's signature (identity "hello") carried along
REPO2=$NS/released  # pushed with --sign: a second signature for $REG_PLAIN/$REPO2
for key in k1 k2 k3; do "$KILN" keygen --out "$T/$key" >/dev/null; done
FP3=$(key_id "$T/k3.pub")

step "build --sign and push to $REG_PLAIN/$REPO: the attachments travel along"
D=$(build_digest --store "$S" build "$HELLO" --sign "$T/k1.key")
kiln_ok push push hello:1.0.0 "docker://$REG_PLAIN/$REPO" --insecure --json
assert_eq "$D" "$(json_field "$T/push.out" .digest)" "pushed digest"
assert_eq "$(jq -cn --arg s "$(sig_tag "$D")" --arg a "$(att_tag "$D")" '[$s, $a]')" "$(jq -c .attachments "$T/push.out")" \
  "push --json names the attachments it carried"
for tag in "$(sig_tag "$D")" "$(att_tag "$D")"; do
  assert_eq 200 "$(manifest_status "http://$REG_PLAIN" "$REPO" "$tag")" "$tag in the registry"
done

# fetch_attachment REPO TAG DIR: the manifest REPO:TAG and every blob it names,
# fetched with curl into DIR/blobs/sha256 (named by digest, checked later);
# prints the manifest's path.
fetch_attachment() {
  local repo=$1 tag=$2 dir=$3 m d
  mkdir -p "$dir/blobs/sha256"
  m=$dir/manifest-$tag.json
  curl -sf -H "$MANIFEST_ACCEPT" -D "$dir/headers-$tag" -o "$m" "http://$REG_PLAIN/v2/$repo/manifests/$tag" ||
    fail "curl: no manifest $repo:$tag"
  d=$(tr -d '\r' <"$dir/headers-$tag" | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
  assert_eq "$d" "$(sha256_of "$m")" "the registry's digest of $repo:$tag vs its bytes"
  cp "$m" "$dir/blobs/sha256/${d#sha256:}"
  for d in $(jq -r '.config.digest, .layers[].digest' "$m"); do
    curl -sf -o "$dir/blobs/sha256/${d#sha256:}" "http://$REG_PLAIN/v2/$repo/blobs/$d" || fail "curl: no blob $repo@$d"
  done
  echo "$m"
}

step "curl + openssl: the signature and each attestation as the registry serves them"
m=$(fetch_attachment "$REPO" "$(sig_tag "$D")" "$T/reg1")
assert_eq 1 "$(check_sig_manifest "$m" "$T/reg1/blobs/sha256" "$T/k1.pub" "$D" hello)" "openssl: the carried signature"
assert_eq 0 "$(check_sig_manifest "$m" "$T/reg1/blobs/sha256" "$T/k3.pub" "$D")" "openssl: another key"
cmp -s "$T/sigcheck/payload-0" "$(blob_path "$S" "$(jq -r '.layers[0].digest' "$m")")" ||
  fail "the registry's signature payload differs from the store's"
m=$(fetch_attachment "$REPO" "$(att_tag "$D")" "$T/reg1")
assert_eq "$ALL_PREDICATES" \
  "$(check_att_manifest "$m" "$T/reg1/blobs/sha256" "$T/k1.pub" "$D")" "openssl: attestations in the registry"

# skopeo_signatures REPO OUT: skopeo copy with sigstore attachments to dir:OUT.
mkdir -p "$T/registries.d"
printf 'docker:\n  %s:\n    use-sigstore-attachments: true\n' "$REG_PLAIN" >"$T/registries.d/kiln-test.yaml"
skopeo_signatures() {
  skopeo copy --src-tls-verify=false --registries.d "$T/registries.d" "docker://$REG_PLAIN/$1:1.0.0" "dir:$2" \
    >"$T/skopeo.out" 2>"$T/skopeo.err" || fail "skopeo copy of $1: $(cat "$T/skopeo.err")"
  assert_eq "$D" "$(sha256_of "$2/manifest.json")" "the manifest skopeo copied"
}
# sigstore_json FILE OUT: a signature-N file is "\0sigstore-json\n" and a JSON
# object {mimeType, payload (base64), annotations}; writes OUT.payload and
# OUT.der (the annotation's signature).
sigstore_json() {
  assert_eq "00" "$(head -c1 "$1" | od -An -tx1 | tr -d ' ')" "first byte of $1"
  assert_eq "sigstore-json" "$(head -n1 "$1" | tr -d '\0')" "header of $1"
  tail -n +2 "$1" >"$2.json"
  assert_eq "$SIMPLESIGNING_TYPE" "$(jq -r .mimeType "$2.json")" "mimeType in $1"
  jq -r .payload "$2.json" | base64 -d >"$2.payload" || fail "$1: payload is not base64"
  jq -r --arg a "$SIG_ANNOTATION" '.annotations[$a]' "$2.json" | base64 -d >"$2.der" || fail "$1: no base64 signature"
}

step "skopeo copy (use-sigstore-attachments) writes signature-1; openssl verifies it"
skopeo_signatures "$REPO" "$T/skopeo1"
[[ -f $T/skopeo1/signature-1 && ! -e $T/skopeo1/signature-2 ]] || fail "skopeo should write exactly signature-1: $(ls "$T/skopeo1")"
sigstore_json "$T/skopeo1/signature-1" "$T/s1"
openssl_verify "$T/k1.pub" "$T/s1.der" "$T/s1.payload" || fail "openssl: skopeo's signature-1 does not verify with k1"
if openssl_verify "$T/k3.pub" "$T/s1.der" "$T/s1.payload"; then fail "openssl: signature-1 verifies with another key"; fi
assert_file_eq "$T/sigcheck/payload-0" "$T/s1.payload" "skopeo's payload vs the registry's blob"
assert_eq "hello $D" "$(jq -j '.critical.identity["docker-reference"], " ", .critical.image["docker-manifest-digest"]' "$T/s1.payload")" \
  "signature-1 names the build's identity and the image"

step "kiln verify docker://… --require sbom,provenance"
kiln_ok verify verify "docker://$REG_PLAIN/$REPO:1.0.0" --key "$T/k1.pub" --require sbom,provenance --insecure --json
assert_eq "$(jq -cn --arg d "$D" '{digest: $d, verified: true, signatures: 1, identity: "hello",
  attestations: ["https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1", "https://spdx.dev/Document"]}')" \
  "$(jq -c '{digest, verified, signatures, identity, attestations}' "$T/verify.out")" "kiln verify --json of the registry image"
kiln_ok verify-digest verify "docker://$REG_PLAIN/$REPO@$D" --key "$T/k1.pub" --require provenance --insecure
expect_error 1 "$D: no signature verifies with the key ${FP3:0:12}" \
  k verify "docker://$REG_PLAIN/$REPO:1.0.0" --key "$T/k3.pub" --insecure

step "a registry that serves other bytes for the payload or an envelope: refused"
# Through the fault proxy (same storage as $REG_PLAIN), lying on every GET of one blob.
F=$REG_FAULTY
payload_digest=$(jq -r '.layers[0].digest' "$T/reg1/manifest-$(sig_tag "$D").json")
slsa_digest=$(jq -r --arg p "$SLSA_PREDICATE" '.layers[] | select(.annotations.predicateType == $p) | .digest' \
  "$T/reg1/manifest-$(att_tag "$D").json")
proxy_reset "$F"
proxy_fault "$F" "{\"kind\": \"lie\", \"count\": 1000, \"method\": \"GET\", \"path\": \"${payload_digest#sha256:}\"}"
expect_error 1 "$D: a signature's payload does not match its digest (tampered payload)" \
  k verify "docker://$F/$REPO:1.0.0" --key "$T/k1.pub" --insecure
expect_error 1 "$D: a signature's payload does not match its digest (tampered payload)" \
  "$KILN" --store "$T/pull-lie" pull "docker://$F/$REPO:1.0.0" --verify-key "$T/k1.pub" --insecure
assert_eq "" "$(ref_names "$T/pull-lie")" "index.json after refusing a tampered payload"
proxy_reset "$F"
proxy_fault "$F" "{\"kind\": \"lie\", \"count\": 1000, \"method\": \"GET\", \"path\": \"${slsa_digest#sha256:}\"}"
k verify "docker://$F/$REPO:1.0.0" --key "$T/k1.pub" --require sbom --insecure >/dev/null 2>&1 ||
  fail "the SBOM attestations should verify while only the provenance envelope is falsified"
expect_error 1 "$D: no provenance attestation verifies (attestation $SLSA_PREDICATE:" \
  k verify "docker://$F/$REPO:1.0.0" --key "$T/k1.pub" --require provenance --insecure
proxy_reset "$F"

step "push --sign signs for the destination repository"
kiln_ok push2 push hello:1.0.0 "docker://$REG_PLAIN/$REPO2" --sign "$T/k2.key" --insecure
m=$(fetch_attachment "$REPO2" "$(sig_tag "$D")" "$T/reg2")
assert_eq 2 "$(jq '.layers | length' "$m")" "the carried signature and the new one"
assert_eq 1 "$(check_sig_manifest "$m" "$T/reg2/blobs/sha256" "$T/k2.pub" "$D" "$REG_PLAIN/$REPO2")" \
  "openssl: k2's signature names $REG_PLAIN/$REPO2"
assert_eq 1 "$(check_sig_manifest "$m" "$T/reg2/blobs/sha256" "$T/k1.pub" "$D" hello)" "openssl: the carried k1 signature"
m=$(fetch_attachment "$REPO2" "$(att_tag "$D")" "$T/reg2")
assert_eq "$ALL_PREDICATES" \
  "$(check_att_manifest "$m" "$T/reg2/blobs/sha256" "$T/k2.pub" "$D")" "openssl: k2's attestations in the registry"
for f in "$T"/attcheck/*.statement; do
  assert_eq "$REG_PLAIN/$REPO2" "$(jq -r '.subject[0].name' "$f")" "the statements' subject is the destination"
done
kiln_ok verify2 verify "docker://$REG_PLAIN/$REPO2:1.0.0" --key "$T/k2.pub" --identity "$REG_PLAIN/$REPO2" \
  --require sbom,provenance --insecure
assert_contains "$(cat "$T/verify2.out")" "signed by key $(key_id "$T/k2.pub" | cut -c1-12) for $REG_PLAIN/$REPO2"
expect_error 1 "the signature is for identity \"hello\", not \"$REG_PLAIN/$REPO2\"" \
  k verify "docker://$REG_PLAIN/$REPO2:1.0.0" --key "$T/k1.pub" --identity "$REG_PLAIN/$REPO2" --insecure
step "skopeo writes both signatures; openssl verifies each with its key"
skopeo_signatures "$REPO2" "$T/skopeo2"
[[ -f $T/skopeo2/signature-2 && ! -e $T/skopeo2/signature-3 ]] || fail "skopeo should write signature-1 and -2: $(ls "$T/skopeo2")"
verified=
for n in 1 2; do
  sigstore_json "$T/skopeo2/signature-$n" "$T/s2-$n"
  for key in k1 k2; do
    if openssl_verify "$T/$key.pub" "$T/s2-$n.der" "$T/s2-$n.payload"; then
      verified+="$key:$(jq -r '.critical.identity["docker-reference"]' "$T/s2-$n.payload") "
    fi
  done
done
assert_eq "k1:hello k2:$REG_PLAIN/$REPO2 " "$verified" "which key verifies which of skopeo's signatures"

step "pull --verify-key with the wrong key: refused, nothing named in the store"
expect_error 1 "$D: no signature verifies with the key ${FP3:0:12}" \
  "$KILN" --store "$T/pull-wrong" pull "docker://$REG_PLAIN/$REPO2:1.0.0" --verify-key "$T/k3.pub" --insecure
assert_eq "[]" "$("$KILN" --store "$T/pull-wrong" images --json | jq -c .)" "kiln images after a refused pull"
assert_eq "" "$(ref_names "$T/pull-wrong")" "index.json names nothing after a refused pull"

step "pull --verify-key of an unsigned image, and of one whose .sig is another image's: refused"
mkdir -p "$T/other"
cat >"$T/other/kiln.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: other
version: 1.0.0
layers:
  - name: data
    files:
      - {dest: /data.txt, content: "other\n"}
EOF
B=$(build_digest --store "$S" build "$T/other/kiln.yaml")
kiln_ok push-other push other:1.0.0 "docker://$REG_PLAIN/$NS/other" --insecure
expect_error 1 "$B is not signed (no $(sig_tag "$B") in docker://$REG_PLAIN/$NS/other)" \
  "$KILN" --store "$T/pull-unsigned" pull "docker://$REG_PLAIN/$NS/other:1.0.0" --verify-key "$T/k1.pub" --insecure
assert_eq "" "$(ref_names "$T/pull-unsigned")" "index.json after refusing an unsigned image"
# hello's signature manifest put under other's .sig tag (its blobs mounted over first).
m=$T/reg1/manifest-$(sig_tag "$D").json
for d in $(jq -r '.config.digest, .layers[].digest' "$m"); do
  curl -sf -o /dev/null -X POST "http://$REG_PLAIN/v2/$NS/other/blobs/uploads/?mount=$d&from=$REPO" || fail "mount $d"
done
curl -sf -o /dev/null -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" --data-binary "@$m" \
  "http://$REG_PLAIN/v2/$NS/other/manifests/$(sig_tag "$B")" || fail "curl: PUT the copied signature manifest"
expect_error 1 "$B: the signature is for $D, not this image ($B)" \
  k verify "docker://$REG_PLAIN/$NS/other:1.0.0" --key "$T/k1.pub" --insecure
expect_error 1 "$B: the signature is for $D, not this image ($B)" \
  "$KILN" --store "$T/pull-copied" pull "docker://$REG_PLAIN/$NS/other:1.0.0" --verify-key "$T/k1.pub" --insecure
assert_eq "" "$(ref_names "$T/pull-copied")" "index.json after refusing another image's signature"

step "pull --verify-key with the right key: the image and its attachments, verifiable in the store"
P=$T/pull-right
kiln_ok pull-right --store "$P" pull "docker://$REG_PLAIN/$REPO2:1.0.0" --verify-key "$T/k2.pub" --insecure
assert_eq "$REPO2:1.0.0 $D" "$(cat "$T/pull-right.out")" "pull's output"
assert_eq "$(printf '%s\n' "$REPO2:1.0.0" "$REPO2:$(att_tag "$D")" "$REPO2:$(sig_tag "$D")" | LC_ALL=C sort)" "$(ref_names "$P")" \
  "the pulled image and its .sig and .att entries"
assert_eq '[{"name":"'"$REPO2"':1.0.0","signed":true}]' "$("$KILN" --store "$P" images --json | jq -c '[.[] | {name, signed}]')" \
  "kiln images after the pull"
kiln_ok verify-pulled --store "$P" verify "$REPO2:1.0.0" --key "$T/k2.pub" --identity "$REG_PLAIN/$REPO2" --require sbom,provenance
kiln_ok verify-pulled-k1 --store "$P" verify "$REPO2:1.0.0" --key "$T/k1.pub" --require sbom,provenance
check_layout_openssl "$P" "$REPO2:$(sig_tag "$D")" "$REPO2:$(att_tag "$D")" "$T/k2.pub" "$D"
assert_store_clean "$P"
