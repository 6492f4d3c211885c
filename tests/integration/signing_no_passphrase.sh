#!/usr/bin/env bash
# Loading an encrypted key with no passphrase at all (KILN_PASSWORD unset or
# empty, no terminal) says so, with the hint, rather than "wrong passphrase":
#   KILN_PASSWORD=secret kiln keygen --out enc
#   kiln sign hello:1.0.0 --key enc.key </dev/null
#   kiln: error: enc.key: … (none given: set KILN_PASSWORD)   exit 1
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
unset KILN_PASSWORD

S=$T/store
no_tty() { "$@" </dev/null; }
KILN_PASSWORD='a passphrase' "$KILN" keygen --out "$T/enc" >/dev/null
build_digest --store "$S" build "$HELLO" >/dev/null

step "KILN_PASSWORD unset, no terminal"
expect_error 1 "$T/enc.key: wrong passphrase (none given: set KILN_PASSWORD)" \
  no_tty "$KILN" --store "$S" sign hello:1.0.0 --key "$T/enc.key"
step "KILN_PASSWORD empty"
KILN_PASSWORD='' expect_error 1 "$T/enc.key: wrong passphrase (none given: set KILN_PASSWORD)" \
  no_tty "$KILN" --store "$S" sign hello:1.0.0 --key "$T/enc.key"
step "a wrong passphrase still says just that"
KILN_PASSWORD=wrong expect_error 1 "$T/enc.key: wrong passphrase" no_tty "$KILN" --store "$S" sign hello:1.0.0 --key "$T/enc.key"
assert_not_contains "$ERR" "none given" "a wrong passphrase is not a missing one"
