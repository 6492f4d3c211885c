#!/usr/bin/env bash
# A signed image's disk image is signed, attested, verified, exported and
# kept with it, in the store and in an oci: layout (no registry).
# `kiln build --sign` of a template extending examples/hello with
# `disk: {boot: none, filesystem: ext4, format: qcow2}` signs the image and
# its disk artifact (cosign simple signing under sha256-<disk hex>.sig, the
# SPDX, CycloneDX and SLSA statements under sha256-<disk hex>.att, whose
# subjects name both the image and the disk) — checked here with openssl and
# jq, not with kiln's verifier — and `kiln verify` reports the disk. Refused,
# each naming the disk image: the image's signature put in place of the
# disk's, an altered disk signature, a disk signed with another key, a disk
# with no signature, attestations of another image, an altered disk
# artifact, and another image's disk artifact under this image's .disk tag
# (also refused by inspect and export); a key that did not sign is refused.
# `kiln sign` with a second key signs both. `kiln export oci:` copies the
# disk artifact and its attachments (skopeo reads the artifact manifest:
# artifactType, subject, layer), the layout verifies, and `kiln export
# oci:DIR:TAG disk:FILE` writes the same bytes as from the store; a corrupt
# disk blob is not exported. `kiln store gc` keeps the disk artifact, its
# blob and its attachments.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../sign_lib.sh
source "$(dirname "$0")/../sign_lib.sh"
need_tool skopeo perl cmp qemu-img mke2fs debugfs

# One build date for every build (a real one: it is in the disk's file system).
export SOURCE_DATE_EPOCH=1700000000
S=$T/store
k() { "$KILN" --store "$S" "$@"; }
for key in k1 k2; do "$KILN" keygen --out "$T/$key" >/dev/null; done
FP1=$(key_id "$T/k1.pub")
FP2=$(key_id "$T/k2.pub")
mkdir -p "$T/ctx"
TEMPLATE=$T/ctx/kiln.yaml
hdisk_template "$TEMPLATE"

step "build --sign: the image and its disk image, each with a .sig and an .att"
build_disk "$T/b.json" --store "$S" build "$TEMPLATE" --sign "$T/k1.key"
assert_eq "qcow2 false" "$(jq -r '"\(.disk.format) \(.disk.cached)"' "$T/b.json")" "disk format and cached"
assert_contains "$(cat "$T/b.json.stderr")" "signed hdisk:1.0.0 and its disk image for hdisk (3 attestations)" \
  "what build --sign says"
assert_eq "$(printf '%s\n' hdisk:1.0.0 "hdisk:$(disk_tag "$D")" "hdisk:$(sig_tag "$D")" "hdisk:$(att_tag "$D")" \
  "hdisk:$(sig_tag "$DD")" "hdisk:$(att_tag "$DD")" | LC_ALL=C sort)" "$(ref_names "$S")" "the store's names"
assert_eq '[{"name":"hdisk:1.0.0","signed":true}]' "$(k images --json | jq -c '[.[] | {name, signed}]')" \
  "kiln images shows the image alone"
assert_eq "$DD" "$(ref_digest "$S" "hdisk:$(disk_tag "$D")")" "the .disk tag names the disk artifact"
A=$(blob_checked "$S/blobs/sha256" "$DD")
assert_eq "$DISK_ARTIFACT_TYPE $D $DISK_LAYER_TYPE $BLOB qcow2" \
  "$(jq -j '.artifactType, " ", .subject.digest, " ", .layers[0].mediaType, " ", .layers[0].digest, " ", .annotations["dev.kiln.disk.format"]' "$A")" \
  "the disk artifact: artifactType, subject, layer mediaType and digest, format"
assert_eq "$(jq -r .disk.size "$T/b.json")" "$(stat -c %s "$(blob_checked "$S/blobs/sha256" "$BLOB")")" "the disk blob's size"

step "openssl: the disk's signature and attestations; the statements name the image and the disk"
SB=$S/blobs/sha256
m=$(blob_checked "$SB" "$(ref_digest "$S" "hdisk:$(sig_tag "$DD")")")
assert_eq 1 "$(check_sig_manifest "$m" "$SB" "$T/k1.pub" "$DD" hdisk)" "openssl: the disk's signature (k1, payload names the disk)"
assert_eq 0 "$(check_sig_manifest "$m" "$SB" "$T/k2.pub" "$DD")" "openssl: the disk's signature with k2"
# check_att_manifest checks the first subject: the image.
m=$(blob_checked "$SB" "$(ref_digest "$S" "hdisk:$(att_tag "$DD")")")
assert_eq "$ALL_PREDICATES" "$(check_att_manifest "$m" "$SB" "$T/k1.pub" "$D")" "openssl: the disk's attestations"
for f in "$T"/attcheck/*.statement; do
  assert_eq "$(jq -cn --arg i "${D#sha256:}" --arg d "${DD#sha256:}" '[$i, $d]')" \
    "$(jq -c '[.subject[].digest.sha256]' "$f")" "subjects of the disk's statement $(jq -r .predicateType "$f")"
done
m=$(blob_checked "$SB" "$(ref_digest "$S" "hdisk:$(att_tag "$D")")")
assert_eq "$ALL_PREDICATES" "$(check_att_manifest "$m" "$SB" "$T/k1.pub" "$D")" "openssl: the image's attestations"
for f in "$T"/attcheck/*.statement; do
  assert_eq "$(jq -cn --arg i "${D#sha256:}" --arg d "${DD#sha256:}" '[$i, $d]')" \
    "$(jq -c '[.subject[].digest.sha256]' "$f")" "subjects of the image's statement $(jq -r .predicateType "$f")"
done

step "kiln verify: the image and its disk image"
kiln_ok verify --store "$S" verify hdisk:1.0.0 --key "$T/k1.pub" --require sbom,provenance --json
assert_eq "$(jq -cn --arg d "$D" --arg dd "$DD" --argjson t "$(jq -R . <<<"$ALL_PREDICATES" | jq -sc .)" \
  '{digest: $d, verified: true, signatures: 1, attestations: $t, disk: {digest: $dd, signatures: 1, attestations: $t}}')" \
  "$(jq -c '{digest, verified, signatures, attestations, disk: (.disk | {digest, signatures, attestations})}' "$T/verify.out")" \
  "kiln verify --json"
kiln_ok verify-text --store "$S" verify hdisk:1.0.0 --key "$T/k1.pub"
assert_contains "$(cat "$T/verify-text.out")" "verified its disk image $DD" "kiln verify's text"

step "kiln inspect shows the disk"
kiln_ok inspect --store "$S" inspect hdisk:1.0.0
assert_contains "$(cat "$T/inspect.out")" "Disk:       $DD" "kiln inspect"
assert_eq "$DD $BLOB qcow2 hdisk:$(disk_tag "$D")" \
  "$(k inspect hdisk:1.0.0 --json | jq -j '.disk | .digest, " ", .blob, " ", .format, " ", .reference')" "kiln inspect --json .disk"

step "a key that did not sign: refused"
expect_error 1 "$D: no signature verifies with the key ${FP2:0:12}" k verify hdisk:1.0.0 --key "$T/k2.pub"

# tampered NAME: a copy of the store, $TS (= $T/s-NAME), to tamper with.
tampered() {
  TS=$T/s-$1
  cp -a "$S" "$TS"
}
DISK_SIG_REF=hdisk:$(sig_tag "$DD")
# repoint_to LAYOUT REFNAME FROM_LAYOUT DIGEST: points REFNAME at the manifest
# DIGEST of FROM_LAYOUT (which may be LAYOUT).
repoint_to() {
  cp "$(blob_checked "$3/blobs/sha256" "$4")" "$T/.manifest"
  repoint "$1" "$2" "$T/.manifest"
}

step "the image's signature in place of the disk's: refused, naming the disk image"
tampered imgsig
repoint_to "$TS" "$DISK_SIG_REF" "$S" "$(ref_digest "$S" "hdisk:$(sig_tag "$D")")"
expect_error 1 "its disk image: $DD: the signature is for $D, not this image ($DD)" \
  "$KILN" --store "$TS" verify hdisk:1.0.0 --key "$T/k1.pub"

step "the disk's signature altered (valid DER, one byte flipped): refused"
tampered altered
m=$(blob_path "$S" "$(ref_digest "$S" "$DISK_SIG_REF")")
jq -r --arg a "$SIG_ANNOTATION" '.layers[0].annotations[$a]' "$m" | base64 -d |
  perl -0777 -pe 'substr($_, 10, 1) ^= "\x01"' >"$T/bad.der"
jq -c --arg a "$SIG_ANNOTATION" --arg s "$(base64 -w0 "$T/bad.der")" '.layers[0].annotations[$a] = $s' "$m" >"$T/bad.json"
repoint "$TS" "$DISK_SIG_REF" "$T/bad.json"
expect_error 1 "its disk image: $DD: no signature verifies with the key ${FP1:0:12}: its signature was altered" \
  "$KILN" --store "$TS" verify hdisk:1.0.0 --key "$T/k1.pub"

step "the disk signed with another key (the image with k1): refused"
# The same build into another store, signed with k2: the same image and disk.
build_json "$T/b2.json" --store "$T/k2store" build "$TEMPLATE" --sign "$T/k2.key"
assert_eq "$D $DD" "$(jq -j '.digest, " ", .disk.digest' "$T/b2.json")" "the image and disk built into another store"
tampered k2disk
repoint_to "$TS" "$DISK_SIG_REF" "$T/k2store" "$(ref_digest "$T/k2store" "$DISK_SIG_REF")"
expect_error 1 "its disk image: $DD: no signature verifies with the key ${FP1:0:12}: signed with the key ${FP2:0:12} (wrong key)" \
  "$KILN" --store "$TS" verify hdisk:1.0.0 --key "$T/k1.pub"

step "the disk's signature removed: refused"
tampered unsigned
drop_ref "$TS" "$DISK_SIG_REF"
expect_error 1 "its disk image: $DD is not signed (no $(sig_tag "$DD") in" \
  "$KILN" --store "$TS" verify hdisk:1.0.0 --key "$T/k1.pub"

step "another image's attestations in place of the disk's: refused when attestations are required"
tampered otheratt
H=$(build_digest --store "$TS" build "$HELLO" --sign "$T/k1.key" 2>/dev/null)
repoint_to "$TS" "hdisk:$(att_tag "$DD")" "$TS" "$(ref_digest "$TS" "hello:$(att_tag "$H")")"
expect_error 1 "its disk image: $DD: no provenance attestation verifies (attestation $SLSA_PREDICATE is about another image, not $DD)" \
  "$KILN" --store "$TS" verify hdisk:1.0.0 --key "$T/k1.pub" --require provenance

step "the disk artifact altered (its virtual size): no signature for it, refused"
tampered artifact
jq -c '.annotations["dev.kiln.disk.virtual-size"] = "9999999999"' "$A" >"$T/artifact.json"
ALT=$(sha256_of "$T/artifact.json")
repoint "$TS" "hdisk:$(disk_tag "$D")" "$T/artifact.json"
expect_error 1 "its disk image: $ALT is not signed (no $(sig_tag "$ALT") in" \
  "$KILN" --store "$TS" verify hdisk:1.0.0 --key "$T/k1.pub"

step "another image's disk artifact under this image's .disk tag: refused by verify, inspect and export"
tampered swapped
hdisk_template "$T/ctx/other.yaml" 2.0.0 /etc/other.txt
build_json "$T/other.json" --store "$TS" build "$T/ctx/other.yaml" --sign "$T/k1.key"
B=$(jq -r .digest "$T/other.json")
BD=$(jq -r .disk.digest "$T/other.json")
repoint_to "$TS" "hdisk:$(disk_tag "$D")" "$TS" "$BD"
# The swapped-in disk is signed with k1 too: only its subject gives it away.
kiln_ok other-verifies --store "$TS" verify hdisk:2.0.0 --key "$T/k1.pub"
SWAPPED="hdisk:$(disk_tag "$D") is the disk image of $B, not of $D"
expect_error 1 "$SWAPPED" "$KILN" --store "$TS" verify hdisk:1.0.0 --key "$T/k1.pub"
expect_error 1 "$SWAPPED" "$KILN" --store "$TS" inspect hdisk:1.0.0
expect_error 1 "$SWAPPED" "$KILN" --store "$TS" export hdisk:1.0.0 "disk:$T/swapped.qcow2"
[[ ! -e $T/swapped.qcow2 ]] || fail "export wrote the swapped disk"

step "kiln sign with a second key signs the image and its disk"
tampered resign
kiln_ok sign --store "$TS" sign hdisk:1.0.0 --key "$T/k2.key" --json
assert_eq "$(jq -cn --arg dd "$DD" --arg s "$(sig_tag "$DD")" '{digest: $dd, signature: $s}')" \
  "$(jq -c '.disk | {digest, signature}' "$T/sign.out")" "kiln sign --json .disk"
assert_eq "$ALL_PREDICATES" "$(jq -r '.disk.attestations[]' "$T/sign.out" | LC_ALL=C sort)" "kiln sign --json .disk.attestations"
for key in k1 k2; do
  kiln_ok "verify-$key" --store "$TS" verify hdisk:1.0.0 --key "$T/$key.pub" --require sbom,provenance --json
  assert_eq "$DD 1" "$(jq -j '.disk.digest, " ", .disk.signatures' "$T/verify-$key.out")" "verify with $key after kiln sign"
done
m=$(blob_checked "$TS/blobs/sha256" "$(ref_digest "$TS" "$DISK_SIG_REF")")
assert_eq 2 "$(jq '.layers | length' "$m")" "the disk's signatures: k1's and k2's"
assert_eq 1 "$(check_sig_manifest "$m" "$TS/blobs/sha256" "$T/k2.pub" "$DD" hdisk)" "openssl: k2's signature of the disk"

step "export oci: carries the disk artifact and its attachments; the layout verifies"
O=$T/oci
kiln_ok export-oci --store "$S" export hdisk:1.0.0 "oci:$O"
assert_eq "$(printf '%s\n' 1.0.0 "$(disk_tag "$D")" "$(sig_tag "$D")" "$(att_tag "$D")" "$(sig_tag "$DD")" "$(att_tag "$DD")" |
  LC_ALL=C sort)" "$(ref_names "$O")" "the layout's names"
for d in "$DD" "$BLOB"; do
  assert_file_eq "$(blob_checked "$S/blobs/sha256" "$d")" "$(blob_checked "$O/blobs/sha256" "$d")" "blob $d in the layout"
done
kiln_ok verify-oci --store "$S" verify "oci:$O:1.0.0" --key "$T/k1.pub" --require sbom,provenance --json
assert_eq "$D $DD 1 3" "$(jq -j '.digest, " ", .disk.digest, " ", .disk.signatures, " ", (.disk.attestations | length)' "$T/verify-oci.out")" \
  "kiln verify oci:… --json"
skopeo inspect --raw "oci:$O:$(disk_tag "$D")" >"$T/skopeo-disk.json" 2>"$T/skopeo.err" ||
  fail "skopeo inspect --raw oci:$O:$(disk_tag "$D"): $(cat "$T/skopeo.err")"
assert_eq "$DD" "$(sha256_of "$T/skopeo-disk.json")" "the manifest skopeo reads is the disk artifact"
assert_eq "$DISK_ARTIFACT_TYPE $D $DISK_LAYER_TYPE $BLOB" \
  "$(jq -j '.artifactType, " ", .subject.digest, " ", .layers[0].mediaType, " ", .layers[0].digest' "$T/skopeo-disk.json")" \
  "skopeo: artifactType, subject, layer"
assert_eq "$D" "$(skopeo inspect "oci:$O:1.0.0" | jq -r .Digest)" "skopeo reads the image from the layout"
m=$(blob_checked "$O/blobs/sha256" "$(ref_digest "$O" "$(sig_tag "$DD")")")
assert_eq 1 "$(check_sig_manifest "$m" "$O/blobs/sha256" "$T/k1.pub" "$DD" hdisk)" "openssl: the disk's signature in the layout"
m=$(blob_checked "$O/blobs/sha256" "$(ref_digest "$O" "$(att_tag "$DD")")")
assert_eq "$ALL_PREDICATES" "$(check_att_manifest "$m" "$O/blobs/sha256" "$T/k1.pub" "$D")" "openssl: the disk's attestations in the layout"

step "export disk: from the store and from the layout: the same bytes, the stored blob"
kiln_ok export-disk --store "$S" export hdisk:1.0.0 "disk:$T/store.qcow2"
assert_eq "disk:$T/store.qcow2" "$(cat "$T/export-disk.out")" "export disk:'s output"
assert_file_eq "$(blob_path "$S" "$BLOB")" "$T/store.qcow2" "the exported disk vs the stored blob"
kiln_ok export-disk-oci --store "$S" export "oci:$O:1.0.0" "disk:$T/layout.qcow2"
assert_file_eq "$T/store.qcow2" "$T/layout.qcow2" "the disk exported from the layout vs from the store"
kiln_ok export-raw --store "$S" export "oci:$O:1.0.0" "disk:$T/layout.raw"
qemu-img info --output=json "$T/layout.raw" >"$T/raw-info.json"
assert_eq "raw $(jq -r .disk.virtualSize "$T/b.json")" "$(jq -j '.format, " ", ."virtual-size"' "$T/raw-info.json")" \
  "the raw export: format and size"
qemu-img compare -q -f qcow2 -F raw "$T/store.qcow2" "$T/layout.raw" || fail "the raw export holds other data than the qcow2"

step "a corrupt disk blob is not exported"
tampered corrupt
f=$(blob_path "$TS" "$BLOB")
chmod u+w "$f"
printf 'X' | dd of="$f" bs=1 seek=4096 conv=notrunc status=none
expect_error 2 "the disk file $BLOB is corrupt" "$KILN" --store "$TS" export hdisk:1.0.0 "disk:$T/corrupt.qcow2"
[[ ! -e $T/corrupt.qcow2 ]] || fail "export wrote a corrupt disk"

step "store gc keeps the disk artifact, its blob and its attachments"
printf 'not referenced\n' >"$T/stray"
STRAY=$(add_blob "$S" "$T/stray")
find "$S/blobs/sha256" -type f -exec touch -d '2 days ago' {} +
BEFORE=$(ref_names "$S")
kiln_ok gc --store "$S" store gc --json
assert_eq "1 6" "$(jq -j '.blobsRemoved, " ", .images' "$T/gc.out")" "gc: blobs removed (the stray one), store entries"
[[ ! -e $(blob_path "$S" "$STRAY") ]] || fail "gc kept the stray blob"
assert_eq "$BEFORE" "$(ref_names "$S")" "the store's names after gc"
for d in "$DD" "$BLOB" $(jq -r '.config.digest' "$A") \
  $(for r in "$(sig_tag "$DD")" "$(att_tag "$DD")"; do
    x=$(ref_digest "$S" "hdisk:$r")
    echo "$x"
    jq -r '.config.digest, .layers[].digest' "$(blob_path "$S" "$x")"
  done); do
  [[ -f $(blob_path "$S" "$d") ]] || fail "gc removed $d"
done
kiln_ok fsck --store "$S" store fsck
kiln_ok verify-gc --store "$S" verify hdisk:1.0.0 --key "$T/k1.pub" --require sbom,provenance --json
assert_eq "$DD" "$(jq -r .disk.digest "$T/verify-gc.out")" "the disk verifies after gc"
kiln_ok export-gc --store "$S" export hdisk:1.0.0 "disk:$T/after-gc.qcow2"
assert_file_eq "$T/store.qcow2" "$T/after-gc.qcow2" "the disk exported after gc"

step "build --replace with other content: the replaced image's attachments go with it, gc reclaims their blobs"
hdisk_template "$T/ctx/more.yaml" "" /etc/more.txt
kiln_ok keep --store "$S" export hdisk:1.0.0 kept:1  # a tag of another name names the old image
OLD=$D OLD_DD=$DD OLD_BLOB=$BLOB
build_disk "$T/replace.json" --store "$S" build "$T/ctx/more.yaml" --replace --sign "$T/k1.key"
[[ $D != "$OLD" ]] || fail "the replacing build made the same image"
kiln_ok verify-kept --store "$S" verify kept:1 --key "$T/k1.pub" --require sbom,provenance --json
assert_eq "$OLD $OLD_DD" "$(jq -j '.digest, " ", .disk.digest' "$T/verify-kept.out")" \
  "kept:1, the old image, still verifies with its disk after hdisk:1.0.0 moved"
kiln_ok untag --store "$S" export hdisk:1.0.0 kept:1 --replace  # nothing names the old image now
# (Attachments are found under any name; an export into kept:1 takes the
# signatures along under that name, and tags the disk under both.)
assert_eq "$(printf '%s\n' hdisk:1.0.0 kept:1 "$(disk_tag "$D")" "$(disk_tag "$D")" "$(sig_tag "$D")" \
  "$(att_tag "$D")" "$(sig_tag "$DD")" "$(att_tag "$DD")" | LC_ALL=C sort)" \
  "$(ref_names "$S" | sed -E 's/^[^:]*:(sha256-)/\1/' | LC_ALL=C sort)" \
  "the store's names: the new image's and its attachments', none of the old one's"
find "$S/blobs/sha256" -type f -exec touch -d '2 days ago' {} +
kiln_ok gc-replaced --store "$S" store gc
[[ ! -e $(blob_path "$S" "$OLD_BLOB") ]] || fail "gc kept the replaced image's disk file"
kiln_ok fsck-replaced --store "$S" store fsck
kiln_ok verify-replaced --store "$S" verify hdisk:1.0.0 --key "$T/k1.pub" --require sbom,provenance --json
assert_eq "$DD" "$(jq -r .disk.digest "$T/verify-replaced.out")" "the new disk verifies"
