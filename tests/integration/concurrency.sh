#!/usr/bin/env bash
# Concurrent kiln processes on one store (issue 8, DESIGN.md: "concurrent kiln
# processes on one store are safe").
# 1. No global lock serialises independent builds: eight builds of different
#    templates, each pinned to one CPU (taskset, spread over the CPUs), take
#    less than 0.8 x the sum of their one-at-a-time times (0.5 x is ideal on
#    2 CPUs; a global lock would give 1.0 x; asserted when the load average
#    was below half the CPUs before, or with KILN_TIMING_STRICT=1), and,
#    always, layers of two builds or more are written at the same moment
#    (timestamped progress lines). Made in a store that does not exist yet:
#    eight processes create it at once.
# 2. Eight builds at once into one store holding garbage (a replaced image,
#    stale cache entries, blobs two days old) — five templates, one of them
#    three times and one twice (same name, version and content) — while
#    `kiln store gc` and `kiln store fsck` run again and again: every build,
#    gc and fsck succeeds (fsck finds nothing corrupt or missing; identical
#    builds agree, no "versions are immutable" between them), each digest is
#    the one a one-at-a-time build in a fresh store gives, the store is
#    consistent (crash_lib.sh's store_problems), every tag whole, gc's garbage
#    gone.
# 3. `kiln export oci:DIR:REF NAME:TAG` into a store while gc runs, 15 times:
#    the image shares layers with garbage gc removes; the store stays
#    consistent and the exported image whole.
# Prints "concurrency: 8 builds at once ..." with the timings.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../crash_lib.sh
source "$(dirname "$0")/../crash_lib.sh"
need_tool taskset

C=$T/ctx
make_context "$C" 7
LETTERS=(a b c d e f g h)
declare -A REF
for i in "${!LETTERS[@]}"; do
  x=${LETTERS[$i]}
  write_template "$C/$x.yaml" "conc-$x" "$([[ $((i % 2)) -eq 0 ]] && echo gzip || echo zstd)" "flavor-$x"
done
# The CPUs this test may use (a container's cpuset need not start at 0).
CPU_LIST=()
IFS=, read -ra ranges <<<"$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status)"
for r in "${ranges[@]}"; do
  for c in $(seq "${r%-*}" "${r#*-}"); do CPU_LIST+=("$c"); done
done
CPUS=${#CPU_LIST[@]}
[[ $CPUS -ge 1 ]] || fail "no CPU in this process's affinity list"

# REF[x]: "conc-x:1.0.0 DIGEST", what a one-at-a-time build prints.
# stamp FILE: stdin's lines into FILE, each after its arrival time (µs).
stamp() {
  local line
  while IFS= read -r line; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"; done >"$1"
}

step "one at a time in a fresh store: the reference digests and times (one CPU each)"
# Other processes' load, before this test loads the CPUs itself: the timing
# below is asserted only on CPUs this test has (almost) to itself.
read -r LOAD _ </proc/loadavg
R=$T/serial
SERIAL_MS=0
for x in "${LETTERS[@]}"; do
  start=$(now_ms)
  REF[$x]=$(taskset -c "${CPU_LIST[0]}" "$KILN" --store "$R" build "$C/$x.yaml" -q) || fail "serial build of $x"
  ms=$(($(now_ms) - start))
  SERIAL_MS=$((SERIAL_MS + ms))
  echo "serial build of conc-$x: $ms ms" >&2
done
assert_eq "" "$(store_problems "$R")" "the store of one-at-a-time builds"

step "8 builds of different templates at once, each on one CPU"
P=$T/parallel
pids=()
start=$(now_ms)
for i in "${!LETTERS[@]}"; do
  x=${LETTERS[$i]}
  taskset -c "${CPU_LIST[$((i % CPUS))]}" "$KILN" --store "$P" build "$C/$x.yaml" >"$T/par-$x.out" 2> >(stamp "$T/par-$x.err") &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || fail "parallel build of ${LETTERS[$i]} failed: $(cat "$T/par-${LETTERS[$i]}.err")"
done
PARALLEL_MS=$(($(now_ms) - start))
sleep 0.5  # the stamping readers finish their files
for x in "${LETTERS[@]}"; do
  assert_eq "${REF[$x]}" "$(cat "$T/par-$x.out")" "conc-$x built in parallel vs one at a time"
done
assert_eq "" "$(store_problems "$P")" "the store after 8 parallel builds"
# Each layer's writing, from its start line to its finished line (" -> "):
# the most builds writing a layer at the same moment. A lock around whole
# builds, or around each layer's writing, would make it 1.
for x in "${LETTERS[@]}"; do
  awk -v x="$x" '$2 ~ /^\[[0-9]+\/[0-9]+\]$/ {print $1, (/ -> / ? -1 : 1), x}' "$T/par-$x.err"
done | sort -n -k1,1 -k2,2 >"$T/layer-events"
assert_eq 64 "$(wc -l <"$T/layer-events")" "layer start and finish lines of the 8 builds: $(cat "$T/layer-events")"
BUILDS_AT_ONCE=$(awk '{n[$3] += $2; busy = 0; for (b in n) if (n[b] > 0) busy++; if (busy > m) m = busy} END {print m}' "$T/layer-events")
RATIO=$(awk -v p="$PARALLEL_MS" -v s="$SERIAL_MS" 'BEGIN {printf "%.2f", p / s}')
echo "timing: 8 different templates one at a time ${SERIAL_MS} ms, at once ${PARALLEL_MS} ms (x$RATIO) on $CPUS CPUs" \
  "(load before: $LOAD); at most $BUILDS_AT_ONCE builds writing a layer at the same moment" >&2
[[ $BUILDS_AT_ONCE -ge 2 ]] || fail "no two builds ever wrote layers at the same time:"$'\n'"$(cat "$T/layer-events")"
# The wall-clock ratio means something only on CPUs this test has to itself:
# other processes' load skews it either way (the scheduler shares CPUs between
# sessions, not processes). Asserted then, or always with KILN_TIMING_STRICT=1.
if [[ $CPUS -ge 2 ]] && { awk -v l="$LOAD" -v c="$CPUS" 'BEGIN {exit !(l < c / 2)}' || [[ -n ${KILN_TIMING_STRICT:-} ]]; }; then
  awk -v r="$RATIO" 'BEGIN {exit !(r < 0.8)}' ||
    fail "8 independent builds at once took x$RATIO of their one-at-a-time sum (${PARALLEL_MS} of ${SERIAL_MS} ms): serialised?"
  TIMING_NOTE="asserted < 0.8"
else
  TIMING_NOTE="not asserted: load $LOAD from other processes on $CPUS CPUs"
fi

step "a store with garbage: a replaced image, stale cache entries, old blobs"
S=$T/store
"$KILN" --store "$S" build "$C/h.yaml" --source-date-epoch 1 --json >"$T/old.json" 2>"$T/old.err" ||
  fail "old build: $(cat "$T/old.err")"
build_digest --store "$S" build "$C/h.yaml" --replace >/dev/null
find "$S/blobs/sha256" -type f -exec touch -d '2 days ago' {} +
for key in $(jq -r '.layers[].cacheKey | ltrimstr("sha256:")' "$T/old.json"); do
  touch -d '20 days ago' "$S/kiln/cache/layers/$key"
done
OLD_MANIFEST=$(jq -r .digest "$T/old.json")

step "8 builds at once (a x3, b x2, c, d, e) while gc and fsck run again and again"
MIX=(a b a c d a e b)
pids=()
: >"$T/gc.log"
: >"$T/fsck.log"
rm -f "$T/builds-done"
(
  n=0
  while [[ ! -e $T/builds-done ]]; do
    n=$((n + 1))
    "$KILN" --store "$S" store gc --json >"$T/gc-$n.json" 2>"$T/gc-$n.err" || echo "gc $n failed: $(cat "$T/gc-$n.err")" >>"$T/gc.log"
    sleep 0.05
  done
  echo "$n" >"$T/gc-runs"
) &
gc_loop=$!
(
  n=0
  while [[ ! -e $T/builds-done ]]; do
    n=$((n + 1))
    rc=0
    "$KILN" --store "$S" store fsck --json >"$T/fsck-$n.json" 2>"$T/fsck-$n.err" || rc=$?
    if [[ $rc -ne 0 ]] || ! jq -e '.ok and (.corrupt | length) == 0 and (.missing | length) == 0' "$T/fsck-$n.json" >/dev/null; then
      echo "fsck $n (exit $rc): $(cat "$T/fsck-$n.json" "$T/fsck-$n.err")" >>"$T/fsck.log"
    fi
  done
  echo "$n" >"$T/fsck-runs"
) &
fsck_loop=$!
sleep 0.1
start=$(now_ms)
for i in "${!MIX[@]}"; do
  x=${MIX[$i]}
  "$KILN" --store "$S" build "$C/$x.yaml" -q >"$T/mix-$i.out" 2>"$T/mix-$i.err" &
  pids+=($!)
  sleep "0.0$((RANDOM % 10))"
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || {
    echo "build $i (conc-${MIX[$i]}) failed: $(cat "$T/mix-$i.err")" >&2
    failed=$((failed + 1))
  }
done
MIX_MS=$(($(now_ms) - start))
touch "$T/builds-done"
wait "$gc_loop"
wait "$fsck_loop"
assert_eq 0 "$failed" "builds that failed among 8 concurrent ones"
assert_eq "" "$(cat "$T/gc.log")" "gc runs during the builds"
assert_eq "" "$(cat "$T/fsck.log")" "fsck runs during the builds and gc"
GC_RUNS=$(cat "$T/gc-runs")
FSCK_RUNS=$(cat "$T/fsck-runs")
for i in "${!MIX[@]}"; do
  assert_eq "${REF[${MIX[$i]}]}" "$(cat "$T/mix-$i.out")" "build $i of the mix (conc-${MIX[$i]}) vs one at a time"
  assert_not_contains "$(cat "$T/mix-$i.err")" "immutable" "stderr of build $i"
done
kiln_ok gc-after --store "$S" store gc --json
assert_eq "" "$(store_problems "$S")" "the store after the concurrent builds and gc"
assert_eq '[]' "$(jq -c .leftovers "$T/.sp-fsck.json")" "fsck's leftovers after the concurrent builds"
for x in a b c d e h; do
  assert_eq "${REF[$x]##* }" "$(tag_digest "$S" "conc-$x:1.0.0")" "conc-$x:1.0.0 in the store"
done
assert_eq 6 "$(jq '.manifests | length' "$S/index.json")" "index entries (a, b, c, d, e, h)"
[[ ! -e $(blob_path "$S" "$OLD_MANIFEST") ]] || fail "gc left the replaced image's manifest"
for key in $(jq -r '.layers[].cacheKey | ltrimstr("sha256:")' "$T/old.json"); do
  [[ ! -e $S/kiln/cache/layers/$key ]] || fail "gc left the stale cache entry $key"
done
# The same builds again: all cached, the same digests.
for x in a b c d e; do
  assert_eq "${REF[$x]}" "$("$KILN" --store "$S" build "$C/$x.yaml" -q)" "conc-$x again"
done

step "kiln export oci:... NAME:TAG into a store while gc runs, 15 times"
# The image shares layers (same bytes) with an image the store replaced:
# garbage, two days old, that gc removes. Export finds them present and does
# not copy them; gc must not remove them before the tag names them.
E=$T/export-seed
build_digest --store "$E" build "$C/a.yaml" >/dev/null
build_digest --store "$E" build "$C/a.yaml" --source-date-epoch 1 --replace >/dev/null
find "$E" -type f -exec touch -d '2 days ago' {} +
find "$E/kiln/cache/layers" -type f -exec touch -d '20 days ago' {} +
kiln_ok export-c --store "$R" export conc-c:1.0.0 "oci:$T/oci-c:conc-c"
layers_of() { jq -r '.layers[].digest' "$(blob_path "$1" "$(tag_digest "$1" "$2")")" | sort; }
# conc-a at date 0 (garbage in $E) and conc-c have the same bin and accounts layers.
SHARED=$(comm -12 <(layers_of "$R" conc-a:1.0.0) <(layers_of "$R" conc-c:1.0.0) | wc -l)
[[ $SHARED -ge 1 ]] || fail "conc-c shares no layer with conc-a"
for round in $(seq 1 15); do
  rm -rf "$T/export-store" && cp -a "$E" "$T/export-store"
  "$KILN" --store "$T/export-store" export "oci:$T/oci-c:conc-c" conc-c:1.0.0 >"$T/export.out" 2>&1 &
  exporter=$!
  read -r -t "0.0$((RANDOM % 3))$((RANDOM % 10))" -u "$_SLEEP_FD" _ || true
  "$KILN" --store "$T/export-store" store gc >"$T/export-gc.out" 2>&1 || fail "gc during an export: $(cat "$T/export-gc.out")"
  wait "$exporter" || fail "export during gc: $(cat "$T/export.out")"
  assert_eq "" "$(store_problems "$T/export-store")" "the store after an export into it raced gc (round $round)"
  assert_eq "${REF[c]##* }" "$(checked_tag conc-c:1.0.0)" "conc-c exported into the store (round $round)"
done

echo "concurrency: 8 builds at once (5 templates, identical ones x3 and x2) with $GC_RUNS gc and $FSCK_RUNS fsck runs: ${MIX_MS} ms, all right;" \
  "8 different templates at once ${PARALLEL_MS} ms vs ${SERIAL_MS} ms one at a time (x$RATIO, $CPUS CPUs, one each; $TIMING_NOTE)," \
  "up to $BUILDS_AT_ONCE builds writing layers at the same moment; 15 exports into the store raced gc, all whole"
