#!/usr/bin/env bash
# Crash safety of `kiln pull` (issue 8): two five-blob images (gzip and zstd
# layers, 6 MB of random binaries each) pushed to the fixture's registry,
# then pulled 50 times (KILN_CRASH_TRIALS) with a SIGKILL at a random delay
# between 0 and an uninterrupted pull's measured duration, into a fresh
# store, one holding the other image, or the store the last trial left with
# this image's tag and blobs taken out (the leftovers of its kill kept). After
# each kill the store must be consistent (crash_lib.sh's store_problems) and
# the next pull must succeed with the registry's digest, every other tag
# untouched. The delays come from $RANDOM seeded with KILN_CRASH_SEED
# (printed). Prints "crash: N trials (pull N), K inconsistent".
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"
# shellcheck source=../crash_lib.sh
source "$(dirname "$0")/../crash_lib.sh"

crash_trials
C=$T/ctx
crash_templates "$C" 600 1536
declare -A REF SRC OWN

step "build and push both images"
B=$T/build-store
for k in "${KINDS[@]}"; do
  REF[$k]=$(build_digest --store "$B" build "$C/$k.yaml")
  SRC[$k]=docker://$REG_PLAIN/crash-$RUN/$k:1.0.0
  kiln_ok "push-$k" --store "$B" push "${NAME[$k]}" "${SRC[$k]}"
  assert_eq "${REF[$k]}" "$(remote_digest "$REG_PLAIN/crash-$RUN/$k:1.0.0")" "the pushed $k image"
  OWN[$k]="${REF[$k]} $(image_blobs "$B" "${NAME[$k]}" | tr '\n' ' ')"
done
# The two images share no blob (other compression, other config).
assert_eq "" "$(comm -12 <(tr ' ' '\n' <<<"${OWN[gz]}" | sort) <(tr ' ' '\n' <<<"${OWN[zst]}" | sort) | grep . || true)" \
  "blobs the two images share"

# pull STORE KIND: `kiln pull -q` of the pushed image as NAME:TAG.
pull() { "$KILN" --store "$1" pull "${SRC[$2]}" "${NAME[$2]}" -q; }

step "uninterrupted pulls: their digests and durations (the mean of three)"
declare -A DUR
for k in "${KINDS[@]}"; do
  total=0
  for _ in 1 2 3; do
    rm -rf "$T/ref"
    start=$(now_ms)
    out=$(pull "$T/ref" "$k" 2>"$T/pull.err") || fail "pull of $k: $(cat "$T/pull.err")"
    total=$((total + $(now_ms) - start))
  done
  DUR[$k]=$((total / 3))
  echo "pull of $k into an empty store: ${DUR[$k]} ms" >&2
  assert_eq "${NAME[$k]} ${REF[$k]}" "$out" "an uninterrupted pull of $k"
  assert_eq "" "$(store_problems "$T/ref")" "the store after an uninterrupted pull of $k"
done

step "$TRIALS pulls killed between 0 and their duration (gz ${DUR[gz]} ms, zst ${DUR[zst]} ms)"
S=$T/store
for i in $(seq 1 "$TRIALS"); do
  k=${KINDS[$((i % 2))]}
  other=${KINDS[$(((i + 1) % 2))]}
  mode=$((RANDOM % 3))
  case $mode in
    0) rm -rf "$S" ;;  # an empty store
    1)                 # the other image only (shares no blob with this one)
      rm -rf "$S"
      out=$(pull "$S" "$other" 2>"$T/pull.err") || fail "pull of $other: $(cat "$T/pull.err")"
      ;;
    2) # what the last trial left (leftovers of its kill too), without this image
      untag "$S" "${NAME[$k]}"
      for d in ${OWN[$k]}; do rm -f "$(blob_path "$S" "$d")"; done
      ;;
  esac
  kill_after "$(rand_ms "${DUR[$k]}")" "$KILN" --store "$S" pull "${SRC[$k]}" "${NAME[$k]}" -q
  if [[ $RC -ne 137 && $RC -ne 0 ]]; then
    problem "pull $i" "the pull (not killed) failed with exit $RC: $(head -c 1000 "$T/killed.err")"
  fi
  check_store "pull $i" "$S" "after the kill"
  d=$(tag_digest "$S" "${NAME[$k]}")
  if [[ -n $d && $d != "${REF[$k]}" ]]; then problem "pull $i" "${NAME[$k]} names $d after the kill"; fi
  rc=0
  out=$(pull "$S" "$k" 2>"$T/pull.err") || rc=$?
  if [[ $rc -ne 0 ]]; then
    problem "pull $i" "the next pull failed (exit $rc): $(head -c 1000 "$T/pull.err")"
  elif [[ $out != "${NAME[$k]} ${REF[$k]}" ]]; then
    problem "pull $i" "the next pull gave '$out', an uninterrupted one ${REF[$k]}"
  fi
  check_store "pull $i" "$S" "after the next pull"
  assert_eq "${REF[$k]}" "$(tag_digest "$S" "${NAME[$k]}")" "${NAME[$k]} after the next pull (trial $i)"
  d=$(tag_digest "$S" "${NAME[$other]}")
  if [[ -n $d && $d != "${REF[$other]}" ]]; then problem "pull $i" "${NAME[$other]} names $d"; fi
done
# The pulled image is the built one, byte for byte.
mapfile -t blobs < <(image_blobs "$S" "${NAME[$k]}")
assert_blobs_identical "$B" "$S" "${REF[$k]}" "${blobs[@]}"

echo "crash: $TRIALS trials (pull $TRIALS), $INCONSISTENT inconsistent; killed mid-run: pull $KILLED;" \
  "fsck reported leftovers after $LEFTOVER_TRIALS kills; seed $SEED"
if [[ $INCONSISTENT -ne 0 ]]; then
  fail "$INCONSISTENT inconsistent trials (seed $SEED):"$'\n'"$(head -50 "$T/problems")"
fi
