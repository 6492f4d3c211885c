#!/usr/bin/env bash
# Immutable versions and moving channels in a registry: other content pushed
# to an existing version tag fails (exit 1) and changes nothing (the tag
# keeps its digest, nothing is uploaded); the same content again is a no-op;
# floating tags (--also-tag, the template's publish tags) move; promote /
# rollback / history round trip between two machines that share nothing but
# the registry (two fresh stores). Concurrent promotes: see
# registry_concurrent_promote.sh (known bug).
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"

S=$T/store
NS=imm-$RUN
APP=$NS/app
k() { "$KILN" --store "$S" "$@"; }

step "publish hello 1.0.0, with latest"
V0=$(build_digest --store "$S" build "$HELLO")
kiln_ok push0 --store "$S" push hello:1.0.0 "docker://$REG_PLAIN/$APP" --also-tag latest --json
assert_eq '["1.0.0","latest"]' "$(jq -c .tags "$T/push0.out")" "tags of the first push"
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:1.0.0")"
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:latest")"

step "other content under the same version: exit 1, nothing sent, the tag keeps its digest"
OTHER=$(build_digest --store "$S" build "$HELLO" --set GREETING=x --replace)
assert_ne "$V0" "$OTHER" "the rebuilt image"
proxy_reset "$REG_FAULTY"
expect_error 1 "immutable" "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_FAULTY/$APP"
assert_contains "$ERR" "$V0" "the error names the digest the tag holds"
assert_contains "$ERR" "$OTHER" "the error names the refused image"
stats=$(proxy_stats "$REG_FAULTY")
for key in "POST upload" "PUT upload" "PATCH upload" "PUT manifest"; do
  assert_eq 0 "$(stat_of "$stats" "$key")" "requests '$key' for a refused push (stats: $stats)"
done
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:1.0.0")" "1.0.0 after the refused push"
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:latest")" "latest after the refused push"
mapfile -t OTHER_BLOBS < <(image_blobs "$S" hello:1.0.0)
assert_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' -I "http://$REG_PLAIN/v2/$APP/blobs/${OTHER_BLOBS[0]}")" \
  "the refused image's config in the repository"

step "the refusal also with --json, and with an explicit :1.0.0 and --also-tag latest"
expect_error 1 "immutable" "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_PLAIN/$APP:1.0.0" --also-tag latest --json
assert_eq "" "$OUT" "stdout of a refused push --json"
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:latest")" "latest does not move when the push is refused"

step "the same content again is a no-op"
assert_eq "$V0" "$(build_digest --store "$S" build "$HELLO" --replace)" "rebuilding the original"
proxy_reset "$REG_FAULTY"
kiln_ok same --store "$S" push hello:1.0.0 "docker://$REG_FAULTY/$APP" --json
assert_eq "$V0 true 0" "$(jq -r '"\(.digest) \(.unchanged) \(.transferred)"' "$T/same.out")" \
  "push of the same content: digest unchanged transferred"
stats=$(proxy_stats "$REG_FAULTY")
for key in "POST upload" "PUT upload" "PATCH upload" "PUT manifest"; do
  assert_eq 0 "$(stat_of "$stats" "$key")" "requests '$key' for a no-op push (stats: $stats)"
done
kiln_ok sameq --store "$S" push hello:1.0.0 "docker://$REG_PLAIN/$APP" -q
assert_eq "docker://$REG_PLAIN/$APP:1.0.0 $V0" "$(cat "$T/sameq.out")" "push -q prints the destination and digest"

step "hello 1.0.1 with --also-tag latest: latest moves, 1.0.0 stays"
sed 's/^version: 1.0.0$/version: 1.0.1/' "$HELLO" >"$T/hello-1.0.1.yaml"
V1=$(build_digest --store "$S" build "$T/hello-1.0.1.yaml" --context "$HELLO_DIR" --set "GREETING=hello 1.0.1")
assert_ne "$V0" "$V1" "1.0.1"
kiln_ok push1 --store "$S" push hello:1.0.1 "docker://$REG_PLAIN/$APP" --also-tag latest --json
assert_eq '["1.0.1","latest"]' "$(jq -c .tags "$T/push1.out")" "tags of the 1.0.1 push"
assert_eq "$V1" "$(remote_digest "$REG_PLAIN/$APP:1.0.1")" "1.0.1"
assert_eq "$V1" "$(remote_digest "$REG_PLAIN/$APP:latest")" "latest moved to 1.0.1"
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:1.0.0")" "1.0.0 stays"

step "a floating tag moves on a plain push too"
kiln_ok pushdev0 --store "$S" push hello:1.0.0 "docker://$REG_PLAIN/$APP:dev"
kiln_ok pushdev1 --store "$S" push hello:1.0.1 "docker://$REG_PLAIN/$APP:dev"
assert_eq "$V1" "$(remote_digest "$REG_PLAIN/$APP:dev")" "dev moved"

step "the template's publish tags follow the push, beside --also-tag"
sed 's/^version: 1.0.0$/version: 1.0.2\npublish: {tags: ["1.0", edge]}/' "$HELLO" >"$T/hello-1.0.2.yaml"
grep -q '^publish: ' "$T/hello-1.0.2.yaml" || fail "no publish: line in the 1.0.2 template"
V2=$(build_digest --store "$S" build "$T/hello-1.0.2.yaml" --context "$HELLO_DIR" --set "GREETING=hello 1.0.2")
kiln_ok push2 --store "$S" push hello:1.0.2 "docker://$REG_PLAIN/$APP" --also-tag latest --json
assert_eq '["1.0.2","1.0","edge","latest"]' "$(jq -c '.tags | .[:1] + (.[1:] | sort)' "$T/push2.out")" \
  "tags of a push of a template with publish tags"
for t in 1.0.2 1.0 edge latest; do
  assert_eq "$V2" "$(remote_digest "$REG_PLAIN/$APP:$t")" "tag $t after the 1.0.2 push"
done
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:1.0.0")" "1.0.0 stays"
assert_eq "$V1" "$(remote_digest "$REG_PLAIN/$APP:1.0.1")" "1.0.1 stays"

# --- channels, from two machines: A promotes, B reads and rolls back.
A=$T/machine-a
B=$T/machine-b
ka() { KILN_ACTOR=ci-a "$KILN" --store "$A" "$@"; }
kb() { KILN_ACTOR=ci-b "$KILN" --store "$B" "$@"; }

step "machine A: promote 1.0.0 (by version) then 1.0.1 (by digest) to stable"
ka promote "docker://$REG_PLAIN/$APP:1.0.0" --channel stable --json >"$T/promote0.json" 2>"$T/promote0.err" ||
  fail "promote 1.0.0: $(cat "$T/promote0.err")"
assert_eq "promote $V0  1.0.0 ci-a" "$(jq -r '"\(.action) \(.digest) \(.from) \(.version) \(.actor)"' "$T/promote0.json")" \
  "promote --json: action digest from version actor"
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:stable")" "stable after the first promote"
ka promote "docker://$REG_PLAIN/$APP@$V1" --channel stable >"$T/promote1.out" 2>"$T/promote1.err" ||
  fail "promote 1.0.1: $(cat "$T/promote1.err")"
assert_eq "stable: $V0 -> $V1 (1.0.1)" "$(cat "$T/promote1.out")" "promote's text output"
assert_eq "$V1" "$(remote_digest "$REG_PLAIN/$APP:stable")" "stable after the second promote"

step "machine B: history lists both promotes with their versions"
kb history "docker://$REG_PLAIN/$APP" --channel stable --json >"$T/history1.json" 2>"$T/history1.err" ||
  fail "history: $(cat "$T/history1.err")"
assert_eq "[\"promote $V0 - 1.0.0 ci-a\",\"promote $V1 $V0 1.0.1 ci-a\"]" \
  "$(jq -c '[.[] | "\(.action) \(.digest) \(if .from == "" then "-" else .from end) \(.version) \(.actor)"]' "$T/history1.json")" \
  "history --json on another machine"
jq -e 'all(.[]; (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")) and (.id | length) > 0)' \
  "$T/history1.json" >/dev/null || fail "history entries without an RFC 3339 time or an id: $(cat "$T/history1.json")"
kb history "docker://$REG_PLAIN/$APP" --channel stable >"$T/history1.txt" 2>/dev/null
assert_contains "$(cat "$T/history1.txt")" "1.0.1" "text history shows versions"
assert_eq 3 "$(wc -l <"$T/history1.txt")" "text history: a header and two moves"

step "machine B: rollback points stable back at 1.0.0"
kb rollback "docker://$REG_PLAIN/$APP" --channel stable --json >"$T/rollback.json" 2>"$T/rollback.err" ||
  fail "rollback: $(cat "$T/rollback.err")"
assert_eq "rollback $V0 $V1 1.0.0 ci-b" "$(jq -r '"\(.action) \(.digest) \(.from) \(.version) \(.actor)"' "$T/rollback.json")" \
  "rollback --json"
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:stable")" "stable after the rollback (skopeo)"
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:1.0.0")" "1.0.0 untouched by the channel"
assert_eq "$V1" "$(remote_digest "$REG_PLAIN/$APP:1.0.1")" "1.0.1 untouched by the channel"

step "machine A reads the rollback in the history"
ka history "docker://$REG_PLAIN/$APP" --channel stable --json >"$T/history2.json" 2>/dev/null || fail "history after the rollback"
assert_eq '["promote","promote","rollback"]' "$(jq -c '[.[].action]' "$T/history2.json")" "actions in the history"
assert_eq "$V0 $V1 ci-b" "$(jq -r '.[2] | "\(.digest) \(.from) \(.actor)"' "$T/history2.json")" "the rollback entry"

step "a second rollback with nothing earlier: exit 1, stable unchanged"
KILN_ACTOR=ci-b expect_error 1 "no earlier digest" "$KILN" --store "$B" rollback "docker://$REG_PLAIN/$APP" --channel stable
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:stable")" "stable after a refused rollback"
ka history "docker://$REG_PLAIN/$APP" --channel stable --json >"$T/history3.json" 2>/dev/null || fail "history"
assert_eq 3 "$(jq length "$T/history3.json")" "a refused rollback is not recorded"

step "the machines' stores hold nothing of this (the registry is the shared state)"
for m in "$A" "$B"; do
  if [[ -d $m/blobs/sha256 ]]; then
    assert_eq "" "$(find "$m/blobs/sha256" -type f)" "blobs in $m"
  fi
done

step "channels that do not exist, and bad channel names"
expect_error 1 "no earlier digest" "$KILN" --store "$B" rollback "docker://$REG_PLAIN/$APP" --channel canary
assert_eq "[]" "$("$KILN" --store "$B" history "docker://$REG_PLAIN/$APP" --channel canary --json 2>/dev/null | jq -c .)" \
  "history of a channel never promoted"
expect_error 1 "channel" "$KILN" --store "$B" promote "docker://$REG_PLAIN/$APP:1.0.0" --channel "_kiln.history.stable"
expect_error 1 "no such image" "$KILN" --store "$B" promote "docker://$REG_PLAIN/$APP:9.9.9" --channel canary
assert_eq 404 "$(manifest_status "http://$REG_PLAIN" "$APP" canary)" "canary after refused promotes"
