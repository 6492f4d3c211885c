#!/usr/bin/env bash
# Concurrent promotes never lose a move (issue 3): two machines promote
# different digests to one channel at once; both moves are in the history,
# and the channel ends at the history's last move.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"

S=$T/store
APP=promote-$RUN/app

step "publish two versions"
V0=$(build_digest --store "$S" build "$HELLO")
sed 's/^version: 1.0.0$/version: 1.0.1/' "$HELLO" >"$T/hello-1.0.1.yaml"
V1=$(build_digest --store "$S" build "$T/hello-1.0.1.yaml" --context "$HELLO_DIR" --set "GREETING=hello 1.0.1")
kiln_ok push0 --store "$S" push hello:1.0.0 "docker://$REG_PLAIN/$APP"
kiln_ok push1 --store "$S" push hello:1.0.1 "docker://$REG_PLAIN/$APP"

# Two machines promote different digests to the same channel at once; both
# moves must be in the history, and the channel at one of them.
for round in 1 2 3 4 5; do
  step "round $round: two concurrent promotes to channel c$round"
  "$KILN" --store "$T/a" promote "docker://$REG_PLAIN/$APP@$V0" --channel "c$round" >"$T/a$round.out" 2>&1 &
  pa=$!
  "$KILN" --store "$T/b" promote "docker://$REG_PLAIN/$APP@$V1" --channel "c$round" >"$T/b$round.out" 2>&1 &
  pb=$!
  rca=0 rcb=0
  wait "$pa" || rca=$?
  wait "$pb" || rcb=$?
  assert_eq "0 0" "$rca $rcb" "exit codes of the two promotes: $(cat "$T/a$round.out" "$T/b$round.out")"
  "$KILN" --store "$T/c" history "docker://$REG_PLAIN/$APP" --channel "c$round" --json >"$T/h$round.json" 2>/dev/null ||
    fail "history of c$round"
  assert_eq "$(printf '%s\n' "$V0" "$V1" | sort | tr '\n' ' ')" "$(jq -r '.[].digest' "$T/h$round.json" | sort | tr '\n' ' ')" \
    "digests in the history of c$round after two concurrent promotes"
  last=$(jq -r '.[-1].digest' "$T/h$round.json")
  assert_eq "$last" "$(remote_digest "$REG_PLAIN/$APP:c$round")" "the channel points at the last move of its history"
done
