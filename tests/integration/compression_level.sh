#!/usr/bin/env bash
# --compression-level: valid levels give valid, reproducible layers; levels
# outside the documented range ("gzip 1-12, zstd 1-19", kiln build --help)
# are the user's mistake: exit 1, a message naming the flag, store unchanged.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool jq gzip

# A context with one 3 MiB file: several 1 MiB gzip blocks in its layer.
C=$T/ctx
mkdir -p "$C"
perl -e 'my $s = 1; for (1 .. 3 * 262144) { $s = ($s * 1103515245 + 12345) % 2147483648; print pack("N", $s) }' >"$C/big.bin"
cat >"$C/kiln.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: levels
version: 1.0.0
layers:
  - name: data
    files:
      - {src: big.bin, dest: /big.bin}
EOF

step "valid levels: readable, reproducible across --jobs, and different from the default"
build_json "$T/default.json" --store "$T/s-default" build "$C/kiln.yaml"
for spec in gzip:1 gzip:12 zstd:1 zstd:19; do
  comp=${spec%:*} level=${spec#*:}
  build_json "$T/$comp$level-j1.json" --store "$T/s-$comp$level-j1" build "$C/kiln.yaml" \
    --compression "$comp" --compression-level "$level" --jobs 1
  build_json "$T/$comp$level-j3.json" --store "$T/s-$comp$level-j3" build "$C/kiln.yaml" \
    --compression "$comp" --compression-level "$level" --jobs 3
  assert_eq "$(build_identity "$T/$comp$level-j1.json")" "$(build_identity "$T/$comp$level-j3.json")" \
    "$comp level $level: --jobs 1 vs --jobs 3"
  assert_eq "$(jq -r '.layers[0].diffId' "$T/default.json")" "$(jq -r '.layers[0].diffId' "$T/$comp$level-j1.json")" \
    "$comp level $level: the same uncompressed layer"
  if [[ $comp == gzip ]]; then
    blob=$(blob_path "$T/s-$comp$level-j1" "$(jq -r '.layers[0].digest' "$T/$comp$level-j1.json")")
    assert_eq "$(jq -r '.layers[0].diffId' "$T/default.json")" "sha256:$(gzip -dc "$blob" | sha256sum | cut -d' ' -f1)" \
      "gzip -d of the level $level layer"
  fi
done
assert_ne "$(jq -r '.layers[0].digest' "$T/default.json")" "$(jq -r '.layers[0].digest' "$T/gzip1-j1.json")" "gzip level 1 vs 6"

step "out-of-range levels are refused"
S=$T/store
build_digest --store "$S" build "$HELLO" >/dev/null
fingerprint=$(store_fingerprint "$S")
# Every case runs (in a subshell) so one report lists all that fail.
failed=()
for comp_level in gzip:-1 gzip:13 gzip:99 zstd:99; do
  comp=${comp_level%:*} level=${comp_level#*:}
  for template in "$HELLO" "$C/kiln.yaml"; do
    step "--compression $comp --compression-level=$level: $template"
    if ! (
      expect_error 1 "--compression-level" "$KILN" --store "$S" build "$template" --compression "$comp" --compression-level="$level"
      assert_eq "$fingerprint" "$(store_fingerprint "$S")" "the store after a refused level"
    ); then
      failed+=("--compression $comp --compression-level=$level ($(basename "$(dirname "$template")"))")
    fi
  done
done
[[ ${#failed[@]} -eq 0 ]] || fail "out-of-range levels not refused with exit 1:$(printf "\n  %s" "${failed[@]}")"
