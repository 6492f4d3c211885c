#!/usr/bin/env bash
# Attestations are as reproducible as the image (issue 4): build + sign twice
# under the perturbations of reproducible.sh — another working directory and
# template path, TZ, locale, umask, store, HOME, user name, host name, build
# date given by flag or by SOURCE_DATE_EPOCH, sources copied with other mtimes
# and in another creation order — and the image digest is the same, every
# DSSE envelope's payload (the in-toto statement) is byte-identical, the
# signature payload too, and kiln sbom prints the same documents. The
# statements hold no host path, host name, user name or wall-clock time (only
# the build date). A third store, built unsigned and signed afterwards with
# another key, attests the same statements. (The ECDSA signatures themselves
# are randomised; only they may differ.)
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../sign_lib.sh
source "$(dirname "$0")/../sign_lib.sh"
need_tool jq openssl tar gzip

EPOCH=1700000000
BUILD_DATE=2023-11-14T22:13:20Z
"$KILN" keygen --out "$T/key" >/dev/null
"$KILN" keygen --out "$T/key2" >/dev/null

# The sources: examples/hello's program, a pinned tarball, and a template that
# extends the stock nonroot (found through KILN_TEMPLATE_PATH, a host path).
mkdir -p "$T/src/vendor/share/doc"
cp "$HELLO_DIR/bin/hello" "$T/src/hello"
printf 'vendored data\n' >"$T/src/vendor/share/doc/README"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$T/src/vendor" -cf - share | gzip -n >"$T/src/vendor.tar.gz"
rm -rf "$T/src/vendor"
cat >"$T/src/kiln.yaml" <<EOF
apiVersion: kiln.dev/v1
extends: nonroot
name: hello
version: 1.0.0
args:
  GREETING: hello
layers:
  - name: app
    files:
      - {src: hello, dest: /usr/bin/hello}
      - {dest: /etc/hello.txt, content: "\${GREETING}\n"}
    tarballs:
      - {src: vendor.tar.gz, sha256: "$(sha256sum "$T/src/vendor.tar.gz" | cut -d' ' -f1)", dest: /usr}
config:
  entrypoint: [/usr/bin/hello]
EOF

# Copy A: created in sorted order, mtimes 2001. Copy B: reverse order, written
# under umask 077, mtimes 2037, deeper down.
mkdir -p "$T/a" "$T/b/deep/er"
for f in hello kiln.yaml vendor.tar.gz; do cat "$T/src/$f" >"$T/a/$f"; done
(umask 077 && for f in vendor.tar.gz kiln.yaml hello; do cat "$T/src/$f" >"$T/b/deep/er/$f"; done)
chmod 755 "$T/a/hello"
chmod 700 "$T/b/deep/er/hello"
find "$T/a" -exec touch -h -d "2001-02-03 04:05:06" {} +
find "$T/b" -exec touch -h -d "2037-12-31 23:59:59" {} +

step "build --sign, run A: cwd in the sources, relative path, --source-date-epoch, TZ=UTC, LC_ALL=C, umask 022"
(cd "$T/a" && umask 022 && "$KILN" --store "$T/store-a" build kiln.yaml --sign "$T/key.key" \
  --source-date-epoch "$EPOCH" --set GREETING=hi -q >"$T/a.out" 2>"$T/a.err") || fail "run A: $(cat "$T/a.err")"

step "build --sign, run B: cwd /, absolute path, SOURCE_DATE_EPOCH, TZ=Pacific/Kiritimati, tr_TR.UTF-8, umask 077, another HOME, user and host name"
HOSTNAME_SENTINEL=kiln-sentinel-host-$$
USER_SENTINEL=kiln-sentinel-user-$$
mkdir -p "$T/home-b"
run_b=(env -u LC_ALL LANG=tr_TR.UTF-8 LC_CTYPE=tr_TR.UTF-8 TZ=Pacific/Kiritimati "SOURCE_DATE_EPOCH=$EPOCH"
  HOME="$T/home-b" XDG_DATA_HOME="$T/home-b/xdg" "USER=$USER_SENTINEL" "LOGNAME=$USER_SENTINEL"
  "$KILN" --store "$T/store b" build "$T/b/deep/er/kiln.yaml" --sign "$T/key.key" --set GREETING=hi --jobs 1 -q)
if [[ $EUID -eq 0 ]] && command -v unshare >/dev/null && unshare -u true 2>/dev/null; then
  # A host name of our own (in a new UTS namespace), to look for below.
  # shellcheck disable=SC2016  # expanded by the inner bash
  (cd / && umask 077 && unshare -u bash -c 'hostname "$0" && exec "$@"' "$HOSTNAME_SENTINEL" "${run_b[@]}" \
    >"$T/b.out" 2>"$T/b.err") || fail "run B: $(cat "$T/b.err")"
else
  step "note: not root, so run B keeps this host's name ($(hostname))"
  HOSTNAME_SENTINEL=$(hostname)
  (cd / && umask 077 && "${run_b[@]}" >"$T/b.out" 2>"$T/b.err") || fail "run B: $(cat "$T/b.err")"
fi

step "run C: built unsigned, then kiln sign with another key"
"$KILN" --store "$T/store-c" build "$T/src/kiln.yaml" --source-date-epoch "$EPOCH" --set GREETING=hi -q >"$T/c.out" 2>"$T/c.err" ||
  fail "run C: $(cat "$T/c.err")"
"$KILN" --store "$T/store-c" sign hello:1.0.0 --key "$T/key2.key" >/dev/null || fail "kiln sign in run C"

step "the same image digest"
D=$(cut -d' ' -f2 "$T/a.out")
[[ $D == sha256:* ]] || fail "no digest from run A: $(cat "$T/a.out")"
assert_eq "hello:1.0.0 $D" "$(cat "$T/b.out")" "run B's image"
assert_eq "hello:1.0.0 $D" "$(cat "$T/c.out")" "run C's image"

# statements STORE OUTDIR: each attestation's decoded DSSE payload as
# OUTDIR/<n>.json (n = the predicate type with / and : as _), and the
# envelopes' signatures in OUTDIR/sigs; prints the predicate types in order.
statements() {
  local store=$1 out=$2 att type digest
  mkdir -p "$out"
  att=$(blob_path "$store" "$(ref_digest "$store" "hello:$(att_tag "$D")")")
  [[ -f $att ]] || fail "no attestation manifest in $store"
  while IFS=$'\t' read -r type digest; do
    jq -r .payload "$(blob_path "$store" "$digest")" | base64 -d >"$out/$(tr '/:' '__' <<<"$type").json"
    jq -r '.signatures[].sig' "$(blob_path "$store" "$digest")" >>"$out/sigs"
    echo "$type"
  done < <(jq -r '.layers[] | [.annotations.predicateType, .digest] | @tsv' "$att")
}

step "byte-identical statements (SPDX, CycloneDX, SLSA provenance) in A, B and C"
types_a=$(statements "$T/store-a" "$T/st-a")
assert_eq "$(printf '%s\n' "$SPDX_PREDICATE" "$CYCLONEDX_PREDICATE" "$SLSA_PREDICATE")" "$types_a" "attestations of run A"
assert_eq "$types_a" "$(statements "$T/store b" "$T/st-b")" "attestations of run B"
assert_eq "$types_a" "$(statements "$T/store-c" "$T/st-c")" "attestations of run C"
for f in "$T"/st-a/*.json; do
  [[ -s $f ]] || fail "empty statement $f"
  assert_file_eq "$f" "$T/st-b/${f##*/}" "statement ${f##*/}: run A vs run B"
  assert_file_eq "$f" "$T/st-c/${f##*/}" "statement ${f##*/}: run A vs run C (kiln sign afterwards)"
  assert_eq "${D#sha256:}" "$(jq -r '.subject[0].digest.sha256' "$f")" "subject of ${f##*/}"
done
# Only the ECDSA signatures differ (randomised), so do the envelopes.
if cmp -s "$T/st-a/sigs" "$T/st-b/sigs"; then
  step "note: the envelopes' ECDSA signatures are the same in A and B (deterministic nonces)"
fi
step "the signature payloads are identical too, and both verify with openssl"
for s in "$T/store-a" "$T/store b"; do
  check_layout_openssl "$s" "hello:$(sig_tag "$D")" "hello:$(att_tag "$D")" "$T/key.pub" "$D"
  cp "$T/sigcheck/payload-0" "$s.payload"
done
assert_file_eq "$T/store-a.payload" "$T/store b.payload" "signature payload, run A vs run B"

step "kiln sbom prints the same documents from A and B, and they are the statements' predicates"
for fmt in spdx cyclonedx; do
  "$KILN" --store "$T/store-a" sbom hello:1.0.0 --format "$fmt" >"$T/sbom-a.$fmt"
  "$KILN" --store "$T/store b" sbom hello:1.0.0 --format "$fmt" >"$T/sbom-b.$fmt"
  assert_file_eq "$T/sbom-a.$fmt" "$T/sbom-b.$fmt" "kiln sbom --format $fmt, run A vs run B"
done
assert_eq "$(jq -cS . "$T/sbom-a.spdx")" "$(jq -cS .predicate "$T/st-a/https___spdx.dev_Document.json")" "kiln sbom vs the SPDX statement"
assert_eq "$(jq -cS . "$T/sbom-a.cyclonedx")" "$(jq -cS .predicate "$T/st-a/https___cyclonedx.org_bom.json")" \
  "kiln sbom --format cyclonedx vs the CycloneDX statement"

step "no host path, host name, user name or wall-clock time in the statements"
all=$(cat "$T"/st-a/*.json "$T"/st-b/*.json "$T/sbom-a.spdx" "$T/sbom-a.cyclonedx")
for s in "$T" "$SRC_DIR" "$KILN_TEMPLATE_PATH" "$HOSTNAME_SENTINEL" "$USER_SENTINEL" "$(date -u +%F)" "$(date +%F)"; do
  assert_not_contains "$all" "$s" "the statements name something of the host"
done
times=$(grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z?' <<<"$all" | sort -u)
assert_eq "$BUILD_DATE" "$times" "the only time in the statements is the build date"
assert_eq "$EPOCH" "$(jq .predicate.buildDefinition.internalParameters.buildDate "$T/st-a/https___slsa.dev_provenance_v1.json")" \
  "provenance: the build date"
# What the provenance does record: the inputs by name (as the template names
# them) and digest, and the --set values.
assert_eq "$(jq -cn --arg t "$(sha256sum "$T/src/vendor.tar.gz" | cut -d' ' -f1)" '{name: "tarball:vendor.tar.gz", digest: {sha256: $t}}')" \
  "$(jq -c '.predicate.buildDefinition.resolvedDependencies[] | select(.name | startswith("tarball:")) | {name, digest}' \
    "$T/st-a/https___slsa.dev_provenance_v1.json")" "provenance: the tarball input"
assert_eq '{"GREETING":"hi"}' "$(jq -c .predicate.buildDefinition.externalParameters.set "$T/st-a/https___slsa.dev_provenance_v1.json")" \
  "provenance: the --set values"
assert_eq '["kiln.yaml","nonroot","minimal"]' \
  "$(jq -c '[.predicate.buildDefinition.resolvedDependencies[] | select(.uri | startswith("kiln-template:")) | .name]' \
    "$T/st-a/https___slsa.dev_provenance_v1.json")" "provenance: the templates, by name"
