#!/usr/bin/env bash
# --also-tag cannot move a published version tag (DESIGN, Publishing: "A
# version tag is immutable: pushing 1.4.2 with other content fails and changes
# nothing"): refused with exit 1 before anything is sent, the tag unchanged.
# Floating tags that look like versions (1.4, 1) still move.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"

S=$T/store
APP=alsotag-$RUN/app
F=$REG_FAULTY

step "publish 1.0.0 with the floating tags 1.0 and 1"
V0=$(build_digest --store "$S" build "$HELLO")
kiln_ok push0 --store "$S" push hello:1.0.0 "docker://$REG_PLAIN/$APP" --also-tag 1.0,1

step "1.0.1 with --also-tag 1.0,1: the floating version-like tags move"
sed 's/^version: 1.0.0$/version: 1.0.1/' "$HELLO" >"$T/hello-1.0.1.yaml"
V1=$(build_digest --store "$S" build "$T/hello-1.0.1.yaml" --context "$HELLO_DIR" --set "GREETING=hello 1.0.1")
kiln_ok push1 --store "$S" push hello:1.0.1 "docker://$REG_PLAIN/$APP" --also-tag 1.0,1
assert_eq "$V1" "$(remote_digest "$REG_PLAIN/$APP:1.0")" "1.0 moved"
assert_eq "$V1" "$(remote_digest "$REG_PLAIN/$APP:1")" "1 moved"

step "1.0.1 with --also-tag 1.0.0: refused, 1.0.0 unchanged"
proxy_reset "$F"
expect_error 1 "immutable" "$KILN" --store "$S" push hello:1.0.1 "docker://$F/$APP:1.0.1" --also-tag 1.0.0
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:1.0.0")" "1.0.0 after --also-tag 1.0.0 with another image"

step "other content as 1.0.0 with --also-tag 1.0.0: refused before anything is sent"
OTHER=$(build_digest --store "$S" build "$HELLO" --set GREETING=other --replace)
assert_ne "$V0" "$OTHER"
proxy_reset "$F"
expect_error 1 "immutable" "$KILN" --store "$S" push hello:1.0.0 "docker://$F/$APP" --also-tag 1.0.0
stats=$(proxy_stats "$F")
for key in "POST upload" "PUT upload" "PATCH upload" "PUT manifest"; do
  assert_eq 0 "$(stat_of "$stats" "$key")" "requests '$key' for a refused push (stats: $stats)"
done
assert_eq "$V0" "$(remote_digest "$REG_PLAIN/$APP:1.0.0")" "1.0.0 after the refused push"
