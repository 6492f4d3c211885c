#!/usr/bin/env bash
# Faults between kiln and the registry, injected by the fixture's proxy
# (REG_FAULTY, in front of REG_PLAIN's storage): 5xx and 429 (Retry-After)
# are retried; a connection dropped in the middle of a chunked upload is
# resumed in the same upload session, and of a monolithic one retried; a
# truncated or falsified download is retried and never enters the store;
# permanent faults end in exit 2 after the retry budget with no manifest in
# the registry; a redirect to another host never carries the credentials.
# Known bugs in this area have their own scripts: registry_resume_first_chunk,
# registry_retry_after_put, registry_gave_up_message.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"
export KILN_RETRY_BACKOFF_MS=50

S=$T/store
NS=faults-$RUN
F=$REG_FAULTY
CREDS=$REG_USER:$REG_PASS

# state_pattern REPO OFFSET: a regex for distribution 2.8's upload URLs once
# the session holds OFFSET bytes. Its _state parameter is URL-safe base64 of
# a 32-byte HMAC followed by {"Name":REPO,"UUID":…,"Offset":N,…}; the
# 3-byte-aligned part of `"Offset":N` encodes the same wherever it sits.
state_pattern() {
  local pre="{\"Name\":\"$1\",\"UUID\":\"00000000-0000-0000-0000-000000000000\","
  local json="$pre\"Offset\":$2,"
  local start=$(((32 + ${#pre} + 2) / 3 * 3 - 32))
  local end=$(((32 + ${#json}) / 3 * 3 - 32))
  printf '%s' "${json:start:end-start}" | base64 -w0 | tr '+/' '-_'
}

# ms_since START_NS: milliseconds since START_NS (date +%s%N).
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

step "images: a 40 MiB layer (chunked uploads) and a 5 MiB one (monolithic)"
C=$T/ctx
mkdir -p "$C"
head -c $((40 << 20)) /dev/urandom >"$C/big.bin"
head -c $((5 << 20)) /dev/urandom >"$C/mid.bin"
for name in big mid; do
  cat >"$T/$name.yaml" <<EOF
apiVersion: kiln.dev/v1
name: $name
version: 1.0.0
layers:
  - name: data
    files:
      - {src: $name.bin, dest: /data/$name.bin}
EOF
done
BIG=$(build_digest --store "$S" build "$T/big.yaml" --context "$C")
MID=$(build_digest --store "$S" build "$T/mid.yaml" --context "$C")
BIG_LAYER=$("$KILN" --store "$S" inspect big:1.0.0 --json | jq -r '.layers[0].digest')
MID_LAYER=$("$KILN" --store "$S" inspect mid:1.0.0 --json | jq -r '.layers[0].digest')
[[ $("$KILN" --store "$S" inspect big:1.0.0 --json | jq '.layers[0].size') -gt $((32 << 20)) ]] ||
  fail "the big layer is not larger than kiln's 32 MiB monolithic limit"
# Pushed from oci: layouts with an empty store each time, so kiln knows no
# repository to mount from and every blob goes up through the proxy.
"$KILN" --store "$S" export big:1.0.0 "oci:$T/big-oci:1.0.0" >/dev/null
"$KILN" --store "$S" export mid:1.0.0 "oci:$T/mid-oci:1.0.0" >/dev/null
# fresh_store: sets ST to a new empty store (not in a subshell: it counts).
n=0
fresh_store() {
  n=$((n + 1))
  ST=$T/s$n
}

# pushed_intact REPO DIGEST NAME: the registry serves the image whole (kiln
# pull verifies every blob) and the copy is byte-identical to NAME in $S.
pushed_intact() {
  local st blobs
  fresh_store
  st=$ST
  kiln_ok check --store "$st" pull "docker://$REG_PLAIN/$1:1.0.0" --json
  assert_eq "$2" "$(json_field "$T/check.out" .digest)" "digest of $1 pulled back"
  mapfile -t blobs < <(image_blobs "$S" "$3")
  assert_blobs_identical "$S" "$st" "$2" "${blobs[@]}"
  assert_store_clean "$st"
}

step "500 on blob uploads: retried, the push completes"
proxy_reset "$F"
proxy_fault "$F" '{"kind": "status", "status": 500, "count": 3, "method": "PUT", "path": "/blobs/uploads/"}'
fresh_store
kiln_ok r500 --store "$ST" push "oci:$T/mid-oci:1.0.0" "docker://$F/$NS/mid" --json
stats=$(proxy_stats "$F")
[[ $(json_field "$T/r500.out" .retries) -ge 3 ]] || fail "retries after three 500s: $(cat "$T/r500.out")"
assert_eq 2 "$(json_field "$T/r500.out" .transferred)" "blobs uploaded"
assert_eq 5 "$(stat_of "$stats" "PUT upload")" "PUTs: two blobs and three faults (stats: $stats)"
pushed_intact "$NS/mid" "$MID" mid:1.0.0

step "503 on blob HEADs and upload starts: retried"
proxy_reset "$F"
proxy_fault "$F" '{"kind": "status", "status": 503, "count": 2, "method": "HEAD", "path": "/blobs/"}'
proxy_fault "$F" '{"kind": "status", "status": 502, "count": 2, "method": "POST", "path": "/blobs/uploads/"}'
fresh_store
kiln_ok r503 --store "$ST" push "oci:$T/mid-oci:1.0.0" "docker://$F/$NS/mid503" --json
[[ $(json_field "$T/r503.out" .retries) -ge 4 ]] || fail "retries after four 5xx: $(cat "$T/r503.out")"
assert_eq "$MID" "$(remote_digest "$REG_PLAIN/$NS/mid503:1.0.0")"

step "429 with Retry-After: 1 on the upload start: honoured (>= 1 s), then completes"
proxy_reset "$F"
proxy_fault "$F" '{"kind": "status", "status": 429, "retry_after": 1, "count": 1, "method": "POST", "path": "/blobs/uploads/"}'
t0=$(date +%s%N)
fresh_store
kiln_ok r429 --store "$ST" push "oci:$T/mid-oci:1.0.0" "docker://$F/$NS/mid429" --json
took=$(ms_since "$t0")
[[ $took -ge 1000 ]] || fail "the push after a 429 with Retry-After: 1 took only $took ms"
[[ $(json_field "$T/r429.out" .retries) -ge 1 ]] || fail "no retry counted after a 429: $(cat "$T/r429.out")"
assert_eq "$MID" "$(remote_digest "$REG_PLAIN/$NS/mid429:1.0.0")"

step "a connection dropped during the second chunk of a chunked upload: resumed in the same session"
proxy_reset "$F"
proxy_fault "$F" "{\"kind\": \"drop\", \"count\": 1, \"method\": \"PATCH\", \"path\": \"$(state_pattern "$NS/big" $((32 << 20)))\"}"
fresh_store
kiln_ok drop --store "$ST" push "oci:$T/big-oci:1.0.0" "docker://$F/$NS/big" --json
stats=$(proxy_stats "$F")
assert_eq "$BIG" "$(json_field "$T/drop.out" .digest)"
assert_eq 3 "$(stat_of "$stats" "PATCH upload")" "PATCHes: two chunks and the dropped one (stats: $stats)"
[[ $(stat_of "$stats" "GET upload") -ge 1 ]] || fail "kiln did not ask the registry how far the upload got: $stats"
assert_eq 2 "$(stat_of "$stats" "POST upload")" "upload sessions: one per blob, the big one resumed (stats: $stats)"
[[ $(json_field "$T/drop.out" .retries) -ge 1 ]] || fail "no retry counted after a drop: $(cat "$T/drop.out")"
pushed_intact "$NS/big" "$BIG" big:1.0.0

step "a connection dropped during a monolithic upload (5 MiB): retried, completes"
proxy_reset "$F"
proxy_fault "$F" "{\"kind\": \"drop\", \"count\": 1, \"method\": \"PUT\", \"path\": \"${MID_LAYER#sha256:}\"}"
fresh_store
kiln_ok dropmono --store "$ST" push "oci:$T/mid-oci:1.0.0" "docker://$F/$NS/middrop" --json
stats=$(proxy_stats "$F")
assert_eq 3 "$(stat_of "$stats" "PUT upload")" "PUTs: two blobs and the dropped one (stats: $stats)"
[[ $(json_field "$T/dropmono.out" .retries) -ge 1 ]] || fail "no retry counted after a drop: $(cat "$T/dropmono.out")"
pushed_intact "$NS/middrop" "$MID" mid:1.0.0

step "a truncated blob download during a pull: retried, the store clean"
fresh_store
P=$ST
proxy_reset "$F"
proxy_fault "$F" "{\"kind\": \"truncate\", \"count\": 1, \"method\": \"GET\", \"path\": \"${BIG_LAYER#sha256:}\"}"
kiln_ok trunc --store "$P" pull "docker://$F/$NS/big:1.0.0" --json
stats=$(proxy_stats "$F")
assert_eq "$BIG" "$(json_field "$T/trunc.out" .digest)"
assert_eq 3 "$(stat_of "$stats" "GET blob")" "blob GETs: config, layer, and the truncated one (stats: $stats)"
[[ $(json_field "$T/trunc.out" .retries) -ge 1 ]] || fail "no retry counted after a truncation: $(cat "$T/trunc.out")"
assert_store_clean "$P"
assert_blobs_identical "$S" "$P" "$BIG_LAYER"

step "a truncated manifest download: retried"
proxy_reset "$F"
proxy_fault "$F" '{"kind": "truncate", "count": 1, "method": "GET", "path": "/manifests/"}'
fresh_store
P=$ST
kiln_ok truncm --store "$P" pull "docker://$F/$NS/mid:1.0.0" --json
assert_eq "$MID" "$(json_field "$T/truncm.out" .digest)"
assert_store_clean "$P"

step "a lie (other bytes of the same length) on a blob download: retried, never stored"
fresh_store
P=$ST
proxy_reset "$F"
proxy_fault "$F" "{\"kind\": \"lie\", \"count\": 1, \"method\": \"GET\", \"path\": \"${MID_LAYER#sha256:}\"}"
kiln_ok lie --store "$P" pull "docker://$F/$NS/mid:1.0.0" --json
assert_eq "$MID" "$(json_field "$T/lie.out" .digest)"
[[ $(json_field "$T/lie.out" .retries) -ge 1 ]] || fail "no retry counted after a lie: $(cat "$T/lie.out")"
assert_store_clean "$P"
assert_blobs_identical "$S" "$P" "$MID_LAYER"

step "a registry that always lies: exit 2, nothing corrupt in the store, no image named"
fresh_store
P=$ST
proxy_reset "$F"
proxy_fault "$F" "{\"kind\": \"lie\", \"count\": 100, \"method\": \"GET\", \"path\": \"${MID_LAYER#sha256:}\"}"
expect_error 2 "${MID_LAYER}" "$KILN" --store "$P" pull "docker://$F/$NS/mid:1.0.0" --json
assert_eq "" "$OUT" "stdout of a failed pull --json"
assert_store_clean "$P"
[[ ! -e $(blob_path "$P" "$MID_LAYER") ]] || fail "the falsified layer is in the store"
[[ ! -e $(blob_path "$P" "$MID") ]] || fail "the manifest of a failed pull is in the store"
assert_eq "[]" "$("$KILN" --store "$P" images --json | jq -c '[.[].name]')" "images after a failed pull"

step "permanent 500s on blob uploads: exit 2 after the retry budget, no manifest in the registry"
proxy_reset "$F"
proxy_fault "$F" '{"kind": "status", "status": 500, "count": 100, "method": "PUT", "path": "/blobs/uploads/"}'
t0=$(date +%s%N)
fresh_store
expect_error 2 "HTTP 500" "$KILN" --store "$ST" push "oci:$T/mid-oci:1.0.0" "docker://$F/$NS/perm" --json
took=$(ms_since "$t0")
stats=$(proxy_stats "$F")
assert_eq "" "$OUT" "stdout of a failed push --json"
assert_eq 0 "$(stat_of "$stats" "PUT manifest")" "manifest PUTs of a failed push (stats: $stats)"
assert_eq 404 "$(manifest_status "http://$REG_PLAIN" "$NS/perm" 1.0.0)" "the tag of a failed push"
puts=$(stat_of "$stats" "PUT upload")
[[ $puts -ge 4 && $puts -le 20 ]] || fail "blob PUTs before giving up: $puts (a bounded retry budget expected; stats: $stats)"
[[ $took -lt 30000 ]] || fail "giving up took $took ms with a 50 ms backoff"

step "permanent 503s on manifest HEADs: exit 2, the message says it gave up"
proxy_reset "$F"
proxy_fault "$F" '{"kind": "status", "status": 503, "count": 100, "method": "HEAD", "path": "/manifests/"}'
fresh_store
expect_error 2 "gave up after" "$KILN" --store "$ST" push "oci:$T/mid-oci:1.0.0" "docker://$F/$NS/perm503"
assert_contains "$ERR" "503" "the error names the status"
stats=$(proxy_stats "$F")
assert_eq 0 "$(stat_of "$stats" "PUT manifest")" "manifest PUTs of a failed push (stats: $stats)"
proxy_reset "$F"

# --- redirects: credentials stay with the registry they are for. The
# redirect target is REG_FAULTY, whose /_seen lists the Authorization
# headers that reached it; it serves REG_PLAIN's storage, so the same
# repository is pushed there too.
step "redirect of a blob GET to another host: the basic credentials do not follow"
kiln_ok redirsrc --store "$S" push mid:1.0.0 "docker://$REG_PLAIN/$NS/redir"
kiln_ok redirbasic --store "$S" push mid:1.0.0 "docker://$REG_BASIC/$NS/redir" --creds "$CREDS"
start_proxy "$REG_BASIC"
BP=$EXTRA_PROXY
proxy_fault "$BP" "{\"kind\": \"redirect\", \"to\": \"http://$F\", \"count\": 100, \"method\": \"GET\", \"path\": \"/blobs/\"}"
proxy_reset "$F"
fresh_store
P=$ST
kiln_ok redir --store "$P" pull "docker://$BP/$NS/redir:1.0.0" --creds "$CREDS" --json
assert_eq "$MID" "$(json_field "$T/redir.out" .digest)" "pull through the redirect"
assert_store_clean "$P"
assert_eq 2 "$(stat_of "$(proxy_stats "$F")" "GET blob")" "blob GETs that reached the redirect target"
assert_eq "[]" "$(proxy_seen "$F" | jq -c .)" "Authorization headers that reached the other host"
proxy_seen "$BP" | jq -e 'length > 0 and all(.[]; startswith("Basic "))' >/dev/null ||
  fail "the credentials did not reach the registry itself: $(proxy_seen "$BP")"

step "redirect of a blob GET to another host: the bearer token does not follow"
proxy_reset "$REG_TOKEN"
proxy_fault "$REG_TOKEN" "{\"kind\": \"redirect\", \"to\": \"http://$F\", \"count\": 100, \"method\": \"GET\", \"path\": \"/blobs/\"}"
proxy_reset "$F"
fresh_store
P=$ST
kiln_ok redirtok --store "$P" pull "docker://$REG_TOKEN/$NS/redir:1.0.0" --creds "$CREDS" --json
proxy_reset "$REG_TOKEN"
assert_eq "$MID" "$(json_field "$T/redirtok.out" .digest)" "pull through the redirect"
assert_store_clean "$P"
assert_eq 2 "$(stat_of "$(proxy_stats "$F")" "GET blob")" "blob GETs that reached the redirect target"
assert_eq "[]" "$(proxy_seen "$F" | jq -c .)" "Authorization headers that reached the other host"
assert_secret_free "$T"/*.out "$T"/*.err
