#!/usr/bin/env bash
# Known bug: --cache-from trusts whatever artifact a kc-<key> tag holds, even
# when its sealed entry (record.key) and its dev.kiln.cache-key annotation
# name another key. An artifact copied or retagged under another layer's tag
# (skopeo copy kc-A -> kc-B, a registry or mirror mix-up) is used as that
# layer: the build succeeds, silently, with the other layer's content — an
# image a cold build of the same inputs does not make — and the wrong entry is
# stored in the local cache under the requested key, so later builds reuse it
# even with the registry fixed.
# Expected: the entry (and annotation) must name the key asked for; anything
# else is a damaged artifact: a warning, the layer rebuilt, the cold digest,
# the local entry naming its own key.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"
# shellcheck source=../cache_lib.sh
source "$(dirname "$0")/../cache_lib.sh"

NS=cachekey-$RUN
CACHE=$REG_PLAIN/$NS/cache
mkdir -p "$T/x" "$T/y"
for v in x y; do
  echo "app $v $RUN" >"$T/$v/app.txt"
  cat >"$T/$v/kiln.yaml" <<EOF
apiVersion: kiln.dev/v1
name: keytest
version: 1.0.0
layers:
  - name: base-files
    dirs: [/etc]
    files:
      - {dest: /etc/motd, content: "base $RUN\n"}
  - name: app
    files:
      - {src: app.txt, dest: /srv/app.txt}
EOF
done

step "template x's layers in the remote cache; y differs in its app layer"
build_digest --store "$T/sx" build "$T/x/kiln.yaml" --cache-to "docker://$CACHE" >/dev/null
DY=$(build_digest --store "$T/sy" build "$T/y/kiln.yaml")
KX=$(checked_key "$T/sx" "$T/x/kiln.yaml" app)
KY=$(checked_key "$T/sy" "$T/y/kiln.yaml" app)
assert_ne "$KX" "$KY" "the app layers' keys"

step "x's app artifact copied to y's app tag"
skopeo copy --src-tls-verify=false --dest-tls-verify=false \
  "docker://$CACHE:kc-${KX#sha256:}" "docker://$CACHE:kc-${KY#sha256:}" >/dev/null 2>"$T/copy.err" ||
  fail "skopeo copy failed: $(cat "$T/copy.err")"
skopeo inspect --raw --tls-verify=false "docker://$CACHE:kc-${KY#sha256:}" >"$T/m.json" 2>/dev/null
assert_eq "$KX" "$(jq -r '.annotations["dev.kiln.cache-key"]' "$T/m.json")" "the copied artifact names x's key"

step "y with --cache-from: the artifact under y's tag names x's key"
E=$T/empty
"$KILN" --store "$E" build "$T/y/kiln.yaml" --cache-from "docker://$CACHE" --explain >"$T/y.out" 2>"$T/y.err" ||
  fail "the build failed: $(cat "$T/y.err")"
assert_eq "keytest:1.0.0 $DY" "$(cat "$T/y.out")" "y built with --cache-from vs a cold build of y"
assert_contains "$(cat "$T/y.err")" "kiln: warning: docker://$CACHE: " "a warning about the mismatched artifact"
assert_contains "$(cat "$T/y.err")" "layer 2 app: rebuilt, because" "y's app layer"
E_Y=$(cache_entry "$E" "$KY")
[[ -f $E_Y ]] || fail "no local entry for y's app key"
assert_eq "$KY" "$(jq -r .record.key "$E_Y")" "the key the local entry for y's app layer names"
