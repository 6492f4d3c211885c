#!/usr/bin/env bash
# The layer cache key holds the compression level used, not the level given:
# a build without --compression-level and one with the default spelled out
# (gzip 6, zstd 3) write the same bytes and hit the same entries. (A
# regression: the key once held the level as given, 0 when none was, so every
# layer was rebuilt, "compression: gzip/0 -> gzip/6", and kept twice.)
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool jq

S=$T/store
mkdir -p "$T/ctx"
echo "data" >"$T/ctx/data.txt"
cat >"$T/ctx/kiln.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: level
version: 1.0.0
layers:
  - name: one
    files:
      - {src: data.txt, dest: /srv/data.txt}
  - name: two
    files:
      - {dest: /etc/two.txt, content: "two\n"}
EOF
TPL=$T/ctx/kiln.yaml
both_cached="layer 1 one: cached
layer 2 two: cached"

for pair in gzip:6 zstd:3; do
  comp=${pair%:*} level=${pair#*:}
  step "$comp: no level, then --compression-level $level (its default)"
  D=$(build_digest --store "$S" build "$TPL" --compression "$comp" --replace)
  "$KILN" --store "$S" build "$TPL" --compression "$comp" --compression-level "$level" --replace --explain -q \
    >"$T/$comp.out" 2>"$T/$comp.err" || fail "build with --compression-level $level failed: $(cat "$T/$comp.err")"
  assert_eq "level:1.0.0 $D" "$(cat "$T/$comp.out")" "the default level spelled out writes the same image"
  assert_eq "$both_cached" "$(cat "$T/$comp.err")" "--explain with $comp's default level spelled out"
done
