#!/usr/bin/env bash
# Incremental-build and cache benchmark (issue 6; not a test). On the Debian
# root file system of bench/make-corpus.sh, in one run, medians:
#   cold      kiln zstd vs the zstd pipeline (target <= 1.15x, peak RSS < 128
#             MiB); kiln gzip vs the pigz -6 -p2 pipeline (target <= 0.5x)
#   no-op     a rebuild with nothing changed, for a small and the big image
#             (target <= 150 ms each)
#   one file  one file changed in the top layer of (rootfs + app): the rebuild
#             vs a cold build of that layer alone (target <= 1.2x)
#   remote    an empty store with --cache-from a local registry vs a cold build
#             (target >= 3x faster)
#   peers     the same layer made by umoci repack and by buildah commit + push
#             to an oci: dir, paired with kiln (target: kiln faster than both)
#
#   bench/make-corpus.sh          # once
#   bench/bench-cache.sh [RUNS]   # default 5 runs (peers and remote: 3)
# Needs zstd, pigz, openssl, docker-registry (the test fixture starts it),
# umoci and buildah (apt-get install buildah) — a peer that is missing is
# reported, not measured.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${1:-5}
few=$((runs < 3 ? runs : 3))
kiln=${KILN_BIN:-$root/build/kiln}
corpus=${KILN_BENCH_CORPUS:-$here/corpus/rootfs}
for tool in zstd pigz openssl tar docker-registry python3 curl /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 2; }
done
[ -x "$kiln" ] || { echo "bench: build kiln first ($kiln)" >&2; exit 2; }
[ -d "$corpus/usr" ] || { echo "bench: no corpus; run bench/make-corpus.sh" >&2; exit 2; }

work=$(mktemp -d /tmp/kiln-bench-cache.XXXXXX)
cleanup() {
  bash "$root/tests/fixtures/registry.sh" stop "$work/registry" >/dev/null 2>&1 || true
  if [ -d "$work/buildah" ]; then
    buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver vfs rm -a >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
find "$corpus/dev" -mindepth 1 \( -type c -o -type b \) -delete 2>/dev/null || true
export SOURCE_DATE_EPOCH=1700000000

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# measure CMD...: runs once; prints "seconds maxrss_kb".
measure() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  cat "$work/time"
}
ms() { python3 -c 'import sys,time,subprocess; t=time.monotonic(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(f"{(time.monotonic()-t)*1000:.1f}")' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# The templates: the corpus as one layer; the corpus plus an app layer (a copy
# of its Python library, ~20 MB of many files) on top; the app layer alone.
app=$work/app
mkdir -p "$app"
cp -a "$corpus/usr/lib/python3"* "$app/" 2>/dev/null || cp -a "$corpus/usr/share/perl5" "$app/"
write_template() {  # FILE NAME LAYER-LINES...
  local file=$1 name=$2
  shift 2
  { echo "apiVersion: kiln.dev/v1"; echo "name: $name"; echo "version: 1.0.0"; echo "layers:"; printf '%s\n' "$@"; } >"$file"
}
rootfs_layer="  - {name: rootfs, files: [{src: ${corpus#/}, dest: /}]}"
app_layer="  - {name: app, files: [{src: ${app#/}, dest: /opt/app}]}"
write_template "$work/big.yaml" big "$rootfs_layer"
write_template "$work/stack.yaml" stack "$rootfs_layer" "$app_layer"
write_template "$work/app.yaml" app "$app_layer"
build() {  # STORE TEMPLATE [FLAGS...]
  local store=$1 template=$2
  shift 2
  "$kiln" --store "$store" build -q --context / "$template" "$@"
}

size=$(du -s --apparent-size --block-size=1 "$corpus" | cut -f1)
entries=$(find "$corpus" | wc -l)
app_size=$(du -s --apparent-size --block-size=1 "$app" | cut -f1)
echo "corpus: $((size / 1000000)) MB, $entries entries; app layer: $((app_size / 1000000)) MB; $(nproc) CPUs; $runs runs, medians; page cache warm"
tar --sort=name -C "$corpus" -cf - . | cat >/dev/null

# --- cold builds against the reference pipelines
pipeline() { echo "tar --sort=name -C '$corpus' -cf - . | tee >(openssl dgst -sha256 >/dev/null) | $1 | openssl dgst -sha256 >/dev/null"; }
cold_pair() {  # NAME PIPELINE-COMPRESSOR KILN-COMPRESSION TARGET RUNS
  local ref_t=() kiln_t=() rss=() i t m
  for ((i = 0; i < $5; i++)); do
    ref_t+=("$(measure bash -c "$(pipeline "$2")" | cut -d' ' -f1)")
    rm -rf "$work/s-cold"
    read -r t m < <(measure "$kiln" --store "$work/s-cold" build -q --compression "$3" --context / "$work/big.yaml")
    kiln_t+=("$t")
    rss+=("$m")
  done
  local r k peak
  r=$(printf '%s\n' "${ref_t[@]}" | median)
  k=$(printf '%s\n' "${kiln_t[@]}" | median)
  peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
  printf 'cold %-5s  %-22s %6.2f s   kiln %6.2f s   %sx (target <= %sx)   peak RSS %d MiB\n' \
    "$1" "$2" "$r" "$k" "$(ratio "$k" "$r")" "$4" $((peak / 1024))
}
cold_pair zstd "zstd -3 -T2 -q" zstd 1.15 "$runs"
cold_pair gzip "pigz -6 -p2 -n" gzip 0.5 "$few"

# --- no-op rebuilds
noop() {  # LABEL STORE BUILD-ARGS...
  local label=$1 store=$2 t=() i
  shift 2
  "$kiln" --store "$store" build -q "$@" >/dev/null
  for ((i = 0; i < runs; i++)); do t+=("$(ms "$kiln" --store "$store" build -q "$@")"); done
  printf 'no-op %-34s %7.1f ms (target <= 150 ms)\n' "$label" "$(printf '%s\n' "${t[@]}" | median)"
}
noop "examples/hello (3 layers)" "$work/s-hello" "$root/examples/hello/kiln.yaml"
noop "corpus ($((size / 1000000)) MB, $entries entries)" "$work/s-noop" --context / "$work/big.yaml" --compression zstd

# --- one file changed in the top layer
one=() alone=()
build "$work/s-one" "$work/stack.yaml" --compression zstd >/dev/null
victim=$(find "$app" -type f -name "*.py" | sort | sed -n 1p)
for ((i = 0; i < runs; i++)); do
  echo "# change $i" >>"$victim"
  one+=("$(ms "$kiln" --store "$work/s-one" build -q --context / "$work/stack.yaml" --compression zstd --replace)")
  rm -rf "$work/s-alone"
  alone+=("$(ms "$kiln" --store "$work/s-alone" build -q --context / "$work/app.yaml" --compression zstd)")
done
o=$(printf '%s\n' "${one[@]}" | median)
a=$(printf '%s\n' "${alone[@]}" | median)
printf 'one file changed in the top layer: %7.1f ms; that layer alone, cold: %7.1f ms; %sx (target <= 1.2x)\n' \
  "$o" "$a" "$(ratio "$o" "$a")"

# --- the remote cache through a local registry
bash "$root/tests/fixtures/registry.sh" start "$work/registry" >/dev/null
# shellcheck source=/dev/null
source "$work/registry/env"
cache=docker://$REG_PLAIN/bench/cache
build "$work/s-seed" "$work/stack.yaml" --compression zstd --cache-to "$cache" >/dev/null 2>&1
remote=() cold=()
for ((i = 0; i < few; i++)); do
  rm -rf "$work/s-remote" "$work/s-cold2"
  remote+=("$(ms "$kiln" --store "$work/s-remote" build -q --context / "$work/stack.yaml" --compression zstd --cache-from "$cache")")
  cold+=("$(ms "$kiln" --store "$work/s-cold2" build -q --context / "$work/stack.yaml" --compression zstd)")
done
rt=$(printf '%s\n' "${remote[@]}" | median)
ct=$(printf '%s\n' "${cold[@]}" | median)
printf 'remote cache: empty store --cache-from %7.1f ms; cold %7.1f ms; %sx faster (target >= 3x)\n' \
  "$rt" "$ct" "$(ratio "$ct" "$rt")"
# The same digest either way.
[ "$("$kiln" --store "$work/s-remote" inspect stack:1.0.0 --json | jq -r .digest)" = \
  "$("$kiln" --store "$work/s-cold2" inspect stack:1.0.0 --json | jq -r .digest)" ] ||
  { echo "bench: the remote-cache build differs from the cold build" >&2; exit 1; }

# --- peers: the corpus layer with umoci repack and buildah
if command -v umoci >/dev/null; then
  um=() kg=()
  for ((i = 0; i < few; i++)); do
    rm -rf "$work/umoci" && mkdir -p "$work/umoci"
    umoci init --layout "$work/umoci/l" && umoci new --image "$work/umoci/l:x"
    umoci unpack --image "$work/umoci/l:x" "$work/umoci/b" >/dev/null
    cp -a "$corpus/." "$work/umoci/b/rootfs/"
    um+=("$(ms umoci repack --image "$work/umoci/l:x" "$work/umoci/b")")
    rm -rf "$work/s-peer"
    kg+=("$(ms "$kiln" --store "$work/s-peer" build -q --context / "$work/big.yaml" --compression gzip)")
  done
  u=$(printf '%s\n' "${um[@]}" | median)
  k=$(printf '%s\n' "${kg[@]}" | median)
  printf 'peer umoci repack (gzip)          %7.1f ms; kiln gzip %7.1f ms; kiln/umoci %sx\n' "$u" "$k" "$(ratio "$k" "$u")"
else
  echo "peer umoci: not installed, not measured"
fi
if command -v buildah >/dev/null; then
  B=(buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver vfs)
  mkdir -p "$work/buildah"
  for c in gzip zstd; do
    bt=() kt=()
    for ((i = 0; i < few; i++)); do
      ctr=$("${B[@]}" from scratch)
      mnt=$("${B[@]}" mount "$ctr")
      cp -a "$corpus/." "$mnt/"
      rm -rf "$work/oci-$c"
      bt+=("$(ms bash -c "$(printf '%q ' "${B[@]}") commit -q $ctr img-$c && $(printf '%q ' "${B[@]}") push -q --compression-format $c img-$c oci:$work/oci-$c")")
      "${B[@]}" rm "$ctr" >/dev/null
      "${B[@]}" rmi -f "img-$c" >/dev/null 2>&1 || true
      rm -rf "$work/s-peer"
      kt+=("$(ms "$kiln" --store "$work/s-peer" build -q --context / "$work/big.yaml" --compression "$c")")
    done
    b=$(printf '%s\n' "${bt[@]}" | median)
    k=$(printf '%s\n' "${kt[@]}" | median)
    printf 'peer buildah commit+push (%s) %7.1f ms; kiln %s %7.1f ms; kiln/buildah %sx\n' "$c" "$b" "$c" "$k" "$(ratio "$k" "$b")"
  done
else
  echo "peer buildah: not installed (apt-get install buildah), not measured"
fi
