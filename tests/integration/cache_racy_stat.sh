#!/usr/bin/env bash
# A file changed in the same timestamp tick as the build that hashed it
# ("racily clean", as git calls it) is hashed again, not taken from the stat
# cache (kiln/cache/stat) by its unchanged (device, inode, size, mtime,
# ctime). On a file system with one-second timestamps (ext4 with 128-byte
# inodes, ext2/3; on older kernels any file system within a clock tick), a
# script that writes a file, builds, rewrites it with content of the same size
# and builds again within the second must get the new content's layer
# ("file app.txt: A -> B") and the cold build's image. (A regression: kiln
# once said "cached" and gave the first content's image.)
# Needs root to loop-mount a small ext4 with 128-byte inodes; skipped (exit
# 77) where that is not possible.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool sha256sum

MNT=$T/mnt
mounted=
unmount() { [[ -z $mounted ]] || umount "$MNT" 2>/dev/null || true; }
SKIP_CLEANUP=unmount
[[ $EUID -eq 0 ]] || skip "needs root to mount a file system with one-second timestamps"
command -v mkfs.ext4 >/dev/null || skip "no mkfs.ext4"
truncate -s 16M "$T/fs.img"
mkfs.ext4 -q -F -I 128 "$T/fs.img" >/dev/null 2>&1 || skip "mkfs.ext4 -I 128 failed"
mkdir -p "$MNT"
mount -o loop "$T/fs.img" "$MNT" 2>"$T/mount.err" || skip "cannot loop-mount: $(cat "$T/mount.err")"
mounted=1
# Unmount before lib.sh's cleanup removes $T.
_racy_exit() {
  local rc=$1
  umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
  if [[ $rc -eq 0 ]]; then
    _cleanup
  else
    (exit "$rc") || _cleanup  # _cleanup reads the status from $?
  fi
}
trap '_racy_exit $?' EXIT

C=$MNT/ctx
mkdir -p "$C"
cat >"$C/kiln.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: racy
version: 1.0.0
layers:
  - name: app
    files:
      - {src: app.txt, dest: /srv/app.txt}
EOF
printf 'AAAA\n' >"$C/app.txt"
[[ $(stat -c %.9Y "$C/app.txt") == *.000000000 ]] || skip "the file system has sub-second timestamps after all"

step "the images of each content, cold"
mkdir -p "$T/ref"
cp "$C/kiln.yaml" "$T/ref/"
printf 'AAAA\n' >"$T/ref/app.txt"
DA=$(build_digest --store "$T/cold-a" build "$T/ref/kiln.yaml")
printf 'BBBB\n' >"$T/ref/app.txt"
DB=$(build_digest --store "$T/cold-b" build "$T/ref/kiln.yaml")
assert_ne "$DA" "$DB" "the two contents' images"
HA=$(printf 'AAAA\n' | sha256sum | cut -d' ' -f1)
HB=$(printf 'BBBB\n' | sha256sum | cut -d' ' -f1)

step "write, build, rewrite (same size) and build again within one second"
done_once=
for attempt in 1 2 3 4 5; do
  S=$T/store-$attempt
  # Start early in a second, so both writes and the first build fit in it.
  while ((10#$(date +%N) > 300000000)); do sleep 0.01; done
  printf 'AAAA\n' >"$C/app.txt"
  first=$(stat -c '%i %s %Y %Z' "$C/app.txt")
  d1=$(build_digest --store "$S" build "$C/kiln.yaml")
  printf 'BBBB\n' >"$C/app.txt"
  [[ $(stat -c '%i %s %Y %Z' "$C/app.txt") == "$first" ]] || continue  # a second boundary passed: again
  assert_eq "$DA" "$d1" "the first build (AAAA)"
  "$KILN" --store "$S" build "$C/kiln.yaml" --replace --explain -q >"$T/b2.out" 2>"$T/b2.err" ||
    fail "the second build failed: $(cat "$T/b2.err")"
  assert_eq "layer 1 app: rebuilt, because"$'\n'"    file app.txt: sha256:$HA -> sha256:$HB" "$(cat "$T/b2.err")" \
    "--explain after app.txt was rewritten within the second"
  assert_eq "racy:1.0.0 $DB" "$(cat "$T/b2.out")" "the second build (BBBB) vs a cold build of BBBB"
  done_once=1
  break
done
[[ -n $done_once ]] || skip "could not write, build and rewrite within one second in 5 attempts"
