#!/usr/bin/env bash
# Registries that lie (hostile/liar_registry.py, started here on 127.0.0.1;
# no fixture needed): blobs whose content or length is not what the manifest
# says, bodies without end, digest headers that lie, manifests of unknown
# types, absurd sizes or deep nesting, redirects to another host (which must
# not get the credentials, basic or bearer), without end, or to file://, and
# a token realm on file:// (which must not be read). Each pull is refused
# with exit 1 (the image is wrong) or 2 (the registry misbehaves), the
# message names the reference or the blob, and the store is left clean:
# `kiln store fsck` happy, no image named, no big temporary file.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../hostile_lib.sh
source "$(dirname "$0")/../hostile_lib.sh"
need_tool curl
unset DOCKER_CONFIG REGISTRY_AUTH_FILE XDG_RUNTIME_DIR KILN_REGISTRY_CREDS
export KILN_RETRY_BACKOFF_MS=20

USER_PASS=kiln:s3cret-hostile
SECRET="secret-token-$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')"
printf '{"token": "%s", "access_token": "%s"}\n' "$SECRET" "$SECRET" >"$T/secret.json"
make_corpus registry-image "$T/image"
port=$(free_port)
other=$(free_port)
start_server "http://127.0.0.1:$port/v2/" "$T/liar.log" \
  python3 "$HOSTILE/liar_registry.py" --image "$T/image" --port "$port" --other-port "$other" \
  --creds "$USER_PASS" --secret "$T/secret.json"
L=127.0.0.1:$port
DIGEST=$(cat "$T/image/digest")
OUTSIDE=$(tree_state "$T/image" "$T/secret.json" "$HOME")

n=0
# pull_case MODE EXIT MESSAGE [KILN PULL ARGS...]: pulling MODE/img:1.0.0
# into a fresh store is refused with EXIT and MESSAGE, in bounded time, and
# leaves the store clean and empty of images.
pull_case() {
  local mode=$1 rc=$2 msg=$3
  shift 3
  n=$((n + 1))
  local st=$T/s$n ref=docker://$L/$mode/img:1.0.0
  [[ $mode == *@* ]] && ref=docker://$L/$mode
  step "registry: $mode"
  local t0=$SECONDS
  expect_error "$rc" "$msg" "$KILN" --store "$st" pull "$ref" "$@"
  [[ $((SECONDS - t0)) -lt 30 ]] || fail "$mode took $((SECONDS - t0)) s to refuse"
  store_clean "$st"
  if [[ -d $st ]]; then
    assert_eq "" "$(image_names "$st")" "images after a refused pull of $mode"
    local big
    big=$(find "$st" -type f -size +1M)
    [[ -z $big ]] || fail "$mode left big files in the store: $big"
  fi
  assert_not_contains "$ERR_ALL" "$SECRET" "the local secret in kiln's output"
  assert_eq "$OUTSIDE" "$(tree_state "$T/image" "$T/secret.json" "$HOME")" "files outside the store after $mode"
  case_done
}

step "registry: ok (the control)"
kiln_ok ok --store "$T/control" pull "docker://$L/ok/img:1.0.0" --json
assert_eq "$DIGEST" "$(jq -r .digest "$T/ok.out")" "the digest pulled"
store_clean "$T/control"

pull_case blob-lie 2 'blob content has digest'
pull_case blob-short 2 'arrived with 63 bytes, expected 163'
pull_case blob-cut 2 'Transferred a partial file'
pull_case blob-long 2 'more than the 163 bytes the manifest gives arrived'
pull_case blob-endless 2 'more than the 163 bytes the manifest gives arrived'
pull_case digest-lie 2 "the registry says sha256:$(printf 'ee%.0s' {1..32}) but the content hashes to $DIGEST"
pull_case "manifest-lie/img@$DIGEST" 2 "the registry returned content that hashes to"
pull_case manifest-type 1 '"application/x-kiln-hostile" is not an OCI or Docker v2 manifest or index'
pull_case manifest-huge 2 'response body larger than 4194304 bytes'
pull_case manifest-absurd 1 'layers[0]: size of sha256:'
pull_case manifest-deep 1 'invalid JSON: nested more than 512 levels deep'
pull_case index-deep 1 "docker://$L/index-deep/img:1.0.0: image indexes nested too deep"
pull_case redirect-loop 2 "$L: too many redirects for GET"
pull_case redirect-pingpong 2 "$L: too many redirects for GET"
pull_case redirect-file 1 "blob sha256:"
pull_case realm-file 2 'Unsupported protocol' --creds "$USER_PASS"
seen=$(curl -sf "http://$L/_seen_main")
assert_not_contains "$seen" "$SECRET" "what the registry got after a file:// token realm"

# The tag's HEAD names a digest the registry does not hold.
step "a base image whose tag's digest header lies: the build is refused"
cat >"$T/base.yaml" <<EOF
apiVersion: kiln.dev/v1
name: onliar
version: 1.0.0
base: docker://$L/digest-lie/img:1.0.0
layers:
  - name: app
    files:
      - {dest: /etc/x, content: "x"}
EOF
expect_error 1 "digest-lie/img@sha256:$(printf 'ee%.0s' {1..32}): no such image in the registry" \
  "$KILN" --store "$T/sbase" build "$T/base.yaml"
store_clean "$T/sbase"
assert_eq "" "$(image_names "$T/sbase")" "images after the refused build"
case_done

# Redirects to another host: the blobs come from there, the credentials stay.
for mode in redirect-other basic-redirect-other bearer-redirect-other; do
  step "registry: $mode with --creds: the other host gets no Authorization"
  kiln_ok "$mode" --store "$T/s-$mode" pull "docker://$L/$mode/img:1.0.0" --creds "$USER_PASS" --json
  assert_eq "$DIGEST" "$(jq -r .digest "$T/$mode.out")" "the digest pulled through $mode"
  store_clean "$T/s-$mode"
  assert_eq "[]" "$(curl -sf "http://$L/_seen" | jq -c .)" "Authorization headers that reached the other host"
  case_done
done
curl -sf "http://$L/_seen_main" | jq -e 'any(.[]; startswith("Basic ")) and any(.[]; startswith("Bearer "))' >/dev/null ||
  fail "the credentials did not reach the registry itself: $(curl -sf "http://$L/_seen_main")"
assert_not_contains "$(cat "$T"/*.out "$T"/*.err)" "${USER_PASS#*:}" "the password in kiln's output"

echo "hostile_registry.sh: $CASES checks passed" >&2
