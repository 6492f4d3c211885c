#!/usr/bin/env bash
# Rebuilds examples/hello with default settings (no SOURCE_DATE_EPOCH, stock
# templates from this source tree) into a throwaway store and writes its
# manifest digest to tests/golden/hello.digest. Read README.md first: the
# digest changes only when kiln's output encoding or the example changes.
# Usage: tests/golden/regenerate.sh   (KILN_BIN picks the binary; default build/kiln)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
kiln=${KILN_BIN:-$src/build/kiln}
[[ $kiln == /* ]] || kiln=$PWD/$kiln
store=$(mktemp -d "${TMPDIR:-/tmp}/kiln-golden.XXXXXX")
trap 'rm -rf "$store"' EXIT
out=$(env -u SOURCE_DATE_EPOCH KILN_TEMPLATE_PATH="$src/templates" "$kiln" --store "$store" build "$src/examples/hello/kiln.yaml" -q)
digest=${out##* }
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "regenerate: no digest in: $out" >&2; exit 1; }
old=$(cat "$here/hello.digest" 2>/dev/null || true)
echo "$digest" >"$here/hello.digest"
if [[ $old == "$digest" ]]; then
  echo "hello.digest unchanged: $digest"
else
  echo "hello.digest: ${old:-(none)} -> $digest"
fi
