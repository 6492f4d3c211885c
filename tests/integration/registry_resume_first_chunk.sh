#!/usr/bin/env bash
# A fault on the first chunk of a chunked upload: the registry answers the
# status request with "Range: 0-0", which may mean 0 or 1 byte, so kiln starts
# the session over instead of guessing; the push completes, and nothing
# corrupt reaches the registry (it would refuse the digest anyway).
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"
export KILN_RETRY_BACKOFF_MS=50

S=$T/store
NS=firstchunk-$RUN
F=$REG_FAULTY

step "an image with a 40 MiB layer (chunked upload)"
mkdir -p "$T/ctx"
head -c $((40 << 20)) /dev/urandom >"$T/ctx/big.bin"
cat >"$T/big.yaml" <<'YAML'
apiVersion: kiln.dev/v1
name: big
version: 1.0.0
layers:
  - name: data
    files:
      - {src: big.bin, dest: /data/big.bin}
YAML
BIG=$(build_digest --store "$S" build "$T/big.yaml" --context "$T/ctx")
"$KILN" --store "$S" export big:1.0.0 "oci:$T/big-oci:1.0.0" >/dev/null

# push_with_fault NAME FAULT_JSON: pushes from an empty store through the
# proxy with FAULT armed; the push must complete and the image come back whole.
push_with_fault() {
  local name=$1
  proxy_reset "$F"
  proxy_fault "$F" "$2"
  kiln_ok "$name" --store "$T/store-$name" push "oci:$T/big-oci:1.0.0" "docker://$F/$NS/$name" --json
  [[ $(json_field "$T/$name.out" .retries) -ge 1 ]] || fail "the fault was not hit: $(cat "$T/$name.out") $(proxy_stats "$F")"
  kiln_ok "$name-pull" --store "$T/pulled-$name" pull "docker://$REG_PLAIN/$NS/$name:1.0.0" --json
  assert_eq "$BIG" "$(json_field "$T/$name-pull.out" .digest)" "digest pulled back"
  assert_store_clean "$T/pulled-$name"
}

step "a connection dropped during the first chunk"
push_with_fault drop '{"kind": "drop", "count": 1, "method": "PATCH", "path": "/blobs/uploads/"}'

step "a 500 on the first chunk"
push_with_fault s500 '{"kind": "status", "status": 500, "count": 1, "method": "PATCH", "path": "/blobs/uploads/"}'

step "a 429 on the first chunk"
push_with_fault s429 '{"kind": "status", "status": 429, "retry_after": 0, "count": 1, "method": "PATCH", "path": "/blobs/uploads/"}'
