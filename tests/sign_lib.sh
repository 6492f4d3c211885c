# shellcheck shell=bash
# Helpers for the signing tests: read kiln's signatures and attestations out
# of an OCI layout (the store, an oci: export, or blobs fetched from a
# registry) with jq, and check them with the openssl command line — never
# with kiln's own verifier. Source after lib.sh:
#   source "$(dirname "$0")/../lib.sh"
#   source "$(dirname "$0")/../sign_lib.sh"
# Formats (cosign's specs/SIGNATURE_SPEC.md, DSSE, in-toto):
#  - signature manifest (tag sha256-<hex>.sig): one layer per signature,
#    mediaType application/vnd.dev.cosign.simplesigning.v1+json, the blob is the
#    payload, the annotation dev.cosignproject.cosign/signature is the base64
#    DER ECDSA-SHA256 signature over the payload bytes;
#  - attestation manifest (tag sha256-<hex>.att): one layer per statement,
#    mediaType application/vnd.dsse.envelope.v1+json, annotation predicateType;
#    the blob is a DSSE envelope whose signatures cover
#    PAE = "DSSEv1 <len(type)> <type> <len(payload)> <payload>" (lengths in bytes).
need_tool jq openssl base64 sha256sum
# A passphrase in the caller's environment would encrypt the keys the tests make.
unset KILN_PASSWORD

SIMPLESIGNING_TYPE=application/vnd.dev.cosign.simplesigning.v1+json
DSSE_TYPE=application/vnd.dsse.envelope.v1+json
INTOTO_TYPE=application/vnd.in-toto+json
SIG_ANNOTATION=dev.cosignproject.cosign/signature
SPDX_PREDICATE=https://spdx.dev/Document
CYCLONEDX_PREDICATE=https://cyclonedx.org/bom
SLSA_PREDICATE=https://slsa.dev/provenance/v1
REF_NAME=org.opencontainers.image.ref.name
# The predicate types of the three statements kiln attests, in byte order.
ALL_PREDICATES=$(printf '%s\n' "$CYCLONEDX_PREDICATE" "$SLSA_PREDICATE" "$SPDX_PREDICATE")
# A disk image (DESIGN.md): an artifact tagged after its image, its layer the
# disk file.
DISK_ARTIFACT_TYPE=application/vnd.kiln.disk.v1
DISK_LAYER_TYPE=application/vnd.kiln.disk.layer.v1.qcow2

# sig_tag DIGEST / att_tag DIGEST: cosign's tags for an image's attachments.
sig_tag() { echo "sha256-${1#sha256:}.sig"; }
att_tag() { echo "sha256-${1#sha256:}.att"; }
disk_tag() { echo "sha256-${1#sha256:}.disk"; }

# hdisk_template FILE [VERSION [PATH]]: examples/hello named hdisk with a
# qcow2 ext4 disk and no boot loader; VERSION (hello's if empty); PATH adds a
# layer "extra" with that file, its content the file's name.
hdisk_template() {
  mkdir -p "$(dirname "$1")"
  {
    printf 'apiVersion: kiln.dev/v1\nextends: %s\nname: hdisk\n' "$HELLO"
    [[ -z ${2:-} ]] || printf 'version: %s\n' "$2"
    printf 'disk: {boot: none, filesystem: ext4, format: qcow2}\n'
    [[ -z ${3:-} ]] ||
      printf 'layers:\n  - name: extra\n    files:\n      - {dest: %s, content: "%s\\n"}\n' "$3" "${3##*/}"
  } >"$1"
}

# build_disk FILE ARGS...: `kiln ARGS... --json` (a build with a disk image)
# into FILE; sets D (the image), DD (the disk artifact) and BLOB (the disk
# file) to their digests.
build_disk() {
  build_json "$@"
  D=$(jq -r .digest "$1")
  DD=$(jq -r .disk.digest "$1")
  BLOB=$(jq -r .disk.blob "$1")
  [[ $DD == sha256:* && $BLOB == sha256:* ]] || fail "no disk in the build's JSON: $(cat "$1")"
}

# ref_digest LAYOUT REFNAME: the digest of the index.json entry named REFNAME
# (empty if there is none).
ref_digest() {
  jq -r --arg r "$2" '[.manifests[] | select(.annotations[$ARGS.named.n] == $r) | .digest][0] // empty' \
    --arg n "$REF_NAME" "$1/index.json"
}

# ref_names LAYOUT: every ref name in the layout's index.json, sorted.
ref_names() { jq -r --arg n "$REF_NAME" '.manifests[].annotations[$n] // empty' "$1/index.json" | LC_ALL=C sort; }

# add_blob LAYOUT FILE: puts FILE into the layout under its sha256; prints the digest.
add_blob() {
  local d
  d=$(sha256_of "$2")
  cp "$2" "$(blob_path "$1" "$d")"
  echo "$d"
}

# repoint LAYOUT REFNAME FILE: stores FILE as a blob and points the index entry
# REFNAME at it (digest and size), as a manifest rewritten in place would be.
repoint() {
  local layout=$1 ref=$2 file=$3 d size
  d=$(add_blob "$layout" "$file")
  size=$(stat -c %s "$file")
  [[ -n $(ref_digest "$layout" "$ref") ]] || fail "repoint: no entry $ref in $layout"
  jq --arg r "$ref" --arg d "$d" --argjson s "$size" --arg n "$REF_NAME" \
    '(.manifests[] | select(.annotations[$n] == $r)) |= (.digest = $d | .size = $s)' \
    "$layout/index.json" >"$layout/index.json.new"
  mv "$layout/index.json.new" "$layout/index.json"
}

# drop_ref LAYOUT REFNAME: removes the index entry REFNAME.
drop_ref() {
  jq --arg r "$2" --arg n "$REF_NAME" 'del(.manifests[] | select(.annotations[$n] == $r))' \
    "$1/index.json" >"$1/index.json.new"
  mv "$1/index.json.new" "$1/index.json"
}

# copy_ref LAYOUT FROM TO: a new index entry TO pointing where FROM points.
copy_ref() {
  [[ -n $(ref_digest "$1" "$2") ]] || fail "copy_ref: no entry $2 in $1"
  jq --arg a "$2" --arg b "$3" --arg n "$REF_NAME" \
    '.manifests += [.manifests[] | select(.annotations[$n] == $a) | .annotations[$n] = $b]' \
    "$1/index.json" >"$1/index.json.new"
  mv "$1/index.json.new" "$1/index.json"
}

# key_id PUB: what kiln names a key by, computed with openssl: the SHA-256 of
# the DER SubjectPublicKeyInfo, hex.
key_id() { openssl pkey -pubin -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }

# blob_checked BLOBDIR DIGEST: the path of a blob in BLOBDIR (a layout's
# blobs/sha256), after checking its content has that digest.
blob_checked() {
  local f=$1/${2#sha256:}
  [[ -f $f ]] || fail "blob $2 is not in $1"
  assert_eq "$2" "$(sha256_of "$f")" "content of blob $f"
  echo "$f"
}

# openssl_verify PUB SIG_DER DATA_FILE: openssl's verdict, exit 0 or 1.
openssl_verify() {
  local out
  if out=$(openssl dgst -sha256 -verify "$1" -signature "$2" "$3" 2>&1); then
    [[ $out == "Verified OK" ]] || fail "openssl dgst said: $out"
    return 0
  fi
  return 1
}

# check_sig_manifest MANIFEST BLOBDIR PUB IMAGE_DIGEST [IDENTITY]: with openssl
# alone, checks each layer of a signature manifest: its payload blob has the
# layer's digest and size, is byte for byte cosign's simple signing payload for
# IMAGE_DIGEST, and the annotation's signature verifies over the payload bytes
# with PUB. Prints how many layers verify with PUB (and name IDENTITY, if
# given); payloads land in $T/sigcheck/payload-N, signatures in
# $T/sigcheck/sig-N.der.
check_sig_manifest() {
  local manifest=$1 blobs=$2 pub=$3 image=$4 identity=${5:-} i=0 ok=0 f ref want
  local media digest size sig
  rm -rf "$T/sigcheck"
  mkdir -p "$T/sigcheck"
  assert_eq "application/vnd.oci.image.manifest.v1+json 2" "$(jq -j '.mediaType, " ", .schemaVersion' "$manifest")" \
    "signature manifest mediaType and schemaVersion"
  [[ $(jq '.layers | length' "$manifest") -ge 1 ]] || fail "signature manifest $manifest has no layers"
  while IFS=$'\t' read -r media digest size sig; do
    assert_eq "$SIMPLESIGNING_TYPE" "$media" "signature layer $i mediaType"
    f=$(blob_checked "$blobs" "$digest")
    assert_eq "$size" "$(stat -c %s "$f")" "size of signature payload $i"
    cp "$f" "$T/sigcheck/payload-$i"
    base64 -d <<<"$sig" >"$T/sigcheck/sig-$i.der" || fail "signature layer $i: the annotation is not base64: $sig"
    # The payload, byte for byte as cosign writes it (compact, this key order).
    ref=$(jq -r '.critical.identity["docker-reference"]' "$f")
    want='{"critical":{"identity":{"docker-reference":"'$ref'"},"image":{"docker-manifest-digest":"'$image'"},"type":"cosign container image signature"},"optional":null}'
    cmp -s <(printf '%s' "$want") "$f" ||
      fail "signature payload $i is not the simple signing payload for $image:"$'\n'"  expected: $want"$'\n'"  actual:   $(cat "$f")"
    if [[ -z $identity || $ref == "$identity" ]] && openssl_verify "$pub" "$T/sigcheck/sig-$i.der" "$f"; then
      ok=$((ok + 1))
    fi
    i=$((i + 1))
  done < <(jq -r --arg a "$SIG_ANNOTATION" '.layers[] | [.mediaType, .digest, .size, .annotations[$a]] | @tsv' "$manifest")
  echo "$ok"
}

# pae TYPE PAYLOAD_FILE OUT: writes DSSE's pre-authentication encoding.
pae() {
  local type_len payload_len
  type_len=$(printf '%s' "$1" | wc -c)
  payload_len=$(wc -c <"$2")
  { printf 'DSSEv1 %d %s %d ' "$type_len" "$1" "$payload_len" && cat "$2"; } >"$3"
}

# check_att_manifest MANIFEST BLOBDIR PUB IMAGE_DIGEST: with openssl alone,
# checks each DSSE layer of an attestation manifest whose keyid is PUB's: the
# envelope has the layer's digest and size, its payload type is in-toto, its
# signature verifies over the PAE with PUB (and not over the bare payload), the
# statement is about IMAGE_DIGEST and has the layer's predicate type. Prints the
# predicate types that verified, one a line, sorted; each statement is left in
# $T/attcheck/N.statement.
check_att_manifest() {
  local manifest=$1 blobs=$2 pub=$3 image=$4 i=0 f want_keyid
  local media type digest size payload_type keyid nsigs sig payload
  rm -rf "$T/attcheck"
  mkdir -p "$T/attcheck"
  want_keyid=$(key_id "$pub")
  assert_eq "application/vnd.oci.image.manifest.v1+json" "$(jq -r .mediaType "$manifest")" "attestation manifest mediaType"
  while IFS=$'\t' read -r media type digest size; do
    assert_eq "$DSSE_TYPE" "$media" "attestation layer $i mediaType"
    f=$(blob_checked "$blobs" "$digest")
    assert_eq "$size" "$(stat -c %s "$f")" "size of envelope $i"
    IFS=$'\t' read -r payload_type keyid nsigs sig payload < <(jq -r '[.payloadType, .signatures[0].keyid, (.signatures | length), .signatures[0].sig, .payload] | @tsv' "$f")
    assert_eq "$INTOTO_TYPE" "$payload_type" "payloadType of envelope $i"
    if [[ $keyid == "$want_keyid" ]]; then
      assert_eq 1 "$nsigs" "signatures in envelope $i"
      base64 -d <<<"$payload" >"$T/attcheck/$i.statement" || fail "envelope $i: payload is not base64"
      pae "$payload_type" "$T/attcheck/$i.statement" "$T/attcheck/$i.pae"
      base64 -d <<<"$sig" >"$T/attcheck/$i.sig" || fail "envelope $i: sig is not base64"
      openssl_verify "$pub" "$T/attcheck/$i.sig" "$T/attcheck/$i.pae" ||
        fail "openssl: the DSSE signature of envelope $i ($type) does not verify over its PAE with $pub"
      # Over the PAE, as DSSE says, not over the bare payload.
      if openssl_verify "$pub" "$T/attcheck/$i.sig" "$T/attcheck/$i.statement"; then
        fail "envelope $i: the signature verifies over the bare payload, not the PAE"
      fi
      assert_eq "https://in-toto.io/Statement/v1 $type ${image#sha256:}" \
        "$(jq -j '._type, " ", .predicateType, " ", .subject[0].digest.sha256' "$T/attcheck/$i.statement")" \
        "statement $i: _type, predicateType (the layer's annotation) and subject"
      echo "$type"
    fi
    i=$((i + 1))
  done < <(jq -r '.layers[] | [.mediaType, .annotations.predicateType, .digest, .size] | @tsv' "$manifest") | LC_ALL=C sort
}

# check_layout_openssl LAYOUT SIGREF ATTREF PUB IMAGE_DIGEST: both checks on a
# layout's attachments named SIGREF and ATTREF; fails unless at least one
# signature and all three statements verify. Leaves the statements in
# $T/attcheck.
check_layout_openssl() {
  local layout=$1 sig att n types
  sig=$(ref_digest "$layout" "$2")
  att=$(ref_digest "$layout" "$3")
  [[ -n $sig ]] || fail "no $2 in $layout/index.json"
  [[ -n $att ]] || fail "no $3 in $layout/index.json"
  n=$(check_sig_manifest "$(blob_checked "$layout/blobs/sha256" "$sig")" "$layout/blobs/sha256" "$4" "$5")
  [[ $n -ge 1 ]] || fail "openssl: no signature in $layout ($2) verifies with $4"
  types=$(check_att_manifest "$(blob_checked "$layout/blobs/sha256" "$att")" "$layout/blobs/sha256" "$4" "$5")
  assert_eq "$(printf '%s\n' "$CYCLONEDX_PREDICATE" "$SLSA_PREDICATE" "$SPDX_PREDICATE")" "$types" \
    "predicate types verified with openssl in $layout"
}
