#!/usr/bin/env bash
# --cache-from uses an artifact only if its sealed entry and its
# dev.kiln.cache-key annotation name the key asked for. An artifact copied or
# retagged under another layer's tag (skopeo copy kc-A -> kc-B, a registry or
# mirror mix-up) is a damaged artifact: a warning, the layer rebuilt, the
# cold build's digest, the local entry naming its own key. (A regression:
# kiln once used it silently — another image than a cold build — and stored
# the other key's entry under the key asked for.)
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
build_json "$T/x.json" --store "$T/sx" build "$T/x/kiln.yaml" --cache-to "docker://$CACHE"
build_json "$T/y.json" --store "$T/sy" build "$T/y/kiln.yaml"
DY=$(jq -r .digest "$T/y.json")
KX=$(jq -r '.layers[1].cacheKey' "$T/x.json")
KY=$(jq -r '.layers[1].cacheKey' "$T/y.json")
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
assert_contains "$(cat "$T/y.err")" "kiln: warning: docker://$CACHE:kc-${KY#sha256:}: it is another key's artifact; the layer is built instead" \
  "a warning about the mismatched artifact"
assert_contains "$(cat "$T/y.err")" "layer 2 app: rebuilt, because" "y's app layer"
assert_entry "$E" "$KY" "$(jq -r '.layers[1].digest' "$T/y.json")" "y's app layer in the store built with --cache-from"
