#!/usr/bin/env bash
# Build-speed benchmark (not a test): kiln building one layer from a real
# Debian root file system, beside the reference pipeline on the same tree in
# the same run, as ratios; and kiln's peak memory, also on a 1 GiB tree.
#
#   bench/make-corpus.sh            # once: the corpus (needs mmdebstrap, network to the mirror)
#   bench/bench-build.sh [RUNS]     # default 5 runs; medians
#
# Reference pipelines (the layer work done by standard tools):
#   tar --sort=name -C rootfs -cf - . | tee >(openssl dgst -sha256) | zstd -3 -T2 | openssl dgst -sha256
#   tar --sort=name -C rootfs -cf - . | tee >(openssl dgst -sha256) | gzip -6 -n  | openssl dgst -sha256
# Targets (issue 2): zstd <= 1.2x, gzip <= 1.0x, peak RSS < 64 MiB for 1 GiB.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${1:-5}
kiln=${KILN_BIN:-$root/build/kiln}
corpus=${KILN_BENCH_CORPUS:-$here/corpus/rootfs}
for tool in zstd gzip openssl tar /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install zstd time)" >&2; exit 2; }
done
[ -x "$kiln" ] || { echo "bench: build kiln first ($kiln)" >&2; exit 2; }
[ -d "$corpus/usr" ] || { echo "bench: no corpus; run bench/make-corpus.sh" >&2; exit 2; }

work=$(mktemp -d /tmp/kiln-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Device nodes belong to the runtime, not to an image: the corpus has none.
find "$corpus/dev" -mindepth 1 \( -type c -o -type b \) -delete 2>/dev/null || true

cat > "$work/big.yaml" <<YAML
apiVersion: kiln.dev/v1
name: bench
version: 1.0.0
layers:
  - name: rootfs
    files: [{src: $corpus, dest: /}]
YAML
# The template's context is its folder; src above is absolute, so use --context /.
sed -i "s|src: $corpus|src: ${corpus#/}|" "$work/big.yaml"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# Runs "$@" once; prints "seconds maxrss_kb".
measure() { /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; cat "$work/time"; }

reference() {  # $1: compressor command; prints the pipeline
  echo "tar --sort=name -C '$corpus' -cf - . | tee >(openssl dgst -sha256 >/dev/null) | $1 | openssl dgst -sha256 >/dev/null"
}

size=$(du -s --apparent-size --block-size=1 "$corpus" | cut -f1)
entries=$(find "$corpus" | wc -l)
echo "corpus: $corpus: $((size / 1000000)) MB, $entries entries; $(nproc) CPUs; $runs runs, medians; page cache warm"
tar --sort=name -C "$corpus" -cf - . | cat >/dev/null  # warm the page cache

run_pair() {  # $1: name, $2: reference compressor, $3: kiln --compression, $4: target ratio, $5: runs
  local ref_times=() kiln_times=() rss=()
  for ((i = 0; i < $5; i++)); do
    ref_times+=("$(measure bash -c "$(reference "$2")" | cut -d' ' -f1)")
    rm -rf "$work/store"
    read -r t m < <(measure "$kiln" --store "$work/store" build -q --compression "$3" --context / "$work/big.yaml")
    kiln_times+=("$t")
    rss+=("$m")
  done
  local ref kt ratio peak
  ref=$(printf '%s\n' "${ref_times[@]}" | median)
  kt=$(printf '%s\n' "${kiln_times[@]}" | median)
  peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
  ratio=$(awk -v a="$kt" -v b="$ref" 'BEGIN {printf "%.2f", a / b}')
  printf '%-5s reference %6.2f s   kiln %6.2f s   ratio %sx (target <= %sx)   kiln peak RSS %d MiB\n' \
    "$1" "$ref" "$kt" "$ratio" "$4" $((peak / 1024))
}

run_pair zstd "zstd -3 -T2 -q" zstd 1.2 "$runs"
run_pair gzip "gzip -6 -n" gzip 1.0 "$(( runs < 3 ? runs : 3 ))"

# Memory on a tree of more than 1 GiB: the corpus plus 640 MB of generated
# compressible files.
extra=$work/extra
mkdir -p "$extra"
for i in $(seq 1 64); do
  head -c 7500000 /dev/urandom | base64 -w 100 > "$extra/blob-$i.txt"
done
cat > "$work/huge.yaml" <<YAML
apiVersion: kiln.dev/v1
name: huge
version: 1.0.0
layers:
  - name: rootfs
    files:
      - {src: ${corpus#/}, dest: /}
      - {src: ${extra#/}, dest: /extra}
YAML
total=$(( size + $(du -s --apparent-size --block-size=1 "$extra" | cut -f1) ))
for c in zstd gzip; do
  rm -rf "$work/store"
  read -r t m < <(measure "$kiln" --store "$work/store" build -q --compression "$c" --context / "$work/huge.yaml")
  printf '%-5s %d MB tree: kiln %6.2f s, peak RSS %d MiB (target < 64 MiB)\n' "$c" $((total / 1000000)) "$t" $((m / 1024))
done
