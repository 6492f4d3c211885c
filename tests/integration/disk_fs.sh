#!/usr/bin/env bash
# The disk's root file system holds exactly the image's tree. A template
# extending examples/hello adds a layer of awkward entries (a hard link pair,
# absolute, relative and long (> 60 bytes, not a "fast" ext4 link) symlinks,
# a 0640 file owned by 1000:1000, a setuid file, a sticky directory, a
# directory owned by nonroot, an empty file, a 3 MB file, a deep path, a name
# with a space, a fifo and — where mknod works — a character device) and a
# `disk: {boot: none}` section; it is built with each root file system (ext4,
# erofs, squashfs) and exported as a raw disk. The root partition is read
# back with the file system's own tools (debugfs; fsck.erofs --extract with
# dump.erofs and the raw inodes, as fsck.erofs 1.5 drops setuid bits and hard
# links when it extracts; unsquashfs), and every entry's path, type, mode,
# owner, size, content, symlink target, device number, times and hard-link
# group is compared with the image's flattened tree (`kiln export
# rootfs:`, extracted by GNU tar as root). The GPT (sfdisk) and blkid show
# the GUIDs, UUIDs, names and offsets the build's JSON reports; e2fsck and
# fsck.erofs find nothing wrong. The root directory is 0755 root:root of
# the build date.
# Then: a second build into a fresh store (on tmpfs when there is one) from
# another working directory, umask (077 vs 022), TMPDIR, time zone and a copy
# of the context with other mtimes gives the same disk, byte for byte;
# another build date gives another disk, and every time in the file system
# is the build date; a rebuild into the same store takes the stored disk
# (cached). And qcow2: `format: qcow2` gives a qcow2 of the virtual size the
# JSON says, reproducibly, and `kiln export disk:x.raw` converts it back to
# a raw disk with the same tree (not the same bytes: the format is part of
# the image, and the GUIDs and UUIDs come from the image digest). Last:
# `kiln export` from a store on tmpfs to a file elsewhere, and the default
# build date 0 (two builds a second apart agree; every time is 0).
# Needs root (the squashfs and erofs owners, extracting the trees): skipped
# with exit 77 otherwise.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

[[ $EUID -eq 0 ]] || skip "needs root (erofs/squashfs owners, extracting the trees); nothing was tested"
need_tool jq perl tar sha256sum dd cmp sfdisk blkid qemu-img \
  mke2fs debugfs e2fsck dumpe2fs mkfs.erofs fsck.erofs dump.erofs mksquashfs unsquashfs

DATE=1700000000  # the build date of every build below but the last ones
DATE2=1700086400 # a day later
when() { date -u -d "@$1" '+%a %b %e %H:%M:%S %Y'; }

# --- the template -----------------------------------------------------------
CTX=$T/ctx
mkdir -p "$CTX"
# 3,000,000 bytes that do not compress away (and the same on every run).
perl -e 'my $s = 1; print pack("N*", map { $s = ($s * 1103515245 + 12345) % 2147483648 } 1 .. 750000)' >"$CTX/big.bin"
[[ $(stat -c %s "$CTX/big.bin") -eq 3000000 ]] || fail "big.bin should be 3,000,000 bytes"
printf 'a name with a space\n' >"$CTX/space.txt"
# A character device needs CAP_MKNOD to extract (tar, unsquashfs, fsck.erofs).
DEVICE=
if mknod "$T/probe-null" c 1 3 2>/dev/null; then
  DEVICE='      - {path: /srv/odd/null, type: char, major: 1, minor: 3, mode: "0666"}'
  rm -f "$T/probe-null"
else
  step "note: mknod is not allowed here: no character device in the tree"
fi
LONG_TARGET=/srv/odd/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/../../../../../../../../../../../../../../../../../../../../empty
cat >"$CTX/kiln.yaml" <<EOF
apiVersion: kiln.dev/v1
extends: $HELLO
name: oddtree
version: 1.0.0
args:
  FS: ext4
  FORMAT: raw
layers:
  - name: odd
    files:
      - {dest: /srv/odd/original.txt, content: "linked twice\n"}
      - {dest: /srv/odd/user-file, content: "owned by 1000\n", mode: "0640", owner: "1000:1000"}
      - {dest: /srv/odd/setuid, content: "#!/bin/sh\nexit 0\n", mode: "4755"}
      - {dest: /srv/odd/empty, content: ""}
      - {src: big.bin, dest: /srv/odd/big.bin}
      - {dest: /srv/odd/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/deep.txt, content: "deep\n"}
      - {src: space.txt, dest: "/srv/odd/with space.txt"}
    hardlinks:
      - {path: /srv/odd/hardlink.txt, target: /srv/odd/original.txt}
    symlinks:
      - {path: /srv/odd/abs-link, target: /etc/hello.txt}
      - {path: /srv/odd/rel-link, target: ../../usr/bin/hello}
      - {path: /srv/odd/long-link, target: $LONG_TARGET}
    dirs:
      - {path: /srv/odd/sticky, mode: "1777"}
      - {path: /srv/odd/nonroot-dir, mode: "0700", owner: "nonroot:nonroot"}
    devices:
      - {path: /srv/odd/fifo, type: fifo, mode: "0620"}
$DEVICE
disk:
  format: \${FORMAT}
  filesystem: \${FS}
  boot: none
EOF
TEMPLATE=$CTX/kiln.yaml
REF=oddtree:1.0.0

# --- reading trees back --------------------------------------------------------
# Raw records, one line per entry below the root, tab-separated:
#   path type mode uid gid size target rdev mtime ino nlink
# (type f d l p c b; mode the 12 permission bits in octal; size for files;
# target for symlinks; rdev "major,minor" for devices; "-" where none.)

# list_dir DIR: the raw records of a directory tree on this machine.
list_dir() {
  perl -e '
    use strict; use warnings;
    my $root = shift;
    # record PATH: prints its record and returns its type; "." is the root.
    sub record {
      my ($p) = @_;
      my $full = $p eq "." ? $root : "$root/$p";
      my @st = lstat($full) or die "$full: $!\n";
      my $t = -l _ ? "l" : -d _ ? "d" : -f _ ? "f" : -p _ ? "p" : -c _ ? "c" : -b _ ? "b" : "?";
      my $rdev = "-";
      if ($t eq "c" || $t eq "b") {
        my $r = $st[6];
        $rdev = sprintf("%d,%d", (($r >> 8) & 0xfff) | (($r >> 32) & ~0xfff), ($r & 0xff) | (($r >> 12) & ~0xff));
      }
      print join("\t", $p, $t, sprintf("%04o", $st[2] & 07777), $st[4], $st[5],
        $t eq "f" ? $st[7] : "-", $t eq "l" ? readlink($full) : "-", $rdev, $st[9], $st[1], $st[3]), "\n";
      return $t;
    }
    sub walk {
      my ($rel) = @_;
      my $dir = $rel eq "" ? $root : "$root/$rel";
      opendir(my $dh, $dir) or die "$dir: $!\n";
      my @names = sort grep { $_ ne "." && $_ ne ".." } readdir $dh;
      closedir $dh;
      for my $n (@names) {
        my $p = $rel eq "" ? $n : "$rel/$n";
        walk($p) if record($p) eq "d";
      }
    }
    record(".");
    walk("");
  ' "$1"
}

# list_ext4 IMAGE CONTENT_DIR: raw records of an ext4 image, from debugfs
# (ls -p for names, inodes, modes, owners and sizes; stat for links, times
# and device numbers). rdump copies the files and symlinks into CONTENT_DIR
# (it keeps no setuid or sticky bits, devices or fifos, hence the rest).
# The mtime column is the mtime if atime, ctime, mtime and crtime agree,
# else all four. lost+found is left out.
list_ext4() {
  local img=$1 content=$2
  mkdir -p "$content"
  debugfs -R "rdump / $content" "$img" >/dev/null 2>"$content.rdump.err" ||
    fail "debugfs rdump of $img: $(cat "$content.rdump.err")"
  perl -e '
    use strict; use warnings;
    my ($img, $content) = @ARGV;
    sub debugfs {
      open(my $fh, "-|", "debugfs", @_, $img) or die "debugfs: $!\n";
      local $/;
      my $out = <$fh> // "";
      close $fh or die "debugfs @_ failed\n";
      return $out;
    }
    open(STDERR, ">", "/dev/null");  # the banner
    my @recs;
    my @queue = ("");
    while (@queue) {
      my $d = shift @queue;
      for my $line (split /\n/, debugfs("-R", "ls -p \"/$d\"")) {
        next unless $line =~ m{^/(\d+)/([0-7]+)/(\d+)/(\d+)/(.*)/(\d*)/$};
        my ($ino, $mode, $uid, $gid, $name, $size) = ($1, oct($2), $3, $4, $5, $6);
        next if $name eq ".." || ($name eq "." && $d ne "");
        my $p = $name eq "." ? "." : $d eq "" ? $name : "$d/$name";
        next if $p eq "lost+found";
        push @recs, { path => $p, ino => $ino, mode => $mode, uid => $uid, gid => $gid, size => $size };
        push @queue, $p if ($mode & 0170000) == 0040000 && $p ne ".";
      }
    }
    open(my $s, ">", "$content.script") or die;
    print $s "stat <$_->{ino}>\n" for @recs;
    close $s;
    my (%info, $cur);
    for (split /\n/, debugfs("-f", "$content.script")) {
      if (/^Inode: (\d+)/) { $cur = $1; next }
      next unless defined $cur;
      $info{$cur}{links} = $1 if /\bLinks: (\d+)/;
      $info{$cur}{$1} = hex($2) if /^\s*(a|c|m|cr)time: 0x([0-9a-f]+)/;
      $info{$cur}{rdev} = ($1 + 0) . "," . ($2 + 0) if /^Device major\/minor number: (\d+):(\d+)/;
    }
    my %types = (0100000 => "f", 0040000 => "d", 0120000 => "l", 0010000 => "p", 0020000 => "c", 0060000 => "b");
    for my $r (@recs) {
      my $i = $info{$r->{ino}} or die "no stat for inode $r->{ino}\n";
      my $t = $types{$r->{mode} & 0170000} // "?";
      my @times = map { $i->{$_} // "?" } qw(a c m cr);
      my $mtime = (grep { $_ ne $times[2] } @times) ? join("/", @times) : $times[2];
      my $target = "-";
      if ($t eq "l") { $target = readlink("$content/$r->{path}") // "(rdump made no symlink)" }
      print join("\t", $r->{path}, $t, sprintf("%04o", $r->{mode} & 07777), $r->{uid}, $r->{gid},
        $t eq "f" ? $r->{size} : "-", $target, $i->{rdev} // "-", $mtime, $r->{ino}, $i->{links} // "?"), "\n";
    }
  ' "$img" "$content"
}

# erofs_fix IMAGE: raw records (stdin, from fsck.erofs --extract) with the
# mode, owner, inode and link count read from the image itself: dump.erofs
# gives each path's NID, links and owner, and the mode comes from the raw
# on-disk inode (dump.erofs prints only the low 9 bits).
erofs_fix() {
  local img=$1 meta
  meta=$(dump.erofs -s "$img" | sed -n 's/^Filesystem inode metadata start block: *//p')
  [[ $meta =~ ^[0-9]+$ ]] || fail "dump.erofs -s $img: no metadata start block"
  perl -e '
    use strict; use warnings;
    my ($img, $meta) = @ARGV;
    open(my $raw, "<:raw", $img) or die "$img: $!\n";
    # The block size: 1 << blkszbits, the byte at 12 in the superblock (at 1024).
    seek($raw, 1024 + 12, 0) or die;
    read($raw, my $bits, 1) == 1 or die;
    my $block = 1 << unpack("C", $bits);
    while (my $line = <STDIN>) {
      chomp $line;
      my @f = split /\t/, $line, -1;
      my $path = $f[0] eq "." ? "/" : "/$f[0]";
      open(my $fh, "-|", "dump.erofs", "--path=$path", $img) or die;
      my $out = do { local $/; <$fh> } // "";
      close $fh or die "dump.erofs --path=/$f[0] failed\n";
      my ($nid) = $out =~ /NID: (\d+)/ or die "dump.erofs: no NID for /$f[0]:\n$out";
      my ($links) = $out =~ /Links: (\d+)/;
      my ($uid, $gid) = $out =~ /Uid: (\d+)\s+Gid: (\d+)/;
      seek($raw, $meta * $block + $nid * 32 + 4, 0) or die;
      read($raw, my $m, 2) == 2 or die;
      $f[2] = sprintf("%04o", unpack("v", $m) & 07777);
      ($f[3], $f[4], $f[9], $f[10]) = ($uid, $gid, $nid, $links);
      print join("\t", @f), "\n";
    }
  ' "$img" "$meta"
}

# canonical CONTENT_DIR: raw records (stdin) sorted by path, with each
# file's sha256 (of CONTENT_DIR/path), its link count, and its hard-link
# group (the first path of the files sharing its inode, "-" for one alone);
# inode numbers left out.
canonical() {
  perl -e '
    use strict; use warnings;
    my $content = shift;
    my (@recs, %group);
    while (my $line = <STDIN>) {
      chomp $line;
      my @f = split /\t/, $line, -1;
      die "bad record: $line\n" unless @f == 11;
      push @recs, \@f;
    }
    @recs = sort { $a->[0] cmp $b->[0] } @recs;
    for my $r (@recs) { push @{$group{$r->[9]}}, $r->[0] if $r->[1] eq "f" }
    for my $r (@recs) {
      my ($sha, $links, $grp) = ("-", "-", "-");
      if ($r->[1] eq "f") {
        open(my $fh, "-|", "sha256sum", "--", "$content/$r->[0]") or die;
        ($sha) = split / /, scalar <$fh>;
        close $fh or die "sha256sum $content/$r->[0] failed\n";
        $links = $r->[10];
        my @g = @{$group{$r->[9]}};
        $grp = $g[0] if @g > 1;
      }
      print join("\t", @$r[0 .. 8], $sha, $links, $grp), "\n";
    }
  ' "$1"
}

# reference NAME STORE DATE: the image's tree (kiln export rootfs:, extracted
# by tar as root) in canonical form, into $T/NAME.ref. The tar has no entry
# for the root directory: it must be 0755 root:root, of the build DATE.
reference() {
  local name=$1 store=$2 date=$3
  kiln_ok "$name-rootfs" --store "$store" export "$REF" "rootfs:$T/$name-rootfs.tar"
  mkdir -p "$T/$name-ref"
  tar --numeric-owner -xpf "$T/$name-rootfs.tar" -C "$T/$name-ref" ||
    fail "tar cannot extract the exported rootfs"
  chown 0:0 "$T/$name-ref"
  chmod 0755 "$T/$name-ref"
  touch -d "@$date" "$T/$name-ref"
  list_dir "$T/$name-ref" | canonical "$T/$name-ref" >"$T/$name.ref"
}

# root_fs_listing FS PART OUT: the canonical listing of a root file system
# image (the partition's bytes) into OUT.
root_fs_listing() {
  local fs=$1 part=$2 out=$3 dir=$3.tree
  case $fs in
    ext4)
      list_ext4 "$part" "$dir" >"$out.raw" || fail "reading $part with debugfs"
      ;;
    erofs)
      fsck.erofs --extract="$dir" "$part" >"$out.fsck" 2>&1 || fail "fsck.erofs --extract: $(cat "$out.fsck")"
      list_dir "$dir" | erofs_fix "$part" >"$out.raw" || fail "reading $part with dump.erofs"
      ;;
    squashfs)
      unsquashfs -no-progress -d "$dir" "$part" >"$out.unsquashfs" 2>&1 ||
        fail "unsquashfs: $(cat "$out.unsquashfs")"
      list_dir "$dir" >"$out.raw"
      ;;
  esac
  canonical "$dir" <"$out.raw" >"$out"
}

# field FILE PATH N: field N (1-based) of PATH's line in a canonical listing.
field() { awk -F'\t' -v p="$2" -v n="$3" '$1 == p { print $n }' "$1"; }

# disk_layout JSON DISK: the GPT of DISK (sfdisk) and the root file system
# (blkid) are what the build's JSON describes; writes the root partition's
# bytes to DISK.root.
disk_layout() {
  local json=$1 disk=$2
  local fs guid
  fs=$(jq -r .disk.filesystem "$json")
  sfdisk --json "$disk" >"$disk.sfdisk.json" 2>"$disk.sfdisk.err" || fail "sfdisk cannot read $disk: $(cat "$disk.sfdisk.err")"
  local pt=$disk.sfdisk.json
  assert_eq gpt "$(jq -r .partitiontable.label "$pt")" "$fs: partition table type"
  assert_eq 512 "$(jq -r '.partitiontable.sectorsize // 512' "$pt")" "$fs: sector size"
  guid=$(jq -r .disk.diskGuid "$json")
  [[ $guid =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] || fail "$fs: diskGuid $guid"
  assert_eq "${guid^^}" "$(jq -r .partitiontable.id "$pt")" "$fs: the disk GUID in the GPT"
  assert_eq 1 "$(jq '.disk.partitions | length' "$json")" "$fs: partitions in the JSON (boot: none)"
  assert_eq 1 "$(jq '.partitiontable.partitions | length' "$pt")" "$fs: partitions in the GPT (boot: none)"
  assert_eq "$(jq -c '.disk.partitions[0] | {number: 1, type: (.type | ascii_upcase), uuid: (.guid | ascii_upcase), name, start: (.offset / 512), size: (.size / 512)}' "$json")" \
    "$(jq -c '.partitiontable.partitions[0] | {number: 1, type, uuid, name, start, size}' "$pt")" \
    "$fs: the root partition in the GPT against the JSON"
  assert_eq 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 "$(jq -r '.partitiontable.partitions[0].type' "$pt")" \
    "$fs: the root partition's type (Linux root x86-64)"
  assert_eq "$fs" "$(jq -r '.disk.partitions[0].filesystem' "$json")" "$fs: partitions[0].filesystem"
  local offset size
  offset=$(jq -r '.disk.partitions[0].offset' "$json")
  size=$(jq -r '.disk.partitions[0].size' "$json")
  ((offset % 1048576 == 0 && size % 1048576 == 0)) || fail "$fs: the root partition is not MiB-aligned: $offset + $size"
  ((offset + size + 1048576 <= $(stat -c %s "$disk"))) || fail "$fs: the root partition does not fit the disk with its backup GPT"
  dd if="$disk" of="$disk.root" bs=1M iflag=skip_bytes,count_bytes skip="$offset" count="$size" status=none
  blkid -p -o export "$disk" >"$disk.blkid" || fail "$fs: blkid -p finds nothing on the disk"
  assert_contains "$(cat "$disk.blkid")" "PTTYPE=gpt" "$fs: blkid of the whole disk"
  assert_contains "$(cat "$disk.blkid")" "PTUUID=$guid" "$fs: blkid of the whole disk"
  blkid -p -o export "$disk.root" >"$disk.root.blkid" || fail "$fs: blkid -p finds no file system in the root partition"
  assert_eq "$fs" "$(sed -n 's/^TYPE=//p' "$disk.root.blkid")" "$fs: blkid's TYPE of the root partition"
  assert_eq "$(jq -r '.disk.partitions[0].uuid' "$json")" "$(sed -n 's/^UUID=//p' "$disk.root.blkid")" \
    "$fs: blkid's UUID of the root partition against the JSON's"
  # The same, probed in place.
  blkid -p -o export -O "$offset" "$disk" >"$disk.root.blkid2" || true
  assert_eq "$fs" "$(sed -n 's/^TYPE=//p' "$disk.root.blkid2")" "$fs: blkid -O $offset on the disk"
}

# fs_check FS PART DATE: the file system tools find the image sound, and its
# own times are DATE.
fs_check() {
  local fs=$1 part=$2 date=$3
  case $fs in
    ext4)
      e2fsck -fn "$part" >"$part.e2fsck" 2>&1 || fail "e2fsck -fn: $(cat "$part.e2fsck")"
      dumpe2fs -h "$part" >"$part.dumpe2fs" 2>/dev/null || fail "dumpe2fs -h $part"
      local key
      for key in "Filesystem created" "Last write time" "Last checked"; do
        # dumpe2fs leaves out a creation time of 0.
        if [[ $date == 0 && $key == "Filesystem created" ]]; then
          assert_eq "" "$(sed -n "s/^$key: *//p" "$part.dumpe2fs")" "ext4 superblock: $key"
          continue
        fi
        assert_eq "$(when "$date")" "$(sed -n "s/^$key: *//p" "$part.dumpe2fs")" "ext4 superblock: $key"
      done
      ;;
    erofs)
      fsck.erofs "$part" >"$part.fsck" 2>&1 || fail "fsck.erofs: $(cat "$part.fsck")"
      assert_eq "$(when "$date")" "$(dump.erofs -s "$part" | sed -n 's/^Filesystem created: *//p')" "erofs superblock: created"
      ;;
    squashfs)
      assert_eq "$(when "$date")" "$(unsquashfs -s "$part" | sed -n 's/^Creation or last append time //p')" \
        "squashfs superblock: creation time"
      ;;
  esac
}

# perturbed CMD...: CMD from another working directory, with umask 077,
# another TMPDIR, time zone and locale (in a subshell).
mkdir -p "$T/elsewhere/deeper" "$T/tmp1" "$T/tmp2"
perturbed() {
  (
    cd "$T/elsewhere/deeper" || exit
    umask 077
    export TMPDIR=$T/tmp2 TZ=Pacific/Kiritimati LC_ALL=C.UTF-8
    exec "$@"
  )
}
# plain CMD...: CMD from $T with umask 022.
plain() { (cd "$T" && umask 022 && TMPDIR=$T/tmp1 exec "$@"); }

# A copy of the context: the files written in another order, each with its
# own odd mtime.
CTX2=$T/ctx-copy
mkdir -p "$CTX2"
for f in space.txt kiln.yaml big.bin; do cat "$CTX/$f" >"$CTX2/$f"; done
touch -d "2001-02-03 04:05:06" "$CTX2/big.bin"
touch -d "2037-12-31 23:59:59" "$CTX2/kiln.yaml"
touch -d "1999-12-31 23:59:59" "$CTX2/space.txt" "$CTX2"
# Stores on another file system (tmpfs lists directories in another order),
# so a staged tree read in readdir order would show.
ALT=$T/alt
if [[ -d /dev/shm && -w /dev/shm ]] && ALT=$(mktemp -d /dev/shm/kiln-test.XXXXXX); then
  CLEANUP_DIRS+=("$ALT")
else
  mkdir -p "$ALT"
fi
REL2=$(realpath --relative-to="$T/elsewhere/deeper" "$CTX2/kiln.yaml")

# --- each root file system -------------------------------------------------------
for fs in ext4 erofs squashfs; do
  S=$T/store-$fs
  step "$fs: build the image and its raw disk"
  plain "$KILN" --store "$S" build "$TEMPLATE" --set "FS=$fs" --source-date-epoch "$DATE" --json \
    >"$T/$fs.json" 2>"$T/$fs.err" || fail "$fs: build failed: $(cat "$T/$fs.err")"
  J=$T/$fs.json
  jq -e '.disk | type == "object"' "$J" >/dev/null || fail "$fs: no disk in the JSON: $(cat "$J")"
  assert_eq "raw|$fs|none|false" "$(jq -r '.disk | "\(.format)|\(.filesystem)|\(.boot)|\(.cached)"' "$J")" \
    "$fs: disk format|filesystem|boot|cached"
  [[ $(jq -r .disk.digest "$J") =~ ^sha256:[0-9a-f]{64}$ ]] || fail "$fs: disk.digest"
  [[ $(jq -r .disk.blob "$J") =~ ^sha256:[0-9a-f]{64}$ ]] || fail "$fs: disk.blob"
  assert_eq "$(jq -r .disk.size "$J")" "$(jq -r .disk.virtualSize "$J")" "$fs: a raw disk's size is its virtual size"
  image_hex=$(jq -r .digest "$J" | cut -d: -f2)
  assert_eq "$(jq -r .disk.digest "$J")" \
    "$(jq -r --arg t "oddtree:sha256-$image_hex.disk" \
      '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$S/index.json")" \
    "$fs: the store tags the disk artifact NAME:sha256-<image hex>.disk"
  "$KILN" --store "$S" inspect "$REF" --json >"$T/$fs.inspect.json"
  assert_eq "$(jq -c '.disk | del(.cached)' "$J")" "$(jq -c '.disk | del(.reference)' "$T/$fs.inspect.json")" \
    "$fs: kiln inspect --json's .disk against the build's"

  step "$fs: kiln export $REF disk:$fs.raw writes the disk blob"
  kiln_ok "$fs-export" --store "$S" export "$REF" "disk:$T/$fs.raw"
  D=$T/$fs.raw
  assert_eq "$(jq -r .disk.blob "$J")" "$(sha256_of "$D")" "$fs: sha256 of the exported disk against disk.blob"
  assert_eq "$(jq -r .disk.size "$J")" "$(stat -c %s "$D")" "$fs: size of the exported disk against disk.size"
  kiln_ok "$fs-export-img" --store "$S" export "$REF" "disk:$T/$fs.img"
  cmp -s "$D" "$T/$fs.img" || fail "$fs: disk:x.img and disk:x.raw differ"

  step "$fs: the GPT and blkid agree with the JSON"
  disk_layout "$J" "$D"
  fs_check "$fs" "$D.root" "$DATE"

  step "$fs: the root file system holds exactly the image's tree"
  reference "$fs" "$S" "$DATE"
  root_fs_listing "$fs" "$D.root" "$T/$fs.disk"
  if ! cmp -s "$T/$fs.ref" "$T/$fs.disk"; then
    fail "$fs: the root file system differs from the image's tree (path type mode uid gid size target rdev mtime sha256 links group):"$'\n'"$(diff -u "$T/$fs.ref" "$T/$fs.disk" | head -60)"
  fi
done

# The reference itself has the awkward entries (else the comparison says little).
step "the image's tree has the awkward entries"
R=$T/ext4.ref
want() {  # PATH EXPECTED(type mode uid gid size target rdev mtime) [group]
  local got
  got=$(awk -F'\t' -v p="$1" '$1 == p { print $2, $3, $4, $5, $6, $7, $8, $9 }' "$R")
  assert_eq "$2" "$got" "/$1 in the image's tree"
}
want srv/odd/user-file "f 0640 1000 1000 14 - - $DATE"
want srv/odd/setuid "f 4755 0 0 17 - - $DATE"
want srv/odd/sticky "d 1777 0 0 - - - $DATE"
want srv/odd/nonroot-dir "d 0700 65532 65532 - - - $DATE"
want srv/odd/empty "f 0644 0 0 0 - - $DATE"
want srv/odd/big.bin "f 0644 0 0 3000000 - - $DATE"
want "srv/odd/with space.txt" "f 0644 0 0 20 - - $DATE"
want srv/odd/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/deep.txt "f 0644 0 0 5 - - $DATE"
want srv/odd/abs-link "l 0777 0 0 - /etc/hello.txt - $DATE"
want srv/odd/rel-link "l 0777 0 0 - ../../usr/bin/hello - $DATE"
want srv/odd/long-link "l 0777 0 0 - $LONG_TARGET - $DATE"
want srv/odd/fifo "p 0620 0 0 - - - $DATE"
if [[ -n $DEVICE ]]; then want srv/odd/null "c 0666 0 0 - - 1,3 $DATE"; fi
assert_eq "2 2" "$(field "$R" srv/odd/original.txt 11) $(field "$R" srv/odd/hardlink.txt 11)" "link counts of the hard link pair"
assert_eq "$(field "$R" srv/odd/original.txt 12)" "$(field "$R" srv/odd/hardlink.txt 12)" "hard-link group of the pair"
[[ ${#LONG_TARGET} -gt 60 ]] || fail "the long symlink target should be over 60 bytes"
# All three file systems hold the same tree (their images differ only in
# the disk section of the manifest).
if ! cmp -s "$T/ext4.ref" "$T/erofs.ref" || ! cmp -s "$T/ext4.ref" "$T/squashfs.ref"; then
  fail "the three images' trees differ"
fi

# --- reproducibility --------------------------------------------------------------
for fs in ext4 erofs squashfs; do
  J=$T/$fs.json
  step "$fs: a perturbed build into a fresh store gives the same disk, byte for byte"
  S2=$ALT/store2-$fs
  perturbed "$KILN" --store "$S2" build "$REL2" --set "FS=$fs" --source-date-epoch "$DATE" --json \
    >"$T/$fs-2.json" 2>"$T/$fs-2.err" || fail "$fs: perturbed build failed: $(cat "$T/$fs-2.err")"
  assert_eq "$(jq -r .digest "$J")" "$(jq -r .digest "$T/$fs-2.json")" "$fs: the image's digest, perturbed"
  assert_eq "$(jq -c '.disk | del(.cached)' "$J")" "$(jq -c '.disk | del(.cached)' "$T/$fs-2.json")" \
    "$fs: the disk (digest, blob, GUIDs, partitions), perturbed"
  kiln_ok "$fs-export2" --store "$S2" export "$REF" "disk:$ALT/$fs-2.raw"
  cmp "$T/$fs.raw" "$ALT/$fs-2.raw" >"$T/$fs.cmp" 2>&1 || fail "$fs: the two exported disks differ: $(cat "$T/$fs.cmp")"

  step "$fs: a rebuild into the same store takes the stored disk"
  S=$T/store-$fs
  disk_blob=$(blob_path "$S" "$(jq -r .disk.blob "$J")")
  disk_manifest=$(blob_path "$S" "$(jq -r .disk.digest "$J")")
  before=$(stat -c '%i %Y %s' "$disk_blob" "$disk_manifest")
  plain "$KILN" --store "$S" build "$TEMPLATE" --set "FS=$fs" --source-date-epoch "$DATE" --json \
    >"$T/$fs-3.json" 2>"$T/$fs-3.err" || fail "$fs: rebuild failed: $(cat "$T/$fs-3.err")"
  assert_eq true "$(jq -r .disk.cached "$T/$fs-3.json")" "$fs: .disk.cached of the rebuild"
  assert_eq "$(jq -c '.disk | del(.cached)' "$J")" "$(jq -c '.disk | del(.cached)' "$T/$fs-3.json")" "$fs: the rebuild's disk"
  assert_eq "$before" "$(stat -c '%i %Y %s' "$disk_blob" "$disk_manifest")" "$fs: the stored disk blob and manifest were rewritten"
  assert_eq 0 "$(find "$S/kiln/tmp" -mindepth 1 | wc -l)" "$fs: files left in the store's tmp"

  step "$fs: another build date gives another disk, with that date in the file system"
  S3=$T/store3-$fs
  plain "$KILN" --store "$S3" build "$TEMPLATE" --set "FS=$fs" --source-date-epoch "$DATE2" --json \
    >"$T/$fs-4.json" 2>"$T/$fs-4.err" || fail "$fs: build with another date failed: $(cat "$T/$fs-4.err")"
  assert_ne "$(jq -r .disk.blob "$J")" "$(jq -r .disk.blob "$T/$fs-4.json")" "$fs: disk.blob with --source-date-epoch $DATE2 vs $DATE"
  kiln_ok "$fs-export4" --store "$S3" export "$REF" "disk:$T/$fs-4.raw"
  disk_layout "$T/$fs-4.json" "$T/$fs-4.raw"
  fs_check "$fs" "$T/$fs-4.raw.root" "$DATE2"
  root_fs_listing "$fs" "$T/$fs-4.raw.root" "$T/$fs-4.disk"
  assert_eq "$DATE2" "$(cut -f9 "$T/$fs-4.disk" | sort -u)" "$fs: every time in the file system built on $DATE2"
done

# --- qcow2 -----------------------------------------------------------------------------
step "qcow2: format: qcow2 gives a qcow2 of the virtual size the JSON says"
SQ=$T/store-qcow2
plain "$KILN" --store "$SQ" build "$TEMPLATE" --set FORMAT=qcow2 --source-date-epoch "$DATE" --json \
  >"$T/q.json" 2>"$T/q.err" || fail "qcow2 build failed: $(cat "$T/q.err")"
assert_eq "qcow2|ext4|none" "$(jq -r '.disk | "\(.format)|\(.filesystem)|\(.boot)"' "$T/q.json")" "qcow2: format|filesystem|boot"
kiln_ok q-export --store "$SQ" export "$REF" "disk:$T/q.qcow2"
assert_eq "$(jq -r .disk.blob "$T/q.json")" "$(sha256_of "$T/q.qcow2")" "qcow2: sha256 of disk:x.qcow2 against disk.blob"
assert_eq "$(jq -r .disk.size "$T/q.json")" "$(stat -c %s "$T/q.qcow2")" "qcow2: size of disk:x.qcow2 against disk.size"
qemu-img info --output=json "$T/q.qcow2" >"$T/q.info" 2>"$T/q.info.err" || fail "qemu-img info: $(cat "$T/q.info.err")"
assert_eq qcow2 "$(jq -r .format "$T/q.info")" "qemu-img's format"
assert_eq "$(jq -r .disk.virtualSize "$T/q.json")" "$(jq -r '."virtual-size"' "$T/q.info")" "qemu-img's virtual-size against virtualSize"
qemu-img check -q "$T/q.qcow2" >"$T/q.check" 2>&1 || fail "qemu-img check: $(cat "$T/q.check")"

step "qcow2: a perturbed build into a fresh store gives the same qcow2"
perturbed "$KILN" --store "$ALT/store2-qcow2" build "$REL2" --set FORMAT=qcow2 --source-date-epoch "$DATE" --json \
  >"$T/q2.json" 2>"$T/q2.err" || fail "perturbed qcow2 build failed: $(cat "$T/q2.err")"
assert_eq "$(jq -c '.disk | del(.cached)' "$T/q.json")" "$(jq -c '.disk | del(.cached)' "$T/q2.json")" "qcow2: the disk, perturbed"
kiln_ok q-export2 --store "$ALT/store2-qcow2" export "$REF" "disk:$ALT/q2.qcow2"
cmp -s "$T/q.qcow2" "$ALT/q2.qcow2" || fail "qcow2: the two exported qcow2 files differ"

step "qcow2: kiln export disk:x.raw converts it to the raw disk the JSON describes"
kiln_ok q-export-raw --store "$SQ" export "$REF" "disk:$T/q.raw"
assert_eq "$(jq -r .disk.virtualSize "$T/q.json")" "$(stat -c %s "$T/q.raw")" "qcow2 exported as raw: size"
qemu-img convert -f qcow2 -O raw "$T/q.qcow2" "$T/q-by-qemu.raw"
cmp -s "$T/q.raw" "$T/q-by-qemu.raw" || fail "kiln export disk:x.raw of the qcow2 disk differs from qemu-img convert's"
disk_layout "$T/q.json" "$T/q.raw"
fs_check ext4 "$T/q.raw.root" "$DATE"
# The raw build of the same template: the image differs only in the disk
# section the manifest records (format: qcow2 vs raw), so the GUIDs and UUIDs
# derived from the image digest differ, and the bytes with them; the trees
# must not.
if [[ $(jq -r .digest "$T/q.json") == "$(jq -r .digest "$T/ext4.json")" ]]; then
  cmp -s "$T/q.raw" "$T/ext4.raw" || fail "qcow2 exported as raw differs from the raw build of the same image"
else
  step "note: format is part of the image (the disk annotation): qcow2 and raw builds have other GUIDs; comparing their trees"
  root_fs_listing ext4 "$T/q.raw.root" "$T/q.disk"
  assert_file_eq "$T/ext4.disk" "$T/q.disk" "the root file system of the qcow2 build against the raw build's"
fi

step "a raw disk exported as disk:x.qcow2 converts back to the same bytes"
kiln_ok raw-as-qcow2 --store "$T/store-ext4" export "$REF" "disk:$T/ext4-as.qcow2"
assert_eq qcow2 "$(qemu-img info --output=json "$T/ext4-as.qcow2" | jq -r .format)" "format of disk:x.qcow2 of a raw disk"
qemu-img convert -f qcow2 -O raw "$T/ext4-as.qcow2" "$T/ext4-back.raw"
cmp -s "$T/ext4.raw" "$T/ext4-back.raw" || fail "raw -> qcow2 -> raw changed the disk"

# --- exporting to another file system -------------------------------------------------
# The store of the perturbed builds is on tmpfs when /dev/shm is there; $T is
# not: `kiln export` must copy the disk across file systems.
if [[ $ALT == /dev/shm/* && $(stat -f -c %T "$ALT") != "$(stat -f -c %T "$T")" ]]; then
  for fs in ext4 squashfs; do
    step "$fs: kiln export from a store on $(stat -f -c %T "$ALT") to a file on $(stat -f -c %T "$T")"
    kiln_ok "$fs-export-xdev" --store "$ALT/store2-$fs" export "$REF" "disk:$T/$fs-xdev.raw"
    cmp -s "$T/$fs.raw" "$T/$fs-xdev.raw" || fail "$fs: the disk exported across file systems differs"
  done
  step "qcow2: kiln export from a store on $(stat -f -c %T "$ALT") to a file on $(stat -f -c %T "$T")"
  kiln_ok q-export-xdev --store "$ALT/store2-qcow2" export "$REF" "disk:$T/q-xdev.qcow2"
  cmp -s "$T/q.qcow2" "$T/q-xdev.qcow2" || fail "qcow2: the disk exported across file systems differs"
else
  step "note: no tmpfs beside $T: exporting across file systems is not tested"
fi

# --- the default build date, 0 -----------------------------------------------------
# Last: 0 is special to e2fsprogs (E2FSPROGS_FAKE_TIME=0 means "now"), so
# kiln writes ext4's times at the epoch's first second, 1. Two builds in
# other seconds of the wall clock must agree.
for fs in ext4 erofs squashfs; do
  plain "$KILN" --store "$T/store0-$fs" build "$TEMPLATE" --set "FS=$fs" --json \
    >"$T/$fs-0.json" 2>"$T/$fs-0.err" || fail "$fs: build at date 0 failed: $(cat "$T/$fs-0.err")"
done
sleep 1.1
for fs in ext4 erofs squashfs; do
  epoch=0
  [[ $fs == ext4 ]] && epoch=1
  step "$fs: the default build date (0): two builds a second apart agree, every time in the file system is $epoch"
  plain "$KILN" --store "$T/store0b-$fs" build "$TEMPLATE" --set "FS=$fs" --json \
    >"$T/$fs-0b.json" 2>"$T/$fs-0b.err" || fail "$fs: build at date 0 failed: $(cat "$T/$fs-0b.err")"
  assert_eq "$(jq -c .disk "$T/$fs-0.json")" "$(jq -c .disk "$T/$fs-0b.json")" "$fs: two disks built at date 0, a second apart"
  kiln_ok "$fs-export0" --store "$T/store0-$fs" export "$REF" "disk:$T/$fs-0.raw"
  disk_layout "$T/$fs-0.json" "$T/$fs-0.raw"
  root_fs_listing "$fs" "$T/$fs-0.raw.root" "$T/$fs-0.disk"
  assert_eq "$epoch" "$(cut -f9 "$T/$fs-0.disk" | sort -u | tr "\n" " " | sed "s/ \$//")" "$fs: the times in the file system built on date 0"
  fs_check "$fs" "$T/$fs-0.raw.root" "$epoch"
done
