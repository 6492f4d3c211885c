#!/usr/bin/env bash
# When blob uploads keep failing, kiln exits 2 after its retry budget and the
# message says that it gave up, and after how many attempts.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"
export KILN_RETRY_BACKOFF_MS=50

NS=gaveup-$RUN
F=$REG_FAULTY

step "build examples/hello"
build_digest --store "$T/store" build "$HELLO" >/dev/null

step "permanent 500s on blob PUTs: exit 2, and the message says kiln gave up"
proxy_reset "$F"
proxy_fault "$F" '{"kind": "status", "status": 500, "count": 100, "method": "PUT", "path": "/blobs/uploads/"}'
expect_error 2 "HTTP 500" "$KILN" --store "$T/store" push hello:1.0.0 "docker://$F/$NS/hello"
proxy_reset "$F"
assert_contains "$ERR" "gave up after" "the message of a push that ran out of retries"
assert_eq 404 "$(manifest_status "http://$REG_PLAIN" "$NS/hello" 1.0.0)" "the tag of a failed push"
