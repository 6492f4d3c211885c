#!/usr/bin/env bash
# Templates on a registry base (`base: docker://HOST/REPO:TAG|@sha256:…`): the
# build keeps the base's layers as they are (same blob digests and diff_ids);
# an unpinned base builds with a warning naming the digest it resolved to and
# how to pin it; --locked refuses it at the template's file:line:col; a base
# pinned by digest builds identically twice, and the second build asks the
# registry nothing (counted by the test proxy).
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"

S=$T/store
NS=base-$RUN

step "publish examples/hello as the base"
BASE=$(build_digest --store "$S" build "$HELLO")
kiln_ok push --store "$S" push hello:1.0.0 "docker://$REG_PLAIN/$NS/hello"
"$KILN" --store "$S" inspect hello:1.0.0 --json >"$T/base.json"
assert_eq 3 "$(jq '.layers | length' "$T/base.json")" "layers of the base"

# derived FILE BASE_REF: a template with one layer on top of BASE_REF.
derived() {
  cat >"$1" <<EOF
apiVersion: kiln.dev/v1
name: derived
version: 2.0.0
base: $2
layers:
  - name: extra
    files:
      - {dest: /etc/extra.txt, content: "on top of a registry base\n"}
config:
  env:
    DERIVED: "yes"
EOF
}

# same_base_layers INSPECT_JSON: the image's first layers are the base's, as they are.
same_base_layers() {
  assert_eq 4 "$(jq '.layers | length' "$1")" "layers of the derived image: the base's three and one"
  assert_eq "$(jq -c '[.layers[] | {digest, diffId, size, mediaType}]' "$T/base.json")" \
    "$(jq -c '[.layers[:3][] | {digest, diffId, size, mediaType}]' "$1")" \
    "the derived image's lower layers are the base's (digest, diff_id, size, media type)"
  assert_eq "$(jq -c '.config.rootfs.diff_ids' "$T/base.json")" "$(jq -c '.config.rootfs.diff_ids[:3]' "$1")" \
    "diff_ids of the base in the derived config"
  assert_eq '["/usr/bin/hello"]' "$(jq -c .config.config.Entrypoint "$1")" "the base's entrypoint is inherited"
}

step "an unpinned base (docker://…:1.0.0) builds with a warning naming the digest"
U=$T/unpinned.yaml
derived "$U" "docker://$REG_PLAIN/$NS/hello:1.0.0"
S2=$T/store2  # empty: the base comes from the registry
kiln_ok unpinned --store "$S2" build "$U"
assert_contains "$(cat "$T/unpinned.err")" \
  "kiln: warning: base docker://$REG_PLAIN/$NS/hello:1.0.0 is not pinned: it resolved to $BASE" \
  "warning about the unpinned base"
assert_contains "$(cat "$T/unpinned.err")" "pin it as docker://$REG_PLAIN/$NS/hello@$BASE" \
  "the warning shows how to pin it"
DERIVED=$(cut -d' ' -f2 "$T/unpinned.out")
"$KILN" --store "$S2" inspect derived:2.0.0 --json >"$T/derived.json"
assert_eq "$DERIVED" "$(jq -r .digest "$T/derived.json")"
same_base_layers "$T/derived.json"
mapfile -t BASE_LAYERS < <(jq -r '.layers[].digest' "$T/base.json")
assert_blobs_identical "$S" "$S2" "${BASE_LAYERS[@]}"
assert_store_clean "$S2"

step "--locked refuses the unpinned base at file:line:col, before anything is fetched or written"
S3=$S  # a store in use, so opening it changes nothing
before=$(store_fingerprint "$S3")
proxy_reset "$REG_FAULTY"
L=$T/locked.yaml
derived "$L" "docker://$REG_FAULTY/$NS/hello:1.0.0"
line=$(grep -n '^base: ' "$L" | cut -d: -f1)
expect_template_error "$L" "$line" 7 "is not pinned by digest" "$KILN" --store "$S3" build "$L" --locked
assert_contains "$ERR" "--locked" "the error names --locked"
assert_eq "$before" "$(store_fingerprint "$S3")" "the store after a refused --locked build"
assert_eq '{}' "$(proxy_stats "$REG_FAULTY" | jq -c .)" "requests to the registry for a refused --locked build"

step "a base pinned by digest: fetched once, then built again without any registry request"
PIN=$T/pinned.yaml
derived "$PIN" "docker://$REG_FAULTY/$NS/hello@$BASE"
S4=$T/store4
proxy_reset "$REG_FAULTY"
kiln_ok pinned1 --store "$S4" build "$PIN" --locked --json
assert_not_contains "$(cat "$T/pinned1.err")" "not pinned" "a pinned base gets no warning"
first=$(proxy_stats "$REG_FAULTY")
[[ $(stat_of "$first" "GET blob") -ge 4 ]] || fail "the first pinned build fetched no blobs through the proxy: $first"
D1=$(jq -r .digest "$T/pinned1.out")
"$KILN" --store "$S4" inspect derived:2.0.0 --json >"$T/pinned.json"
same_base_layers "$T/pinned.json"
kiln_ok pinned2 --store "$S4" build "$PIN" --locked --json
assert_eq "$first" "$(proxy_stats "$REG_FAULTY")" "requests to the registry during the second pinned build"
assert_eq "$D1" "$(jq -r .digest "$T/pinned2.out")" "the second pinned build's digest"
assert_eq "$(build_identity "$T/pinned1.out")" "$(build_identity "$T/pinned2.out")" "the two pinned builds"
assert_store_clean "$S4"

step "the pinned build in another empty store: the same image"
kiln_ok pinned3 --store "$T/store5" build "$PIN" --json
assert_eq "$(build_identity "$T/pinned1.out")" "$(build_identity "$T/pinned3.out")" "pinned builds in two stores"

step "a pinned base that the registry does not have: exit 1, the reference named"
MISSING=sha256:$(printf 'no such manifest %s' "$RUN" | sha256sum | cut -d' ' -f1)
derived "$T/missing.yaml" "docker://$REG_PLAIN/$NS/hello@$MISSING"
expect_error 1 "no such image" "$KILN" --store "$T/store6" build "$T/missing.yaml"
assert_contains "$ERR" "$NS/hello" "the error names the base"
