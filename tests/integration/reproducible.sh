#!/usr/bin/env bash
# DESIGN.md's core promise: the same template and inputs give the same layer
# diff_ids, blob digests, config and manifest digests whatever the working
# directory, time zone, locale, umask, user, store, thread count, source-file
# mtimes/owners/modes, or the order the filesystem lists directories.
# Every build goes to a fresh store so no cache can hide a difference.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool jq perl tar gzip

n=0
# check_same WHAT CMD...: CMD is a `kiln build` command line (--json is
# appended); its image must be $REF's, layer by layer.
check_same() {
  local what=$1
  shift
  n=$((n + 1))
  step "same image: $what"
  "$@" --json >"$T/v$n.json" 2>"$T/v$n.err" || fail "$what: build failed: $*"$'\n'"$(cat "$T/v$n.err")"
  assert_eq "$REF" "$(build_identity "$T/v$n.json")" "$what changed the image"
}
# A fresh store path for each build.
store() { echo "$T/stores/$n-$1"; }
in_dir() { local d=$1; shift; (cd "$d" && "$@"); }
with_umask() { local m=$1; shift; (umask "$m" && "$@"); }

# copy_example DIR: a copy of examples/hello (kiln.yaml, bin/hello, ...).
copy_example() {
  mkdir -p "$1"
  cp -R "$HELLO_DIR/." "$1/"
}
# copy_example_reversed DIR: the same files, each created in the opposite
# order (and with other inode numbers), written with cat so nothing is kept.
copy_example_reversed() {
  local f
  mkdir -p "$1"
  for f in $(cd "$HELLO_DIR" && find . -type f | LC_ALL=C sort -r); do
    mkdir -p "$1/$(dirname "$f")"
    cat "$HELLO_DIR/$f" >"$1/$f"
    [[ -x $HELLO_DIR/$f ]] && chmod 755 "$1/$f"
  done
  return 0
}

step "reference build of examples/hello"
build_json "$T/ref.json" --store "$T/stores/ref" build "$HELLO"
REF=$(build_identity "$T/ref.json")
jq -e '.layers | length == 3' "$T/ref.json" >/dev/null || fail "hello should have 3 layers"

# --- where and how kiln runs
mkdir -p "$T/elsewhere/deeper"
rel=$(realpath --relative-to="$T/elsewhere/deeper" "$HELLO")
check_same "another working directory, relative template path" \
  in_dir "$T/elsewhere/deeper" "$KILN" --store "$(store s)" build "$rel"
check_same "another working directory, absolute template path" \
  in_dir / "$KILN" --store "$(store s)" build "$HELLO"
check_same "a relative --store path" \
  in_dir "$T/elsewhere" "$KILN" --store "rel-store" build "$HELLO"
check_same "TZ=Pacific/Kiritimati" env TZ=Pacific/Kiritimati "$KILN" --store "$(store s)" build "$HELLO"
check_same "TZ=<-0330>3:30 (POSIX rule, no tzdata)" env "TZ=<-0330>3:30" "$KILN" --store "$(store s)" build "$HELLO"
check_same "LANG=tr_TR.UTF-8 (dotless i collation)" \
  env -u LC_ALL LANG=tr_TR.UTF-8 LC_CTYPE=tr_TR.UTF-8 "$KILN" --store "$(store s)" build "$HELLO"
check_same "LC_ALL=C.UTF-8" env LC_ALL=C.UTF-8 "$KILN" --store "$(store s)" build "$HELLO"
check_same "umask 077" with_umask 077 "$KILN" --store "$(store s)" build "$HELLO"
check_same "umask 022" with_umask 022 "$KILN" --store "$(store s)" build "$HELLO"
check_same "umask 000" with_umask 000 "$KILN" --store "$(store s)" build "$HELLO"
check_same "store given by KILN_STORE" env KILN_STORE="$(store env)" "$KILN" build "$HELLO"
check_same "a store path with spaces" "$KILN" --store "$T/stores/a store with spaces" build "$HELLO"
check_same "--jobs 1" "$KILN" --store "$(store s)" build "$HELLO" --jobs 1
check_same "--jobs 4" "$KILN" --store "$(store s)" build "$HELLO" --jobs 4
check_same "a second build into the same store" "$KILN" --store "$T/stores/ref" build "$HELLO"
jq -e '.tagMoved == false' "$T/v$n.json" >/dev/null || fail "rebuilding the same image should not move the tag"
check_same "HOME and XDG_DATA_HOME elsewhere" \
  env HOME="$T/elsewhere" XDG_DATA_HOME="$T/elsewhere/xdg" "$KILN" --store "$(store s)" build "$HELLO"

# --- the build date
check_same "SOURCE_DATE_EPOCH=0 (the default)" env SOURCE_DATE_EPOCH=0 "$KILN" --store "$(store s)" build "$HELLO"
check_same "--source-date-epoch 0 (the default)" "$KILN" --store "$(store s)" build "$HELLO" --source-date-epoch 0
check_same "SOURCE_DATE_EPOCH= (empty means unset)" env SOURCE_DATE_EPOCH= "$KILN" --store "$(store s)" build "$HELLO"
step "SOURCE_DATE_EPOCH vs --source-date-epoch"
build_json "$T/date-env.json" --store "$T/stores/date-env" build "$HELLO" --source-date-epoch 1700000000
DATED=$(build_identity "$T/date-env.json")
env SOURCE_DATE_EPOCH=1700000000 "$KILN" --store "$T/stores/date-flag" build "$HELLO" --json >"$T/date-flag.json"
assert_eq "$DATED" "$(build_identity "$T/date-flag.json")" "SOURCE_DATE_EPOCH=N and --source-date-epoch N"
env SOURCE_DATE_EPOCH=5 "$KILN" --store "$T/stores/date-both" build "$HELLO" --source-date-epoch 1700000000 --json >"$T/date-both.json"
assert_eq "$DATED" "$(build_identity "$T/date-both.json")" "--source-date-epoch wins over SOURCE_DATE_EPOCH"
assert_ne "$REF" "$DATED" "a build date of 1700000000 vs 0"
assert_eq "2023-11-14T22:13:20Z" "$("$KILN" --store "$T/stores/date-env" inspect hello:1.0.0 --json | jq -r .config.created)"
assert_eq "1970-01-01T00:00:00Z" "$("$KILN" --store "$T/stores/ref" inspect hello:1.0.0 --json | jq -r .config.created)"

# --- the sources: where they are, their mtimes, owners, modes, creation order
copy_example "$T/ctx-old"
find "$T/ctx-old" -exec touch -h -d "2001-02-03 04:05:06" {} +
check_same "a copy of the example with 2001 mtimes" "$KILN" --store "$(store s)" build "$T/ctx-old/kiln.yaml"

copy_example "$T/ctx-new"
find "$T/ctx-new" -exec touch -h -d "2037-12-31 23:59:59" {} +
check_same "--context: a copy with 2037 mtimes" "$KILN" --store "$(store s)" build "$HELLO" --context "$T/ctx-new"

copy_example_reversed "$T/ctx-reversed"
check_same "a copy whose files were created in reverse order" \
  "$KILN" --store "$(store s)" build "$T/ctx-reversed/kiln.yaml"

copy_example "$T/ctx-owned"
# Another owner than the checkout (only root can give files away).
if [[ $EUID -eq 0 ]]; then chown -R 1234:1234 "$T/ctx-owned"; fi
check_same "a copy owned by $(stat -c %u:%g "$T/ctx-owned/bin/hello")" "$KILN" --store "$(store s)" build "$T/ctx-owned/kiln.yaml"

with_umask 077 copy_example_reversed "$T/ctx-private"
chmod 700 "$T/ctx-private/bin/hello"
chmod 600 "$T/ctx-private/kiln.yaml"
check_same "a copy made under umask 077 (files 0600, bin/hello 0700)" \
  "$KILN" --store "$(store s)" build "$T/ctx-private/kiln.yaml"

if [[ $EUID -eq 0 ]] && command -v setpriv >/dev/null; then
  mkdir -p "$T/stores/user1234"
  chown 1234:1234 "$T/stores/user1234"
  check_same "kiln run by uid 1234 on sources it owns" \
    setpriv --reuid=1234 --regid=1234 --clear-groups env HOME="$T/elsewhere" \
    "$KILN" --store "$T/stores/user1234/s" build "$T/ctx-owned/kiln.yaml"
else
  step "SKIP building as another user (needs root and setpriv)"
fi

# --- inputs that must change the image
step "a different build date or GREETING gives another image"
build_json "$T/date1.json" --store "$T/stores/date1" build "$HELLO" --source-date-epoch 1
assert_ne "$(jq -r .digest "$T/ref.json")" "$(jq -r .digest "$T/date1.json")" "--source-date-epoch 1 vs 0"
assert_ne "$(jq -r .config "$T/ref.json")" "$(jq -r .config "$T/date1.json")" "config of --source-date-epoch 1 vs 0"
build_json "$T/greet.json" --store "$T/stores/greet" build "$HELLO" --set GREETING=bonjour
assert_ne "$(jq -r .digest "$T/ref.json")" "$(jq -r .digest "$T/greet.json")" "--set GREETING=bonjour vs the default"
# filesystem and accounts do not use GREETING: the same bytes (the accounts
# layer's cache key differs all the same: it is above the app layer's).
for i in 0 2; do
  assert_eq "$(jq -c ".layers[$i] | del(.cacheKey, .cached)" "$T/ref.json")" \
    "$(jq -c ".layers[$i] | del(.cacheKey, .cached)" "$T/greet.json")" "layer $i with another GREETING"
done
assert_ne "$(jq -r '.layers[1].diffId' "$T/ref.json")" "$(jq -r '.layers[1].diffId' "$T/greet.json")" "app layer with another GREETING"

# --- a bigger tree: several gzip blocks and zstd jobs, directory copies
# gen_tree DIR fwd|rev: 2,000 files in nested folders (some executable, some
# empty, three over 1 MiB), symlinks, an empty folder; file contents depend
# only on their index, the creation order on fwd/rev.
gen_tree() {
  perl -e '
    use strict; use warnings;
    my ($root, $order) = @ARGV;
    my @idx = (0 .. 1999);
    @idx = reverse @idx if $order eq "rev";
    sub rng { my $s = shift; return sub { $s ^= ($s << 13) & 0xffffffff; $s ^= $s >> 17; $s ^= ($s << 5) & 0xffffffff; $s } }
    sub mkpath { my $p = ""; for my $part (split m{/}, shift) { $p .= "$part/"; mkdir $p unless -d $p } }
    for my $i (@idx) {
      my $dir = sprintf("%s/d%02d/e%d", $root, $i % 20, int($i / 20) % 5);
      $dir .= sprintf("/f%d/g", $i % 3) if $i % 7 == 0;
      mkpath($dir);
      my $path = sprintf("%s/file%04d%s", $dir, $i, $i % 4 ? ".txt" : "");
      my $r = rng($i * 2654435761 % 4294967291 + 1);
      my $data = "";
      if ($i == 100 || $i == 1000 || $i == 1900) {
        my $words = int(($i == 100 ? 1.5 : $i == 1000 ? 2.5 : 3.2) * 1048576 / 4);
        $data = pack("N*", map { $_ % 3 ? $r->() : 0x41424344 } 1 .. $words);
      } elsif ($i % 50 != 0) {
        my $lines = 1 + $r->() % 60;
        $data .= sprintf("line %d of file %d: %08x %08x\n", $_, $i, $r->(), $r->()) for 1 .. $lines;
      }
      open(my $fh, ">", $path) or die "$path: $!";
      binmode $fh;
      print $fh $data;
      close $fh or die;
      chmod(0755, $path) if $i % 9 == 0;
      symlink(sprintf("file%04d%s", $i, $i % 4 ? ".txt" : ""), "$dir/link$i") if $i % 97 == 0;
    }
    mkpath("$root/empty/dir");
  ' "$1" "$2"
}
mkdir -p "$T/big-a" "$T/big-b"
cat >"$T/big-a/kiln.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: bigtree
version: 1.0.0
layers:
  - name: tree
    files:
      - {src: tree, dest: /opt/tree}
      - {src: tree/d09/e0/file0009.txt, dest: /usr/bin/tool}
EOF
step "generate two copies of a 2,000-file tree"
(cd "$T/big-a" && gen_tree tree fwd)
(cd "$T/big-b" && umask 077 && gen_tree tree rev)
find "$T/big-b" -exec touch -h -d "1999-12-31 23:59:59" {} +
if [[ $EUID -eq 0 ]]; then chown -R 1234:1234 "$T/big-b"; fi
[[ $(find "$T/big-a/tree" -type f | wc -l) -eq 2000 ]] || fail "the generated tree should have 2000 files"
diff -r "$T/big-a/tree" "$T/big-b/tree" >/dev/null || fail "the two generated trees should have the same contents"
# A third copy on tmpfs, which lists a directory in reverse creation order
# where ext4 lists it in hash order: kiln must not depend on either.
big_c=
if [[ -d /dev/shm && -w /dev/shm ]] && big_c=$(mktemp -d /dev/shm/kiln-test.XXXXXX); then
  CLEANUP_DIRS+=("$big_c")
  (cd "$big_c" && gen_tree tree fwd)
  if [[ "$(ls -U "$T/big-a/tree/d00/e0")" == "$(ls -U "$big_c/tree/d00/e0")" ]]; then
    step "note: /dev/shm lists directories in the same order as $T"
  fi
fi

for comp in gzip zstd; do
  step "$comp: 2,000-file tree, --jobs 1 vs --jobs 3 on a perturbed copy"
  build_json "$T/big-$comp-1.json" --store "$T/stores/big-$comp-1" build "$T/big-a/kiln.yaml" --compression "$comp" --jobs 1
  build_json "$T/big-$comp-3.json" --store "$T/stores/big-$comp-3" build "$T/big-a/kiln.yaml" --context "$T/big-b" \
    --compression "$comp" --jobs 3
  assert_eq "$(build_identity "$T/big-$comp-1.json")" "$(build_identity "$T/big-$comp-3.json")" \
    "$comp build of the big tree: --jobs 1 vs --jobs 3 on a reordered, re-owned, re-dated copy"
  jq -e '.layers[0].uncompressedSize > 8 * 1048576' "$T/big-$comp-1.json" >/dev/null ||
    fail "the big layer should be over 8 MiB uncompressed (several gzip blocks / zstd jobs)"
  if [[ -n $big_c ]]; then
    build_json "$T/big-$comp-c.json" --store "$T/stores/big-$comp-c" build "$T/big-a/kiln.yaml" --context "$big_c" \
      --compression "$comp" --jobs 2
    assert_eq "$(build_identity "$T/big-$comp-1.json")" "$(build_identity "$T/big-$comp-c.json")" \
      "$comp build of the big tree from a copy on tmpfs (another directory order)"
  fi
  if [[ $comp == gzip ]]; then big_gzip=$T/big-$comp-1.json; fi
done
assert_eq "$(jq -c '[.layers[].diffId]' "$T/big-gzip-1.json")" "$(jq -c '[.layers[].diffId]' "$T/big-zstd-1.json")" \
  "gzip and zstd builds of one tree have the same diff_ids"
step "the multi-block gzip layer is one valid gzip stream for gzip(1)"
blob=$(blob_path "$T/stores/big-gzip-1" "$(jq -r '.layers[0].digest' "$big_gzip")")
assert_eq "$(jq -r '.layers[0].diffId' "$big_gzip")" "sha256:$(gzip -dc "$blob" | sha256sum | cut -d' ' -f1)"
# Modes normalised from the executable bit, owners 0:0, whatever the copy had.
"$KILN" --store "$T/stores/big-gzip-3" inspect bigtree:1.0.0 --files --json >"$T/big-files.json"
assert_eq '{"mode":"0755","uid":0,"gid":0}' \
  "$(jq -c '.layers[0].files[] | select(.path == "/opt/tree/d00/e0/f0/g/file0000") | {mode, uid, gid}' "$T/big-files.json")"
assert_eq '{"mode":"0644","uid":0,"gid":0}' \
  "$(jq -c '.layers[0].files[] | select(.path == "/opt/tree/d01/e0/file0001.txt") | {mode, uid, gid}' "$T/big-files.json")"
assert_eq '{"type":"symlink","link":"file0000"}' \
  "$(jq -c '.layers[0].files[] | select(.path == "/opt/tree/d00/e0/f0/g/link0") | {type, link}' "$T/big-files.json")"
assert_eq "directory" "$(jq -r '.layers[0].files[] | select(.path == "/opt/tree/empty/dir") | .type' "$T/big-files.json")"
assert_eq '{"mode":"0755","uid":0,"gid":0}' \
  "$(jq -c '.layers[0].files[] | select(.path == "/usr/bin/tool") | {mode, uid, gid}' "$T/big-files.json")"
