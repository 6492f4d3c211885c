#!/usr/bin/env bash
# The remote layer cache through a real registry: --cache-to pushes one OCI
# artifact per layer, tagged kc-<key hex> (artifactType
# application/vnd.kiln.layer-cache.v1+json; layers: the layer blob as stored,
# then the sealed entry, byte for byte the store's), and says so; a second
# --cache-to finds all of them there and uploads nothing (kiln's --json and
# the proxy's counters). An empty store with --cache-from builds the same
# digest, every layer "cached, downloaded from the remote cache", --json hits
# = layers; a changed template reuses the unchanged lower layers and rebuilds
# the rest. A damaged artifact (not kiln's, an entry that does not describe
# its layer, a damaged entry, a layer blob that arrives with other bytes) and
# an unreachable registry are a warning and a rebuild: the same digest,
# nothing bad stored (a damaged artifact is a miss for its key alone; an
# unreachable registry is not asked again); a later --cache-to replaces a
# damaged artifact. --creds, --insecure and --ca-file apply to the cache's
# registry. `kiln push` of an image from --cache-from to another repository
# of that registry mounts its layers. A tag, a digest, a store or oci:
# reference as --cache-to / --cache-from: exit 1, nothing built.
# (An artifact under another layer's tag: cache_remote_key_mismatch.sh.)
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"
# shellcheck source=../cache_lib.sh
source "$(dirname "$0")/../cache_lib.sh"

S=$T/store
NS=cache-$RUN
CACHE=docker://$REG_PLAIN/$NS/cache
C=$T/ctx
TPL=$C/kiln.yaml
L=(base-files app top accounts)
mkdir -p "$C"
printf 'app %s\n' "$RUN" >"$C/app.txt"
cat >"$TPL" <<EOF
apiVersion: kiln.dev/v1
name: rcache
version: 1.0.0
args: {TOP: "top $RUN"}
layers:
  - name: base-files
    dirs: [/etc, /srv]
    files:
      - {dest: /etc/motd, content: "base $RUN\n"}
  - name: app
    files:
      - {src: app.txt, dest: /srv/app.txt}
  - name: top
    files:
      - {dest: /etc/top.txt, content: "\${TOP}\n"}
accounts:
  users: [{name: app, uid: 1000, home: /home/app}]
EOF

# explain_of OUT ERR: kiln's --explain lines (layer ... and the indented
# reasons) of a build's stderr file.
explain_of() { grep -E '^(layer [0-9]+ |    )' "$1" || true; }
# all_layers TEXT: "layer N NAME: TEXT" for every layer.
all_layers() {
  local n
  for ((n = 1; n <= ${#L[@]}; n++)); do echo "layer $n ${L[n - 1]}: $1"; done
}
not_built_before() {
  local n
  for ((n = 1; n <= ${#L[@]}; n++)); do printf 'layer %d %s: rebuilt, because\n    not built before\n' "$n" "${L[n - 1]}"; done
}
# The registry's API (plain, anonymous).
api() { echo "http://$REG_PLAIN/v2/$1"; }
tags_of() { curl -sf "$(api "$1/tags/list")" | jq -r '(.tags // [])[]' | LC_ALL=C sort; }
get_blob() { curl -sf -o "$3" "$(api "$1/blobs/$2")" || fail "cannot GET blob $2 of $1"; }
# put_blob REPO FILE: uploads FILE as a blob (POST, then PUT with its digest).
put_blob() {
  local loc d
  d=$(sha256_of "$2")
  loc=$(curl -s -o /dev/null -D - -X POST "$(api "$1/blobs/uploads/")" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  [[ -n $loc ]] || fail "no upload session for $1"
  [[ $loc == /* ]] && loc=http://$REG_PLAIN$loc
  if [[ $loc == *\?* ]]; then loc="$loc&digest=$d"; else loc="$loc?digest=$d"; fi
  [[ $(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$2" "$loc") == 201 ]] || fail "upload of $2 to $1 refused"
}
# put_manifest REPO TAG FILE
put_manifest() {
  [[ $(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$3" "$(api "$1/manifests/$2")") == 201 ]] || fail "manifest $1:$2 refused"
}
raw_manifest() {  # REPO TAG
  skopeo inspect --raw --tls-verify=false "docker://$REG_PLAIN/$1:$2" 2>"$T/.skopeo.err" ||
    fail "skopeo inspect --raw $1:$2: $(cat "$T/.skopeo.err")"
}

step "build with --cache-to: every layer pushed"
"$KILN" --store "$S" build "$TPL" --cache-to "$CACHE" >"$T/to1.out" 2>"$T/to1.err" ||
  fail "build --cache-to failed: $(cat "$T/to1.err")"
D=$(cut -d' ' -f2 "$T/to1.out")
assert_contains "$(cat "$T/to1.err")" "cache: 4 layers pushed to $CACHE (" "the --cache-to report"
assert_contains "$(cat "$T/to1.err")" "), 0 already there" "the --cache-to report"

step "a second --cache-to: all already there, nothing uploaded"
build_json "$T/to2.json" --store "$S" build "$TPL" --cache-to "$CACHE"
assert_eq "$D" "$(jq -r .digest "$T/to2.json")" "digest"
assert_eq "{\"to\":{\"bytesUploaded\":0,\"present\":4,\"pushed\":0,\"repository\":\"$CACHE\"}}" \
  "$(jq -c -S .cache "$T/to2.json")" "--json cache of the second --cache-to"
mapfile -t LAYERS < <(jq -c '.layers[] | {digest, mediaType, size}' "$T/to2.json")
assert_eq 4 "${#LAYERS[@]}" "layers of rcache"
KEYS=("")  # from index 1
while read -r key; do KEYS+=("$key"); done < <(cache_keys "$T/to2.json")
for n in 1 2 3 4; do assert_entry "$S" "${KEYS[n]}" "$(jq -r .digest <<<"${LAYERS[n - 1]}")" "layer $n"; done
assert_eq "$(for n in 1 2 3 4; do echo "kc-${KEYS[n]#sha256:}"; done | LC_ALL=C sort)" "$(tags_of "$NS/cache")" \
  "the cache repository's tags: kc-<key hex> for each layer"

step "each artifact: kiln's artifact type, the layer blob, then the entry as the store has it"
for n in 1 2 3 4; do
  tag=kc-${KEYS[n]#sha256:}
  raw_manifest "$NS/cache" "$tag" >"$T/m$n.json"
  assert_eq "application/vnd.oci.image.manifest.v1+json application/vnd.kiln.layer-cache.v1+json application/vnd.oci.empty.v1+json 2" \
    "$(jq -r '"\(.mediaType) \(.artifactType) \(.config.mediaType) \(.layers | length)"' "$T/m$n.json")" "$tag: media type, artifact type, config, layers"
  assert_eq "${LAYERS[n - 1]}" "$(jq -c '.layers[0] | {digest, mediaType, size}' "$T/m$n.json")" "$tag: its first layer is layer $n's blob"
  assert_eq "application/vnd.kiln.layer-cache-entry.v1+json" "$(jq -r '.layers[1].mediaType' "$T/m$n.json")" "$tag: the entry's media type"
  assert_eq "${KEYS[n]}" "$(jq -r '.annotations["dev.kiln.cache-key"]' "$T/m$n.json")" "$tag: the key annotation"
  get_blob "$NS/cache" "$(jq -r '.layers[1].digest' "$T/m$n.json")" "$T/entry$n"
  assert_file_eq "$(cache_entry "$S" "${KEYS[n]}")" "$T/entry$n" "$tag: the entry blob vs the store's entry"
  get_blob "$NS/cache" "$(jq -r '.layers[0].digest' "$T/m$n.json")" "$T/layer$n"
  assert_file_eq "$(blob_path "$S" "$(jq -r .digest <<<"${LAYERS[n - 1]}")")" "$T/layer$n" "$tag: the layer blob"
done

step "again through the counting proxy: no upload request at all"
proxy_reset "$REG_FAULTY"
"$KILN" --store "$S" build "$TPL" --cache-to "docker://$REG_FAULTY/$NS/cache" >/dev/null 2>"$T/to3.err" ||
  fail "--cache-to through the proxy failed: $(cat "$T/to3.err")"
assert_contains "$(cat "$T/to3.err")" "cache: 0 layers pushed to docker://$REG_FAULTY/$NS/cache (0 B), 4 already there" \
  "the text report when all are there"
stats=$(proxy_stats "$REG_FAULTY")
for key in "POST upload" "PUT upload" "PATCH upload" "PUT manifest"; do
  assert_eq 0 "$(stat_of "$stats" "$key")" "requests '$key' of a --cache-to of what is there (stats: $stats)"
done

step "an empty store with --cache-from: the same image, every layer from the registry"
E=$T/empty
build_json "$T/from1.json" --store "$E" build "$TPL" --cache-from "$CACHE"
assert_eq "$D" "$(jq -r .digest "$T/from1.json")" "digest built from the remote cache"
total=0
for n in 1 2 3 4; do total=$((total + $(jq -r .size <<<"${LAYERS[n - 1]}"))); done
assert_eq "{\"from\":{\"bytesDownloaded\":$total,\"hits\":4,\"misses\":0,\"repository\":\"$CACHE\"}}" \
  "$(jq -c -S .cache "$T/from1.json")" "--json cache of --cache-from into an empty store"
assert_store_clean "$E"
for n in 1 2 3 4; do
  assert_file_eq "$(cache_entry "$S" "${KEYS[n]}")" "$(cache_entry "$E" "${KEYS[n]}")" "the downloaded entry of layer $n"
done
E2=$T/empty2
"$KILN" --store "$E2" build "$TPL" --cache-from "$CACHE" --explain >"$T/from2.out" 2>"$T/from2.err" ||
  fail "--cache-from --explain failed: $(cat "$T/from2.err")"
assert_eq "rcache:1.0.0 $D" "$(cat "$T/from2.out")" "stdout of --cache-from --explain"
assert_eq "$(all_layers "cached, downloaded from the remote cache")" "$(explain_of "$T/from2.err")" "--explain with --cache-from"
assert_contains "$(cat "$T/from2.err")" "cache: 4 layers from $CACHE (" "the --cache-from report"
assert_contains "$(cat "$T/from2.err")" "), 0 not there" "the --cache-from report"
"$KILN" --store "$E2" build "$TPL" --cache-from "$CACHE" --explain >/dev/null 2>"$T/from3.err" || fail "third build"
assert_eq "$(all_layers cached)" "$(explain_of "$T/from3.err")" "a local hit is not asked remotely"
assert_contains "$(cat "$T/from3.err")" "cache: 0 layers from $CACHE (0 B), 0 not there" "nothing asked"

step "a changed template with --cache-from: the lower layers from the registry, the rest rebuilt"
E3=$T/changed
"$KILN" --store "$E3" build "$TPL" --set TOP=changed --cache-from "$CACHE" --explain --json >"$T/chg.json" 2>"$T/chg.err" ||
  fail "changed build failed: $(cat "$T/chg.err")"
assert_eq "layer 1 base-files: cached, downloaded from the remote cache
layer 2 app: cached, downloaded from the remote cache
layer 3 top: rebuilt, because
    not built before
layer 4 accounts: rebuilt, because
    not built before" "$(explain_of "$T/chg.err")" "--explain of the changed template"
assert_eq "2 2" "$(jq -r '"\(.cache.from.hits) \(.cache.from.misses)"' "$T/chg.json")" "hits misses"
assert_eq "$(jq -r .digest "$T/chg.json")" "$(build_digest --store "$T/cold-changed" build "$TPL" --set TOP=changed)" \
  "the changed template: --cache-from vs a cold build"
for n in 0 1; do
  assert_eq "$(jq -r .digest <<<"${LAYERS[n]}")" "$(jq -r ".layers[$n].digest" "$T/chg.json")" "layer $((n + 1)) reused"
done
assert_store_clean "$E3"

# tampered REPO WHAT MESSAGE: a build into a fresh store with --cache-from
# docker://REG_PLAIN/REPO warns with MESSAGE about layer 1's artifact (a miss
# for that key alone; the repository holds no other), rebuilds every layer and makes
# the image D; the store is clean and holds the good entries.
ntamper=0
tampered() {
  local repo=$1 what=$2 msg=$3 store n line
  ntamper=$((ntamper + 1))
  store=$T/tampered-$ntamper
  "$KILN" --store "$store" build "$TPL" --cache-from "docker://$REG_PLAIN/$repo" --explain >"$T/tp.out" 2>"$T/tp.err" ||
    fail "$what: the build failed: $(cat "$T/tp.err")"
  assert_eq "rcache:1.0.0 $D" "$(cat "$T/tp.out")" "$what: the image"
  # A damaged artifact is a miss for its key alone: the warning names its tag.
  line=$(grep "^kiln: warning: docker://$REG_PLAIN/$repo:kc-${KEYS[1]#sha256:}: " "$T/tp.err") ||
    fail "$what: no warning naming layer 1's artifact: $(cat "$T/tp.err")"
  assert_contains "$line" ": $msg" "$what: the warning"
  [[ $line == *"; the layer is built instead" ]] || fail "$what: the warning's end: $line"
  assert_eq "$(not_built_before)" "$(explain_of "$T/tp.err")" "$what: --explain"
  assert_store_clean "$store"
  for n in 1 2 3 4; do
    assert_file_eq "$(cache_entry "$S" "${KEYS[n]}")" "$(cache_entry "$store" "${KEYS[n]}")" "$what: the entry of layer $n"
  done
}
# craft REPO FILE ENTRY LAYER [JQ]: a manifest like layer 1's artifact, with
# layer blob LAYER and entry ENTRY (files, uploaded to REPO), changed by JQ.
craft() {
  local repo=$1 out=$2 entry=$3 layer=$4 filter=${5:-.}
  put_blob "$repo" "$entry"
  put_blob "$repo" "$layer"
  printf '{}' >"$T/empty.json"
  put_blob "$repo" "$T/empty.json"
  jq -c --arg ed "$(sha256_of "$entry")" --argjson es "$(stat -c %s "$entry")" \
    --arg ld "$(sha256_of "$layer")" --argjson ls "$(stat -c %s "$layer")" \
    ".layers[0].digest = \$ld | .layers[0].size = \$ls | .layers[1].digest = \$ed | .layers[1].size = \$es | $filter" \
    "$T/m1.json" | tr -d '\n' >"$out"
  put_manifest "$repo" "kc-${KEYS[1]#sha256:}" "$out"
}

step "tampered: not a kiln artifact"
craft "$NS/t-type" "$T/t-type.json" "$T/entry1" "$T/layer1" '.artifactType = "application/vnd.example.other+json"'
tampered "$NS/t-type" "another artifact type" \
  "not a kiln layer-cache artifact (of this kiln version)"

step "tampered: the entry describes another layer blob"
craft "$NS/t-other" "$T/t-other.json" "$T/entry1" "$T/layer2"
tampered "$NS/t-other" "an entry of another blob" \
  "its cache entry is damaged, another key's, or does not describe its layer"

step "tampered: a damaged entry"
cp "$T/entry1" "$T/entry1.bad"
perl -pi -e 's/"diffId":"sha256:./"diffId":"sha256:0/' "$T/entry1.bad"
cmp -s "$T/entry1" "$T/entry1.bad" && perl -pi -e 's/"diffId":"sha256:0/"diffId":"sha256:1/' "$T/entry1.bad"
cmp -s "$T/entry1" "$T/entry1.bad" && fail "the entry was not changed"
craft "$NS/t-seal" "$T/t-seal.json" "$T/entry1.bad" "$T/layer1"
tampered "$NS/t-seal" "a damaged entry" \
  "its cache entry is damaged, another key's, or does not describe its layer"

step "tampered: the layer blob arrives with other bytes (the proxy lies)"
L1=$(jq -r .digest <<<"${LAYERS[0]}")
proxy_reset "$REG_FAULTY"
# Always: kiln retries a download that arrives falsified, then gives up.
proxy_fault "$REG_FAULTY" "{\"kind\": \"lie\", \"count\": 100, \"method\": \"GET\", \"path\": \"/blobs/$L1\"}"
TL=$T/tampered-lie
KILN_RETRY_BACKOFF_MS=50 "$KILN" --store "$TL" build "$TPL" --cache-from "docker://$REG_FAULTY/$NS/cache" --explain --json >"$T/lie.json" 2>"$T/lie.err" ||
  fail "build through the lying proxy failed: $(cat "$T/lie.err")"
proxy_reset "$REG_FAULTY"
assert_eq "$D" "$(jq -r .digest "$T/lie.json")" "the image when a layer blob arrives falsified"
grep -q "^kiln: warning: docker://$REG_FAULTY/$NS/cache: .*blob $L1: blob content has digest sha256:.*, expected $L1 .*; building without the remote cache\$" "$T/lie.err" ||
  fail "no warning naming the falsified layer blob: $(cat "$T/lie.err")"
assert_eq "$(not_built_before)" "$(explain_of "$T/lie.err")" "--explain when the blob was falsified"
assert_eq "0 0" "$(jq -r '"\(.cache.from.hits) \(.cache.from.bytesDownloaded)"' "$T/lie.json")" "hits, bytes downloaded"
assert_store_clean "$TL"

step "an unreachable --cache-from: a warning, the build goes on"
U=$T/unreachable
"$KILN" --store "$U" build "$TPL" --cache-from docker://127.0.0.1:9/nobody/cache --explain >"$T/un.out" 2>"$T/un.err" ||
  fail "the build with an unreachable --cache-from failed: $(cat "$T/un.err")"
assert_eq "rcache:1.0.0 $D" "$(cat "$T/un.out")" "the image without the remote cache"
grep -q '^kiln: warning: docker://127.0.0.1:9/nobody/cache: .*; building without the remote cache$' "$T/un.err" ||
  fail "no warning for the unreachable cache: $(cat "$T/un.err")"
assert_eq 1 "$(grep -c 'building without the remote cache' "$T/un.err")" "one warning, then the cache is not asked again"
assert_eq "$(not_built_before)" "$(explain_of "$T/un.err")" "--explain with an unreachable cache"

step "--creds for the cache's registry (basic auth)"
BC=docker://$REG_BASIC/$NS/cache
"$KILN" --store "$S" build "$TPL" --cache-to "$BC" --creds "$REG_USER:$REG_PASS" --json >"$T/b1.json" 2>"$T/b1.err" ||
  fail "--cache-to with --creds failed: $(cat "$T/b1.err")"
assert_eq 4 "$(jq .cache.to.pushed "$T/b1.json")" "pushed with --creds"
expect_error 1 "authentication required" "$KILN" --store "$S" build "$TPL" --cache-to "$BC"
B2=$T/basic-nocreds
"$KILN" --store "$B2" build "$TPL" --cache-from "$BC" --json >"$T/b2.json" 2>"$T/b2.err" || fail "--cache-from without creds failed"
assert_eq "$D 0" "$(jq -r '"\(.digest) \(.cache.from.hits)"' "$T/b2.json")" "--cache-from without creds: digest, hits"
assert_contains "$(cat "$T/b2.err")" "kiln: warning: $BC: $REG_BASIC: authentication required" "the warning without creds"
"$KILN" --store "$T/basic-creds" build "$TPL" --cache-from "$BC" --creds "$REG_USER:$REG_PASS" --json >"$T/b3.json" 2>"$T/b3.err" ||
  fail "--cache-from with creds failed: $(cat "$T/b3.err")"
assert_eq "$D 4" "$(jq -r '"\(.digest) \(.cache.from.hits)"' "$T/b3.json")" "--cache-from with --creds: digest, hits"
assert_secret_free "$T/b1.json" "$T/b1.err" "$T/b2.json" "$T/b2.err" "$T/b3.json" "$T/b3.err" "$T/.err" "$T/.out"

step "--insecure and --ca-file for the cache's registry (TLS)"
TC=docker://$REG_TLS/$NS/cache
"$KILN" --store "$S" build "$TPL" --cache-to "$TC" --ca-file "$REG_CA" --json >"$T/t1.json" 2>"$T/t1.err" ||
  fail "--cache-to with --ca-file failed: $(cat "$T/t1.err")"
assert_eq 4 "$(jq .cache.to.pushed "$T/t1.json")" "pushed over TLS with --ca-file"
"$KILN" --store "$T/tls-plain" build "$TPL" --cache-from "$TC" --json >"$T/t2.json" 2>"$T/t2.err" || fail "--cache-from of an untrusted TLS registry failed"
assert_eq "$D 0" "$(jq -r '"\(.digest) \(.cache.from.hits)"' "$T/t2.json")" "an untrusted certificate: digest, hits"
assert_contains "$(cat "$T/t2.err")" "kiln: warning: $TC: " "the warning for an untrusted certificate"
assert_contains "$(cat "$T/t2.err")" "--ca-file" "the warning's hint"
"$KILN" --store "$T/tls-insecure" build "$TPL" --cache-from "$TC" --insecure --json >"$T/t3.json" 2>/dev/null || fail "--cache-from --insecure failed"
assert_eq "$D 4" "$(jq -r '"\(.digest) \(.cache.from.hits)"' "$T/t3.json")" "--insecure: digest, hits"

step "kiln push of an image built from --cache-from mounts its layers"
M=$T/mount
build_json "$T/mfrom.json" --store "$M" build "$TPL" --cache-from "docker://$REG_FAULTY/$NS/cache"
assert_eq 4 "$(jq .cache.from.hits "$T/mfrom.json")" "hits through the proxy"
proxy_reset "$REG_FAULTY"
kiln_ok mpush --store "$M" push rcache:1.0.0 "docker://$REG_FAULTY/$NS/app" --json
assert_eq "$D 5 1 4" "$(jq -r '"\(.digest) \(.blobs) \(.transferred) \(.mounted)"' "$T/mpush.out")" \
  "push of the image from the remote cache: digest blobs transferred (the config) mounted (the layers)"
stats=$(proxy_stats "$REG_FAULTY")
assert_eq 1 "$(($(stat_of "$stats" "PUT upload") + $(stat_of "$stats" "PATCH upload")))" \
  "blob uploads: only the config's (stats: $stats)"
assert_eq "$D" "$(remote_digest "$REG_PLAIN/$NS/app:1.0.0")" "skopeo reads the pushed image"

step "bad --cache-to / --cache-from values: exit 1, nothing built"
FP=$(store_fingerprint "$S")
for bad in "docker://$REG_PLAIN/$NS/cache:latest" "docker://$REG_PLAIN/$NS/cache@sha256:$(printf '%064d' 0)" \
  "rcache:cache" "oci:$T/layout"; do
  expect_error 1 "--cache-to \"$bad\": expected docker://HOST/REPO (a repository, without tag or digest)" \
    "$KILN" --store "$S" build "$TPL" --cache-to "$bad" --replace --set TOP=other
  expect_error 1 "--cache-from \"$bad\": expected docker://HOST/REPO (a repository, without tag or digest)" \
    "$KILN" --store "$S" build "$TPL" --cache-from "$bad" --replace --set TOP=other
done
assert_eq "$FP" "$(store_fingerprint "$S")" "the store after refused cache flags"
assert_eq "$(for n in 1 2 3 4; do echo "kc-${KEYS[n]#sha256:}"; done | LC_ALL=C sort)" "$(tags_of "$NS/cache")" \
  "the cache repository after all that"

step "--cache-to replaces a damaged or foreign artifact under a key's tag"
build_json "$T/repair.json" --store "$S" build "$TPL" --cache-to "docker://$REG_PLAIN/$NS/t-type"
assert_eq "4 0" "$(jq -r '"\(.cache.to.pushed) \(.cache.to.present)"' "$T/repair.json")" \
  "pushed present (layer 1's artifact was another type)"
build_json "$T/repaired.json" --store "$T/after-repair" build "$TPL" --cache-from "docker://$REG_PLAIN/$NS/t-type"
assert_eq "$D 4 0" "$(jq -r '"\(.digest) \(.cache.from.hits) \(.cache.from.misses)"' "$T/repaired.json")" \
  "--cache-from the repaired repository: digest hits misses"
assert_not_contains "$(cat "$T/repaired.json.stderr")" "the layer is built instead" "no warning once repaired"
