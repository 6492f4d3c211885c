#!/usr/bin/env bash
# Push benchmark (not a test): kiln push of a >= 300 MB image to a local
# registry (docker-registry, distribution 2.8), beside `skopeo copy` of the
# same image from the same store, in the same run, as a ratio. Each push goes
# to a freshly started registry with empty storage, so neither side benefits
# from blobs the other sent. Target (issue 3): kiln <= 0.8x skopeo.
#
#   bench/make-corpus.sh           # once
#   bench/bench-push.sh [RUNS]     # default 3 runs; medians
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${1:-3}
kiln=${KILN_BIN:-$root/build/kiln}
corpus=${KILN_BENCH_CORPUS:-$here/corpus/rootfs}
for tool in skopeo docker-registry python3 curl /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 2; }
done
[ -d "$corpus/usr" ] || { echo "bench: no corpus; run bench/make-corpus.sh" >&2; exit 2; }

work=$(mktemp -d /tmp/kiln-bench-push.XXXXXX)
reg_pid=
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
find "$corpus/dev" -mindepth 1 \( -type c -o -type b \) -delete 2>/dev/null || true

# The image: the Debian tree (one gzip layer) plus two layers of data that
# does not compress, so the pushed blobs total more than 300 MB.
mkdir -p "$work/ctx/data1" "$work/ctx/data2"
head -c 80000000 /dev/urandom > "$work/ctx/data1/blob"
head -c 80000000 /dev/urandom > "$work/ctx/data2/blob"
# Sources are given relative to --context /, as absolute paths less their "/".
cat > "$work/ctx/kiln.yaml" <<YAML
apiVersion: kiln.dev/v1
name: bench
version: 1.0.0
layers:
  - name: rootfs
    files: [{src: ${corpus#/}, dest: /}]
  - name: data1
    files: [{src: ${work#/}/ctx/data1, dest: /data1}]
  - name: data2
    files: [{src: ${work#/}/ctx/data2, dest: /data2}]
YAML
store=$work/store
"$kiln" --store "$store" build -q --context / "$work/ctx/kiln.yaml" >/dev/null
size=$("$kiln" --store "$store" inspect bench:1.0.0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')
echo "image: bench:1.0.0, $((size / 1000000)) MB in 3 layers + config; $(nproc) CPUs; $runs runs, medians"

start_registry() {
  rm -rf "$work/reg"
  mkdir -p "$work/reg"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$work/reg/config.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/reg/data}}
http: {addr: 127.0.0.1:$port}
YAML
  docker-registry serve "$work/reg/config.yml" > "$work/reg/log" 2>&1 &
  reg_pid=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && return 0; sleep 0.1; done
  echo "bench: registry did not start" >&2; exit 1
}
stop_registry() { kill "$reg_pid"; wait "$reg_pid" 2>/dev/null || true; reg_pid=; }

seconds() { /usr/bin/time -f %e -o "$work/t" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; cat "$work/t"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

kiln_times=() skopeo_times=()
for ((i = 0; i < runs; i++)); do
  start_registry
  rm -f "$store/kiln/blob-sources.json"  # no cross-repository mounts from earlier runs
  kiln_times+=("$(seconds "$kiln" --store "$store" push -q bench:1.0.0 "docker://127.0.0.1:$port/kiln/bench")")
  stop_registry
  start_registry
  skopeo_times+=("$(seconds skopeo copy -q --dest-tls-verify=false "oci:$store:bench:1.0.0" "docker://127.0.0.1:$port/skopeo/bench:1.0.0")")
  stop_registry
done
k=$(printf '%s\n' "${kiln_times[@]}" | median)
s=$(printf '%s\n' "${skopeo_times[@]}" | median)
printf 'push: kiln %.2f s, skopeo copy %.2f s, ratio %.2fx (target <= 0.8x)\n' "$k" "$s" "$(awk -v a="$k" -v b="$s" 'BEGIN {print a / b}')"
