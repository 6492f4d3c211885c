#!/usr/bin/env bash
# kiln repro: examples/hello built twice under other conditions proves
# reproducible with one line naming the digest a plain build gives (and
# tests/golden's); --json lists both builds and the variations (user, file
# owners and host name skipped exactly when not permitted); the caller's
# store is not written and no temporary folder is left (--keep leaves it).
# A template whose sources sit beside it, in a folder it extends by a
# relative path and in a --context, and one on a store base, are copied and
# found. Not reproducible: --against an image built with another GREETING
# (store) exits 1 naming layer "app", /etc/hello.txt and its content with
# both digests; --against an oci: layout where only that file's mode differs
# names the mode with both values; `kiln diff --layers` on the same pair
# reports the same first difference, and for zstd against gzip layers that
# the compression differs; --against the same image exits 0. A
# template with a disk section gives the disk's digest too, and against
# another GREETING the disk's first differing partition. A build that fails
# shows its error and exits as it did.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool jq

# Temporary folders go here, so the test can see none is left.
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
chmod 755 "$TMPDIR"
S=$T/store
k() { "$KILN" --store "$S" "$@"; }

step "a plain build of examples/hello, for its digest"
PLAIN=$(build_digest --store "$T/plain" build "$HELLO")
assert_eq "$(cat "$SRC_DIR/tests/golden/hello.digest")" "$PLAIN" "hello's golden digest"

step "kiln repro examples/hello: one line, the plain build's digest"
k build "$HELLO" --set GREETING=other -q >/dev/null  # a store to keep as it is
before=$(store_fingerprint "$S")
kiln_ok repro --store "$S" repro "$HELLO"
out=$(cat "$T/repro.out")
assert_eq 1 "$(wc -l <"$T/repro.out")" "repro prints one line:"$'\n'"$out"
[[ $out == "reproducible: hello:1.0.0 $PLAIN (built twice, each in a fresh store, varying build path, "* ]] ||
  fail "the proof line: $out"
for v in "working directory" "file order" "file times" "file modes" "time zone" "locale" umask \
  environment "build date from" HOME TMPDIR "start time"; do
  assert_contains "$out" "$v" "the variations named"
done
assert_eq "$before" "$(store_fingerprint "$S")" "the caller's store after kiln repro"
assert_eq "" "$(ls -A "$TMPDIR")" "temporary folders left behind"

step "--json: both builds, the variations, what was skipped and why"
k repro "$HELLO" --json >"$T/repro.json" 2>"$T/repro.json.err" || fail "repro --json: $(cat "$T/repro.json.err")"
assert_eq true "$(jq .reproducible "$T/repro.json")"
assert_eq "$PLAIN" "$(jq -r .digest "$T/repro.json")"
assert_eq "hello:1.0.0" "$(jq -r .reference "$T/repro.json")"
assert_eq "[\"$PLAIN\",\"$PLAIN\"]" "$(jq -c '[.builds[].digest]' "$T/repro.json")"
assert_ne "$(jq -r '.builds[0].store' "$T/repro.json")" "$(jq -r '.builds[1].store' "$T/repro.json")" "the two stores"
assert_eq '{"first":"UTC","second":"Pacific/Kiritimati"}' \
  "$(jq -c '.variations[] | select(.name == "time zone") | {first, second}' "$T/repro.json")"
assert_eq '{"first":"0022","second":"0077"}' \
  "$(jq -c '.variations[] | select(.name == "umask") | {first, second}' "$T/repro.json")"
assert_eq '{"first":"C","second":"C.UTF-8"}' \
  "$(jq -c '.variations[] | select(.name == "locale") | {first, second}' "$T/repro.json")"
jq -e '.variations[] | select(.name == "environment") | .second | contains("GZIP")' "$T/repro.json" >/dev/null ||
  fail "the second build's noise variables: $(jq -c .variations "$T/repro.json")"
jq -e 'has("report") | not' "$T/repro.json" >/dev/null || fail "a report for a reproducible image"
named() { jq -r --arg n "$1" '[.variations[].name, .skipped[].name] | map(select(. == $n)) | length' "$T/repro.json"; }
for v in user "file owners" hostname CPUs; do
  assert_eq 1 "$(named "$v")" "$v is either varied or skipped with a reason"
done
if [[ $EUID -eq 0 ]]; then
  assert_eq '{"first":"root","second":"nobody"}' \
    "$(jq -c '.variations[] | select(.name == "file owners") | {first, second}' "$T/repro.json")"
else
  assert_eq "not root" "$(jq -r '.skipped[] | select(.name == "user") | .why' "$T/repro.json")"
  assert_eq 0 "$(jq '[.variations[] | select(.name == "user" or .name == "hostname")] | length' "$T/repro.json")"
fi

step "--keep leaves the stores, the copies and the logs"
k repro "$HELLO" --keep -q >/dev/null 2>"$T/keep.err" || fail "repro --keep: $(cat "$T/keep.err")"
kept=$(sed -n 's/^kiln: repro: kept //p' "$T/keep.err")
[[ -n $kept && -d $kept/1/store && -d $kept/2/store && -f $kept/logs/1.out ]] ||
  fail "--keep: $(cat "$T/keep.err")"
assert_eq "$PLAIN" "$("$KILN" --store "$kept/2/store" inspect hello:1.0.0 --json | jq -r .digest)"
rm -rf "$kept"

step "sources beside the template, in a relatively extended folder and a --context"
mkdir -p "$T/proj/app" "$T/proj/base/files" "$T/proj/ctx"
echo "from the base" >"$T/proj/base/files/base.txt"
echo "from the context" >"$T/proj/ctx/ctx.txt"
cat >"$T/proj/base/base.yaml" <<'EOF'
apiVersion: kiln.dev/v1
extends: nonroot
layers:
  - name: base
    files: [{src: files/base.txt, dest: /etc/base.txt}]
EOF
cat >"$T/proj/app/kiln.yaml" <<'EOF'
apiVersion: kiln.dev/v1
extends: ../base/base.yaml
name: proj
version: 1.0.0
layers:
  - name: app
    files: [{src: ctx.txt, dest: /etc/ctx.txt}]
EOF
PROJ=$(build_digest --store "$T/plain" build "$T/proj/app/kiln.yaml" --context "$T/proj/ctx")
kiln_ok proj --store "$S" repro "$T/proj/app/kiln.yaml" --context "$T/proj/ctx"
assert_contains "$(cat "$T/proj.out")" "reproducible: proj:1.0.0 $PROJ "

step "a template on a store base: the base is put in each fresh store"
cat >"$T/proj/onbase.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: onbase
version: 1.0.0
base: proj:1.0.0
layers:
  - name: more
    files: [{dest: /etc/more.txt, content: "more\n"}]
EOF
"$KILN" --store "$T/plain" build "$T/proj/onbase.yaml" -q >"$T/onbase.plain" || fail "plain build on a store base"
k build "$T/proj/app/kiln.yaml" --context "$T/proj/ctx" -q >/dev/null
kiln_ok onbase --store "$S" repro "$T/proj/onbase.yaml"
assert_contains "$(cat "$T/onbase.out")" "reproducible: onbase:1.0.0 $(cut -d' ' -f2 "$T/onbase.plain") "

step "--against an image with another GREETING: exit 1, layer app, /etc/hello.txt, content"
rc=0
k repro "$HELLO" --against hello:1.0.0 >"$T/greet.out" 2>"$T/greet.err" || rc=$?
assert_eq 1 "$rc" "exit code of a repro that differs"$'\n'"$(cat "$T/greet.err")"
report=$(cat "$T/greet.out")
OTHER=$(k inspect hello:1.0.0 --json | jq -r .digest)
assert_contains "$report" "not reproducible: hello:1.0.0 rebuilt is $PLAIN; hello:1.0.0 is $OTHER"
assert_contains "$report" "layer 2 app: the content differs"
assert_contains "$report" "first difference: entry 2, /etc/hello.txt: content"
assert_contains "$report" "content hello:1.0.0: sha256:$(printf 'other\n' | sha256sum | cut -d' ' -f1) 6 bytes"
assert_contains "$report" "content rebuild: sha256:$(printf 'hello from kiln\n' | sha256sum | cut -d' ' -f1) 16 bytes"
assert_contains "$report" "1 entry differs (9 and 9 entries)"
assert_contains "$report" "~ /etc/hello.txt: content (6 -> 16 bytes)"
assert_not_contains "$report" "layer 1 " "an identical layer in the report"
rc=0
k repro "$HELLO" --against hello:1.0.0 --json >"$T/greet.json" 2>/dev/null || rc=$?
assert_eq 1 "$rc" "exit code of repro --json that differs"
assert_eq false "$(jq .reproducible "$T/greet.json")"
assert_eq "$OTHER" "$(jq -r .against.digest "$T/greet.json")"
assert_eq '{"layer":2,"name":"app","verdict":"content"}' \
  "$(jq -c '.report.layers[] | select(.verdict != "same") | {layer, name, verdict}' "$T/greet.json")"
assert_eq '{"entry":2,"pathA":"etc/hello.txt","properties":["content"]}' \
  "$(jq -c '.report.layers[1].firstDifference | {entry, pathA, properties: [.properties[].property]}' "$T/greet.json")"

step "--against an oci: layout where only /etc/hello.txt's mode differs"
mkdir -p "$T/mode"
cp -R "$HELLO_DIR/." "$T/mode/"
perl -pi -e 's|(content: "\$\{GREETING\}\\n")\}|$1, mode: "0640"}|' "$T/mode/kiln.yaml"
grep -q 'mode: "0640"}' "$T/mode/kiln.yaml" || fail "the mode edit did not apply"
"$KILN" --store "$T/modestore" build "$T/mode/kiln.yaml" --output "oci:$T/modelayout:1.0.0" -q >/dev/null 2>&1 ||
  fail "building the mode variant"
rc=0
k repro "$HELLO" --against "oci:$T/modelayout:1.0.0" >"$T/mode.out" 2>"$T/mode.err" || rc=$?
assert_eq 1 "$rc" "exit code against the mode variant"$'\n'"$(cat "$T/mode.err")"
report=$(cat "$T/mode.out")
assert_contains "$report" "first difference: entry 2, /etc/hello.txt: mode"$'\n'
assert_contains "$report" "mode oci:$T/modelayout:1.0.0: 0640"
assert_contains "$report" "mode rebuild: 0644"
assert_contains "$report" "~ /etc/hello.txt: mode 0640 -> 0644"

step "kiln diff --layers on the same pair: the same first difference"
"$KILN" --store "$T/plain" export hello:1.0.0 "oci:$T/plainlayout:1.0.0" >/dev/null
kiln_ok difflayers --store "$S" diff --layers "oci:$T/modelayout:1.0.0" "oci:$T/plainlayout:1.0.0"
diff_report=$(cat "$T/difflayers.out")
assert_contains "$diff_report" "layer 2 app: the content differs"
assert_eq "$(grep 'first difference' <<<"$report")" "$(grep 'first difference' <<<"$diff_report")" \
  "first difference in repro and diff --layers"
assert_contains "$diff_report" "mode oci:$T/plainlayout:1.0.0: 0644"
assert_eq "~ /etc/hello.txt: mode 0640 -> 0644" "$(tail -n 1 <<<"$diff_report")" "diff's path lines after the report"
k repro "$HELLO" --against "oci:$T/modelayout:1.0.0" --json >"$T/mode.json" 2>/dev/null || true
k diff --layers "oci:$T/modelayout:1.0.0" "oci:$T/plainlayout:1.0.0" --json >"$T/difflayers.json"
assert_eq "$(jq -c '.report.layers[1].firstDifference' "$T/mode.json")" \
  "$(jq -c '.report.layers[1].firstDifference' "$T/difflayers.json")" "firstDifference in both JSON reports"
assert_eq '["mode 0640 -> 0644"]' "$(jq -c '.changes[0].properties' "$T/difflayers.json")"
step "kiln diff without --layers prints what it always did"
assert_eq "~ /etc/hello.txt: mode 0640 -> 0644" "$(k diff "oci:$T/modelayout:1.0.0" "oci:$T/plainlayout:1.0.0")"
jq -e 'has("report") | not' <(k diff "oci:$T/modelayout:1.0.0" "oci:$T/plainlayout:1.0.0" --json) >/dev/null ||
  fail "diff --json without --layers has a report"

step "kiln diff --layers: zstd against gzip layers, the compression differs"
"$KILN" --store "$T/zstd" build "$HELLO" --compression zstd --output "oci:$T/zstdlayout:1.0.0" -q >/dev/null 2>&1 ||
  fail "the zstd build"
kiln_ok zstd --store "$S" diff --layers "oci:$T/zstdlayout:1.0.0" "oci:$T/plainlayout:1.0.0"
assert_contains "$(cat "$T/zstd.out")" "layer 2 app: the compression differs: the same diff_id"
assert_eq 3 "$(grep -c 'the compression differs' "$T/zstd.out")" "layers whose compression differs"
assert_contains "$(cat "$T/zstd.err")" "no differences"

step "--against the same image: exit 0"
kiln_ok same --store "$T/plain" repro "$HELLO" --against hello:1.0.0
[[ $(cat "$T/same.out") == "reproducible: hello:1.0.0 $PLAIN matches hello:1.0.0 (rebuilt in a fresh store, varying "* ]] ||
  fail "against the same image: $(cat "$T/same.out")"
kiln_ok sameoci --store "$S" repro "$HELLO" --against "oci:$T/plainlayout:1.0.0"
assert_contains "$(cat "$T/sameoci.out")" "matches oci:$T/plainlayout:1.0.0"
expect_error 1 "--against rootfs:" "$KILN" --store "$S" repro "$HELLO" --against "rootfs:$T/x.tar"

step "a disk section: the disk's digest too, and its first differing partition"
if command -v mke2fs >/dev/null && command -v debugfs >/dev/null; then
  mkdir -p "$T/disk"
  cat >"$T/disk/kiln.yaml" <<EOF
apiVersion: kiln.dev/v1
extends: $HELLO
name: hellodisk
version: 1.0.0
disk: {boot: none, filesystem: ext4}
EOF
  "$KILN" --store "$T/plain" build "$T/disk/kiln.yaml" --json >"$T/disk.plain.json" 2>/dev/null || fail "plain disk build"
  kiln_ok disk --store "$S" repro "$T/disk/kiln.yaml"
  assert_contains "$(cat "$T/disk.out")" \
    "reproducible: hellodisk:1.0.0 $(jq -r .digest "$T/disk.plain.json") disk $(jq -r .disk.digest "$T/disk.plain.json") ("
  k build "$T/disk/kiln.yaml" --set GREETING=other -q >/dev/null
  rc=0
  k repro "$T/disk/kiln.yaml" --against hellodisk:1.0.0 >"$T/disk2.out" 2>"$T/disk2.err" || rc=$?
  assert_eq 1 "$rc" "a disk from another GREETING"$'\n'"$(cat "$T/disk2.err")"
  assert_contains "$(cat "$T/disk2.out")" "partition 1 (kiln-root-"
  assert_contains "$(cat "$T/disk2.out")" "first difference: entry 2, /etc/hello.txt: content"
else
  step "SKIP the disk case (mke2fs and debugfs are not installed)"
fi

step "a build that fails: its error, its exit code"
mkdir -p "$T/bad"
cat >"$T/bad/kiln.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: bad
version: 1.0.0
layers:
  - name: app
    files: [{src: missing.txt, dest: /x}]
EOF
expect_error 1 "missing.txt" "$KILN" --store "$S" repro "$T/bad/kiln.yaml"
assert_contains "$ERR_ALL" "kiln: repro: build 1 of 2 failed (exit 1):"
printf 'apiVersion: kiln.dev/v1\nname: bad\nversion: 1.0.0\nbogus: 1\n' >"$T/bad/k2.yaml"
expect_template_error "$T/bad/k2.yaml" 4 1 'unknown key "bogus"' "$KILN" --store "$S" repro "$T/bad/k2.yaml" -q
assert_eq "" "$(ls -A "$TMPDIR")" "temporary folders left behind after failures"
