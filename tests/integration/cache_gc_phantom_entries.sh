#!/usr/bin/env bash
# Known bug: kiln store gc counts a cache entry whose blob is not in the store
# as if the blob were there. Such entries are useless (a build treats them as
# misses) but common: a CI job that saves and restores only kiln/cache, or a
# store whose blobs went. gc keeps them, reports their blobs' sizes as the
# cache's ("cache 100 kB of …" with no cached blob in the store), and, under
# --max-cache-size, evicts real entries to make room for them: the newest
# phantom entries crowd out an older entry whose layer is in the store, and
# that layer's blob is deleted.
# Expected: an entry whose blob is missing keeps nothing and counts nothing
# (cacheBytes is the size of blobs present that only the cache keeps); the
# real entry fits the cap and is kept with its blob.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool jq

C=$T/ctx
mkdir -p "$C"
cat >"$C/solo.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: solo
version: 1.0.0
layers:
  - name: data
    files:
      - {src: data.bin, dest: /data.bin}
EOF
# build STORE: solo from 50 kB of new random data; prints the layer's digest.
build() {
  head -c 50000 /dev/urandom >"$C/data.bin"
  build_digest --store "$1" build "$C/solo.yaml" --replace >/dev/null
  "$KILN" --store "$1" inspect solo:1.0.0 --json | jq -r '.layers[0].digest'
}

step "store A: two cache entries; only kiln/cache is copied to store B"
A=$T/a
build "$A" >/dev/null
build "$A" >/dev/null
B=$T/b
mkdir -p "$B/kiln"
cp -a "$A/kiln/cache" "$B/kiln/cache"

step "store B: an entry of its own, only the cache keeps its blob"
REAL=$(build "$B")
build "$B" >/dev/null
E_REAL=
for f in "$B"/kiln/cache/layers/*; do
  [[ $(jq -r .record.blob.digest "$f") == "$REAL" ]] && E_REAL=$f
done
[[ -n $E_REAL ]] || fail "no entry for $REAL"
SIZE=$(stat -c %s "$(blob_path "$B" "$REAL")")
find "$B/blobs" -type f -exec touch -d '2 days ago' {} +
touch -d '1 day ago' "$E_REAL"  # the copied entries are newer

step "gc counts only blobs the store has"
kiln_ok dry --store "$B" store gc --dry-run --json
assert_eq "$SIZE" "$(jq .cacheBytes "$T/dry.out")" "cacheBytes: the one cached blob in the store"

step "--max-cache-size with room for the real entry keeps it"
kiln_ok cap --store "$B" store gc --json --max-cache-size "$((SIZE + 1000))"
[[ -f $E_REAL ]] || fail "the entry whose layer is in the store was evicted for entries without blobs"
[[ -f $(blob_path "$B" "$REAL") ]] || fail "its blob was deleted"
assert_eq "$SIZE" "$(jq .cacheBytes "$T/cap.out")" "cacheBytes after gc"
