#!/usr/bin/env bash
# The commands CI scripts read: images, inspect, diff, export, store fsck —
# their --json fields, text output and exit codes.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool jq perl

S=$T/store
k() { "$KILN" --store "$S" "$@"; }

step "build hello:1.0.0"
build_json "$T/hello.json" --store "$S" build "$HELLO"
D=$(jq -r .digest "$T/hello.json")
assert_eq "hello:1.0.0" "$(jq -r .reference "$T/hello.json")"
assert_eq "$S" "$(jq -r .store "$T/hello.json")" "build --json names the store"
assert_eq "scratch" "$(jq -r .base "$T/hello.json")"
assert_eq "hello:1.0.0 $D" "$(k build "$HELLO" 2>/dev/null)" "build's stdout is NAME:VERSION DIGEST"

step "images --json"
k images --json >"$T/images.json"
assert_eq 1 "$(jq length "$T/images.json")" "one image in the store"
assert_eq "$(jq -c -n --arg d "$D" '{name: "hello:1.0.0", digest: $d, platform: "linux/amd64",
  created: "1970-01-01T00:00:00Z", mediaType: "application/vnd.oci.image.manifest.v1+json"}')" \
  "$(jq -c '.[0] | {name, digest, platform, created, mediaType}' "$T/images.json")" "images --json entry"
layer_bytes=$(jq '[.layers[].size] | add' "$T/hello.json")
[[ $(jq '.[0].size' "$T/images.json") -ge $layer_bytes ]] || fail "images size is less than the layers' size"
step "images (text)"
images_text=$(k images)
assert_contains "$(head -1 <<<"$images_text")" "NAME"
assert_contains "$images_text" "hello:1.0.0"
assert_contains "$images_text" "sha256:${D:7:12}" "short digest in kiln images"

step "inspect --json"
k inspect hello:1.0.0 --json >"$T/inspect.json"
assert_eq "$D" "$(jq -r .digest "$T/inspect.json")"
assert_eq "hello:1.0.0" "$(jq -r .reference "$T/inspect.json")"
assert_eq "application/vnd.oci.image.manifest.v1+json" "$(jq -r .mediaType "$T/inspect.json")"
assert_eq "$(jq '.[0].size' "$T/images.json")" "$(jq .size "$T/inspect.json")" "inspect and images agree on the size"
assert_eq "$(jq -r .config "$T/hello.json")" "$(jq -r .manifest.config.digest "$T/inspect.json")"
assert_eq "$(jq -c '[.layers[].digest]' "$T/hello.json")" "$(jq -c '[.manifest.layers[].digest]' "$T/inspect.json")"
assert_eq "$(jq -c '[.layers[].digest]' "$T/hello.json")" "$(jq -c '[.layers[].digest]' "$T/inspect.json")"
assert_eq "$(jq -c '[.layers[].diffId]' "$T/hello.json")" "$(jq -c '.config.rootfs.diff_ids' "$T/inspect.json")"
assert_eq "$(jq -c '[.layers[].diffId]' "$T/hello.json")" "$(jq -c '[.layers[].diffId]' "$T/inspect.json")"
assert_eq '["kiln: layer filesystem","kiln: layer app","kiln: layer accounts"]' "$(jq -c '[.layers[].createdBy]' "$T/inspect.json")"
assert_eq '{"os":"linux","architecture":"amd64","created":"1970-01-01T00:00:00Z"}' \
  "$(jq -c '.config | {os, architecture, created}' "$T/inspect.json")"
assert_eq '["/usr/bin/hello"]' "$(jq -c .config.config.Entrypoint "$T/inspect.json")"
assert_eq "65532:65532" "$(jq -r .config.config.User "$T/inspect.json")"
assert_eq "/home/nonroot" "$(jq -r .config.config.WorkingDir "$T/inspect.json")"
jq -e '.config.config.Env | index("LANG=C.UTF-8")' "$T/inspect.json" >/dev/null || fail "LANG=C.UTF-8 is not in Env"
assert_eq "A static hello program built with kiln" \
  "$(jq -r '.config.config.Labels["org.opencontainers.image.description"]' "$T/inspect.json")"
assert_eq "https://example.invalid/kiln/examples/hello" \
  "$(jq -r '.manifest.annotations["org.opencontainers.image.source"]' "$T/inspect.json")"
assert_eq "1.0.0" "$(jq -r '.manifest.annotations["org.opencontainers.image.version"]' "$T/inspect.json")"
step "inspect by digest and of an oci: layout"
assert_eq "$D" "$(k inspect "hello@$D" --json | jq -r .digest)" "inspect NAME@DIGEST"
k export hello:1.0.0 "oci:$T/layout" >/dev/null
assert_eq "$D" "$(k inspect "oci:$T/layout" --json | jq -r .digest)" "inspect oci:DIR"
assert_eq "$D" "$(k inspect "oci:$T/layout:1.0.0" --json | jq -r .digest)" "inspect oci:DIR:REF"
step "inspect (text)"
text=$(k inspect hello:1.0.0)
assert_contains "$text" "Digest:     $D"
assert_contains "$text" "Entrypoint: [\"/usr/bin/hello\"]"
assert_contains "$text" "User:       65532:65532"

step "inspect --files"
k inspect hello:1.0.0 --files --json >"$T/files.json"
file() { jq -c --arg p "$1" '[.layers[].files[] | select(.path == $p)] | last' "$T/files.json"; }
size=$(stat -c %s "$HELLO_DIR/bin/hello")
assert_eq "{\"gid\":0,\"mode\":\"0755\",\"path\":\"/usr/bin/hello\",\"size\":$size,\"type\":\"file\",\"uid\":0}" "$(file /usr/bin/hello)"
assert_eq '{"gid":0,"mode":"0644","path":"/etc/hello.txt","size":16,"type":"file","uid":0}' "$(file /etc/hello.txt)"
assert_eq '{"gid":65532,"mode":"0750","path":"/var/lib/hello","size":0,"type":"directory","uid":65532}' "$(file /var/lib/hello)"
assert_eq '{"gid":0,"link":"hello","mode":"0777","path":"/usr/bin/hi","size":0,"type":"symlink","uid":0}' "$(file /usr/bin/hi)"
assert_eq '{"gid":65532,"mode":"0755","path":"/home/nonroot","size":0,"type":"directory","uid":65532}' "$(file /home/nonroot)"
assert_eq '{"gid":0,"mode":"0600","path":"/etc/shadow","size":68,"type":"file","uid":0}' "$(file /etc/shadow)"
# Entries are sorted by path, parents first, in every layer.
for i in 0 1 2; do
  jq -r ".layers[$i].files[].path" "$T/files.json" >"$T/paths"
  LC_ALL=C sort -c "$T/paths" 2>/dev/null || fail "layer $i's entries are not sorted by path"
done
text=$(k inspect hello:1.0.0 --files)
grep -qE '^ +-rwxr-xr-x +0:0 +'"$size"' +/usr/bin/hello$' <<<"$text" || fail "inspect --files text lacks /usr/bin/hello 0755"$'\n'"$text"
grep -qE '^ +lrwxrwxrwx +0:0 +0 +/usr/bin/hi -> hello$' <<<"$text" || fail "inspect --files text lacks the /usr/bin/hi symlink"
grep -qE '^ +drwxr-x--- +65532:65532 +0 +/var/lib/hello$' <<<"$text" || fail "inspect --files text lacks /var/lib/hello"

step "export to another store name"
assert_eq "hello:copy" "$(k export hello:1.0.0 hello:copy)"
assert_eq "$D" "$(k images --json | jq -r '.[] | select(.name == "hello:copy") | .digest')" "hello:copy's digest"
assert_eq "$D" "$(k inspect hello:copy --json | jq -r .digest)"
assert_eq "$(jq -c -n --arg d "$D" '{source: "hello:1.0.0", digest: $d, destination: "hello:orig"}')" \
  "$(k export hello:1.0.0 hello:orig --json | jq -c '{source, digest, destination}')" "export --json"
assert_eq 3 "$(k images --json | jq length)" "images after two exports"

step "diff: two GREETINGs differ in /etc/hello.txt's content only"
k build "$HELLO" --set GREETING=bonjour --replace -q >"$T/bonjour.out" 2>/dev/null
D2=$(cut -d' ' -f2 "$T/bonjour.out")
assert_ne "$D" "$D2"
diff_out=$(k diff hello:orig hello:1.0.0)
[[ $(wc -l <<<"$diff_out") -eq 1 ]] || fail "diff should list exactly one change:"$'\n'"$diff_out"
assert_contains "$diff_out" "~ /etc/hello.txt: content"
[[ $diff_out == "~ /etc/hello.txt: content"* ]] || fail "diff line: $diff_out"
k diff hello:orig hello:1.0.0 --json >"$T/diff.json"
assert_eq false "$(jq .identical "$T/diff.json")"
assert_eq '[{"path":"/etc/hello.txt","change":"changed"}]' "$(jq -c '[.changes[] | {path, change}]' "$T/diff.json")"
jq -e '.changes[0].properties | length == 1 and (.[0] | startswith("content"))' "$T/diff.json" >/dev/null ||
  fail "diff --json properties: $(jq -c .changes "$T/diff.json")"
step "diff of an image with itself"
k diff hello:orig hello:copy >"$T/same.out" 2>"$T/same.err"
assert_eq "" "$(cat "$T/same.out")" "diff of identical images prints no change"
assert_contains "$(cat "$T/same.err")" "no differences"
assert_eq '{"identical":true,"changes":[]}' "$(k diff hello:orig hello:copy --json | jq -c '{identical, changes}')"
step "diff with a different image: a file added and a layer that removes"
cat >"$T/more.yaml" <<EOF
apiVersion: kiln.dev/v1
extends: $HELLO
name: hello
version: 1.1.0
layers:
  - name: more
    files:
      - {dest: /etc/motd, content: "hi\n"}
    remove: [/usr/bin/hi]
EOF
k build "$T/more.yaml" --context "$HELLO_DIR" -q >/dev/null 2>&1 || fail "building hello:1.1.0 failed"
diff_out=$(k diff hello:orig hello:1.1.0)
assert_contains "$diff_out" "+ /etc/motd"
assert_contains "$diff_out" "- /usr/bin/hi"
assert_eq 2 "$(wc -l <<<"$diff_out")" "changes between hello:orig and hello:1.1.0:"$'\n'"$diff_out"

step "export refuses to move a store tag without --replace"
expect_error 1 "hello:copy already holds $D" "$KILN" --store "$S" export hello:1.0.0 hello:copy
assert_eq "$D" "$(k inspect hello:copy --json | jq -r .digest)" "hello:copy after a refused export"
k export hello:1.0.0 hello:copy --replace >/dev/null
assert_eq "$D2" "$(k inspect hello:copy --json | jq -r .digest)" "hello:copy after export --replace"

step "references that name nothing"
expect_error 1 "hello:9.9.9: no such image in the store" "$KILN" --store "$S" inspect hello:9.9.9
expect_error 1 "not valid" "$KILN" --store "$S" inspect "Not A Ref"
expect_error 1 "hello:nope" "$KILN" --store "$S" diff hello:1.0.0 hello:nope

step "store fsck on a good store"
fsck_out=$(k store fsck)
assert_contains "$fsck_out" "0 corrupt, 0 missing"
k store fsck --json >"$T/fsck.json"
assert_eq '{"ok":true,"corrupt":[],"missing":[]}' "$(jq -c '{ok, corrupt, missing}' "$T/fsck.json")"
[[ $(jq .blobsChecked "$T/fsck.json") -ge 5 ]] || fail "fsck checked fewer blobs than hello has"

step "store fsck on a store with a corrupt layer blob (a throwaway copy)"
cp -a "$S" "$T/damaged"
layer=$(jq -r '.layers[1].digest' "$T/hello.json")
blob=$(blob_path "$T/damaged" "$layer")
perl -e 'open(my $f, "+<", $ARGV[0]) or die "$ARGV[0]: $!"; binmode $f; seek($f, 20, 0); read($f, my $b, 1);
         seek($f, 20, 0); print $f chr(ord($b) ^ 0x01); close $f or die' "$blob"
rc=0
"$KILN" --store "$T/damaged" store fsck >"$T/fsck.out" 2>&1 || rc=$?
assert_eq 2 "$rc" "fsck exit code with a corrupt blob"
assert_contains "$(cat "$T/fsck.out")" "corrupt: $layer"
rc=0
"$KILN" --store "$T/damaged" store fsck --json >"$T/fsck.json" || rc=$?
assert_eq 2 "$rc" "fsck --json exit code with a corrupt blob"
assert_eq false "$(jq .ok "$T/fsck.json")"
assert_contains "$(jq -r '.corrupt[0]' "$T/fsck.json")" "$layer"

step "store fsck on a store with a missing layer blob"
rm "$blob"
rc=0
"$KILN" --store "$T/damaged" store fsck >"$T/fsck.out" 2>&1 || rc=$?
assert_eq 2 "$rc" "fsck exit code with a missing blob"
assert_contains "$(cat "$T/fsck.out")" "missing: $layer"
assert_eq 0 "$(k store fsck >/dev/null; echo $?)" "the original store is still fine"

step "every command has --help with an example"
for cmd in build images inspect diff export "store fsck"; do
  # shellcheck disable=SC2086
  help=$("$KILN" $cmd --help) || fail "kiln $cmd --help failed"
  assert_contains "$help" "Example: kiln " "kiln $cmd --help"
done
step "usage errors exit 1"
rc=0; "$KILN" images --no-such-flag >/dev/null 2>&1 || rc=$?
assert_eq 1 "$rc" "an unknown flag"
rc=0; "$KILN" >/dev/null 2>&1 || rc=$?
assert_eq 1 "$rc" "no command"

step "concurrent builds into one store"
# DESIGN.md: concurrent kiln processes on one store are safe. Eight builds at
# once: four versions, each built twice (same content racing for one tag).
CS=$T/concurrent
pids=()
for i in 1 2 3 4 5 6 7 8; do
  v=$(( (i + 1) / 2 ))
  sed "s/^version: 1.0.0$/version: 2.0.$v/" "$HELLO" >"$T/c$i.yaml"
  "$KILN" --store "$CS" build "$T/c$i.yaml" --context "$HELLO_DIR" --set "GREETING=hello $v" -q \
    >"$T/c$i.out" 2>"$T/c$i.err" &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || fail "concurrent build $((i + 1)) failed: $(cat "$T/c$((i + 1)).err")"
done
for v in 1 2 3 4; do
  assert_eq "$(cut -d' ' -f2 "$T/c$((2 * v - 1)).out")" "$(cut -d' ' -f2 "$T/c$((2 * v)).out")" "two racing builds of 2.0.$v"
done
assert_eq '["hello:2.0.1","hello:2.0.2","hello:2.0.3","hello:2.0.4"]' \
  "$("$KILN" --store "$CS" images --json | jq -c '[.[].name] | sort')" "tags after concurrent builds"
"$KILN" --store "$CS" store fsck --json >"$T/cfsck.json" || fail "fsck after concurrent builds: $(cat "$T/cfsck.json")"
assert_eq '{"ok":true,"leftovers":[]}' "$(jq -c '{ok, leftovers}' "$T/cfsck.json")" "fsck after concurrent builds"

step "stock templates without KILN_TEMPLATE_PATH"
# kiln finds them beside the binary (../templates) or, built in any other
# folder, in the checkout it was built from (KILN_SOURCE_TEMPLATES).
assert_eq "hello:1.0.0 $D" "$(env -u KILN_TEMPLATE_PATH "$KILN" --store "$T/no-path" build "$HELLO" -q 2>/dev/null)" \
  "build with the stock templates found without KILN_TEMPLATE_PATH"
