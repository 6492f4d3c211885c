#!/usr/bin/env bash
# Push and pull against a real registry (docker-registry, distribution 2.8):
# what lands there is byte-identical to the store (skopeo reads the same
# manifest digest and copies identical blobs back); a second push uploads no
# blob (kiln's --json and the proxy's request counters agree); a pull into an
# empty store reproduces the image; an image index goes up and comes back
# with its digest; a push to a second repository of the same registry mounts
# every blob instead of uploading it.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"

S=$T/store
NS=push-$RUN
k() { "$KILN" --store "$S" "$@"; }

step "build examples/hello"
D=$(build_digest --store "$S" build "$HELLO")
mapfile -t HELLO_BLOBS < <(image_blobs "$S" hello:1.0.0)
assert_eq 3 "$((${#HELLO_BLOBS[@]} - 1))" "hello has three layers"

step "push to the plain registry"
kiln_ok push1 --store "$S" push hello:1.0.0 "docker://$REG_PLAIN/$NS/hello" --json
P=$T/push1.out
assert_eq "$D" "$(json_field "$P" .digest)" "push --json digest"
assert_eq '["1.0.0"]' "$(jq -c .tags "$P")" "the tag defaults to the image's"
assert_eq "docker://$REG_PLAIN/$NS/hello:1.0.0" "$(json_field "$P" .destination)"
assert_eq "${#HELLO_BLOBS[@]}" "$(json_field "$P" .blobs)" "blobs: config and layers"
assert_eq "${#HELLO_BLOBS[@]} 0 0 false" "$(jq -r '"\(.transferred) \(.skipped) \(.mounted) \(.unchanged)"' "$P")" \
  "first push: transferred skipped mounted unchanged"
[[ $(json_field "$P" .bytes) -gt 0 ]] || fail "first push sent no bytes"
assert_contains "$(cat "$T/push1.err")" "kiln: warning: $REG_PLAIN: using plain HTTP" \
  "a loopback registry without TLS is used with a warning"

step "skopeo inspect reads kiln's digest"
assert_eq "$D" "$(remote_digest "$REG_PLAIN/$NS/hello:1.0.0")" "skopeo inspect digest"

step "skopeo copy back to an OCI layout: same manifest, identical blobs"
skopeo copy --src-tls-verify=false "docker://$REG_PLAIN/$NS/hello:1.0.0" "oci:$T/copy:x" >/dev/null 2>"$T/copy.err" ||
  fail "skopeo copy failed: $(cat "$T/copy.err")"
assert_eq "$D" "$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "x") | .digest' "$T/copy/index.json")" \
  "manifest digest of skopeo's copy"
assert_blobs_identical "$S" "$T/copy" "$D" "${HELLO_BLOBS[@]}"
assert_eq "$(printf '%s\n' "$D" "${HELLO_BLOBS[@]}" | sed 's/^sha256://' | sort)" \
  "$(find "$T/copy/blobs/sha256" -type f -printf '%f\n' | sort)" "skopeo's copy holds exactly the image's blobs"

step "a second push uploads nothing"
kiln_ok push2 --store "$S" push hello:1.0.0 "docker://$REG_PLAIN/$NS/hello" --json
assert_eq "$D 0 ${#HELLO_BLOBS[@]} 0 true" \
  "$(jq -r '"\(.digest) \(.transferred) \(.skipped) \(.mounted) \(.unchanged)"' "$T/push2.out")" \
  "second push: digest transferred skipped mounted unchanged"
assert_eq 0 "$(json_field "$T/push2.out" .bytes)" "second push sent no bytes"

step "a second push through the counting proxy: no upload request at all"
proxy_reset "$REG_FAULTY"
kiln_ok push3 --store "$S" push hello:1.0.0 "docker://$REG_FAULTY/$NS/hello" --json
stats=$(proxy_stats "$REG_FAULTY")
assert_eq "0 true" "$(jq -r '"\(.transferred) \(.unchanged)"' "$T/push3.out")" "push through the proxy: transferred unchanged"
for key in "POST upload" "PUT upload" "PATCH upload" "PUT manifest"; do
  assert_eq 0 "$(stat_of "$stats" "$key")" "requests '$key' on a push of what the registry has (stats: $stats)"
done
[[ $(stat_of "$stats" "HEAD blob") -ge 1 ]] || fail "the proxy saw no blob HEAD: is it counting? $stats"

step "pull into an empty store reproduces the image"
E=$T/empty
kiln_ok pull1 --store "$E" pull "docker://$REG_PLAIN/$NS/hello:1.0.0" --json
assert_eq "$D" "$(json_field "$T/pull1.out" .digest)" "pull --json digest"
assert_eq "${#HELLO_BLOBS[@]} ${#HELLO_BLOBS[@]} 0" \
  "$(jq -r '"\(.blobs) \(.transferred) \(.skipped)"' "$T/pull1.out")" "pull: blobs transferred skipped"
assert_eq "[\"$NS/hello:1.0.0\"]" "$(jq -c .tags "$T/pull1.out")" "the local name defaults to REPO:TAG"
assert_store_clean "$E"
"$KILN" --store "$E" images --json >"$T/images.json"
assert_eq "$D" "$(jq -r --arg n "$NS/hello:1.0.0" '.[] | select(.name == $n) | .digest' "$T/images.json")" \
  "kiln images lists the pulled image"
assert_eq "$D" "$("$KILN" --store "$E" inspect "$NS/hello:1.0.0" --json | jq -r .digest)" "inspect the pulled image"
assert_blobs_identical "$S" "$E" "$D" "${HELLO_BLOBS[@]}"
assert_eq "$("$KILN" --store "$S" inspect hello:1.0.0 --json | jq -c '[.layers[] | {digest, diffId}]')" \
  "$("$KILN" --store "$E" inspect "$NS/hello:1.0.0" --json | jq -c '[.layers[] | {digest, diffId}]')" \
  "layers of the pulled image"

step "pull under another name, and again: nothing downloaded the second time"
kiln_ok pull2 --store "$E" pull "docker://$REG_PLAIN/$NS/hello:1.0.0" copy:one --json
assert_eq "$D 0 ${#HELLO_BLOBS[@]}" "$(jq -r '"\(.digest) \(.transferred) \(.skipped)"' "$T/pull2.out")" \
  "pull of what the store has: digest transferred skipped"
assert_eq "$D" "$("$KILN" --store "$E" inspect copy:one --json | jq -r .digest)" "pull NAME:TAG names the copy"

step "an image index: two platforms built by kiln, the index made by hand"
X=$T/multi-src
mkdir -p "$X"
for arch in amd64 arm64; do
  cat >"$X/$arch.yaml" <<EOF
apiVersion: kiln.dev/v1
name: multi
version: 1.0.0-$arch
platform: linux/$arch
layers:
  - name: app
    files:
      - {dest: /etc/arch.txt, content: "$arch $RUN\n"}
EOF
  build_digest --store "$S" build "$X/$arch.yaml" >"$X/$arch.digest"
  k export "multi:1.0.0-$arch" "oci:$T/idx:$arch" >/dev/null
done
AMD=$(cat "$X/amd64.digest")
ARM=$(cat "$X/arm64.digest")
assert_ne "$AMD" "$ARM" "the two platform images"
# The index: both manifests with their platforms, written as a blob of the layout.
jq -c '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [.manifests[] | del(.annotations)]}' "$T/idx/index.json" | tr -d '\n' >"$X/index.json"
assert_eq 2 "$(jq '.manifests | length' "$X/index.json")" "manifests in the hand-made index"
IDX=$(sha256_of "$X/index.json")
cp "$X/index.json" "$(blob_path "$T/idx" "$IDX")"
jq --arg d "$IDX" --argjson s "$(stat -c %s "$X/index.json")" \
  '.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
                   annotations: {"org.opencontainers.image.ref.name": "multi"}}]' \
  "$T/idx/index.json" >"$X/layout-index.json"
cp "$X/layout-index.json" "$T/idx/index.json"
skopeo inspect --raw "oci:$T/idx:multi" >"$X/skopeo-raw.json" 2>/dev/null || fail "skopeo cannot read the hand-made index"
assert_file_eq "$X/index.json" "$X/skopeo-raw.json" "the hand-made layout as skopeo reads it"

kiln_ok pushidx --store "$S" push "oci:$T/idx:multi" "docker://$REG_PLAIN/$NS/multi:1.0.0" --json
assert_eq "$IDX" "$(json_field "$T/pushidx.out" .digest)" "push --json digest of the index"
assert_eq 4 "$(json_field "$T/pushidx.out" .blobs)" "blobs of the index: two configs, two layers"
assert_eq "$IDX" "$(remote_digest "$REG_PLAIN/$NS/multi:1.0.0")" "skopeo inspect digest of the index"
skopeo inspect --raw --tls-verify=false "docker://$REG_PLAIN/$NS/multi:1.0.0" >"$X/remote-raw.json" 2>/dev/null
assert_file_eq "$X/index.json" "$X/remote-raw.json" "the registry serves the index's bytes"
for child in "$AMD" "$ARM"; do
  assert_eq 200 "$(manifest_status "http://$REG_PLAIN" "$NS/multi" "$child")" "the registry holds child manifest $child"
done
skopeo copy --all --src-tls-verify=false "docker://$REG_PLAIN/$NS/multi:1.0.0" "oci:$T/idxcopy:x" >/dev/null 2>"$T/copyall.err" ||
  fail "skopeo copy --all failed: $(cat "$T/copyall.err")"
assert_eq "$IDX" "$(jq -r '.manifests[0].digest' "$T/idxcopy/index.json")" "skopeo copy --all keeps the index digest"

step "pull the index into an empty store"
E2=$T/empty-index
kiln_ok pullidx --store "$E2" pull "docker://$REG_PLAIN/$NS/multi:1.0.0" --json
assert_eq "$IDX" "$(json_field "$T/pullidx.out" .digest)" "pull --json digest of the index"
assert_eq "4 4" "$(jq -r '"\(.blobs) \(.transferred)"' "$T/pullidx.out")" "pull of the index: blobs transferred"
assert_store_clean "$E2"
"$KILN" --store "$E2" images --json >"$T/images2.json"
assert_eq "$IDX" "$(jq -r --arg n "$NS/multi:1.0.0" '.[] | select(.name == $n) | .digest' "$T/images2.json")" \
  "kiln images lists the pulled index"
mapfile -t MULTI_BLOBS < <(image_blobs "$S" "multi:1.0.0-amd64"; image_blobs "$S" "multi:1.0.0-arm64")
assert_blobs_identical "$T/idx" "$E2" "$IDX" "$AMD" "$ARM" "${MULTI_BLOBS[@]}"

step "cross-repository mount: repo A, then repo B of the same registry"
M=$T/mount-store
MD=$(build_digest --store "$M" build "$HELLO" --set "GREETING=mount $RUN")
proxy_reset "$REG_FAULTY"
kiln_ok mounta --store "$M" push hello:1.0.0 "docker://$REG_FAULTY/$NS/mount-a" --json
assert_eq "${#HELLO_BLOBS[@]} 0" "$(jq -r '"\(.transferred) \(.mounted)"' "$T/mounta.out")" "push to A: transferred mounted"
stats=$(proxy_stats "$REG_FAULTY")
[[ $(($(stat_of "$stats" "PUT upload") + $(stat_of "$stats" "PATCH upload"))) -ge ${#HELLO_BLOBS[@]} ]] ||
  fail "the proxy counted fewer uploads than blobs for the push to A: $stats"
proxy_reset "$REG_FAULTY"
kiln_ok mountb --store "$M" push hello:1.0.0 "docker://$REG_FAULTY/$NS/mount-b" --json
stats=$(proxy_stats "$REG_FAULTY")
assert_eq "$MD ${#HELLO_BLOBS[@]} 0 0 ${#HELLO_BLOBS[@]}" \
  "$(jq -r '"\(.digest) \(.blobs) \(.transferred) \(.skipped) \(.mounted)"' "$T/mountb.out")" \
  "push to B: digest blobs transferred skipped mounted"
assert_eq 0 "$(stat_of "$stats" "PUT upload")" "blob PUTs on the push to B (stats: $stats)"
assert_eq 0 "$(stat_of "$stats" "PATCH upload")" "blob PATCHes on the push to B (stats: $stats)"
assert_eq "$MD" "$(remote_digest "$REG_PLAIN/$NS/mount-b:1.0.0")" "skopeo inspect of repo B"
skopeo copy --src-tls-verify=false "docker://$REG_PLAIN/$NS/mount-b:1.0.0" "oci:$T/mountcopy:x" >/dev/null 2>&1 ||
  fail "skopeo cannot copy the mounted image back"
mapfile -t MOUNT_BLOBS < <(image_blobs "$M" hello:1.0.0)
assert_blobs_identical "$M" "$T/mountcopy" "$MD" "${MOUNT_BLOBS[@]}"
