#!/usr/bin/env bash
# --explain names a file inside a copied folder by its path in the context,
# one slash between the parts, also when the template's src ends in "/" (the
# README's own example, `{src: conf/, dest: /etc/hello/}`): "file
# conf/b.conf: added". (A regression: it once said "file conf//b.conf".)
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

S=$T/store
C=$T/ctx
mkdir -p "$C/conf"
echo "a=1" >"$C/conf/a.conf"
cat >"$C/kiln.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: dirlabel
version: 1.0.0
layers:
  - name: conf
    files:
      - {src: conf/, dest: /etc/app/}
EOF

step "a file added to a folder given as src: conf/"
build_digest --store "$S" build "$C/kiln.yaml" >/dev/null
A=$(sha256_of "$C/conf/a.conf")
echo "b=2" >"$C/conf/b.conf"
echo "a=2" >"$C/conf/a.conf"
A2=$(sha256_of "$C/conf/a.conf")
"$KILN" --store "$S" build "$C/kiln.yaml" --replace --explain -q >/dev/null 2>"$T/explain.err" ||
  fail "the rebuild failed: $(cat "$T/explain.err")"
assert_eq "layer 1 conf: rebuilt, because
    file conf/a.conf: $A -> $A2
    file conf/b.conf: added" "$(cat "$T/explain.err")" "--explain for files in conf/"
