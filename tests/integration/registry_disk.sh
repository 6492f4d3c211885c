#!/usr/bin/env bash
# A signed image's disk image in a real registry (distribution 2.8): `kiln
# push` puts the disk artifact beside the image under the tag
# sha256-<image hex>.disk and carries the disk's .sig and .att along. What
# the registry holds is checked with curl and skopeo: the artifact manifest
# (artifactType, subject = the image, the one layer = the disk blob), the
# blob (downloaded, its sha256 and bytes those of the store's), the disk's
# signature and attestations (openssl). `kiln verify docker://…` reports the
# disk. `kiln pull --verify-key` with the right key stores the image, the
# disk (inspect shows it, export disk: gives the original bytes) and their
# attachments; with a wrong key nothing is named. Without a key the disk
# comes along unverified. A second push uploads nothing (the counting proxy
# sees no upload, the disk's --json counts say skipped). Refused, by verify
# and by pull --verify-key (nothing named): the image's signature under the
# disk's .sig tag, and another image's disk artifact (signed with the same
# key) under this image's .disk tag.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?start the fixture: tests/fixtures/registry.sh start DIR}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"
# shellcheck source=../sign_lib.sh
source "$(dirname "$0")/../sign_lib.sh"
need_tool skopeo curl openssl jq cmp mke2fs debugfs qemu-img

export SOURCE_DATE_EPOCH=1700000000
S=$T/store
k() { "$KILN" --store "$S" "$@"; }
NS=disk-$RUN
REPO=$NS/hdisk
for key in k1 k2; do "$KILN" keygen --out "$T/$key" >/dev/null; done
FP2=$(key_id "$T/k2.pub")
mkdir -p "$T/ctx"
hdisk_template "$T/ctx/kiln.yaml"
hdisk_template "$T/ctx/other.yaml" 2.0.0 /etc/other.txt

step "build --sign the disk template"
build_disk "$T/b.json" --store "$S" build "$T/ctx/kiln.yaml" --sign "$T/k1.key"
BLOB_SIZE=$(jq -r .disk.size "$T/b.json")
DTAG=$(disk_tag "$D")
kiln_ok export-orig --store "$S" export hdisk:1.0.0 "disk:$T/orig.qcow2"
CONFIG=$(jq -r .config.digest "$(blob_path "$S" "$DD")")

step "push: the image, then the disk artifact under $DTAG, with both items' attachments"
kiln_ok push --store "$S" push hdisk:1.0.0 "docker://$REG_PLAIN/$REPO" --insecure --json
P=$T/push.out
assert_eq "$D" "$(json_field "$P" .digest)" "pushed digest"
assert_eq "$(jq -cn --arg a "$(sig_tag "$D")" --arg b "$(att_tag "$D")" --arg c "$(sig_tag "$DD")" --arg d "$(att_tag "$DD")" \
  '[$a, $b, $c, $d]')" "$(jq -c .attachments "$P")" "push --json attachments: the image's and the disk's"
assert_eq "$DD docker://$REG_PLAIN/$REPO:$DTAG [\"$DTAG\"]" \
  "$(jq -j '.disk | .digest, " ", .destination, " ", (.tags | tostring)' "$P")" "push --json .disk: digest, destination, tags"
assert_eq "2 2 0 0 false" "$(jq -r '.disk | "\(.blobs) \(.transferred) \(.skipped) \(.mounted) \(.unchanged)"' "$P")" \
  "first push of the disk: blobs (empty config, disk file) transferred skipped mounted unchanged"
[[ $(jq .disk.bytes "$P") -ge $BLOB_SIZE ]] || fail "the disk push sent less than the disk file: $(jq -c .disk "$P")"
kiln_ok push-text --store "$S" push hdisk:1.0.0 "docker://$REG_PLAIN/$REPO" --insecure -q
assert_eq "docker://$REG_PLAIN/$REPO:1.0.0 $D"$'\n'"docker://$REG_PLAIN/$REPO:$DTAG $DD" "$(cat "$T/push-text.out")" \
  "push's output: the image and the disk"

step "curl: the registry's tags, the disk artifact manifest and its blob"
curl -sf "http://$REG_PLAIN/v2/$REPO/tags/list" >"$T/tags.json" || fail "curl: no tag list for $REPO"
assert_eq "$(printf '%s\n' 1.0.0 "$DTAG" "$(sig_tag "$D")" "$(att_tag "$D")" "$(sig_tag "$DD")" "$(att_tag "$DD")" | LC_ALL=C sort)" \
  "$(jq -r '.tags[]' "$T/tags.json" | LC_ALL=C sort)" "the registry's tags"
curl -sf -H "$MANIFEST_ACCEPT" -D "$T/disk.headers" -o "$T/disk-manifest.json" \
  "http://$REG_PLAIN/v2/$REPO/manifests/$DTAG" || fail "curl: no manifest $REPO:$DTAG"
assert_eq "$DD" "$(tr -d '\r' <"$T/disk.headers" | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')" \
  "the registry's digest of $DTAG"
assert_eq "$DD" "$(sha256_of "$T/disk-manifest.json")" "the bytes of $DTAG"
assert_file_eq "$(blob_path "$S" "$DD")" "$T/disk-manifest.json" "the registry's disk artifact vs the store's"
assert_eq "$DISK_ARTIFACT_TYPE $D $DISK_LAYER_TYPE $BLOB $BLOB_SIZE" \
  "$(jq -j '.artifactType, " ", .subject.digest, " ", .layers[0].mediaType, " ", .layers[0].digest, " ", .layers[0].size' "$T/disk-manifest.json")" \
  "the registry's disk artifact: artifactType, subject, layer"
curl -sf -o "$T/disk-blob" "http://$REG_PLAIN/v2/$REPO/blobs/$BLOB" || fail "curl: no blob $REPO@$BLOB"
assert_eq "$BLOB $BLOB_SIZE" "$(sha256_of "$T/disk-blob") $(stat -c %s "$T/disk-blob")" "the disk blob the registry serves"
assert_file_eq "$T/orig.qcow2" "$T/disk-blob" "the registry's disk blob vs kiln export disk:"
curl -sf -o "$T/config" "http://$REG_PLAIN/v2/$REPO/blobs/$CONFIG" || fail "curl: no blob $REPO@$CONFIG (the artifact's config)"
assert_eq "{}" "$(cat "$T/config")" "the artifact's config blob"
skopeo inspect --tls-verify=false --raw "docker://$REG_PLAIN/$REPO:$DTAG" >"$T/skopeo-disk.json" 2>"$T/skopeo.err" ||
  fail "skopeo inspect --raw docker://$REG_PLAIN/$REPO:$DTAG: $(cat "$T/skopeo.err")"
assert_file_eq "$T/disk-manifest.json" "$T/skopeo-disk.json" "skopeo's disk manifest vs curl's"
assert_eq "$D" "$(remote_digest "$REG_PLAIN/$REPO:1.0.0")" "skopeo inspect of the image"

# fetch_attachment TAG DIR: the manifest REPO:TAG and its blobs, with curl,
# into DIR/blobs/sha256; prints the manifest's path.
fetch_attachment() {
  local tag=$1 dir=$2 m d
  mkdir -p "$dir/blobs/sha256"
  m=$dir/manifest-$tag.json
  curl -sf -H "$MANIFEST_ACCEPT" -o "$m" "http://$REG_PLAIN/v2/$REPO/manifests/$tag" || fail "curl: no manifest $REPO:$tag"
  cp "$m" "$dir/blobs/sha256/$(sha256sum "$m" | cut -d' ' -f1)"
  for d in $(jq -r '.config.digest, .layers[].digest' "$m"); do
    curl -sf -o "$dir/blobs/sha256/${d#sha256:}" "http://$REG_PLAIN/v2/$REPO/blobs/$d" || fail "curl: no blob $REPO@$d"
  done
  echo "$m"
}

step "curl + openssl: the disk's signature and attestations in the registry"
m=$(fetch_attachment "$(sig_tag "$DD")" "$T/reg")
assert_eq 1 "$(check_sig_manifest "$m" "$T/reg/blobs/sha256" "$T/k1.pub" "$DD" hdisk)" "openssl: the disk's signature"
m=$(fetch_attachment "$(att_tag "$DD")" "$T/reg")
assert_eq "$ALL_PREDICATES" "$(check_att_manifest "$m" "$T/reg/blobs/sha256" "$T/k1.pub" "$D")" "openssl: the disk's attestations"
for f in "$T"/attcheck/*.statement; do
  assert_eq "$(jq -cn --arg i "${D#sha256:}" --arg d "${DD#sha256:}" '[$i, $d]')" \
    "$(jq -c '[.subject[].digest.sha256]' "$f")" "subjects of the disk's statement $(jq -r .predicateType "$f")"
done

step "kiln verify docker://…: the image and its disk"
kiln_ok verify --store "$S" verify "docker://$REG_PLAIN/$REPO:1.0.0" --key "$T/k1.pub" --require sbom,provenance --insecure --json
assert_eq "$(jq -cn --arg d "$D" --arg dd "$DD" --argjson t "$(jq -R . <<<"$ALL_PREDICATES" | jq -sc .)" \
  '{digest: $d, verified: true, signatures: 1, disk: {digest: $dd, signatures: 1, attestations: $t}}')" \
  "$(jq -c '{digest, verified, signatures, disk: (.disk | {digest, signatures, attestations})}' "$T/verify.out")" \
  "kiln verify docker://… --json"
expect_error 1 "$D: no signature verifies with the key ${FP2:0:12}" \
  k verify "docker://$REG_PLAIN/$REPO:1.0.0" --key "$T/k2.pub" --insecure

step "pull --verify-key with a wrong key: refused, nothing named"
expect_error 1 "$D: no signature verifies with the key ${FP2:0:12}" \
  "$KILN" --store "$T/pull-wrong" pull "docker://$REG_PLAIN/$REPO:1.0.0" --verify-key "$T/k2.pub" --insecure
assert_eq "" "$(ref_names "$T/pull-wrong")" "index.json after a refused pull"

step "pull --verify-key with the right key: the image, the disk and their attachments"
PS=$T/pull-right
kiln_ok pull --store "$PS" pull "docker://$REG_PLAIN/$REPO:1.0.0" --verify-key "$T/k1.pub" --insecure
assert_eq "$REPO:1.0.0 $D"$'\n'"$REPO:$DTAG $DD" "$(cat "$T/pull.out")" "pull's output"
assert_eq "$(printf '%s\n' "$REPO:1.0.0" "$REPO:$DTAG" "$REPO:$(sig_tag "$D")" "$REPO:$(att_tag "$D")" \
  "$REPO:$(sig_tag "$DD")" "$REPO:$(att_tag "$DD")" | LC_ALL=C sort)" "$(ref_names "$PS")" "the pulled store's names"
assert_eq "[\"$REPO:1.0.0\"]" "$("$KILN" --store "$PS" images --json | jq -c '[.[].name]')" "kiln images hides the disk"
kiln_ok inspect --store "$PS" inspect "$REPO:1.0.0"
assert_contains "$(cat "$T/inspect.out")" "Disk:       $DD" "kiln inspect of the pulled image"
assert_eq "$DD $BLOB" "$("$KILN" --store "$PS" inspect "$REPO:1.0.0" --json | jq -j '.disk.digest, " ", .disk.blob')" \
  "kiln inspect --json of the pulled image"
kiln_ok export-pulled --store "$PS" export "$REPO:1.0.0" "disk:$T/pulled.qcow2"
assert_file_eq "$T/orig.qcow2" "$T/pulled.qcow2" "the pulled disk vs the original"
kiln_ok verify-pulled --store "$PS" verify "$REPO:1.0.0" --key "$T/k1.pub" --require sbom,provenance --json
assert_eq "$DD 1" "$(jq -j '.disk.digest, " ", .disk.signatures' "$T/verify-pulled.out")" "the pulled disk verifies in the store"
assert_store_clean "$PS"

step "pull without a key: the disk comes along (no attachments)"
kiln_ok pull-nokey --store "$T/pull-nokey" pull "docker://$REG_PLAIN/$REPO:1.0.0" --insecure --json
assert_eq "$DD 2 2 [\"$REPO:$DTAG\"]" \
  "$(jq -j '.disk | .digest, " ", .blobs, " ", .transferred, " ", (.tags | tostring)' "$T/pull-nokey.out")" "pull --json .disk"
assert_eq "$(printf '%s\n' "$REPO:1.0.0" "$REPO:$DTAG" | LC_ALL=C sort)" "$(ref_names "$T/pull-nokey")" \
  "names after a pull without a key"

step "a second push uploads nothing: no upload request, the disk's blobs already there"
proxy_reset "$REG_FAULTY"
kiln_ok push2 --store "$S" push hdisk:1.0.0 "docker://$REG_FAULTY/$REPO" --insecure --json
stats=$(proxy_stats "$REG_FAULTY")
assert_eq "0 2 0 0 true" "$(jq -r '.disk | "\(.transferred) \(.skipped) \(.mounted) \(.bytes) \(.unchanged)"' "$T/push2.out")" \
  "second push of the disk: transferred skipped mounted bytes unchanged"
assert_eq "0 true" "$(jq -r '"\(.transferred) \(.unchanged)"' "$T/push2.out")" "second push of the image"
for key in "POST upload" "PUT upload" "PATCH upload" "GET blob"; do
  assert_eq 0 "$(stat_of "$stats" "$key")" "requests '$key' on a second push (stats: $stats)"
done
[[ $(stat_of "$stats" "HEAD blob") -ge 2 ]] || fail "the proxy saw too few blob HEADs: is it counting? $stats"
# kiln writes the four attachment manifests again (merged with what the
# registry has, as for any signed image), but neither the image's nor the disk's.
[[ $(stat_of "$stats" "PUT manifest") -le 4 ]] || fail "a second push wrote more than the attachments' manifests: $stats"
assert_eq "$DD" "$(skopeo inspect --tls-verify=false --raw "docker://$REG_PLAIN/$REPO:$DTAG" | sha256sum | sed 's/^/sha256:/; s/ .*//')" \
  "the .disk tag after the second push"
proxy_reset "$REG_FAULTY"

# put_manifest REPO TAG FILE: PUT FILE as the manifest REPO:TAG.
put_manifest() {
  curl -sf -o /dev/null -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" --data-binary "@$3" \
    "http://$REG_PLAIN/v2/$1/manifests/$2" || fail "curl: PUT $1:$2"
}

step "the image's signature under the disk's .sig tag: verify and pull --verify-key refuse"
R2=$NS/sigswap
kiln_ok push-sigswap --store "$S" push hdisk:1.0.0 "docker://$REG_PLAIN/$R2" --insecure
curl -sf -H "$MANIFEST_ACCEPT" -o "$T/image-sig.json" "http://$REG_PLAIN/v2/$R2/manifests/$(sig_tag "$D")" || fail "curl: image .sig"
put_manifest "$R2" "$(sig_tag "$DD")" "$T/image-sig.json"
expect_error 1 "its disk image: $DD: the signature is for $D, not this image ($DD)" \
  k verify "docker://$REG_PLAIN/$R2:1.0.0" --key "$T/k1.pub" --insecure
expect_error 1 "its disk image: $DD: the signature is for $D, not this image ($DD)" \
  "$KILN" --store "$T/pull-sigswap" pull "docker://$REG_PLAIN/$R2:1.0.0" --verify-key "$T/k1.pub" --insecure
assert_eq "" "$(ref_names "$T/pull-sigswap")" "index.json after refusing the disk's signature"

step "another image's disk (signed with the same key) under this image's .disk tag: refused"
R3=$NS/diskswap
build_json "$T/other.json" --store "$S" build "$T/ctx/other.yaml" --sign "$T/k1.key"
B=$(jq -r .digest "$T/other.json")
BD=$(jq -r .disk.digest "$T/other.json")
kiln_ok push-a --store "$S" push hdisk:1.0.0 "docker://$REG_PLAIN/$R3" --insecure
kiln_ok push-b --store "$S" push hdisk:2.0.0 "docker://$REG_PLAIN/$R3" --insecure
kiln_ok verify-b --store "$S" verify "docker://$REG_PLAIN/$R3:2.0.0" --key "$T/k1.pub" --insecure
curl -sf -H "$MANIFEST_ACCEPT" -o "$T/other-disk.json" "http://$REG_PLAIN/v2/$R3/manifests/$BD" || fail "curl: $R3@$BD"
put_manifest "$R3" "$DTAG" "$T/other-disk.json"
SWAPPED="docker://$REG_PLAIN/$R3:$DTAG is the disk image of $B, not of $D"
expect_error 1 "$SWAPPED" k verify "docker://$REG_PLAIN/$R3:1.0.0" --key "$T/k1.pub" --insecure
expect_error 1 "$SWAPPED" \
  "$KILN" --store "$T/pull-diskswap" pull "docker://$REG_PLAIN/$R3:1.0.0" --verify-key "$T/k1.pub" --insecure
assert_eq "" "$(ref_names "$T/pull-diskswap")" "index.json after refusing another image's disk"
# Without a key the image is pulled, but the other image's disk is not named beside it.
expect_error 1 "$SWAPPED" \
  "$KILN" --store "$T/pull-diskswap-nokey" pull "docker://$REG_PLAIN/$R3:1.0.0" --insecure
assert_eq "$R3:1.0.0" "$(ref_names "$T/pull-diskswap-nokey")" "names after a pull without a key of a swapped disk"
