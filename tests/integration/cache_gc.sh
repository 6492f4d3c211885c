#!/usr/bin/env bash
# kiln store gc: keeps every blob the store's index needs — tagged images, a
# signed image's .sig/.att manifests and their blobs, build records (kiln
# sbom and verify --require provenance still work), the layers of an image
# whose base was replaced — and the blobs of recent cache entries; removes
# the rest once older than a minute (the blobs of --replace'd images), and
# old explain files, temp files and base trees of images gone. --dry-run
# removes nothing and reports what the real run then does; --keep-days drops
# entries not used for that long (a cache hit counts as a use); --max-cache-size
# evicts the least recently used first, counting only blobs the cache alone
# keeps. After gc: store fsck is clean and builds give the same digests.
# gc waits for a build's shared lock, and a build for gc's. Bad flags: exit 1.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool jq sha256sum flock

S=$T/store
C=$T/ctx
mkdir -p "$C"
k() { "$KILN" --store "$S" "$@"; }

cat >"$C/base.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: gbase
version: 1.0.0
args: {V: one}
layers:
  - name: root
    dirs: [/etc]
    files:
      - {dest: /etc/base.txt, content: "base ${V}\n"}
EOF
cat >"$C/app.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: gapp
version: 1.0.0
base: gbase:1.0.0
layers:
  - name: app
    files:
      - {src: app.txt, dest: /srv/app.txt}
accounts:
  users: [{name: app, uid: 1000, home: /home/app}]
EOF
cat >"$C/solo.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: solo
version: 1.0.0
layers:
  - name: data
    files:
      - {src: data.bin, dest: /data.bin}
EOF
echo "app file" >"$C/app.txt"

# --- what the index needs, worked out here from index.json and the manifests
# (independently of gc): each entry's manifest, its config, layers and
# subject, and the build record its annotation names.
needed_blobs() {
  local store=$1 d
  jq -r '.manifests[] | .digest, (.annotations["dev.kiln.build-record"] // empty)' "$store/index.json" |
    while read -r d; do
      echo "${d#sha256:}"
      if jq -e 'has("config") and has("layers")' "$(blob_path "$store" "$d")" >/dev/null 2>&1; then
        jq -r '.config.digest, .layers[].digest, (.subject.digest // empty)' "$(blob_path "$store" "$d")" | sed 's/^sha256://'
      fi
    done | LC_ALL=C sort -u
}
# bj ARGS...: `kiln ARGS --json` (a build into $S), prints the digest; each
# layer it made or reused is "KEY BLOB" in $T/built-layers (its cache entry
# names that blob).
bj() {
  "$KILN" --store "$S" "$@" --json >"$T/bj.json" 2>"$T/bj.err" || fail "build failed: kiln $*"$'\n'"$(cat "$T/bj.err")"
  jq -r '.layers[] | select(.fromBase | not) | "\(.cacheKey) \(.digest)"' "$T/bj.json" >>"$T/built-layers"
  jq -r .digest "$T/bj.json"
}
# The blobs the cache entries of all builds into $S name (hex).
cached_blobs() { cut -d' ' -f2 "$T/built-layers" | sed 's/^sha256://' | LC_ALL=C sort -u; }
all_blobs() { find "$1/blobs/sha256" -type f ! -name '.tmp-*' -printf '%f\n' | LC_ALL=C sort; }
age_blobs() { find "$1/blobs/sha256" -type f -exec touch -d '2 days ago' {} +; }
sizes_of() {  # STORE: the total size of the blobs named on stdin
  local total=0 h
  while read -r h; do total=$((total + $(stat -c %s "$1/blobs/sha256/$h"))); done
  echo "$total"
}
# gc_json NAME ARGS...: `kiln store gc --json ARGS` into $T/NAME.out.
gc_json() {
  local name=$1
  shift
  kiln_ok "$name" --store "$S" store gc --json "$@"
}
numbers() {  # the report without dryRun, for comparing a dry run with the real one
  jq -c 'del(.dryRun)' "$1"
}

step "a store: a signed image on a store base, the base replaced, an image replaced"
"$KILN" keygen --out "$T/key" >/dev/null 2>&1 || fail "kiln keygen failed"
B1=$(bj build "$C/base.yaml")
DA=$(bj build "$C/app.yaml" --sign "$T/key.key")
k sbom gapp:1.0.0 >"$T/sbom.before" || fail "kiln sbom before gc"
k sbom gapp:1.0.0 --format cyclonedx >"$T/cdx.before" || fail "kiln sbom --format cyclonedx before gc"
B2=$(bj build "$C/base.yaml" --replace --set V=two)
assert_ne "$B1" "$B2" "the replaced base"
head -c 3000 /dev/urandom >"$C/data.bin"
DS1=$(bj build "$C/solo.yaml")
head -c 3000 /dev/urandom >"$C/data.bin"
DS2=$(bj build "$C/solo.yaml" --replace)
assert_ne "$DS1" "$DS2" "the replaced solo image"
jq -e '[.manifests[].annotations["org.opencontainers.image.ref.name"]] | map(select(endswith(".sig") or endswith(".att"))) | length == 2' \
  "$S/index.json" >/dev/null || fail "the signed image should have a .sig and an .att in the index"

# Files gc removes besides blobs: an explain file unused for 20 days, a temp
# file and an interrupted blob write two days old, and the base tree of the
# replaced base (gapp was planned on it). Fresh ones of each kind stay.
TREES=$S/kiln/cache/trees
[[ -f $TREES/${B1#sha256:} ]] || fail "no base tree kept for gbase $B1"
mapfile -t EXPLAIN_FILES < <(find "$S/kiln/cache/explain" -type f | LC_ALL=C sort)
[[ ${#EXPLAIN_FILES[@]} -ge 3 ]] || fail "too few explain files: ${EXPLAIN_FILES[*]}"
touch -d '20 days ago' "${EXPLAIN_FILES[0]}"
mkdir -p "$S/kiln/tmp"
echo old >"$S/kiln/tmp/spool-old" && touch -d '2 days ago' "$S/kiln/tmp/spool-old"
echo new >"$S/kiln/tmp/spool-new"
echo partial >"$S/blobs/sha256/.tmp-interrupted" && touch -d '2 days ago' "$S/blobs/sha256/.tmp-interrupted"

NEEDED=$(needed_blobs "$S")
assert_eq "$(find "$S/kiln/cache/layers" -type f | wc -l)" "$(cut -d' ' -f1 "$T/built-layers" | sort -u | wc -l)" \
  "cache entries: one for each layer built"
CACHED=$(cached_blobs)
KEEP=$(LC_ALL=C sort -u <<<"$NEEDED"$'\n'"$CACHED")
GONE=$(LC_ALL=C comm -23 <(all_blobs "$S") <(echo "$KEEP"))
assert_eq 6 "$(wc -l <<<"$GONE")" "unreferenced blobs: the replaced gbase's and solo's manifest, config and build record"
# The replaced base's layer is still gapp's: kept.
for h in $(k inspect gapp:1.0.0 --json | jq -r '.layers[].digest' | sed 's/^sha256://'); do
  grep -qx "$h" <<<"$NEEDED" || fail "gapp's layer $h is not among the needed blobs"
done

step "blobs written in the last minute are left alone"
gc_json young --dry-run
assert_eq 0 "$(jq .blobsRemoved "$T/young.out")" "blobs removed by gc right after the builds"

step "--dry-run removes nothing and reports what gc then does"
age_blobs "$S"
FP=$(store_fingerprint "$S")
gc_json dry --dry-run
assert_eq "$FP" "$(store_fingerprint "$S")" "the store after gc --dry-run"
assert_eq true "$(jq .dryRun "$T/dry.out")" "dryRun in the dry run's report"
k store gc --dry-run >"$T/dry.txt" || fail "gc --dry-run (text) failed"
assert_contains "$(cat "$T/dry.txt")" "$S: would remove $(wc -l <<<"$GONE") blobs (" "the dry run's text report"
gc_json real
assert_eq false "$(jq .dryRun "$T/real.out")" "dryRun in the real report"
assert_eq "$(numbers "$T/dry.out")" "$(numbers "$T/real.out")" "the dry run's numbers vs the real run's"

step "gc removed exactly the unreferenced blobs, and the stale files"
assert_eq "$KEEP" "$(all_blobs "$S")" "the blobs left: the needed ones and the cache's"
R=$T/real.out
assert_eq "$(wc -l <<<"$GONE")" "$(jq .blobsRemoved "$R")" "blobsRemoved"
assert_eq "$(wc -l <<<"$KEEP")" "$(jq .blobsKept "$R")" "blobsKept"
assert_eq "$(sizes_of "$S" <<<"$KEEP")" "$(jq .bytesKept "$R")" "bytesKept"
assert_eq 5 "$(jq .images "$R")" "store entries: gbase, gapp, its .sig and .att, solo"
assert_eq 4 "$(jq .filesRemoved "$R")" "other files removed: the old explain file, temp file, interrupted blob, base tree"
[[ ! -e ${EXPLAIN_FILES[0]} ]] || fail "the explain file unused for 20 days is still there"
[[ -e ${EXPLAIN_FILES[1]} ]] || fail "a recent explain file was removed"
[[ ! -e $S/kiln/tmp/spool-old ]] || fail "the two-day-old temp file is still there"
[[ -e $S/kiln/tmp/spool-new ]] || fail "a fresh temp file was removed"
[[ ! -e $S/blobs/sha256/.tmp-interrupted ]] || fail "the interrupted blob write is still there"
[[ ! -e $TREES/${B1#sha256:} ]] || fail "the base tree of the replaced base is still there"
assert_eq 0 "$(jq .cacheEntriesRemoved "$R")" "recent cache entries removed"

step "after gc: fsck clean, the signed image verifies, kiln sbom unchanged, exports work"
kiln_ok fsck --store "$S" store fsck --json
assert_eq '{"ok":true,"corrupt":[],"missing":[]}' "$(jq -c '{ok, corrupt, missing}' "$T/fsck.out")" "store fsck after gc"
assert_eq "$DA" "$(k inspect gapp:1.0.0 --json | jq -r .digest)" "gapp after gc"
kiln_ok verify --store "$S" verify gapp:1.0.0 --key "$T/key.pub" --require sbom,provenance
k sbom gapp:1.0.0 >"$T/sbom.after" || fail "kiln sbom after gc"
assert_file_eq "$T/sbom.before" "$T/sbom.after" "kiln sbom gapp after gc"
k sbom gapp:1.0.0 --format cyclonedx >"$T/cdx.after" || fail "kiln sbom --format cyclonedx after gc"
assert_file_eq "$T/cdx.before" "$T/cdx.after" "kiln sbom --format cyclonedx after gc"
kiln_ok export --store "$S" export gapp:1.0.0 "rootfs:$T/gapp.tar"
tar -xOf "$T/gapp.tar" etc/base.txt >"$T/base.txt" || fail "gapp's rootfs has no etc/base.txt"
assert_eq "base one" "$(cat "$T/base.txt")" "gapp keeps the base it was built on"

step "builds after gc give the same digests"
assert_eq "$B2" "$(build_digest --store "$S" build "$C/base.yaml" --set V=two)" "gbase after gc"
assert_eq "$DS2" "$(build_digest --store "$S" build "$C/solo.yaml")" "solo after gc"
# gapp on the new base: what a fresh store makes of it.
DA2=$(build_digest --store "$S" build "$C/app.yaml" --replace)
build_digest --store "$T/fresh" build "$C/base.yaml" --set V=two >/dev/null
assert_eq "$DA2" "$(build_digest --store "$T/fresh" build "$C/app.yaml")" "gapp on the replaced base vs a fresh store"
kiln_ok fsck2 --store "$S" store fsck

step "gc waits for a build's shared lock; a build waits for gc's exclusive one"
rm -f "$T/held"
flock -s "$S/kiln/gc.lock" -c "touch '$T/held'; sleep 2" &
holder=$!
for _ in $(seq 1 100); do [[ -e $T/held ]] && break; sleep 0.05; done
[[ -e $T/held ]] || fail "the lock holder did not start"
start=$(date +%s%N)
k store gc --dry-run >/dev/null || fail "gc under a shared lock failed"
waited=$((($(date +%s%N) - start) / 1000000))
wait "$holder"
[[ $waited -ge 1500 ]] || fail "gc ran while a build held the shared lock (it took ${waited} ms)"
rm -f "$T/held"
flock -x "$S/kiln/gc.lock" -c "touch '$T/held'; sleep 2" &
holder=$!
for _ in $(seq 1 100); do [[ -e $T/held ]] && break; sleep 0.05; done
start=$(date +%s%N)
assert_eq "$DS2" "$(build_digest --store "$S" build "$C/solo.yaml")" "solo built while gc held the lock"
waited=$((($(date +%s%N) - start) / 1000000))
wait "$holder"
[[ $waited -ge 1500 ]] || fail "a build ran while gc held the exclusive lock (it took ${waited} ms)"

# --- the cache's size cap and age, in a store of its own: one image, solo,
# built from five data files; the last is tagged, the others only cached.
step "five builds of solo: four layers only the cache keeps"
S=$T/lru
DATA=()
DIG=()
E=()
for i in 1 2 3 4 5; do
  head -c 50000 /dev/urandom >"$T/data$i"
  cp "$T/data$i" "$C/data.bin"
  DIG[i]=$(bj build "$C/solo.yaml" --replace)
  DATA[i]=$(jq -r '.layers[0].digest' "$T/bj.json")
  E[i]=$S/kiln/cache/layers/$(jq -r '.layers[0].cacheKey | ltrimstr("sha256:")' "$T/bj.json")
  [[ -f ${E[i]} ]] || fail "no cache entry for data$i's key"
done
assert_eq 5 "$(find "$S/kiln/cache/layers" -type f | wc -l)" "cache entries"
SZ=()
for i in 1 2 3 4 5; do SZ[i]=$(stat -c %s "$(blob_path "$S" "${DATA[i]}")"); done

step "a cache hit is a use: building data1 again touches its entry"
touch -d '10 days ago' "${E[1]}"
cp "$T/data1" "$C/data.bin"
"$KILN" --store "$S" build "$C/solo.yaml" --replace --explain -q >/dev/null 2>"$T/hit.err" || fail "rebuild of data1"
assert_eq "layer 1 data: cached" "$(cat "$T/hit.err")" "data1 again"
[[ $(stat -c %Y "${E[1]}") -ge $(($(date +%s) - 60)) ]] || fail "the hit did not touch data1's entry"
cp "$T/data5" "$C/data.bin"
assert_eq "${DIG[5]}" "$(build_digest --store "$S" build "$C/solo.yaml" --replace)" "data5 again (tagged again)"

step "--max-cache-size: the least recently used go first"
# Recency now: data1 (just used), data3 (2 days), data4 (3 days), data2 (4 days);
# data5's blob is the tagged image's, which the cap does not count.
touch -d '2 days ago' "${E[3]}"
touch -d '3 days ago' "${E[4]}"
touch -d '4 days ago' "${E[2]}"
age_blobs "$S"
small=$((SZ[2] < SZ[4] ? SZ[2] : SZ[4]))
CAP=$((SZ[1] + SZ[3] + small - 1))
FP=$(store_fingerprint "$S")
gc_json capdry --dry-run --max-cache-size "$CAP"
assert_eq "$FP" "$(store_fingerprint "$S")" "the store after gc --dry-run --max-cache-size"
gc_json cap --max-cache-size "$CAP"
assert_eq "$(numbers "$T/capdry.out")" "$(numbers "$T/cap.out")" "the dry run's numbers vs the real run's (cap)"
assert_eq "3 2 $((SZ[1] + SZ[3])) $CAP" \
  "$(jq -r '"\(.cacheEntriesKept) \(.cacheEntriesRemoved) \(.cacheBytes) \(.maxCacheBytes)"' "$T/cap.out")" \
  "cache entries kept, removed, cache bytes, cap"
for i in 1 3 5; do
  [[ -f ${E[i]} ]] || fail "data$i's entry was evicted"
  [[ -f $(blob_path "$S" "${DATA[i]}") ]] || fail "data$i's blob was removed"
done
for i in 2 4; do
  [[ ! -e ${E[i]} ]] || fail "data$i's entry (least recently used) was kept"
  [[ ! -e $(blob_path "$S" "${DATA[i]}") ]] || fail "data$i's blob was kept"
done
k store gc --max-cache-size "$CAP" --dry-run >"$T/cap.txt"
assert_contains "$(cat "$T/cap.txt")" "kept " "text report"
assert_contains "$(cat "$T/cap.txt")" " for 1 store entries and 3 cache entries (cache " "text report: entries"
kiln_ok fsck3 --store "$S" store fsck

step "an evicted layer is rebuilt to the same digest"
cp "$T/data2" "$C/data.bin"
"$KILN" --store "$S" build "$C/solo.yaml" --replace --explain -q >"$T/re2.out" 2>"$T/re2.err" || fail "rebuild of data2"
assert_eq "solo:1.0.0 ${DIG[2]}" "$(cat "$T/re2.out")" "data2 rebuilt after eviction"
assert_contains "$(cat "$T/re2.err")" "layer 1 data: rebuilt, because" "data2 after eviction"
cp "$T/data5" "$C/data.bin"
assert_eq "${DIG[5]}" "$(build_digest --store "$S" build "$C/solo.yaml" --replace)" "data5 again"

step "--max-cache-size 0: only entries whose blobs images keep"
gc_json zero --dry-run --max-cache-size 0
assert_eq "1 0" "$(jq -r '"\(.cacheEntriesKept) \(.cacheBytes)"' "$T/zero.out")" "entries kept, cache bytes with a cap of 0"

step "--keep-days: entries unused for longer go, whatever the cap"
touch -d '20 days ago' "${E[3]}"
touch -d '30 days ago' "${E[5]}"  # the tagged image's entry: its blob stays
touch -d '2 days ago' "${E[1]}"
age_blobs "$S"
gc_json keep3 --dry-run --keep-days 3
assert_eq 2 "$(jq .cacheEntriesRemoved "$T/keep3.out")" "entries --keep-days 3 would remove"
gc_json keep14
assert_eq 2 "$(jq .cacheEntriesRemoved "$T/keep14.out")" "entries the default 14 days remove"
[[ ! -e ${E[3]} && ! -e ${E[5]} ]] || fail "entries unused for 20 and 30 days were kept"
[[ -f ${E[1]} && -f ${E[2]} ]] || fail "entries used in the last 14 days were removed"
[[ ! -e $(blob_path "$S" "${DATA[3]}") ]] || fail "the blob of the removed entry was kept"
[[ -f $(blob_path "$S" "${DATA[5]}") ]] || fail "the tagged image's blob was removed with its entry"
gc_json keep1 --keep-days 1
assert_eq 1 "$(jq .cacheEntriesRemoved "$T/keep1.out")" "--keep-days 1 removes data1's entry (2 days)"
[[ ! -e ${E[1]} ]] || fail "data1's entry (2 days) was kept with --keep-days 1"
[[ -f ${E[2]} ]] || fail "data2's entry (just built) was removed with --keep-days 1"

step "the tagged image's layer, its entry gone, is rebuilt to the same digest"
"$KILN" --store "$S" build "$C/solo.yaml" --replace --explain -q >"$T/re5.out" 2>"$T/re5.err" || fail "rebuild of data5"
assert_eq "solo:1.0.0 ${DIG[5]}" "$(cat "$T/re5.out")" "data5 rebuilt"
assert_eq "layer 1 data: rebuilt, because"$'\n'"    the cache entry is gone (gc, or damaged)" "$(cat "$T/re5.err")" \
  "--explain for a layer whose entry gc removed"
kiln_ok fsck4 --store "$S" store fsck

step "bad flags: exit 1, the store unchanged"
FP=$(store_fingerprint "$S")
expect_error 1 '--max-cache-size "10X": expected a size such as 10G, 512M or 1000000' k store gc --max-cache-size 10X
expect_error 1 '--max-cache-size "-5": expected a size' k store gc --max-cache-size -5
expect_error 1 '--max-cache-size "": expected a size' k store gc --max-cache-size ""
expect_error 1 "--keep-days must be 0 or more" k store gc --keep-days -1
rc=0
k store gc --keep-days soon >"$T/bad.out" 2>"$T/bad.err" || rc=$?
assert_eq 1 "$rc" "exit of --keep-days soon"
assert_contains "$(cat "$T/bad.err")" "--keep-days" "the message of --keep-days soon"
assert_eq "$FP" "$(store_fingerprint "$S")" "the store after refused gc flags"

step "sizes: SI units, binary with i"
for pair in 1G=1000000000 1Gi=1073741824 1.5G=1500000000 512M=512000000 2KiB=2048 1000000=1000000; do
  gc_json size --dry-run --max-cache-size "${pair%%=*}"
  assert_eq "${pair#*=}" "$(jq .maxCacheBytes "$T/size.out")" "--max-cache-size ${pair%%=*}"
done
gc_json default --dry-run
assert_eq "10000000000" "$(jq .maxCacheBytes "$T/default.out")" "the default cap (10G)"
