#!/usr/bin/env bash
# kiln repro --against docker://…: the registry image (and its disk image,
# when it has one) is pulled into the rebuild's temporary store, not the
# caller's; the same image exits 0 naming the registry reference, another
# (a GREETING pushed over a floating tag) exits 1 with the report naming
# /etc/hello.txt's content; credentials go to the pull (and to the build,
# by the environment), and without them the pull's error exits 1.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?start the fixture: tests/fixtures/registry.sh start DIR}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"

export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
chmod 755 "$TMPDIR"
S=$T/store
k() { "$KILN" --store "$S" "$@"; }
NS=repro-$RUN
CREDS=$REG_USER:$REG_PASS

step "push hello:1.0.0, and another GREETING as :other"
PLAIN=$(build_digest --store "$S" build "$HELLO")
k push hello:1.0.0 "docker://$REG_BASIC/$NS/hello" --creds "$CREDS" -q >/dev/null 2>&1 || fail "push"
OTHER=$(build_digest --store "$T/other" build "$HELLO" --set GREETING=other)
"$KILN" --store "$T/other" push hello:1.0.0 "docker://$REG_BASIC/$NS/hello:other" --creds "$CREDS" -q >/dev/null 2>&1 ||
  fail "push :other"
before=$(store_fingerprint "$S")

step "--against the same image in the registry: exit 0"
kiln_ok same --store "$S" repro "$HELLO" --against "docker://$REG_BASIC/$NS/hello:1.0.0" --creds "$CREDS" -q
assert_contains "$(cat "$T/same.out")" \
  "reproducible: hello:1.0.0 $PLAIN matches docker://$REG_BASIC/$NS/hello:1.0.0 (rebuilt in a fresh store"
assert_eq "$before" "$(store_fingerprint "$S")" "the caller's store after pulling for --against"
assert_eq "" "$(ls -A "$TMPDIR")" "temporary folders left behind"

step "--against another image: exit 1 and the report"
rc=0
k repro "$HELLO" --against "docker://$REG_BASIC/$NS/hello:other" --creds "$CREDS" --json \
  >"$T/other.json" 2>"$T/other.err" || rc=$?
assert_eq 1 "$rc" "against another image"$'\n'"$(cat "$T/other.err")"
assert_eq "$OTHER" "$(jq -r .against.digest "$T/other.json")"
assert_eq '{"entry":2,"pathA":"etc/hello.txt","properties":["content"]}' \
  "$(jq -c '.report.layers[1].firstDifference | {entry, pathA, properties: [.properties[].property]}' "$T/other.json")"

step "without credentials: the pull's error"
expect_error 1 "authentication required" "$KILN" --store "$S" repro "$HELLO" \
  --against "docker://$REG_BASIC/$NS/hello:1.0.0" -q

step "a disk image beside the registry image is compared too"
if command -v mke2fs >/dev/null && command -v debugfs >/dev/null; then
  mkdir -p "$T/disk"
  cat >"$T/disk/kiln.yaml" <<EOF
apiVersion: kiln.dev/v1
extends: $HELLO
name: hellodisk
version: 1.0.0
disk: {boot: none, filesystem: ext4}
EOF
  k build "$T/disk/kiln.yaml" --json >"$T/disk.json" 2>/dev/null || fail "disk build"
  k push hellodisk:1.0.0 "docker://$REG_PLAIN/$NS/hellodisk" -q >/dev/null 2>&1 || fail "disk push"
  k repro "$T/disk/kiln.yaml" --against "docker://$REG_PLAIN/$NS/hellodisk:1.0.0" --json \
    >"$T/diskrepro.json" 2>"$T/diskrepro.err" || fail "disk repro: $(cat "$T/diskrepro.err")"
  assert_eq true "$(jq .reproducible "$T/diskrepro.json")"
  assert_eq "$(jq -r .disk.digest "$T/disk.json")" "$(jq -r .against.disk "$T/diskrepro.json")" \
    "the registry's disk image, pulled beside the image"
else
  step "SKIP the disk case (mke2fs and debugfs are not installed)"
fi
