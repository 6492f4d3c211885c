#!/usr/bin/env bash
# Known bug: two packages that ship the same file (dup-a and dup-b both ship
# /usr/share/dup/file, neither Replaces the other) are refused with single
# layering ("/usr/share/dup/file is declared twice", exit 1), as dpkg refuses
# them ("trying to overwrite ..."), but with per-package or grouped layering
# the image silently gets the upper package's file, while status.d still lists
# dup-a as installed. Whether a build works, and what the image holds, must
# not depend on how its packages are layered. Expected: every layering is
# refused with exit 1, naming the path and both packages, and writes nothing.
#   kiln build T.yaml   # include: [dup-a, dup-b], layering: per-package
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_APT_FIXTURE:?the APT fixture dir (tests/fixtures/aptrepo.sh start DIR)}/env"
# shellcheck source=../apt_lib.sh
source "$(dirname "$0")/../apt_lib.sh"

S=$T/store
for layering in single per-package "grouped
  maxLayers: 2"; do
  name=${layering%%$'\n'*}
  step "layering $name: dup-a and dup-b both ship /usr/share/dup/file -> refused"
  pkg_template "$T/$name/kiln.yaml" "dup-$name" "dup-a, dup-b" "layering: $layering"
  "$KILN" --store "$S" lock "$T/$name/kiln.yaml" >/dev/null 2>&1 || fail "kiln lock failed"
  before=$(store_fingerprint "$S")
  expect_error 1 "/usr/share/dup/file" "$KILN" --store "$S" build "$T/$name/kiln.yaml" --locked
  assert_contains "$ERR" "dup-a" "the error names dup-a"
  assert_contains "$ERR" "dup-b" "the error names dup-b"
  # The package cache may have filled (and gc.lock appears); no image, no layer.
  assert_eq "$(grep -v -e '/kiln/cache' -e '/kiln/gc.lock' <<<"$before")" "$(store_fingerprint "$S" | grep -v -e '/kiln/cache' -e '/kiln/gc.lock')" \
    "store after the refused build (the package cache and gc.lock aside)"
done
