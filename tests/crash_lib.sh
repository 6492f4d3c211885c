# shellcheck shell=bash
# Helpers for the crash-safety and concurrency tests. Source after lib.sh:
#   source "$(dirname "$0")/../crash_lib.sh"
# A generated build context big enough that a build takes a good fraction of
# a second (a few thousand text files, incompressible binaries, a long text),
# templates over it, and an independent check that a store is consistent.
need_tool jq sha256sum perl

# make_context DIR SEED [FILES] [BIN_KIB] [LINES]: FILES small text files in
# 40 folders under DIR/tree, four BIN_KIB KiB random files in DIR/bin, a text
# of LINES lines (2 MB for 40,000) in DIR/docs. The same SEED gives the same
# files.
make_context() {
  local dir=$1 seed=$2 files=${3:-3000} bin_kib=${4:-768} lines=${5:-40000}
  mkdir -p "$dir/tree" "$dir/bin" "$dir/docs"
  perl -e '
    use strict;
    my ($dir, $seed, $files, $bin_kib, $lines) = @ARGV;
    srand($seed);
    my @w = qw(alpha beta gamma delta kiln layer blob digest store index
               manifest config tar gzip zstd crash gc pull lock rename fsync);
    for my $i (0 .. $files - 1) {
      my $d = sprintf("%s/tree/d%02d", $dir, $i % 40);
      mkdir $d;
      my $n = 100 + int(rand(1900));
      my $s = "";
      $s .= $w[rand @w] . (rand() < 0.1 ? "\n" : " ") while length($s) < $n;
      open(my $fh, ">", sprintf("%s/f%04d.txt", $d, $i)) or die "$d: $!";
      print $fh $s;
      close $fh;
    }
    for my $i (0 .. 3) {
      open(my $fh, ">", "$dir/bin/blob$i") or die "$dir/bin: $!";
      print $fh pack("L*", map { int(rand(4294967296)) } 1 .. $bin_kib * 256);
      close $fh;
      chmod 0755, "$dir/bin/blob$i" if $i == 0;
    }
    open(my $fh, ">", "$dir/docs/manual.txt") or die "$dir/docs: $!";
    for my $l (1 .. $lines) {
      print $fh "line $l: ", join(" ", map { $w[rand @w] } 1 .. 6), "\n";
    }
    close $fh;
  ' "$dir" "$seed" "$files" "$bin_kib" "$lines" || fail "generating the context in $dir"
}

# crash_trials: the kill trials' SEED (also RANDOM's: $KILN_CRASH_SEED replays
# a run's delays) and TRIALS, the kills of each kind ($KILN_CRASH_TRIALS, 50).
crash_trials() {
  SEED=${KILN_CRASH_SEED:-$RANDOM}
  RANDOM=$SEED
  TRIALS=${KILN_CRASH_TRIALS:-50}
  echo "crash seed: $SEED (KILN_CRASH_SEED=$SEED replays these delays)" >&2
}

# crash_templates DIR FILES BIN_KIB: a context in DIR (make_context, SEED) and
# two templates over it, DIR/gz.yaml and DIR/zst.yaml; KINDS lists them (gz
# zst), NAME maps each to its image's name.
crash_templates() {
  make_context "$1" "$SEED" "$2" "$3"
  write_template "$1/gz.yaml" crash-gz gzip
  write_template "$1/zst.yaml" crash-zst zstd
  KINDS=(gz zst)
  declare -gA NAME=([gz]=crash-gz:1.0.0 [zst]=crash-zst:1.0.0)
}

# write_template FILE NAME COMPRESSION [FLAVOR]: a four-layer template over
# the context beside it (tree, bin, docs, accounts). FLAVOR, in the first
# layer, makes every layer's cache key (and the image) another one.
write_template() {
  local file=$1 name=$2 compression=$3 flavor=${4:-plain}
  cat >"$file" <<EOF
apiVersion: kiln.dev/v1
name: $name
version: 1.0.0
compression: $compression
args: {FLAVOR: $flavor}
layers:
  - name: tree
    files:
      - {dest: /etc/flavor, content: "\${FLAVOR}\n"}
      - {src: tree/, dest: /srv/tree/}
  - name: bin
    files:
      - {src: bin/, dest: /opt/bin/}
  - name: docs
    files:
      - {src: docs/, dest: /usr/share/doc/$name/}
    symlinks: [{path: /usr/share/doc/$name/latest, target: manual.txt}]
accounts:
  users: [{name: app, uid: 1000, home: /home/app}]
config:
  entrypoint: [/opt/bin/blob0]
  user: app
EOF
}

# now_ms: wall-clock milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# store_problems STORE: prints what is wrong with STORE, nothing if it is
# consistent. Checked independently of kiln where it can be: `kiln store
# fsck` exits 0 and reports nothing corrupt or missing; every temp file
# (".tmp-*") anywhere in the store is among fsck's leftovers; oci-layout and
# index.json are valid JSON; every file under blobs/sha256 but a temp file is
# named by the SHA-256 of its content; every image the index names has its
# manifest, config and layers. Leaves the index's "DIGEST NAME" lines for
# checked_tag.
store_problems() {
  local store=$1 rc=0 f d
  "$KILN" --store "$store" store fsck --json >"$T/.sp-fsck.json" 2>"$T/.sp-fsck.err" || rc=$?
  [[ $rc -eq 0 ]] || echo "store fsck exit $rc: $(cat "$T/.sp-fsck.json" "$T/.sp-fsck.err" | head -c 2000 | tr -s ' \n' ' ')"
  jq -r 'if .ok == true and (.corrupt | length) == 0 and (.missing | length) == 0 then empty
         else "P store fsck: \({ok, corrupt, missing} | tojson)" end, "L " + .leftovers[]?' \
    "$T/.sp-fsck.json" >"$T/.sp-fsck.lines" 2>/dev/null || true
  sed -n 's/^P //p' "$T/.sp-fsck.lines"
  sed -n 's/^L //p' "$T/.sp-fsck.lines" | LC_ALL=C sort >"$T/.sp-leftovers"
  find "$store" -name '.tmp-*' -type f | LC_ALL=C sort >"$T/.sp-temps"
  LC_ALL=C comm -23 "$T/.sp-temps" "$T/.sp-leftovers" | sed 's/^/a temp file not among fsck'"'"'s leftovers: /'
  [[ $(cat "$store/oci-layout" 2>/dev/null) == '{"imageLayoutVersion":"1.0.0"}' ]] ||
    echo "oci-layout is not valid: $(head -c 200 "$store/oci-layout" 2>&1)"
  if ! jq -r 'if .schemaVersion == 2 and (.manifests | type == "array")
              then .manifests[] | "\(.digest) \(.annotations["org.opencontainers.image.ref.name"] // "")"
              else error("not an index") end' "$store/index.json" >"$T/.sp-index" 2>/dev/null; then
    echo "index.json is not a valid index: $(head -c 300 "$store/index.json" 2>&1)"
    : >"$T/.sp-index"
    return 0
  fi
  find "$store/blobs/sha256" -type f ! -name '.tmp-*' -regextype posix-extended ! -regex '.*/[0-9a-f]{64}' \
    -printf 'not a blob name: %p\n'
  find "$store/blobs/sha256" -type f -regextype posix-extended -regex '.*/[0-9a-f]{64}' -print0 | xargs -0 -r sha256sum |
    awk '{n = $2; sub(/.*\//, "", n); if ($1 != n) print "partial or wrong blob under a final name: " $2}'
  local manifests=()
  while read -r d _; do
    f=$(blob_path "$store" "$d")
    if [[ -f $f ]]; then manifests+=("$f"); else echo "the index names $d, which is missing"; fi
  done <"$T/.sp-index"
  [[ ${#manifests[@]} -gt 0 ]] || return 0
  while read -r d; do
    [[ -f $(blob_path "$store" "$d") ]] || echo "a tagged image lacks blob $d"
  done < <(jq -r 'select(has("config") and has("layers")) | .config.digest, .layers[].digest' "${manifests[@]}" 2>/dev/null)
}

# tag_digest STORE NAME:TAG: the digest the store's index names NAME:TAG by,
# empty if none.
tag_digest() {
  jq -r --arg n "$2" '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest][0] // empty' \
    "$1/index.json" 2>/dev/null || true
}

# checked_tag NAME:TAG: the digest NAME:TAG had in the index the last
# store_problems read, empty if none.
checked_tag() { awk -v n="$1" '$2 == n {print $1; exit}' "$T/.sp-index"; }

# Trials: problem TRIAL WHAT counts an inconsistent trial once (in
# $INCONSISTENT) and keeps the reasons in $T/problems.
INCONSISTENT=0
KILLED=0
LEFTOVER_TRIALS=0
declare -A _BAD_TRIALS
problem() {
  if [[ -z ${_BAD_TRIALS[$1]:-} ]]; then
    INCONSISTENT=$((INCONSISTENT + 1))
    _BAD_TRIALS[$1]=1
  fi
  echo "$1: $2" >>"$T/problems"
  echo "INCONSISTENT $1: $2" >&2
}

# check_store TRIAL STORE WHEN: each of store_problems is a problem; after a
# kill, counts in $LEFTOVER_TRIALS whether fsck reported leftovers.
check_store() {
  local p line
  p=$(store_problems "$2")
  if [[ -n $p ]]; then
    while IFS= read -r line; do problem "$1" "$3: $line"; done <<<"$p"
  fi
  if [[ $3 == "after the kill" ]] && jq -e '(.leftovers | length) > 0' "$T/.sp-fsck.json" >/dev/null 2>&1; then
    LEFTOVER_TRIALS=$((LEFTOVER_TRIALS + 1))
  fi
}

# rand_ms MAX: a random whole number of milliseconds in [0, MAX] ($RANDOM).
rand_ms() { echo $(((RANDOM * 32768 + RANDOM) % ($1 + 1))); }

# A pipe nothing is ever written to (both ends held open), so `read -t` on
# it waits without starting a process: sleep's start-up would add to every
# delay.
exec {_SLEEP_FD}<> <(:)

# kill_after MS CMD...: starts CMD (output in $T/killed.out and .err),
# SIGKILLs it after MS ms; sets RC to its exit status (137 if the kill hit
# it) and counts the kills that hit in $KILLED.
kill_after() {
  local ms=$1 pid _
  shift
  "$@" >"$T/killed.out" 2>"$T/killed.err" &
  pid=$!
  read -r -t "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))" -u "$_SLEEP_FD" _ || true
  kill -9 "$pid" 2>/dev/null || true
  RC=0
  { wait "$pid"; } 2>/dev/null || RC=$?
  if [[ $RC -eq 137 ]]; then KILLED=$((KILLED + 1)); fi
}

# untag STORE NAME:TAG: drops the index entry (while no kiln runs), so the
# next command names the image again.
untag() {
  [[ -f $1/index.json ]] || return 0
  jq -c --arg n "$2" '.manifests |= map(select(.annotations["org.opencontainers.image.ref.name"] != $n))' \
    "$1/index.json" >"$1/index.json.new" && mv "$1/index.json.new" "$1/index.json"
}
