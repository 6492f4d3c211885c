#!/usr/bin/env bash
# The SBOMs list hard links. A hard link is a regular file of the flattened
# image (GNU tar and umoci extract it as one; `find -type f` lists it), so the
# SPDX and CycloneDX documents list its path with the same SHA-256 and SHA-1
# as its target, whether the template makes it (hardlinks:) or a tarball
# brings it:
#   layers: [{name: app, files: [{dest: /usr/bin/tool, content: "x"}],
#             hardlinks: [{path: /usr/bin/tool-hard, target: /usr/bin/tool}]}]
#   kiln sbom NAME:TAG | jq -r '.files[].fileName'   # ./usr/bin/tool and ./usr/bin/tool-hard
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool jq tar gzip sha1sum

S=$T/store
k() { "$KILN" --store "$S" "$@"; }
C=$T/ctx
mkdir -p "$C/tb/srv"
printf 'from the tarball\n' >"$C/tb/srv/t1"
ln "$C/tb/srv/t1" "$C/tb/srv/t1-hard"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$C/tb" -cf - srv | gzip -n >"$C/vendor.tar.gz"
assert_contains "$(tar -tvzf "$C/vendor.tar.gz")" " srv/t1-hard link to srv/t1" "the tarball holds a hard link"
cat >"$C/kiln.yaml" <<YAML
apiVersion: kiln.dev/v1
name: links
version: 1.0.0
layers:
  - name: app
    files:
      - {dest: /usr/bin/tool, content: "#!/bin/sh\n", mode: "0755"}
    hardlinks:
      - {path: /usr/bin/tool-hard, target: /usr/bin/tool}
    tarballs:
      - {src: vendor.tar.gz, sha256: "$(sha256sum "$C/vendor.tar.gz" | cut -d' ' -f1)"}
YAML
build_digest --store "$S" build "$C/kiln.yaml" >/dev/null

step "the flattened image has four regular files, two of them hard links"
k export links:1.0.0 "rootfs:$T/rootfs.tar" >/dev/null
mkdir -p "$T/rootfs"
tar -xf "$T/rootfs.tar" -C "$T/rootfs" --no-same-owner
expected=$(
  cd "$T/rootfs" && find . -type f -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' f; do
    printf '%s\t%s\t%s\n' "$f" "$(sha256sum <"$f" | cut -c1-64)" "$(sha1sum <"$f" | cut -c1-40)"
  done
)
assert_eq "./srv/t1 ./srv/t1-hard ./usr/bin/tool ./usr/bin/tool-hard" "$(cut -f1 <<<"$expected" | paste -sd' ')" \
  "regular files of the image"

step "SPDX and CycloneDX list the hard links too"
assert_eq "$expected" "$(k sbom links:1.0.0 | jq -r '.files[] | [.fileName,
  (.checksums[] | select(.algorithm == "SHA256") | .checksumValue),
  (.checksums[] | select(.algorithm == "SHA1") | .checksumValue)] | @tsv' | LC_ALL=C sort)" \
  "the SPDX document's files vs the image's regular files"
assert_eq "$expected" "$(k sbom links:1.0.0 --format cyclonedx | jq -r '.components[]
  | select(.type == "file" and (.["bom-ref"] | startswith("file:"))) | ["." + .name,
    (.hashes[] | select(.alg == "SHA-256") | .content),
    (.hashes[] | select(.alg == "SHA-1") | .content)] | @tsv' | LC_ALL=C sort)" \
  "the CycloneDX document's file components vs the image's regular files"
