#!/usr/bin/env bash
# The layer cache: for every kind of input — a context file's content, its
# execute bit, a file added to a copied folder, a mode in the template, a
# --set arg a layer uses (and one only the config uses), the build date, the
# compression and its level, a tarball, the accounts, a layer's spec, the base
# image — one change, then `kiln build --explain`: exactly the layers it
# decides are rebuilt, each with the reason naming what changed (old -> new),
# the rest cached (--json's cacheKey and cached agree); and every rebuilt
# image is the image a cold build of the same inputs makes in a fresh store
# (the cache never changes bytes). A no-op build, a touched file (mtime only)
# and the default compression level spelled out are all hits; going back to
# earlier inputs hits their old entries. A cache entry flipped, truncated,
# emptied or replaced by another key's is noticed and only its layer rebuilt,
# the entry written again as it was; an entry whose blob is gone is rebuilt. The stat cache (kiln/cache/stat) of a
# store copied with cp -a does not hide a change that keeps size and mtime,
# and one written on another machine is not trusted.
# (Regressions of bugs found here are in cache_racy_stat.sh,
# cache_default_level.sh, cache_explain_dir_label.sh.)
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../cache_lib.sh
source "$(dirname "$0")/../cache_lib.sh"
need_tool jq perl tar gzip sha256sum

S=$T/store
C=$T/ctx
TPL=$C/kiln.yaml
L=(base-files app vendor owned accounts)  # the template's layers, in order

mkdir -p "$C/conf" "$T/vendor-src/lib"
printf 'app data one\n' >"$C/app.txt"
printf '#!/bin/sh\necho tool\n' >"$C/tool.sh"
printf 'a=1\n' >"$C/conf/a.conf"

# make_vendor TEXT: vendor.tar.gz in the context holding TEXT; sets VENDOR_SHA.
make_vendor() {
  printf '%s\n' "$1" >"$T/vendor-src/lib/v.txt"
  tar -C "$T/vendor-src" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - lib |
    gzip -n >"$C/vendor.tar.gz"
  VENDOR_SHA=$(sha256sum "$C/vendor.tar.gz" | cut -d' ' -f1)
}
make_vendor "vendor one"

# The template, from these settings (each case changes one).
MODE=0755
DIRS="/etc, /srv"
APP_HOME=/home/app
write_template() {
  cat >"$TPL" <<EOF
apiVersion: kiln.dev/v1
name: cachet
version: 1.0.0
args:
  GREETING: hello
  LABEL: one
layers:
  - name: base-files
    dirs: [$DIRS]
    files:
      - {dest: /etc/motd, content: "base\n"}
  - name: app
    files:
      - {src: app.txt, dest: /srv/app.txt}
      - {src: tool.sh, dest: /usr/bin/tool, mode: "$MODE"}
      - {src: conf, dest: /etc/app}
      - {dest: /etc/greeting, content: "\${GREETING}\n"}
  - name: vendor
    tarballs:
      - {src: vendor.tar.gz, sha256: "$VENDOR_SHA", dest: /opt/vendor}
  - name: owned
    dirs:
      - {path: /var/lib/app, owner: "app:app"}
      - {path: /var/lib/plain, owner: "0:0"}
accounts:
  groups: [{name: app, gid: 1000}]
  users: [{name: app, uid: 1000, gid: 1000, home: $APP_HOME}]
config:
  labels: {x: "\${LABEL}"}
EOF
}
write_template

entry_of() { cache_entry "$S" "$1"; }  # KEY: its entry in the store in use

# Each build's --json gives its layers' keys; LAST[1..] are those of the last
# build of the template into the store (what kiln compares with for
# --explain), OLD and NEW those before and after a rebuild.
LAST=()
# rebuild WHAT ARGS...: `kiln build TPL --replace --explain --json ARGS` into
# $S; the digest in DIGEST, the --explain report in EXPLAIN, the build's JSON
# in $T/rb.json; WHY emptied for the case.
rebuild() {
  local what=$1 n k
  shift
  step "$what"
  OLD=("${LAST[@]}")
  "$KILN" --store "$S" build "$TPL" --replace --explain --json "$@" >"$T/rb.json" 2>"$T/rb.err" ||
    fail "$what: build failed: $(cat "$T/rb.err")"
  DIGEST=$(jq -r .digest "$T/rb.json")
  EXPLAIN=$(explain_lines "$T/rb.err")
  NEW=("")  # keys from index 1, so copies of the array keep the indices
  n=1
  while read -r k; do
    [[ $k == sha256:* ]] || fail "$what: layer $n has no cacheKey in --json"
    NEW[n]=$k
    n=$((n + 1))
  done < <(cache_keys "$T/rb.json")
  assert_eq "${#L[@]}" "$((${#NEW[@]} - 1))" "$what: keys in --json"
  LAST=("${NEW[@]}")
  WHY=()
}
below() { echo "below: ${OLD[$1 - 1]} -> ${NEW[$1 - 1]}"; }  # LAYER: its below part changed
# above N: every layer above N rebuilt only because the one below it was.
above() {
  local n
  for ((n = $1 + 1; n <= ${#L[@]}; n++)); do WHY[n]=$(below "$n"); done
}
# changed N PART: layer N's reason "PART: sha256:… -> sha256:…" as --explain
# gave it (for digests only kiln computes: a layer's spec, the accounts),
# checked to name two different digests.
changed() {
  local line re='^(sha256:[0-9a-f]{64}) -> (sha256:[0-9a-f]{64})$'
  line=$(awk -v n="$1" -v p="    $2: " '
    /^layer / { on = ($2 == n) }
    on && index($0, p) == 1 { print substr($0, 5) }' <<<"$EXPLAIN")
  [[ -n $line ]] || fail "layer $1 has no reason '$2: ...' in:"$'\n'"$EXPLAIN"
  [[ ${line#"$2: "} =~ $re ]] || fail "layer $1's reason is not '$2: OLD -> NEW' digests: $line"
  assert_ne "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "the two digests of layer $1's $2"
  echo "$line"
}

# expect_explain WHAT: EXPLAIN is "cached" for every layer without WHY[n], and
# "rebuilt, because" with WHY[n]'s lines (indented) for the others; --json's
# "cached" agrees.
expect_explain() {
  local n out='' cached
  for ((n = 1; n <= ${#L[@]}; n++)); do
    if [[ -z ${WHY[n]:-} ]]; then
      out+="layer $n ${L[n - 1]}: cached"$'\n'
    else
      out+="layer $n ${L[n - 1]}: rebuilt, because"$'\n'
      out+="    ${WHY[n]//$'\n'/$'\n'    }"$'\n'
    fi
  done
  assert_eq "${out%$'\n'}" "$EXPLAIN" "--explain after: $1"
  cached=$(jq -r '[.layers[] | select(.fromBase | not) | .cached] | map(tostring) | join(" ")' "$T/rb.json")
  out=
  for ((n = 1; n <= ${#L[@]}; n++)); do
    if [[ -z ${WHY[n]:-} ]]; then out+="true "; else out+="false "; fi
  done
  assert_eq "${out% }" "$cached" "--json cached after: $1"
}
# The same keys as before for the layers without a reason, others new.
expect_keys() {
  local n
  for ((n = 1; n <= ${#L[@]}; n++)); do
    if [[ -z ${WHY[n]:-} ]]; then
      assert_eq "${OLD[n]}" "${NEW[n]}" "$1: key of cached layer $n"
    else
      assert_ne "${OLD[n]}" "${NEW[n]}" "$1: key of rebuilt layer $n"
    fi
  done
}
# The same keys as before for every layer (a damaged entry is rebuilt under
# its own key).
same_keys() {
  local n
  for ((n = 1; n <= ${#L[@]}; n++)); do
    assert_eq "${OLD[n]}" "${NEW[n]}" "$1: key of layer $n"
  done
}

# cold WHAT ARGS...: the same build in a fresh store gives DIGEST.
ncold=0
cold() {
  local what=$1 d
  shift
  ncold=$((ncold + 1))
  d=$(build_digest --store "$T/cold/$ncold" build "$TPL" "$@")
  assert_eq "$d" "$DIGEST" "$what: the warm build's digest vs a cold build's"
}
# Every layer of the image came from (or went into) the entry of its key,
# which names the key and the layer's blob.
expect_entries() {
  local n digests
  mapfile -t digests < <(jq -r '.layers[] | select(.fromBase | not) | .digest' "$T/rb.json")
  for ((n = 1; n <= ${#L[@]}; n++)); do
    assert_entry "$S" "${NEW[n]}" "${digests[n - 1]}" "$1: layer $n"
  done
}
# all_cached WHAT DIGEST ARGS...: a rebuild with ARGS hits every layer and
# gives DIGEST (the keys may be earlier ones: going back hits old entries).
all_cached() {
  local what=$1 want=$2
  shift 2
  rebuild "$what" "$@"
  expect_explain "$what"
  assert_eq "$want" "$DIGEST" "$what: digest"
}

step "first build: nothing built before"
rebuild "the first build"
for n in 1 2 3 4 5; do WHY[n]="not built before"; done
expect_explain "the first build"
cold "the first build"
expect_entries "the first build"
D0=$DIGEST

all_cached "no-op rebuild: every layer cached" "$D0"
expect_keys "no-op rebuild"
touch "$C/app.txt"
touch -d "2001-02-03 04:05:06" "$C/conf/a.conf" "$C/tool.sh"
all_cached "touched files (mtime only): every layer cached" "$D0"
expect_keys "touched files"

# --- context files
A1=$(sha256_of "$C/app.txt")
printf 'app data two\n' >"$C/app.txt"
A2=$(sha256_of "$C/app.txt")
rebuild "a context file's content"
WHY[2]="file app.txt: $A1 -> $A2"
above 2
expect_explain "app.txt changed"
expect_keys "app.txt changed"
cold "app.txt changed"
expect_entries "app.txt changed"
D_A2=$DIGEST

chmod 755 "$C/app.txt"
rebuild "a context file's execute bit"
WHY[2]="file app.txt: $A2 -> $A2 executable"
above 2
expect_explain "chmod +x app.txt"
expect_keys "chmod +x app.txt"
cold "chmod +x app.txt"
assert_ne "$D_A2" "$DIGEST" "an executable app.txt gives another image"
chmod 644 "$C/app.txt"
all_cached "the execute bit back: the earlier entries" "$D_A2"

printf 'b=2\n' >"$C/conf/b.conf"
rebuild "a file added to a copied folder"
WHY[2]="file conf/b.conf: added"
above 2
expect_explain "conf/b.conf added"
cold "conf/b.conf added"
rm "$C/conf/b.conf"
all_cached "the file removed again: the earlier entries" "$D_A2"

# --- the template and its args
MODE=0700
write_template
rebuild "a file's mode in the template"
WHY[2]=$(changed 2 spec)
above 2
expect_explain "tool.sh 0700"
expect_keys "tool.sh 0700"
cold "tool.sh 0700"
expect_entries "tool.sh 0700"
D_MODE=$DIGEST

rebuild "--set of an arg a layer uses" --set GREETING=bonjour
WHY[2]=$(changed 2 spec)
above 2
expect_explain "--set GREETING=bonjour"
cold "--set GREETING=bonjour" --set GREETING=bonjour
all_cached "the arg's default again: the earlier entries" "$D_MODE"

rebuild "--set of an arg only the config uses" --set LABEL=two
expect_explain "--set LABEL=two"
expect_keys "--set LABEL=two"
assert_ne "$D_MODE" "$DIGEST" "another label gives another image"
cold "--set LABEL=two" --set LABEL=two
expect_entries "--set LABEL=two"

# --- build parameters: every layer
rebuild "the build date" --source-date-epoch 1700000000
WHY[1]="buildDate: 0 -> 1700000000"
for n in 2 3 4 5; do WHY[n]="$(below "$n")"$'\n'"buildDate: 0 -> 1700000000"; done
expect_explain "--source-date-epoch 1700000000"
expect_keys "--source-date-epoch 1700000000"
cold "--source-date-epoch 1700000000" --source-date-epoch 1700000000
expect_entries "--source-date-epoch 1700000000"
all_cached "the default build date again: the earlier entries" "$D_MODE"

rebuild "the compression level" --compression-level 9
WHY[1]="compression: gzip/6 -> gzip/9"  # the level used, the default 6 included
for n in 2 3 4 5; do WHY[n]="$(below "$n")"$'\n'"compression: gzip/6 -> gzip/9"; done
expect_explain "--compression-level 9"
expect_keys "--compression-level 9"
cold "--compression-level 9" --compression-level 9
assert_ne "$D_MODE" "$DIGEST" "gzip level 9 gives other layer bytes here"
all_cached "the default level again: the earlier entries" "$D_MODE"

all_cached "the default level spelled out (6): the same entries" "$D_MODE" --compression-level 6

rebuild "the compression" --compression zstd
WHY[1]="compression: gzip/6 -> zstd/3"
for n in 2 3 4 5; do WHY[n]="$(below "$n")"$'\n'"compression: gzip/6 -> zstd/3"; done
expect_explain "--compression zstd"
expect_keys "--compression zstd"
cold "--compression zstd" --compression zstd
expect_entries "--compression zstd"
"$KILN" --store "$S" inspect cachet:1.0.0 --json | jq -e '[.layers[].mediaType] | unique == ["application/vnd.oci.image.layer.v1.tar+zstd"]' >/dev/null ||
  fail "the zstd build's layers are not all zstd"
all_cached "gzip again: the earlier entries" "$D_MODE"

# --- a tarball (its pin in the template and its content change together)
V1=sha256:$VENDOR_SHA
make_vendor "vendor two"
write_template
rebuild "a tarball's content"
WHY[3]="$(changed 3 spec)"$'\n'"tarball vendor.tar.gz: $V1 -> sha256:$VENDOR_SHA"
above 3
expect_explain "vendor.tar.gz changed"
expect_keys "vendor.tar.gz changed"
cold "vendor.tar.gz changed"
expect_entries "vendor.tar.gz changed"

# --- the accounts: the accounts layer, and the layer whose owners are names
APP_HOME=/home/app2
write_template
rebuild "the accounts section"
ACC=$(changed 5 accounts)
assert_eq "$ACC" "$(changed 4 accounts)" "the owned layer's accounts part vs the accounts layer's"
WHY[4]=$ACC
WHY[5]="$ACC"$'\n'"$(below 5)"
expect_explain "a user's home changed"
expect_keys "a user's home changed"
cold "a user's home changed"
expect_entries "a user's home changed"

# --- a layer's spec
DIRS="/etc, /srv, /opt"
write_template
rebuild "a layer's spec (a dir added)"
WHY[1]=$(changed 1 spec)
above 1
expect_explain "/opt added to base-files"
expect_keys "/opt added to base-files"
cold "/opt added to base-files"
expect_entries "/opt added to base-files"
D_NOW=$DIGEST
all_cached "after all that, a no-op" "$D_NOW"
expect_keys "after all that, a no-op"

# --- damaged cache entries: found, that layer rebuilt, the entry written again
CUR=("${LAST[@]}")
for n in 2 3 4 5; do cp "$(entry_of "${CUR[n]}")" "$T/entry$n.orig"; done
E2=$(entry_of "${CUR[2]}")
perl -e 'open(my $f, "+<", $ARGV[0]) or die; my $at = int((-s $f) / 2); seek($f, $at, 0);
  read($f, my $c, 1); seek($f, $at, 0); print $f chr(ord($c) ^ 0x01); close($f)' "$E2"
cmp -s "$E2" "$T/entry2.orig" && fail "the byte flip changed nothing"
rebuild "a cache entry with a flipped byte"
WHY[2]="the cache entry is gone (gc, or damaged)"
expect_explain "entry of layer 2 flipped"
same_keys "entry of layer 2 flipped"
assert_eq "$D_NOW" "$DIGEST" "digest after the flipped entry"
assert_file_eq "$T/entry2.orig" "$E2" "the entry written again"

E3=$(entry_of "${CUR[3]}")
truncate -s $(($(stat -c %s "$E3") / 3)) "$E3"
: >"$(entry_of "${CUR[5]}")"
rebuild "a truncated and an empty cache entry"
WHY[3]="the cache entry is gone (gc, or damaged)"
WHY[5]="the cache entry is gone (gc, or damaged)"
expect_explain "entry of layer 3 truncated, of layer 5 empty"
same_keys "entries truncated"
assert_eq "$D_NOW" "$DIGEST" "digest after the truncated entries"
assert_file_eq "$T/entry3.orig" "$E3" "the truncated entry written again"
assert_file_eq "$T/entry5.orig" "$(entry_of "${CUR[5]}")" "the emptied entry written again"

# Another layer's entry copied under this key: not this key's, so a miss.
cp "$T/entry3.orig" "$(entry_of "${CUR[4]}")"
rebuild "another key's entry under a key's name"
WHY[4]="the cache entry is gone (gc, or damaged)"
expect_explain "layer 3's entry as layer 4's"
same_keys "layer 3's entry as layer 4's"
assert_eq "$D_NOW" "$DIGEST" "digest after another key's entry"
assert_file_eq "$T/entry4.orig" "$(entry_of "${CUR[4]}")" "the entry written again"

B4=$(jq -r '[.layers[] | select(.fromBase | not)][3].digest' "$T/rb.json")
rm "$(blob_path "$S" "$B4")"
rebuild "a cache entry whose blob is gone"
WHY[4]="the cache entry is gone (gc, or damaged)"
expect_explain "blob of layer 4 deleted"
same_keys "blob of layer 4 deleted"
assert_eq "$D_NOW" "$DIGEST" "digest after the blob was deleted"
[[ -f $(blob_path "$S" "$B4") ]] || fail "the layer's blob was not written again"
kiln_ok fsck --store "$S" store fsck
all_cached "and then every layer is a hit again" "$D_NOW"

# --- the stat cache: a store copied with cp -a (same machine, same context)
# does not hide a change that keeps size and mtime (ctime still moves).
step "the stat cache: a copied store, a change keeping size and mtime"
S_COPY=$T/store-copy
cp -a "$S" "$S_COPY"
[[ -s $S_COPY/kiln/cache/stat ]] || fail "no stat cache to copy"
grep -qF " $C/app.txt" "$S_COPY/kiln/cache/stat" || fail "the stat cache does not list app.txt"
cp -p "$C/app.txt" "$T/app.ref"
before=$(stat -c '%s %.9Y %i' "$C/app.txt")
A_OLD=$(sha256_of "$C/app.txt")
printf 'app data six\n' >"$C/app.txt"  # the same size
touch -r "$T/app.ref" "$C/app.txt"
assert_eq "$before" "$(stat -c '%s %.9Y %i' "$C/app.txt")" "size, mtime and inode kept"
A_NEW=$(sha256_of "$C/app.txt")
assert_ne "$A_OLD" "$A_NEW" "the content"
S_MAIN=$S
MAIN_LAST=("${LAST[@]}")
S=$S_COPY
rebuild "build into the copied store"
WHY[2]="file app.txt: $A_OLD -> $A_NEW"
above 2
expect_explain "app.txt changed, size and mtime kept (copied store)"
cold "app.txt changed, size and mtime kept"
D_SIX=$DIGEST
S=$S_MAIN
LAST=("${MAIN_LAST[@]}")
rebuild "and into the original store"
WHY[2]="file app.txt: $A_OLD -> $A_NEW"
above 2
expect_explain "app.txt changed, size and mtime kept (original store)"
assert_eq "$D_SIX" "$DIGEST" "the original store's digest"

# A stat cache written on another machine (a store restored on a CI runner,
# where the checkout may have the same paths, inode numbers, sizes and times)
# is not trusted. Its first line names the machine. The store has entries for
# app.txt as "ten" and as "six"; app.txt is "six", and its line in a stat
# cache from another machine says "ten", with the file's stat as it is.
step "the stat cache of another machine is not trusted"
printf 'app data ten\n' >"$C/app.txt"
A_TEN=$(sha256_of "$C/app.txt")
rebuild "app.txt as ten"
D_TEN=$DIGEST
printf 'app data six\n' >"$C/app.txt"
sleep 2.2  # older than the stat cache's racy window, so its line is one kiln would trust
all_cached "app.txt as six again" "$D_SIX"
SF=$S/kiln/cache/stat
header=$(head -1 "$SF")
line=$(grep -F " $C/app.txt" "$SF") || fail "the stat cache has no line for app.txt"
assert_eq "${A_NEW#sha256:}" "${line%% *}" "the stat cache's digest of app.txt"
[[ $header =~ ^kiln-stat-cache\ .*\ [0-9a-f]{16,}$ ]] || fail "unexpected stat cache header: $header"
{
  echo "${header% *} 0123456789abcdef0123456789abcdef"
  grep -vF " $C/app.txt" "$SF" | tail -n +2
  echo "${A_TEN#sha256:} ${line#* }"
} >"$T/stat.planted"
cp "$T/stat.planted" "$SF"
all_cached "a stat cache from another machine naming the other content" "$D_SIX"
assert_ne "$D_TEN" "$DIGEST" "the image of what is on disk, not of what the other machine's stat cache says"
[[ $(head -1 "$SF") == "$header" ]] || fail "the stat cache was not written again for this machine"

# --- the base: a store image rebuilt to another digest
step "the base: a store image rebuilt to another digest"
cat >"$C/base.yaml" <<'EOF2'
apiVersion: kiln.dev/v1
name: cbase
version: 1.0.0
args: {V: one}
layers:
  - name: root
    dirs: [/etc]
    files:
      - {dest: /etc/base.txt, content: "${V}\n"}
EOF2
cat >"$C/on-base.yaml" <<'EOF2'
apiVersion: kiln.dev/v1
name: onbase
version: 1.0.0
base: cbase:1.0.0
layers:
  - name: first
    files:
      - {dest: /etc/first.txt, content: "first\n"}
  - name: second
    files:
      - {dest: /etc/second.txt, content: "second\n"}
EOF2
B1=$(build_digest --store "$S" build "$C/base.yaml")
TPL=$C/on-base.yaml
L=(first second)
LAST=()
rebuild "on the base, first build"
WHY[1]="not built before" WHY[2]="not built before"
expect_explain "onbase's first build"
B2=$(build_digest --store "$S" build "$C/base.yaml" --replace --set V=two)
assert_ne "$B1" "$B2" "the rebuilt base"
rebuild "on the rebuilt base"
WHY[1]="below: base:$B1 -> base:$B2"
WHY[2]=$(below 2)
expect_explain "the base rebuilt"
expect_keys "the base rebuilt"
expect_entries "the base rebuilt"
assert_eq "$B2" "$(build_digest --store "$T/cold/base" build "$C/base.yaml" --set V=two)" "the base, cold"
assert_eq "$DIGEST" "$(build_digest --store "$T/cold/base" build "$TPL")" "onbase on the rebuilt base, cold"
