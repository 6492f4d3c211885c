#!/usr/bin/env bash
# A bad disk: section is refused with exit 1 and a message naming the problem
# at file:line:col (with the line and a caret), and nothing is named or left
# behind: no NAME:VERSION tag, no NAME:sha256-<hex>.disk tag, nothing in the
# store's kiln/tmp, the working directory or TMPDIR, and no disk-sized file or
# GPT/qcow2 image anywhere. What the template alone shows is refused before
# any layer is written (the store is exactly as it was); what needs the
# image's tree (disk.size against the content, the kernel) is refused after
# the layers are built, before any disk is written. Also `kiln export
# disk:FILE` of an image without a disk.
# Every bad template extends examples/hello and adds a 3 MB file.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool jq perl sha256sum

S=$T/store
CWD=$T/cwd    # kiln runs here
TMPD=$T/tmpdir # and with this TMPDIR
mkdir -p "$CWD" "$TMPD"
step "store with hello:1.0.0"
build_digest --store "$S" build "$HELLO" >/dev/null
FINGERPRINT=$(store_fingerprint "$S")
INDEX=$(sha256sum <"$S/index.json")

W=$T/ctx # the build context of the bad templates
mkdir -p "$W"
perl -e 'my $s = 7; print pack("N*", map { $s = ($s * 1103515245 + 12345) % 2147483648 } 1 .. 750000)' >"$W/big.bin"

# bad NAME: writes $W/NAME.yaml, a template extending hello with a layer
# holding the 3 MB file, then "disk:" and stdin (the disk section's lines);
# prints its path.
bad() {
  local f=$W/$1.yaml
  {
    cat <<EOF
apiVersion: kiln.dev/v1
extends: $HELLO
name: bad
version: 1.0.0
layers:
  - name: data
    files:
      - {src: big.bin, dest: /srv/big.bin}
disk:
EOF
    cat
  } >"$f"
  echo "$f"
}

# kiln ARGS...: kiln on $S, from $CWD, with TMPDIR=$TMPD.
kiln() { env -C "$CWD" TMPDIR="$TMPD" "$KILN" --store "$S" "$@"; }

# is_disk FILE: FILE starts like a GPT disk (protective MBR, "EFI PART" at
# 512) or a qcow2 image ("QFI\xfb").
is_disk() {
  perl -e 'open(my $f, "<:raw", $ARGV[0]) or exit 1; read($f, my $b, 520);
           exit((substr($b, 0, 4) eq "QFI\xfb" || substr($b, 512, 8) eq "EFI PART") ? 0 : 1)' "$1"
}

# nothing_written WHAT: no tag was added, nothing was left in the store's
# tmp, $CWD or $TMPD, and no file under $T (but the controls' store) is
# over 4 MiB (the layer holding the 3 MB file is under it, any disk of it
# over it) or a disk image.
nothing_written() {
  local what=$1 f
  assert_eq "$INDEX" "$(sha256sum <"$S/index.json")" "$what: the store's index changed (a tag was added)"
  assert_eq '["hello:1.0.0"]' "$("$KILN" --store "$S" images --json | jq -c '[.[].name]')" "$what: kiln images"
  assert_eq "" "$(jq -r '.manifests[].annotations["org.opencontainers.image.ref.name"] // empty | select(endswith(".disk"))' "$S/index.json")" \
    "$what: a disk tag in the store's index"
  assert_eq "" "$(find "$S/kiln/tmp" "$CWD" "$TMPD" -mindepth 1 2>/dev/null)" "$what: files left behind"
  assert_eq "" "$(find "$T" -path "$T/control" -prune -o -type f -size +4M -print 2>/dev/null)" "$what: a file over 4 MiB"
  while IFS= read -r -d '' f; do
    if is_disk "$f"; then fail "$what: a disk image was written: $f"; fi
  done < <(find "$T" -path "$T/control" -prune -o -type f -size +16k -print0)
}

# template_case WHAT FILE AT MESSAGE: building FILE fails with exit 1 and
# MESSAGE at the line and column where AT starts, before anything else is
# said or done: the store is exactly as it was.
template_case() {
  local what=$1 f=$2 at=$3 msg=$4 where
  step "$what"
  where=$(loc "$f" "$at")
  expect_template_error "$f" "${where% *}" "${where#* }" "$msg" kiln build "$f"
  assert_eq "" "$OUT" "$what: stdout"
  assert_eq "$FINGERPRINT" "$(store_fingerprint "$S")" "the store changed after: $what"
  nothing_written "$what"
}

# disk_case WHAT FILE AT MESSAGE: as template_case, for what only the
# image's tree shows: the layers are built first (their progress comes before
# the error, which may say what kiln was doing), and no disk is
# written or named.
disk_case() {
  local what=$1 f=$2 at=$3 msg=$4 where line col
  step "$what"
  where=$(loc "$f" "$at")
  line=${where% *} col=${where#* }
  expect_error 1 "$msg" kiln build "$f"
  assert_eq "" "$OUT" "$what: stdout"
  local first src caret
  first=$(sed -n 1p <<<"$ERR")
  src=$(sed -n 2p <<<"$ERR")
  caret=$(sed -n 3p <<<"$ERR")
  # (after what kiln was doing, such as "planning the disk image: ", if it says)
  [[ $first == "kiln: error: $f:$line:$col: "* || $first =~ ^"kiln: error: "[a-z\ ]+": $f:$line:$col: " ]] ||
    fail "$what: the error is not at $f:$line:$col"$'\n'"  $first"
  assert_contains "$first" "$msg" "message on the location line"
  assert_eq "$(sed -n "${line}p" "$f")" "$src" "second stderr line is the template's line $line"
  assert_eq "$(printf '%*s^' $((col - 1)) '')" "$caret" "third stderr line is a caret under column $col"
  assert_eq 3 "$(wc -l <<<"$ERR")" "$what: the error is three lines"
  nothing_written "$what"
}

# --- what the template alone shows ---------------------------------------------
f=$(bad bios <<'EOF'
  filesystem: ext4
  boot: bios
EOF
)
template_case "boot: bios" "$f" "bios" \
  'disk.boot "bios" is not supported: kiln boots through UEFI with systemd-boot (boot: systemd-boot), or writes a disk without a boot loader (boot: none)'

f=$(bad xfs <<'EOF'
  filesystem: xfs
  boot: none
EOF
)
template_case "filesystem: xfs" "$f" "xfs" 'not "xfs"'
assert_contains "$ERR" "disk.filesystem must be ext4, erofs" "the file systems kiln can write"
assert_contains "$ERR" 'squashfs, not "xfs"' "the file systems kiln can write"

f=$(bad format_vmdk <<'EOF'
  format: vmdk
  boot: none
EOF
)
template_case "format: vmdk" "$f" "vmdk" 'not "vmdk"'
assert_contains "$ERR" "disk.format must be raw" "the formats kiln can write"
assert_contains "$ERR" "qcow2" "the formats kiln can write"

f=$(bad unknown_key <<'EOF'
  boot: none
  filesytem: erofs
EOF
)
template_case "unknown key under disk" "$f" "filesytem" 'unknown key "filesytem" in disk (did you mean "filesystem"?)'

f=$(bad unknown_initrd_key <<'EOF'
  initrd:
    modulez: [virtio_blk]
EOF
)
template_case "unknown key under disk.initrd" "$f" "modulez" 'unknown key "modulez" in disk.initrd (did you mean "modules"?)'

f=$(bad size_words <<'EOF'
  boot: none
  size: lots
EOF
)
template_case "size: lots" "$f" "lots" 'disk.size must be auto or a size such as 2GiB or 512MiB (at most 1 PiB), not "lots"'

f=$(bad modules_without_boot <<'EOF'
  boot: none
  initrd:
    modules: [virtio_blk]
EOF
)
# At the initrd's value (its first key).
template_case "initrd.modules with boot: none" "$f" "modules:" 'disk.initrd needs a boot loader, and disk.boot is none'

f=$(bad kernel_without_boot <<'EOF'
  boot: none
  kernel: /boot/vmlinuz-6.1.0
EOF
)
template_case "kernel with boot: none" "$f" "/boot/vmlinuz-6.1.0" 'disk.kernel needs a boot loader, and disk.boot is none'

f=$(bad cmdline_root <<'EOF'
  kernel: /boot/vmlinuz-6.1.0
  cmdline: console=ttyS0 root=/dev/sda
EOF
)
template_case "cmdline: root=/dev/sda" "$f" "console=ttyS0 root=" \
  "disk.cmdline sets root=, which kiln sets to the disk's root partition"

f=$(bad cmdline_rootfstype <<'EOF'
  kernel: /boot/vmlinuz-6.1.0
  cmdline: "rootfstype=xfs quiet"
EOF
)
template_case "cmdline: rootfstype=xfs" "$f" '"rootfstype=' 'disk.cmdline sets rootfstype=, which kiln sets'

# --- what needs the image's tree ---------------------------------------------------
f=$(bad size_small <<'EOF'
  filesystem: ext4
  boot: none
  size: 2MiB
EOF
)
disk_case "size: 2MiB for 3 MB of files" "$f" "2MiB" 'disk.size 2 MiB is too small: the content needs at least '
assert_contains "$ERR" "MiB (3.0 MB in files)" "what the content needs"
NEED=$(sed -n '1s/.*needs at least \([0-9]*\) MiB.*/\1/p' <<<"$ERR")
[[ $NEED =~ ^[0-9]+$ ]] || fail "no size in: $ERR"
((NEED > 3 && NEED < 64)) || fail "the content of 3 MB needs $NEED MiB?"

f=$(bad no_kernel <<'EOF'
  filesystem: ext4
EOF
)
# boot: systemd-boot (the default) needs a kernel; the error is at the disk
# section (its first key).
disk_case "boot: systemd-boot (the default) without a kernel" "$f" "filesystem: ext4" \
  'disk: the image has no kernel (no /boot/vmlinuz-*): add a kernel package such as linux-image-cloud-amd64, or name the kernel with disk.kernel'


f=$(bad kernel_missing <<'EOF'
  kernel: /boot/vmlinuz-nothere
EOF
)
disk_case "kernel: a path not in the image" "$f" "/boot/vmlinuz-nothere" \
  'disk.kernel: /boot/vmlinuz-nothere is not a file in the image'

# --- export ------------------------------------------------------------------------------
step "kiln export hello:1.0.0 disk:x.raw: hello has no disk"
expect_error 1 "hello:1.0.0 has no disk image" kiln export hello:1.0.0 disk:x.raw
assert_contains "$ERR" "its template has no disk: section" "why there is no disk"
assert_eq 1 "$(wc -l <<<"$ERR")" "the export error is one line"
assert_eq "$FINGERPRINT" "$(store_fingerprint "$S")" "the store changed after an export without a disk"
nothing_written "kiln export disk:x.raw of an image without a disk"
expect_error 1 "hello:1.0.0 has no disk image" kiln export hello:1.0.0 "disk:$CWD/x.qcow2"
nothing_written "kiln export disk:x.qcow2 of an image without a disk"

# --- controls ------------------------------------------------------------------------------
# The size the message names is enough: it is what the content needs, not a
# guess (in another store; this writes a disk).
if command -v mke2fs >/dev/null && command -v debugfs >/dev/null && command -v e2fsck >/dev/null; then
  step "control: size: ${NEED}MiB, the size the message named, builds; $((NEED - 1))MiB does not"
  f=$(bad size_enough <<EOF
  filesystem: ext4
  boot: none
  size: ${NEED}MiB
EOF
  )
  "$KILN" --store "$T/control" build "$f" --json >"$T/enough.json" 2>"$T/enough.err" ||
    fail "size: ${NEED}MiB does not build: $(cat "$T/enough.err")"
  assert_eq "$((NEED * 1048576))" "$(jq -r .disk.virtualSize "$T/enough.json")" "virtualSize of a disk of size: ${NEED}MiB"
  sed -i "s/size: ${NEED}MiB/size: $((NEED - 1))MiB/" "$f"
  expect_error 1 "disk.size $((NEED - 1)) MiB is too small: the content needs at least $NEED MiB" \
    "$KILN" --store "$T/control" build "$f"
else
  step "SKIP the size control (needs e2fsprogs)"
fi

# --- last: a file that is not a kernel -----------------------------------------------
# The layer holding /etc/hello.txt is in the cache since hello:1.0.0 was built:
# the error must be the same as in a fresh store.
# (A boot loader that exists, so that the kernel is what is wrong.)
f=$(bad not_a_kernel <<'EOF'
  boot: systemd-boot
  bootloader: /usr/bin/hello
  kernel: /etc/hello.txt
EOF
)
disk_case "kernel: /etc/hello.txt" "$f" "/etc/hello.txt" \
  'disk.kernel: /etc/hello.txt is not a Linux kernel with an EFI stub'
