#!/usr/bin/env bash
# Disk-image benchmark (issue 7; not a test). examples/webserver (Debian's
# cloud kernel, busybox, systemd-boot: a 110 MB tree, 1,400 files), with the
# .deb cache warm and every layer cold, in one run, medians:
#   oci        kiln build --no-disk: the OCI image alone
#   oci+disk   kiln build: the OCI image and its disk image
#   disk       the disk image alone (the image's layers already built)
# for each root file system (ext4, erofs, squashfs) as qcow2, and ext4 as raw;
# the ratios disk / oci and oci+disk / oci are the figures to report.
#   bench/bench-disk.sh [RUNS]   # default 5
# Needs the Debian mirror once (to fill the .deb cache), e2fsprogs,
# erofs-utils, squashfs-tools, qemu-utils.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${1:-5}
kiln=${KILN_BIN:-$root/build/kiln}
[ -x "$kiln" ] || { echo "bench: build kiln first ($kiln)" >&2; exit 2; }
export KILN_TEMPLATE_PATH=$root/templates SOURCE_DATE_EPOCH=1700000000

work=$(mktemp -d /tmp/kiln-bench-disk.XXXXXX)
trap 'rm -rf "$work"' EXIT
ex=$root/examples/webserver

# One template per variant beside a copy of the lock (kiln build --locked
# reads the lock beside the template).
variant() {  # NAME FORMAT FILESYSTEM
  mkdir -p "$work/t/$1"
  cp -r "$ex/." "$work/t/$1/"
  cat >"$work/t/$1/kiln.yaml" <<YAML
apiVersion: kiln.dev/v1
extends: $ex/kiln.yaml
disk:
  format: $2
  filesystem: $3
  cmdline: console=ttyS0
  initrd:
    modules: [virtio_pci, virtio_blk]
YAML
  cp "$ex/kiln.lock" "$work/t/$1/kiln.lock"
}
variant ext4-qcow2 qcow2 ext4
variant erofs-qcow2 qcow2 erofs
variant squashfs-qcow2 qcow2 squashfs
variant ext4-raw raw ext4

# The .deb cache, filled once: every timed store starts with it.
"$kiln" --store "$work/seed" build "$ex/kiln.yaml" --locked --no-disk -q >/dev/null
mkdir -p "$work/debs/kiln/cache"
cp -r "$work/seed/kiln/cache/debs" "$work/seed/kiln/cache/deb-files" "$work/debs/kiln/cache/" 2>/dev/null || true
rm -rf "$work/seed"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
seconds() {  # CMD...: runs once, prints wall seconds
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
fresh() { rm -rf "$work/s"; cp -r "$work/debs" "$work/s"; }

printf '%-16s %8s %9s %8s %10s %12s %10s\n' variant oci oci+disk disk disk/oci oci+disk/oci "disk file"
for name in ext4-qcow2 erofs-qcow2 squashfs-qcow2 ext4-raw; do
  t=$work/t/$name/kiln.yaml
  : >"$work/oci" ; : >"$work/full" ; : >"$work/disk"
  for _ in $(seq "$runs"); do
    fresh
    seconds "$kiln" --store "$work/s" build "$t" --locked --no-disk -q >>"$work/oci"
    seconds "$kiln" --store "$work/s" build "$t" --locked -q >>"$work/disk"
    fresh
    seconds "$kiln" --store "$work/s" build "$t" --locked -q >>"$work/full"
  done
  size=$("$kiln" --store "$work/s" build "$t" --locked --json 2>/dev/null | jq -r .disk.size)
  oci=$(median <"$work/oci"); full=$(median <"$work/full"); disk=$(median <"$work/disk")
  printf '%-16s %7.2fs %8.2fs %7.2fs %9.2fx %11.2fx %8.1fMB\n' "$name" "$oci" "$full" "$disk" \
    "$(echo "$disk / $oci" | bc -l)" "$(echo "$full / $oci" | bc -l)" "$(echo "$size / 1000000" | bc -l)"
done
