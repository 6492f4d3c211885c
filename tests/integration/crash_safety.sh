#!/usr/bin/env bash
# Crash safety (issue 8): `kiln build` and `kiln store gc` killed with SIGKILL
# at random points, 50 times each (KILN_CRASH_TRIALS), the delay drawn
# between 0 and the command's measured uninterrupted duration. After each
# kill the store must be consistent (crash_lib.sh's store_problems: fsck exit
# 0 with nothing corrupt or missing, temp files of interrupted writes only as
# fsck's leftovers, no partial blob under a final name, valid index.json,
# every tagged image complete), and the next command must succeed: a build
# gives the same digest as an uninterrupted one; after a killed gc (in a
# store with replaced images, stale and recent cache entries, old blobs and
# temp files) both images are still tagged and whole, gc runs again and the
# next build gives the same digest. Finally the leftovers of kills, aged two
# days, are all removed by gc. The context is generated: 5,000 files and
# 4 MB of random binaries and a 2 MB text, built gzip and zstd.
# The delays come from $RANDOM seeded with KILN_CRASH_SEED (printed; set it
# to replay a run). Prints "crash: N trials (build B, gc G), K inconsistent".
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../crash_lib.sh
source "$(dirname "$0")/../crash_lib.sh"

crash_trials
C=$T/ctx
crash_templates "$C" 5000 1024
declare -A REF C_OF=([gz]=$C/gz.yaml [zst]=$C/zst.yaml)

# rebuild TRIAL STORE KIND: the next build must succeed with the reference digest.
rebuild() {
  local out rc=0
  out=$("$KILN" --store "$2" build "${C_OF[$3]}" -q 2>"$T/rebuild.err") || rc=$?
  if [[ $rc -ne 0 ]]; then
    problem "$1" "the next build of ${NAME[$3]} failed (exit $rc): $(head -c 1000 "$T/rebuild.err")"
  elif [[ $out != "${NAME[$3]} ${REF[$3]}" ]]; then
    problem "$1" "the next build of ${NAME[$3]} gave '$out', an uninterrupted one ${REF[$3]}"
  fi
}

step "uninterrupted builds: the reference digests and durations (the mean of two)"
declare -A DUR
for k in "${KINDS[@]}"; do
  total=0
  for n in 1 2; do
    start=$(now_ms)
    d=$(build_digest --store "$T/ref-$k-$n" build "$C/$k.yaml")
    total=$((total + $(now_ms) - start))
    [[ $n -eq 1 ]] || assert_eq "${REF[$k]}" "$d" "two uninterrupted builds of $k"
    REF[$k]=$d
  done
  DUR[$k]=$((total / 2))
  echo "cold build of ${NAME[$k]}: ${DUR[$k]} ms (${REF[$k]})" >&2
  assert_eq "" "$(store_problems "$T/ref-$k-1")" "the reference store of $k"
done

step "the consistency check catches damage"
# (So that a clean result below means something.) A blob cut short, a layer
# gone, a half-written index.json.
L=$(jq -r '.layers[0].digest' "$(blob_path "$T/ref-gz-1" "${REF[gz]}")")
for damage in cut gone index; do
  rm -rf "$T/damaged" && cp -a "$T/ref-gz-1" "$T/damaged"
  case $damage in
    cut) truncate -s -100 "$(blob_path "$T/damaged" "$L")" ;;
    gone) rm "$(blob_path "$T/damaged" "$L")" ;;
    index) head -c 50 "$T/ref-gz-1/index.json" >"$T/damaged/index.json" ;;
  esac
  [[ -n $(store_problems "$T/damaged") ]] || fail "the check found nothing wrong with a store whose damage is: $damage"
done

step "$TRIALS builds killed between 0 and their duration (gz ${DUR[gz]} ms, zst ${DUR[zst]} ms)"
# Each trial starts from a fresh store, or from the last one with the layer
# cache emptied (so the build writes every layer again), the image's tag
# dropped or kept; leftovers of earlier kills stay.
S=$T/store
LOOP_START=$(now_ms)
for i in $(seq 1 "$TRIALS"); do
  k=${KINDS[$((i % 2))]}
  mode=$((RANDOM % 3))
  case $mode in
    0) rm -rf "$S" ;;
    1) rm -rf "$S/kiln/cache/layers" && untag "$S" "${NAME[$k]}" ;;
    2) rm -rf "$S/kiln/cache/layers" ;;
  esac
  kill_after "$(rand_ms "${DUR[$k]}")" "$KILN" --store "$S" build "$C/$k.yaml" -q
  if [[ $RC -ne 137 && $RC -ne 0 ]]; then
    problem "build $i" "the build (not killed) failed with exit $RC: $(head -c 1000 "$T/killed.err")"
  fi
  check_store "build $i" "$S" "after the kill"
  rebuild "build $i" "$S" "$k"
  check_store "build $i" "$S" "after the next build"
  for other in "${KINDS[@]}"; do
    d=$(checked_tag "${NAME[$other]}")
    if [[ -n $d && $d != "${REF[$other]}" ]]; then
      problem "build $i" "${NAME[$other]} names $d, not ${REF[$other]}"
    fi
  done
done
BUILD_KILLS=$KILLED
echo "builds: $TRIALS trials (fresh store, or uncached, untagged or not), $BUILD_KILLS killed mid-run," \
  "$((($(now_ms) - LOOP_START) / 1000)) s" >&2

step "a store for gc: replaced images, stale and recent cache entries, old temp files"
# Two smaller templates (800 files, 128 KiB of binaries, 200 KB of text): gc's work is in the
# number of files, and the checks after each kill re-hash every blob. Each is
# built at dates 1 to 6, each replacing the last, then at 0 (the reference);
# the cache entries of dates 1 to 3 unused for 20 days, all two days old.
G=$T/gc-seed
make_context "$T/ctx-gc" "$((SEED + 1))" 800 32 4000
write_template "$T/ctx-gc/gz.yaml" crash-gc-gz gzip
write_template "$T/ctx-gc/zst.yaml" crash-gc-zst zstd
GC_KINDS=(gc-gz gc-zst)
for k in "${GC_KINDS[@]}"; do
  C_OF[$k]=$T/ctx-gc/${k#gc-}.yaml
  NAME[$k]=crash-$k:1.0.0
  REF[$k]=$(build_digest --store "$T/ref-$k" build "${C_OF[$k]}")
done
for e in 1 2 3 4 5 6; do
  for k in "${GC_KINDS[@]}"; do
    "$KILN" --store "$G" build "${C_OF[$k]}" --source-date-epoch "$e" --replace --json >"$T/old-$k-$e.json" 2>"$T/old.err" ||
      fail "$k build at date $e: $(cat "$T/old.err")"
  done
done
for k in "${GC_KINDS[@]}"; do
  assert_eq "${REF[$k]}" "$(build_digest --store "$G" build "${C_OF[$k]}" --replace)" "$k in the gc store"
done
find "$G" -type f -exec touch -d '2 days ago' {} +
for f in "$T"/old-*-[123].json; do
  for key in $(jq -r '.layers[].cacheKey | ltrimstr("sha256:")' "$f"); do
    touch -d '20 days ago' "$G/kiln/cache/layers/$key"
  done
done
echo partial >"$G/blobs/sha256/.tmp-blob-interrupted" && touch -d '2 days ago' "$G/blobs/sha256/.tmp-blob-interrupted"
mkdir -p "$G/kiln/tmp" && echo old >"$G/kiln/tmp/.tmp-disk-old" && touch -d '2 days ago' "$G/kiln/tmp/.tmp-disk-old"
assert_eq "" "$(store_problems "$G")" "the gc seed store"

step "an uninterrupted gc: its duration (the median of five) and work"
for n in 1 2 3 4 5; do
  rm -rf "$S" && cp -a "$G" "$S"
  start=$(now_ms)
  kiln_ok gc0 --store "$S" store gc --json
  echo $(($(now_ms) - start))
done | sort -n >"$T/gc-times"
DUR_GC=$(sed -n 3p "$T/gc-times")
echo "gc: $DUR_GC ms, $(jq -c '{blobsRemoved, cacheEntriesRemoved, filesRemoved, blobsKept}' "$T/gc0.out")" >&2
[[ $(jq '.blobsRemoved > 0 and .cacheEntriesRemoved > 0' "$T/gc0.out") == true ]] || fail "gc had no work: $(cat "$T/gc0.out")"
assert_eq "" "$(store_problems "$S")" "the store after an uninterrupted gc"

step "$TRIALS gc runs killed between 0 and $DUR_GC ms"
LOOP_START=$(now_ms)
for i in $(seq 1 "$TRIALS"); do
  rm -rf "$S" && cp -a "$G" "$S"
  kill_after "$(rand_ms "$DUR_GC")" "$KILN" --store "$S" store gc
  if [[ $RC -ne 137 && $RC -ne 0 ]]; then
    problem "gc $i" "gc (not killed) failed with exit $RC: $(head -c 1000 "$T/killed.err")"
  fi
  check_store "gc $i" "$S" "after the kill"
  for k in "${GC_KINDS[@]}"; do
    d=$(checked_tag "${NAME[$k]}")
    [[ $d == "${REF[$k]}" ]] || problem "gc $i" "${NAME[$k]} names '$d' after the kill, not ${REF[$k]}"
  done
  rc=0
  "$KILN" --store "$S" store gc >"$T/gc-next.out" 2>"$T/gc-next.err" || rc=$?
  [[ $rc -eq 0 ]] || problem "gc $i" "the next gc failed (exit $rc): $(head -c 1000 "$T/gc-next.err")"
  rebuild "gc $i" "$S" "${GC_KINDS[$((i % 2))]}"
  check_store "gc $i" "$S" "after the next gc and build"
done
GC_KILLS=$((KILLED - BUILD_KILLS))
echo "gc: $TRIALS trials, $GC_KILLS killed mid-run, $((($(now_ms) - LOOP_START) / 1000)) s" >&2

step "leftovers of the kills, two days old: gc removes every one"
S=$T/store-leftovers
rm -rf "$S"
for i in 1 2 3 4 5 6; do
  k=${KINDS[$((i % 2))]}
  rm -rf "$S/kiln/cache/layers"
  kill_after "$(rand_ms "${DUR[$k]}")" "$KILN" --store "$S" build "$C/$k.yaml" -q
done
find "$S" -name '.tmp-*' -type f -exec touch -d '2 days ago' {} +
kiln_ok gc-left --store "$S" store gc
assert_eq "" "$(find "$S" -name '.tmp-*' -type f)" "temp files left after gc"
assert_eq "" "$(store_problems "$S")" "the store after gc"
assert_eq '[]' "$(jq -c .leftovers "$T/.sp-fsck.json")" "fsck's leftovers after gc"

TOTAL=$((2 * TRIALS))
echo "crash: $TOTAL trials (build $TRIALS, gc $TRIALS), $INCONSISTENT inconsistent;" \
  "killed mid-run: build $BUILD_KILLS, gc $GC_KILLS; fsck reported leftovers after $LEFTOVER_TRIALS kills; seed $SEED"
if [[ $INCONSISTENT -ne 0 ]]; then
  fail "$INCONSISTENT inconsistent trials (seed $SEED):"$'\n'"$(head -50 "$T/problems")"
fi
