#!/usr/bin/env bash
# Builds the benchmark corpus: a real Debian 12 root filesystem (minbase plus
# python3, perl, git, gcc, curl, ca-certificates, tzdata, make, python3-pip;
# ~500 MB, >15,000 entries)
# made with mmdebstrap from the machine's configured Debian mirror.
# SOURCE_DATE_EPOCH pins the timestamps mmdebstrap controls, so two runs against
# the same mirror state give the same tree.
# Usage: bench/make-corpus.sh [DIR]   (default: bench/corpus/rootfs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/corpus/rootfs}
if [ -d "$dest/usr" ]; then
  echo "corpus already at $dest"; exit 0
fi
command -v mmdebstrap >/dev/null || { echo "mmdebstrap missing: apt-get install mmdebstrap" >&2; exit 2; }
mirror=${KILN_BENCH_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$(dirname "$dest")"
tmp="$dest.tmp"
rm -rf "$tmp"
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000} mmdebstrap --quiet --variant=minbase \
  --include=python3,perl,git,gcc,curl,ca-certificates,tzdata,make,python3-pip \
  --mode=root --format=directory bookworm "$tmp" "$mirror"
mv "$tmp" "$dest"
echo "corpus: $dest: $(du -sh --apparent-size "$dest" | cut -f1), $(find "$dest" | wc -l) entries"
