#!/usr/bin/env bash
# A 429 with Retry-After on a blob's single-request PUT (every blob up to
# 32 MiB) is retried no sooner than Retry-After says.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"
export KILN_RETRY_BACKOFF_MS=50

NS=retryafter-$RUN
F=$REG_FAULTY

step "build examples/hello"
D=$(build_digest --store "$T/store" build "$HELLO")

step "429 with Retry-After: 1 on a blob PUT: the push waits >= 1 s"
proxy_reset "$F"
proxy_fault "$F" '{"kind": "status", "status": 429, "retry_after": 1, "count": 1, "method": "PUT", "path": "/blobs/uploads/"}'
t0=$(date +%s%N)
kiln_ok push --store "$T/store" push hello:1.0.0 "docker://$F/$NS/hello" --json
took=$((($(date +%s%N) - t0) / 1000000))
assert_eq "$D" "$(json_field "$T/push.out" .digest)"
[[ $(json_field "$T/push.out" .retries) -ge 1 ]] || fail "the 429 was not hit: $(cat "$T/push.out")"
[[ $took -ge 1000 ]] || fail "the push after a 429 with Retry-After: 1 on a blob PUT took only $took ms"
