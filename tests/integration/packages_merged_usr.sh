#!/usr/bin/env bash
# A package's directory never replaces a symlink to a directory that a
# package below it ships (merged /usr: /bin -> usr/bin, as base-files ships it
# from Debian 13): as dpkg does, kiln keeps the symlink and installs the
# package's files through it, with every layering:
#   kiln build T.yaml   # include: [legacy]; legacy Depends merged
#   /bin -> usr/bin stays, /bin/legacy-tool lands in /usr/bin, /bin/sh resolves
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_APT_FIXTURE:?the APT fixture dir (tests/fixtures/aptrepo.sh start DIR)}/env"
# shellcheck source=../apt_lib.sh
source "$(dirname "$0")/../apt_lib.sh"
need_tool umoci

S=$T/store
for layering in per-package single; do
  step "layering $layering: /bin -> usr/bin from merged stays, legacy's /bin/legacy-tool goes through it"
  pkg_template "$T/$layering/kiln.yaml" "legacy-$layering" "legacy" "layering: $layering"
  "$KILN" --store "$S" build "$T/$layering/kiln.yaml" >"$T/$layering.out" 2>"$T/$layering.err" ||
    fail "layering $layering: the build failed: $(cat "$T/$layering.err")"
  assert_eq "legacy 1.0-1 amd64
merged 1.0-1 amd64" "$(lock_packages "$T/$layering/kiln.lock")" "the locked packages"
  umoci unpack --rootless --image "$S:legacy-$layering:1.0.0" "$T/bundle-$layering" >/dev/null 2>"$T/umoci.err" ||
    fail "umoci unpack failed: $(cat "$T/umoci.err")"
  R=$T/bundle-$layering/rootfs
  [[ -L $R/bin ]] || fail "layering $layering: /bin is not a symlink in the image ($(stat -c %F "$R/bin"); it holds: $(find "$R/bin" -mindepth 1 -printf '%f '))"
  assert_eq usr/bin "$(readlink "$R/bin")" "layering $layering: /bin's target"
  [[ -f $R/usr/bin/legacy-tool ]] || fail "layering $layering: /usr/bin/legacy-tool is missing"
  [[ -f $R/usr/bin/sh ]] || fail "layering $layering: /usr/bin/sh is missing"
done
