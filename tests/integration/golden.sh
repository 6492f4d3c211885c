#!/usr/bin/env bash
# The manifest digest of examples/hello with default settings equals the
# checked-in tests/golden/hello.digest (see tests/golden/README.md).
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

golden_file=$TESTS_DIR/golden/hello.digest
want=$(cat "$golden_file")
[[ $want =~ ^sha256:[0-9a-f]{64}$ ]] || fail "$golden_file does not hold a sha256 digest: $want"

step "build examples/hello with default settings"
got=$(build_digest --store "$T/store" build "$HELLO")
if [[ $got != "$want" ]]; then
  fail "examples/hello built to $got but tests/golden/hello.digest says $want.
  If kiln's encoding or the example changed on purpose, run tests/golden/regenerate.sh
  and commit the new digest (tests/golden/README.md says when that is right).
  If not, the output changed by accident: a determinism or encoding regression."
fi
# The same digest when kiln is run from elsewhere on a relative path.
(cd "$HELLO_DIR/bin" && assert_eq "$want" "$(build_digest --store "$T/store2" build ../kiln.yaml)" "golden from another directory")
