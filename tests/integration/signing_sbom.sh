#!/usr/bin/env bash
# The SBOMs checked against the image (issue 4): the SPDX 2.3 and CycloneDX 1.5
# documents kiln sbom prints (and attests) list exactly the regular files of
# the flattened image — as GNU tar extracts kiln's rootfs export, and as umoci
# unpacks the layers on its own — each with its SHA-256 and SHA-1, and nothing
# else: not directories, symlinks, fifos, files a later layer removed or
# replaced with a symlink, nor a removed directory's files; overwritten files
# with their last content. Both documents are valid JSON with the required
# fields of their specifications, consistent references, and the image, its
# templates and the tarball input with their checksums.
# (Hard links: see signing_sbom_hardlinks.sh.)
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../sign_lib.sh
source "$(dirname "$0")/../sign_lib.sh"
need_tool jq tar gzip umoci sha1sum

S=$T/store
k() { "$KILN" --store "$S" "$@"; }

# A context with a tree, an executable, a tarball (regular files, a symlink,
# a file removed later), and a template whose layers overwrite and remove.
C=$T/ctx
mkdir -p "$C/tree/sub" "$C/tb/srv/data"
printf 'alpha\n' >"$C/tree/a.txt"
printf 'beta\n' >"$C/tree/sub/b.txt"
: >"$C/tree/empty"
printf '#!/bin/sh\necho hi\n' >"$C/tool.sh"
chmod +x "$C/tool.sh"
printf 'from the tarball\n' >"$C/tb/srv/data/t1"
printf 'removed later\n' >"$C/tb/srv/data/t2"
ln -s t1 "$C/tb/srv/data/t1-sym"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$C/tb" -cf - srv | gzip -n >"$C/vendor.tar.gz"
rm -rf "$C/tb"
TARBALL_SHA=$(sha256sum "$C/vendor.tar.gz" | cut -d' ' -f1)
cat >"$C/kiln.yaml" <<EOF
apiVersion: kiln.dev/v1
extends: nonroot
name: sbomtest
version: 2.0.0
layers:
  - name: first
    files:
      - {src: tree, dest: /opt/tree}
      - {src: tool.sh, dest: /usr/bin/tool}
      - {dest: "/etc/café menu.txt", content: "crème brûlée ☃\n"}
      - {dest: /etc/replaced, content: "old\n"}
      - {dest: /etc/doomed, content: "doomed\n"}
      - {dest: /etc/becomes-link, content: "a file first\n"}
      - {dest: /var/cache/x/y, content: "y\n"}
      - {dest: /var/cache/x/z/deeper, content: "deeper\n"}
    dirs:
      - {path: /empty-dir}
    symlinks:
      - {path: /usr/bin/t, target: tool}
    devices:
      - {path: /run/fifo, type: fifo}
  - name: vendor
    tarballs:
      - {src: vendor.tar.gz, sha256: "$TARBALL_SHA"}
  - name: last
    files:
      - {dest: /etc/replaced, content: "new\n"}
    symlinks:
      - {path: /etc/becomes-link, target: replaced}
    remove: [/etc/doomed, /var/cache/x, /srv/data/t2]
EOF
step "build and sign sbomtest:2.0.0"
"$KILN" keygen --out "$T/key" >/dev/null
D=$(build_digest --store "$S" build "$C/kiln.yaml" --sign "$T/key.key")

# The reference: every regular file of a flattened root, "./path<TAB>sha256<TAB>sha1", sorted.
regular_files() {
  local f
  (
    cd "$1"
    find . -type f -print0 | while IFS= read -r -d '' f; do
      printf '%s\t%s\t%s\n' "$f" "$(sha256sum <"$f" | cut -c1-64)" "$(sha1sum <"$f" | cut -c1-40)"
    done | LC_ALL=C sort
  )
}

step "the flattened image, by GNU tar (kiln's rootfs export) and by umoci (from the layers)"
k export sbomtest:2.0.0 "rootfs:$T/rootfs.tar" >/dev/null
mkdir -p "$T/rootfs"
tar -xf "$T/rootfs.tar" -C "$T/rootfs" --no-same-owner
EXPECTED=$(regular_files "$T/rootfs")
k export sbomtest:2.0.0 "oci:$T/layout" >/dev/null
umoci unpack --rootless --image "$T/layout:2.0.0" "$T/bundle" >/dev/null 2>"$T/umoci.err" ||
  fail "umoci unpack: $(cat "$T/umoci.err")"
assert_eq "$EXPECTED" "$(regular_files "$T/bundle/rootfs")" "regular files: kiln's rootfs export vs umoci's unpack"
# The cases the template sets up are what the reference holds.
for p in ./etc/passwd "./etc/café menu.txt" ./opt/tree/empty ./usr/bin/tool ./srv/data/t1; do
  grep -qF "$p"$'\t' <<<"$EXPECTED" || fail "$p should be a regular file of the image"
done
assert_contains "$EXPECTED" "./etc/replaced"$'\t'"$(printf 'new\n' | sha256sum | cut -c1-64)" "the overwritten file's last content"
for p in ./etc/doomed ./etc/becomes-link ./var/cache/x/y ./var/cache/x/z/deeper ./srv/data/t2 ./srv/data/t1-sym ./usr/bin/t ./run/fifo; do
  assert_not_contains "$EXPECTED" "$p"$'\t' "the reference list"
done
[[ -p $T/rootfs/run/fifo && -L $T/rootfs/etc/becomes-link && -d $T/rootfs/empty-dir ]] ||
  fail "the rootfs should hold the fifo, the symlink and the empty directory"

step "SPDX: exactly the regular files, with SHA-256 and SHA-1"
k sbom sbomtest:2.0.0 >"$T/spdx.json"
k sbom sbomtest:2.0.0 --format spdx --json >"$T/spdx-compact.json"
assert_eq 1 "$(wc -l <"$T/spdx-compact.json")" "kiln sbom --json prints one line"
assert_eq "$(jq -cS . "$T/spdx.json")" "$(jq -cS . "$T/spdx-compact.json")" "kiln sbom with and without --json"
spdx_files() {
  jq -r '.files[] | [.fileName,
    (.checksums[] | select(.algorithm == "SHA256") | .checksumValue),
    (.checksums[] | select(.algorithm == "SHA1") | .checksumValue)] | @tsv' "$1" | LC_ALL=C sort
}
assert_eq "$EXPECTED" "$(spdx_files "$T/spdx.json")" "the SPDX document's files vs the image's regular files"
assert_eq "$(jq '.files | length' "$T/spdx.json")" "$(spdx_files "$T/spdx.json" | wc -l)" "each SPDX file has one SHA256 and one SHA1"

step "CycloneDX: exactly the regular files, with SHA-256 and SHA-1"
k sbom sbomtest:2.0.0 --format cyclonedx >"$T/cdx.json"
cdx_files() {
  jq -r '.components[] | select(.type == "file" and (.["bom-ref"] | startswith("file:"))) | ["." + .name,
    (.hashes[] | select(.alg == "SHA-256") | .content),
    (.hashes[] | select(.alg == "SHA-1") | .content)] | @tsv' "$1" | LC_ALL=C sort
}
assert_eq "$EXPECTED" "$(cdx_files "$T/cdx.json")" "the CycloneDX document's file components vs the image's regular files"

step "SPDX 2.3: required fields and consistent references"
jq -e . "$T/spdx.json" >/dev/null || fail "the SPDX document is not JSON"
assert_eq '{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT"}' \
  "$(jq -c '{spdxVersion, dataLicense, SPDXID}' "$T/spdx.json")" "SPDX document header"
jq -e '(.name | type == "string" and length > 0)
  and (.documentNamespace | test("^https?://[^#]+$"))
  and (.creationInfo.created | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"))
  and (.creationInfo.creators | length > 0 and all(test("^(Tool|Organization|Person): .+")))' "$T/spdx.json" >/dev/null ||
  fail "SPDX name, documentNamespace or creationInfo: $(jq -c '{name, documentNamespace, creationInfo}' "$T/spdx.json")"
jq -e '[.packages[], .files[]] | all(.SPDXID | test("^SPDXRef-[A-Za-z0-9.-]+$"))' "$T/spdx.json" >/dev/null ||
  fail "an SPDXID that is not SPDXRef-[idstring]"
jq -e '[.SPDXID, .packages[].SPDXID, .files[].SPDXID] | length == (unique | length)' "$T/spdx.json" >/dev/null ||
  fail "SPDXIDs are not unique"
jq -e '.packages | all(has("SPDXID") and has("name") and has("downloadLocation"))' "$T/spdx.json" >/dev/null ||
  fail "a package without SPDXID, name or downloadLocation"
jq -e '.files | all(has("SPDXID") and (.fileName | startswith("./")) and ([.checksums[].algorithm] | index("SHA1")))' \
  "$T/spdx.json" >/dev/null || fail "a file without SPDXID, ./fileName or SHA1 checksum"
jq -e '.files | all(.checksums | all(
  (.algorithm == "SHA1" and (.checksumValue | test("^[0-9a-f]{40}$"))) or
  (.algorithm == "SHA256" and (.checksumValue | test("^[0-9a-f]{64}$")))))' "$T/spdx.json" >/dev/null ||
  fail "a checksum that is not lower-case hex of its length"
jq -e '[.SPDXID, .packages[].SPDXID, .files[].SPDXID] as $ids
  | .relationships | all((.spdxElementId as $a | $ids | index($a)) and (.relatedSpdxElement as $b | $ids | index($b)))' \
  "$T/spdx.json" >/dev/null || fail "a relationship names an element the document does not have"
jq -e '.relationships | any(.spdxElementId == "SPDXRef-DOCUMENT" and .relationshipType == "DESCRIBES")' "$T/spdx.json" >/dev/null ||
  fail "the document DESCRIBES nothing"
jq -e '([.relationships[] | select(.relationshipType == "CONTAINS") | .relatedSpdxElement] | sort) == ([.files[].SPDXID] | sort)' \
  "$T/spdx.json" >/dev/null || fail "not every file (or something else) is CONTAINed by the image"
step "SPDX: the image, its templates and the tarball input with their checksums"
assert_eq "$(jq -cn --arg d "${D#sha256:}" '{name: "sbomtest", versionInfo: "2.0.0", checksums: [{algorithm: "SHA256", checksumValue: $d}]}')" \
  "$(jq -c '.packages[] | select(.SPDXID == "SPDXRef-Image") | {name, versionInfo, checksums}' "$T/spdx.json")" "the image package"
assert_eq "$(jq -cn --arg t "$TARBALL_SHA" '[{algorithm: "SHA256", checksumValue: $t}]')" \
  "$(jq -c '.packages[] | select(.name == "tarball:vendor.tar.gz") | .checksums' "$T/spdx.json")" "the tarball input package"
assert_eq "$(jq -cn --arg t "$(sha256sum "$C/kiln.yaml" | cut -d' ' -f1)" '[{algorithm: "SHA256", checksumValue: $t}]')" \
  "$(jq -c '.packages[] | select(.name == "kiln.yaml") | .checksums' "$T/spdx.json")" "the template package"
assert_eq '["kiln.yaml","minimal","nonroot","sbomtest","tarball:vendor.tar.gz"]' "$(jq -c '[.packages[].name] | sort' "$T/spdx.json")" \
  "SPDX packages"

step "CycloneDX 1.5: required fields and consistent references"
jq -e . "$T/cdx.json" >/dev/null || fail "the CycloneDX document is not JSON"
assert_eq '{"bomFormat":"CycloneDX","specVersion":"1.5","version":1}' "$(jq -c '{bomFormat, specVersion, version}' "$T/cdx.json")" \
  "CycloneDX header"
jq -e '.serialNumber | test("^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")' "$T/cdx.json" >/dev/null ||
  fail "serialNumber is not an RFC 4122 urn:uuid: $(jq -r .serialNumber "$T/cdx.json")"
jq -e '.metadata.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")' "$T/cdx.json" >/dev/null ||
  fail "metadata.timestamp is not a date-time"
assert_eq "$(jq -cn --arg d "${D#sha256:}" '{type: "container", name: "sbomtest", version: "2.0.0", hashes: [{alg: "SHA-256", content: $d}]}')" \
  "$(jq -c '.metadata.component | {type, name, version, hashes}' "$T/cdx.json")" "the image (metadata.component)"
jq -e '.components | all(has("type") and has("name") and (.type | IN("application", "framework", "library",
  "container", "platform", "operating-system", "device", "device-driver", "firmware", "file", "machine-learning-model", "data")))' \
  "$T/cdx.json" >/dev/null || fail "a component without name or with an unknown type"
jq -e '[.metadata.component["bom-ref"], .components[]["bom-ref"]] | length == (unique | length)' "$T/cdx.json" >/dev/null ||
  fail "bom-refs are not unique"
jq -e '[.metadata.component["bom-ref"], .components[]["bom-ref"]] as $refs
  | .dependencies | all((.ref as $r | $refs | index($r)) and (.dependsOn // [] | all(. as $d | $refs | index($d))))' \
  "$T/cdx.json" >/dev/null || fail "a dependency names a bom-ref the document does not have"
jq -e '[.components[].hashes // [] | .[]] | all(
  (.alg == "SHA-1" and (.content | test("^[0-9a-f]{40}$"))) or (.alg == "SHA-256" and (.content | test("^[0-9a-f]{64}$"))))' \
  "$T/cdx.json" >/dev/null || fail "a hash that is not lower-case hex of its algorithm's length"
assert_eq "$TARBALL_SHA" "$(jq -r '.components[] | select(.name == "tarball:vendor.tar.gz") | .hashes[0].content' "$T/cdx.json")" \
  "the tarball input component"

step "the same files from an image without a build record (an oci: layout, another store)"
"$KILN" --store "$T/store2" sbom "oci:$T/layout:2.0.0" >"$T/spdx-norecord.json"
assert_eq "$EXPECTED" "$(spdx_files "$T/spdx-norecord.json")" "files of the SPDX document of an image built elsewhere"
assert_eq '["SPDXRef-Image"]' "$(jq -c '[.packages[].SPDXID]' "$T/spdx-norecord.json")" "only the image package without a build record"
"$KILN" --store "$T/store2" sbom "oci:$T/layout:2.0.0" --format cyclonedx >"$T/cdx-norecord.json"
assert_eq "$EXPECTED" "$(cdx_files "$T/cdx-norecord.json")" "files of the CycloneDX document of an image built elsewhere"

step "kiln sbom refuses another format"
expect_error 1 "--format must be spdx or cyclonedx" k sbom sbomtest:2.0.0 --format syft
