#!/usr/bin/env bash
# examples/webserver as a machine: `kiln build --locked --json` makes the OCI
# image and, from its disk: section, a qcow2 GPT disk (systemd-boot on an EFI
# system partition, the Debian cloud kernel, an initramfs kiln builds, the
# image's tree as a read-only ext4 root). The JSON describes the disk, `kiln
# export NAME:TAG disk:FILE` writes exactly that blob, its ESP boots the
# image's own systemd-boot, and QEMU with OVMF (software emulation, no KVM)
# boots it to busybox httpd answering on port 80: the image's /sbin/init
# prints "kiln-webserver: ready" and the page's first line on the serial
# console. A second build into another store, from another working directory,
# TMPDIR, umask, time zone and locale, gives the same disk bytes.
# Uses the network (the Debian mirror the lock names): skipped (exit 77, as
# debian_base.sh) when the mirror cannot be reached or no longer serves a
# locked version — then `kiln lock examples/webserver/kiln.yaml` refreshes it.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../mirror_lib.sh
source "$(dirname "$0")/../mirror_lib.sh"
need_tool qemu-system-x86_64 qemu-img sfdisk mcopy

EX=$SRC_DIR/examples/webserver
TEMPLATE=$EX/kiln.yaml
LOCK=$EX/kiln.lock
[[ -f $TEMPLATE && -f $LOCK ]] || fail "no $TEMPLATE with its lock"
S=$T/store
# One build date for both builds: a real date (FAT cannot hold times before
# 1980, so the default 0 is a special case, not the common one).
export SOURCE_DATE_EPOCH=1700000000
MARKER="kiln-webserver: ready"
BOOT_TIMEOUT=${KILN_DISK_BOOT_TIMEOUT:-300}  # seconds; TCG is slow on a busy machine

# OVMF: the 4 MiB build Debian 12's ovmf package ships, else the 2 MiB one.
OVMF_CODE='' OVMF_VARS=''
for pair in OVMF_CODE_4M.fd:OVMF_VARS_4M.fd OVMF_CODE.fd:OVMF_VARS.fd; do
  if [[ -f /usr/share/OVMF/${pair%%:*} && -f /usr/share/OVMF/${pair#*:} ]]; then
    OVMF_CODE=/usr/share/OVMF/${pair%%:*} OVMF_VARS=/usr/share/OVMF/${pair#*:}
    break
  fi
done
[[ -n $OVMF_CODE ]] || fail "no OVMF firmware in /usr/share/OVMF (./setup.sh installs ovmf)"

# QEMU runs in the background: it is always stopped, by its PID, on exit.
QEMU_PID=
stop_qemu() {
  [[ -n $QEMU_PID ]] || return 0
  kill "$QEMU_PID" 2>/dev/null || true
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$QEMU_PID" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL "$QEMU_PID" 2>/dev/null || true
  wait "$QEMU_PID" 2>/dev/null || true
  QEMU_PID=
}
trap 'rc=$?; set +e; stop_qemu; (exit "$rc"); _cleanup' EXIT
SKIP_CLEANUP=stop_qemu
LOCKED_TEMPLATE=$TEMPLATE  # what the builds' skip message names (copies too)
need_mirror "$LOCK"

# perturbed CMD...: CMD from another working directory, with another umask,
# TMPDIR, time zone and locale (in a subshell: nothing leaks back).
perturbed() {
  (
    cd "$T/elsewhere/deeper"
    umask 077
    export TMPDIR=$T/tmp2 TZ=Pacific/Kiritimati LC_ALL=C.UTF-8
    exec "$@"
  )
}

# serial_tail: the end of the serial log, without the firmware's escape codes.
serial_tail() {
  tr -d '\r' <"$T/serial.log" 2>/dev/null | sed 's/\x1b\[[0-9;?=]*[a-zA-Z]//g' | tail -n "${1:-40}"
}

step "kiln build --locked --json: the image and its disk"
lock_before=$(sha256sum "$LOCK")
build_locked build "$KILN" --store "$S" build "$TEMPLATE"
assert_eq "$lock_before" "$(sha256sum "$LOCK")" "the checked-in lock is left as it is"
REF=$(jq -r .reference "$T/build.json")
assert_eq "webserver:1.0.0" "$REF" "reference of the build"
jq -e '.disk | type == "object"' "$T/build.json" >/dev/null ||
  fail "the build's JSON has no disk object: $(jq -c 'del(.layers)' "$T/build.json")"
DISK_DIGEST=$(jq -r .disk.digest "$T/build.json")
DISK_BLOB=$(jq -r .disk.blob "$T/build.json")
DISK_SIZE=$(jq -r .disk.size "$T/build.json")
[[ $DISK_DIGEST =~ ^sha256:[0-9a-f]{64}$ ]] || fail "disk.digest: $DISK_DIGEST"
[[ $DISK_BLOB =~ ^sha256:[0-9a-f]{64}$ ]] || fail "disk.blob: $DISK_BLOB"
assert_ne "$DISK_DIGEST" "$DISK_BLOB" "the disk artifact's manifest and the disk file"
assert_ne "$(jq -r .digest "$T/build.json")" "$DISK_DIGEST" "the image's manifest and the disk's"
assert_eq qcow2 "$(jq -r .disk.format "$T/build.json")" "disk.format (the template says qcow2)"
if [[ ! $DISK_SIZE =~ ^[0-9]+$ ]] || ((DISK_SIZE == 0)); then fail "disk.size: $DISK_SIZE"; fi

step "kiln export $REF disk:webserver.qcow2 writes that blob"
kiln_ok export --store "$S" export "$REF" "disk:$T/webserver.qcow2"
QCOW=$T/webserver.qcow2
[[ -f $QCOW ]] || fail "kiln export wrote no $QCOW"
assert_eq "$DISK_BLOB" "$(sha256_of "$QCOW")" "the exported disk's sha256 against disk.blob"
assert_eq "$DISK_SIZE" "$(stat -c %s "$QCOW")" "the exported disk's size against disk.size"
qemu-img info --output=json "$QCOW" >"$T/qemu-img.json" 2>"$T/qemu-img.err" ||
  fail "qemu-img info $QCOW: $(cat "$T/qemu-img.err")"
assert_eq qcow2 "$(jq -r .format "$T/qemu-img.json")" "qemu-img's idea of the format"
qemu-img check -q "$QCOW" >"$T/check.out" 2>&1 || fail "qemu-img check $QCOW: $(cat "$T/check.out")"

step "the disk: a GPT with an EFI system partition holding the image's systemd-boot"
qemu-img convert -f qcow2 -O raw "$QCOW" "$T/disk.raw"
sfdisk --json "$T/disk.raw" >"$T/pt.json" 2>"$T/sfdisk.err" || fail "sfdisk cannot read the disk: $(cat "$T/sfdisk.err")"
assert_eq gpt "$(jq -r .partitiontable.label "$T/pt.json")" "partition table type"
jq -e '.partitiontable.partitions | length >= 2' "$T/pt.json" >/dev/null ||
  fail "fewer than two partitions: $(jq -c .partitiontable.partitions "$T/pt.json")"
esp_start=$(jq -r '[.partitiontable.partitions[] | select(.type == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B")][0].start // empty' "$T/pt.json")
[[ -n $esp_start ]] || fail "no EFI system partition: $(jq -c .partitiontable.partitions "$T/pt.json")"
sector=$(jq -r '.partitiontable.sectorsize // 512' "$T/pt.json")
MTOOLS_SKIP_CHECK=1 mcopy -n -i "$T/disk.raw@@$((esp_start * sector))" ::/EFI/BOOT/BOOTX64.EFI "$T/bootx64.efi" 2>"$T/mcopy.err" ||
  fail "no /EFI/BOOT/BOOTX64.EFI on the ESP (the removable-media path OVMF boots without boot entries): $(cat "$T/mcopy.err")"
kiln_ok rootfs --store "$S" export "$REF" "rootfs:$T/rootfs.tar"
tar -xOf "$T/rootfs.tar" usr/lib/systemd/boot/efi/systemd-bootx64.efi >"$T/systemd-bootx64.efi" ||
  fail "the image has no usr/lib/systemd/boot/efi/systemd-bootx64.efi"
assert_file_eq "$T/systemd-bootx64.efi" "$T/bootx64.efi" "BOOTX64.EFI against the image's systemd-bootx64.efi"

# boot DISK FORMAT: QEMU + OVMF boots DISK until the marker is on the serial
# console ($T/serial.log), then is stopped.
boot() {
  local disk=$1 format=$2 started
  cp "$OVMF_VARS" "$T/ovmf-vars.fd"
  : >"$T/serial.log"
  started=$SECONDS
  # -nodefaults: no VGA, DVD drive or NIC (OVMF tries none of them first);
  # -no-reboot: a reset or a kernel panic with panic=N ends QEMU.
  qemu-system-x86_64 -machine q35 -accel tcg -m 512 -smp 1 \
    -nodefaults -display none -no-reboot -monitor none \
    -serial "file:$T/serial.log" \
    -drive "if=pflash,format=raw,readonly=on,file=$OVMF_CODE" \
    -drive "if=pflash,format=raw,file=$T/ovmf-vars.fd" \
    -drive "file=$disk,if=virtio,format=$format,snapshot=on" \
    </dev/null >"$T/qemu.out" 2>&1 &
  QEMU_PID=$!
  while :; do
    if grep -q "$MARKER" "$T/serial.log"; then
      break
    fi
    if grep -q "Kernel panic" "$T/serial.log"; then
      fail "the kernel panicked after $((SECONDS - started))s; the serial console:"$'\n'"$(serial_tail 60)"
    fi
    if ! kill -0 "$QEMU_PID" 2>/dev/null; then
      wait "$QEMU_PID" 2>/dev/null || true
      QEMU_PID=
      fail "QEMU exited after $((SECONDS - started))s: $(cat "$T/qemu.out")"$'\n'"the serial console:"$'\n'"$(serial_tail 60)"
    fi
    if ((SECONDS - started > BOOT_TIMEOUT)); then
      fail "no \"$MARKER\" on the serial console within ${BOOT_TIMEOUT}s; its end:"$'\n'"$(serial_tail 60)"
    fi
    sleep 1
  done
  echo "booted to the marker in $((SECONDS - started))s" >&2
  stop_qemu
}

step "QEMU + OVMF (TCG, no KVM) boots the disk to busybox httpd within ${BOOT_TIMEOUT}s"
page_line=$(head -n 1 "$EX/rootfs/srv/www/index.html")
boot "$QCOW" qcow2
ready=$(grep -m1 "$MARKER" <(tr -d '\r' <"$T/serial.log"))
assert_eq "$MARKER $page_line" "$ready" "the ready line: the marker and the page's first line, fetched from httpd"

step "reproducible: another store, working directory, TMPDIR, umask, TZ and locale give the same disk"
mkdir -p "$T/elsewhere/deeper" "$T/tmp2"
rel=$(realpath --relative-to="$T/elsewhere/deeper" "$TEMPLATE")
build_locked build2 perturbed "$KILN" --store "$T/store2" build "$rel"
if [[ $(jq -r .disk.blob "$T/build2.json") != "$DISK_BLOB" ]]; then
  # Say where the two disks differ: the first differing bytes, by partition.
  kiln_ok export2 --store "$T/store2" export "$REF" "disk:$T/webserver2.qcow2"
  qemu-img convert -f qcow2 -O raw "$T/webserver2.qcow2" "$T/disk2.raw"
  where=$( (cmp -l "$T/disk.raw" "$T/disk2.raw" 2>&1 || true) | head -n 100000 |
    awk -v s="$sector" -v parts="$(jq -r '.partitiontable.partitions[] | "partition \(.node | sub("^.*[^0-9]"; ""))|\(.name // .type)|\(.start)|\(.size)"' "$T/pt.json")" '
      BEGIN {
        n = split(parts, p, "\n")
        for (i = 1; i <= n; i++) { split(p[i], f, "|"); name[i] = f[1] " (" f[2] ")"; lo[i] = f[3] * s; hi[i] = (f[3] + f[4]) * s }
      }
      $1 ~ /^[0-9]+$/ {
        off = $1 - 1; what = "outside the partitions"; base = 0
        for (i = 1; i <= n; i++) if (off >= lo[i] && off < hi[i]) { what = name[i]; base = lo[i] }
        if (!(what in seen)) { seen[what] = 1; printf "  %s: first at +%d\n", what, off - base }
        count[what]++
      }
      $1 !~ /^[0-9]+$/ { print "  " $0 }
      END { for (w in count) printf "  %s: %d differing bytes (of the first 100000)\n", w, count[w] }')
  fail "the disk differs between the two builds"$'\n'"  first: $(jq -c .disk "$T/build.json")"$'\n'"  second: $(jq -c .disk "$T/build2.json")"$'\n'"$where"
fi
assert_eq "$DISK_DIGEST" "$(jq -r .disk.digest "$T/build2.json")" "the disk artifact's manifest digest"
assert_eq "$(jq -r .digest "$T/build.json")" "$(jq -r .digest "$T/build2.json")" "the image's manifest digest"

# The read-only roots: the same example on erofs and on squashfs, raw. kiln
# reads the kernel's config and puts their modules in the initramfs.
for fs in erofs squashfs; do
  step "the example with an $fs root, as a raw disk, boots too"
  mkdir -p "$T/$fs"
  cp -r "$EX/." "$T/$fs/"
  cat >"$T/$fs/kiln.yaml" <<EOF
apiVersion: kiln.dev/v1
extends: $TEMPLATE
version: 1.0.0-$fs
disk:
  filesystem: $fs
  cmdline: console=ttyS0
EOF
  build_locked "build-$fs" "$KILN" --store "$S" build "$T/$fs/kiln.yaml"
  assert_eq "$fs" "$(jq -r '.disk.partitions[1].filesystem' "$T/build-$fs.json")" "the root partition's file system"
  jq -e --arg m "$fs" '.disk.modules | index($m)' "$T/build-$fs.json" >/dev/null ||
    fail "the initramfs does not load $fs: $(jq -c .disk.modules "$T/build-$fs.json")"
  kiln_ok "export-$fs" --store "$S" export "webserver:1.0.0-$fs" "disk:$T/$fs.raw"
  boot "$T/$fs.raw" raw
  assert_contains "$(tr -d '\r' <"$T/serial.log")" "rootfstype=$fs ro" "the kernel command line"
done
