# shellcheck shell=bash
# Helpers for the registry tests. Source after lib.sh and the fixture's env:
#   source "$(dirname "$0")/../lib.sh"
#   source "${KILN_REGISTRY_FIXTURE:?...}/env"
#   source "$(dirname "$0")/../registry_lib.sh"
# The fixture (fixtures/registry.sh) is shared by every registry test, one at
# a time (ctest's RESOURCE_LOCK), so each script names its repositories with
# its own prefix and the run's $RUN id, and resets the proxies it arms.
# Needs skopeo, jq and curl; python3 only to start an extra proxy.

[[ -n ${REG_PLAIN:-} && -n ${REG_FAULTY:-} ]] ||
  fail "the registry fixture's env is not loaded (tests/fixtures/registry.sh start DIR; KILN_REGISTRY_FIXTURE=DIR)"
need_tool skopeo jq curl

# Nothing of the caller's registry set-up may leak in: credentials come only
# from what each test passes, and every request goes straight to 127.0.0.1.
unset DOCKER_CONFIG REGISTRY_AUTH_FILE XDG_RUNTIME_DIR KILN_REGISTRY_CREDS KILN_RETRY_BACKOFF_MS \
  http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY \
  KILN_ACTOR GITHUB_ACTOR GITHUB_RUN_ID GITLAB_USER_LOGIN CI_JOB_URL BUILDKITE_BUILD_CREATOR \
  BUILDKITE_BUILD_URL BUILD_URL CIRCLE_USERNAME CIRCLE_BUILD_URL

# A per-run id for repository names (lower case, as the distribution spec
# wants), so re-running a script against a long-lived fixture starts clean.
# shellcheck disable=SC2034  # used by the scripts
RUN=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')

# The Accept header without which distribution 2.8 answers 404 for OCI manifests.
MANIFEST_ACCEPT="Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

# json_field FILE FILTER: jq -r FILTER FILE.
json_field() { jq -r "$2" "$1"; }

# remote_digest HOST/REPO:TAG [SKOPEO OPTIONS...]: the digest skopeo reads
# (of the manifest or index the tag names).
remote_digest() {
  local ref=$1
  shift
  local out
  out=$(skopeo inspect --tls-verify=false "$@" "docker://$ref" 2>"$T/.skopeo.err") ||
    fail "skopeo inspect docker://$ref failed: $(cat "$T/.skopeo.err")"
  jq -r .Digest <<<"$out"
}

# manifest_status URL_BASE REPO REF [CURL OPTIONS...]: the HTTP status of a
# HEAD of the manifest REPO:REF (200 if the registry holds it, 404 if not).
manifest_status() {
  local base=$1 repo=$2 ref=$3
  shift 3
  curl -s -o /dev/null -w '%{http_code}' -I -H "$MANIFEST_ACCEPT" "$@" "$base/v2/$repo/manifests/$ref"
}

# The test proxy's control API (fixtures/proxy.py): ADDR is HOST:PORT.
proxy_reset() { curl -sf -X POST "http://$1/_reset" >/dev/null || fail "cannot reset the proxy at $1"; }
proxy_fault() { curl -sf -X POST "http://$1/_fault" -d "$2" >/dev/null || fail "cannot arm $2 at $1"; }
proxy_stats() { curl -sf "http://$1/_stats" || fail "cannot read the proxy's stats at $1"; }
proxy_seen() { curl -sf "http://$1/_seen" || fail "cannot read what reached the proxy at $1"; }
# stat_of STATS_JSON KEY: a counter ("PUT upload"), 0 if absent.
stat_of() { jq -r --arg k "$2" '.[$k] // 0' <<<"$1"; }

# assert_store_clean STORE: `kiln store fsck` finds nothing wrong, and no file
# under blobs/ has content other than its name says (nor is a stray temp file).
assert_store_clean() {
  local store=$1 rc=0 f
  "$KILN" --store "$store" store fsck --json >"$T/.fsck.json" 2>"$T/.fsck.err" || rc=$?
  [[ $rc -eq 0 ]] || fail "store fsck of $store: exit $rc: $(cat "$T/.fsck.json" "$T/.fsck.err")"
  assert_eq '{"ok":true,"corrupt":[],"missing":[],"leftovers":[]}' \
    "$(jq -c '{ok, corrupt, missing, leftovers}' "$T/.fsck.json")" "store fsck of $store"
  while IFS= read -r -d '' f; do
    [[ $f == "$store"/blobs/sha256/* ]] || fail "a file under blobs/ that is not a sha256 blob: $f"
    assert_eq "sha256:${f##*/}" "$(sha256_of "$f")" "blob $f holds other content than its name"
  done < <(find "$store/blobs" -type f -print0)
}

# assert_blobs_identical STORE_A STORE_B DIGEST...: each blob is byte-identical in both.
assert_blobs_identical() {
  local a=$1 b=$2 d
  shift 2
  for d in "$@"; do
    [[ -f $(blob_path "$a" "$d") ]] || fail "$d is not in $a"
    [[ -f $(blob_path "$b" "$d") ]] || fail "$d is not in $b"
    cmp -s "$(blob_path "$a" "$d")" "$(blob_path "$b" "$d")" || fail "blob $d differs between $a and $b"
  done
}

# image_blobs STORE REF: the config and layer digests of an image, one a line.
image_blobs() {
  "$KILN" --store "$1" inspect "$2" --json | jq -r '.manifest.config.digest, .layers[].digest'
}

# assert_secret_free FILE... : none of the files contains the fixture's
# password, in clear or inside base64 "user:pass".
assert_secret_free() {
  local f b64
  b64=$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)
  for f in "$@"; do
    if grep -qF -e "$REG_PASS" -e "$b64" "$f"; then
      fail "$f shows the password:"$'\n'"$(cat "$f")"
    fi
  done
}

# start_proxy UPSTREAM [proxy.py options...]: starts another test proxy in
# front of UPSTREAM (HOST:PORT); sets EXTRA_PROXY to its HOST:PORT. It is
# stopped by PID when the test exits.
start_proxy() {
  need_tool python3
  local upstream=$1 port _
  shift
  port=$(free_port)
  python3 "$TESTS_DIR/fixtures/proxy.py" --listen "$port" --upstream "$upstream" "$@" \
    >"$T/proxy-$port.log" 2>&1 &
  BACKGROUND_PIDS+=($!)
  for _ in $(seq 1 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/_stats"; then
      # shellcheck disable=SC2034  # used by the scripts
      EXTRA_PROXY=127.0.0.1:$port
      return 0
    fi
    sleep 0.1
  done
  fail "the extra proxy on port $port did not come up: $(cat "$T/proxy-$port.log")"
}

