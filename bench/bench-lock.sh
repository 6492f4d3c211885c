#!/usr/bin/env bash
# Dependency resolution benchmark (not a test): `kiln lock` of the stock
# debian-base template against the full Debian 12 main index for amd64
# (~63,000 packages) from the mirror it names. The first run downloads and
# caches the index; the timed runs verify InRelease, read the cached index,
# parse every package and resolve. Target (issue 5): under 2 s.
#   bench/bench-lock.sh [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${1:-5}
kiln=${KILN_BIN:-$root/build/kiln}
work=$(mktemp -d /tmp/kiln-bench-lock.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$root/templates/debian-base.yaml" "$work/"
"$kiln" --store "$work/store" lock --json "$work/debian-base.yaml" > "$work/first.json"  # fetch and cache the index
times=()
for ((i = 0; i < runs; i++)); do
  /usr/bin/time -f %e -o "$work/t" "$kiln" --store "$work/store" lock "$work/debian-base.yaml" > /dev/null
  times+=("$(cat "$work/t")")
done
packages=$(jq -r '.packages' "$work/first.json")
index=$(find "$work/store/kiln/cache/apt/indexes" -type f -size +1M -exec sh -c 'xz -dc "$1" 2>/dev/null || gzip -dc "$1"' _ {} \; | grep -c '^Package: ' || true)
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
echo "kiln lock debian-base: $packages packages chosen from an index of $index; median of $runs: $median s (target < 2 s)"
