#!/usr/bin/env bash
# kiln store gc does not count a cache entry whose blob is not in the store:
# such entries are useless (a build treats them as misses) but common — a CI
# job that saves and restores only kiln/cache, or a store whose blobs went.
# cacheBytes is the size of the blobs present that only the cache keeps, and
# under --max-cache-size they do not crowd out an older entry whose layer is
# in the store. (A regression: gc once kept them, reported their sizes as the
# cache's, and evicted the real entry and deleted its blob to make room.)
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
# build STORE: solo from 50 kB of new random data; prints the layer's digest
# and cache key.
build() {
  head -c 50000 /dev/urandom >"$C/data.bin"
  build_json "$T/build.json" --store "$1" build "$C/solo.yaml" --replace
  jq -r '.layers[0] | "\(.digest) \(.cacheKey)"' "$T/build.json"
}

step "store A: two cache entries; only kiln/cache is copied to store B"
A=$T/a
build "$A" >/dev/null
build "$A" >/dev/null
B=$T/b
mkdir -p "$B/kiln"
cp -a "$A/kiln/cache" "$B/kiln/cache"

step "store B: an entry of its own, only the cache keeps its blob"
read -r REAL KEY < <(build "$B")
build "$B" >/dev/null
E_REAL=$B/kiln/cache/layers/${KEY#sha256:}
[[ -f $E_REAL ]] || fail "no entry for $KEY"
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
