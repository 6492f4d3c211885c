#!/usr/bin/env bash
# A template that extends another by an absolute path does not put that host
# path into the SBOMs or the provenance (they hold no absolute host path): the
# base template is named by its file name, so two checkouts in different
# folders attest alike for the same image:
#   extends: /home/me/src/app/base.yaml
#   kiln sbom NAME:TAG | jq -r '.packages[].name'   # … base.yaml …, no /home/me
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

S=$T/store
"$KILN" keygen --out "$T/k" >/dev/null
mkdir -p "$T/checkout/base" "$T/checkout/app"
cat >"$T/checkout/base/base.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: base
version: 1.0.0
layers:
  - name: base
    files:
      - {dest: /etc/base.txt, content: "base\n"}
EOF
cat >"$T/checkout/app/kiln.yaml" <<EOF
apiVersion: kiln.dev/v1
extends: $T/checkout/base/base.yaml
name: app
version: 1.0.0
EOF
D=$(build_digest --store "$S" build "$T/checkout/app/kiln.yaml" --sign "$T/k.key")

step "no host path in kiln sbom (SPDX, CycloneDX) nor in the attested statements"
# no_host_path WHAT TEXT: fails showing the lines of TEXT that name $T.
no_host_path() {
  local lines
  lines=$(grep -F "$T" <<<"$2" || true)
  [[ -z $lines ]] || fail "$1 names a host path:"$'\n'"$lines"
}
for fmt in spdx cyclonedx; do
  no_host_path "kiln sbom --format $fmt" "$("$KILN" --store "$S" sbom app:1.0.0 --format "$fmt")"
done
att=$(jq -r --arg r "app:sha256-${D#sha256:}.att" \
  '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' "$S/index.json")
for d in $(jq -r '.layers[].digest' "$(blob_path "$S" "$att")"); do
  statement=$(jq -r .payload "$(blob_path "$S" "$d")" | base64 -d)
  no_host_path "the statement $(jq -r .predicateType <<<"$statement")" "$(jq . <<<"$statement")"
done
