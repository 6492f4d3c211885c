#!/usr/bin/env bash
# Debian packages against the local APT repository fixtures/aptrepo.sh serves:
# `kiln lock` resolves the closure (Pre-Depends, version constraints,
# alternatives, virtual packages, arch all, a cycle, excludes, pins) into a
# sorted, stable lock; conflicts (Conflicts, versioned Breaks, a virtual
# package), a missing dependency and unknown names or versions are refused
# with exit 1 naming them and the chain, and no lock is written; InRelease
# verified with gpgv (the wrong keyring, a tampered or unsigned InRelease are
# refused; a tampered index too); a .deb changed on the server after locking
# is refused naming the package and both digests, never enters the cache,
# and a good cached .deb stays; a corrupted cache entry is fetched again; a
# stale lock is an error telling to run kiln lock; --locked without a lock
# fails, without --locked the lock is written. The image: status.d for
# exactly the locked packages (md5sums where they have them, the control
# file as shipped), the package files with their modes, owners and links,
# maintainer scripts neither run nor shipped, and the build says so.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_APT_FIXTURE:?the APT fixture dir (tests/fixtures/aptrepo.sh start DIR)}/env"
# shellcheck source=../apt_lib.sh
source "$(dirname "$0")/../apt_lib.sh"
need_tool umoci

S=$T/store
APP=$T/app/kiln.yaml
APP_LOCK=$T/app/kiln.lock
POOL=$APT_DIR/www/debian

step "kiln lock: Pre-Depends, libfoo (<< 2.0) over the newer 2.0-1, ghost-mta | altpkg, virtual-editor, arch all"
pkg_template "$APP" app "app" "layering: per-package"
out=$("$KILN" --store "$S" lock "$APP" 2>"$T/lock.err") || fail "kiln lock failed: $(cat "$T/lock.err")"
assert_contains "$out" "$APP_LOCK: 7 packages" "kiln lock's summary"
assert_eq "$APP_CLOSURE" "$(lock_packages "$APP_LOCK")" "the locked packages, sorted by name"
jq -e '.format == "kiln-lock" and .version == 1 and (.request | test("^sha256:[0-9a-f]{64}$"))' "$APP_LOCK" >/dev/null ||
  fail "lock header: $(jq -c '{format, version, request}' "$APP_LOCK")"
assert_eq '["altpkg","editor-impl","libbase","libfoo","withscript"]' \
  "$(jq -c '.packages[] | select(.name == "app") | .depends' "$APP_LOCK")" "what app depends on (Pre-Depends too)"
assert_eq '["libbase"]' "$(jq -c '.packages[] | select(.name == "libfoo") | .depends' "$APP_LOCK")" "libfoo's dependencies"
assert_eq '["data-common"]' "$(jq -c '.packages[] | select(.name == "libbase") | .depends' "$APP_LOCK")" "libbase's dependencies"
# Each package's path, size and SHA-256 are those of the .deb the repository serves.
while read -r name filename size sha repo; do
  deb=$POOL/$filename
  [[ -f $deb ]] || fail "$name: the lock's filename $filename is not in the repository"
  assert_eq "$(stat -c %s "$deb")" "$size" "$name: size in the lock"
  assert_eq "$(sha256sum "$deb" | cut -d' ' -f1)" "$sha" "$name: sha256 in the lock"
  assert_eq test "$repo" "$name: repository in the lock"
done < <(jq -r '.packages[] | "\(.name) \(.filename) \(.size) \(.sha256) \(.repository)"' "$APP_LOCK")
assert_eq "pool/main/l/libfoo/libfoo_1.3-1_amd64.deb" \
  "$(jq -r '.packages[] | select(.name == "libfoo") | .filename' "$APP_LOCK")" "libfoo's download path"
assert_eq "$(jq -c -n --arg url "$APT_URL" --arg rel "sha256:$(sha256sum "$POOL/dists/stable/Release" | cut -d' ' -f1)" \
  '[{name: "test", url: $url, suite: "stable", components: ["main"], architecture: "amd64", release: $rel}]')" \
  "$(jq -c '[.repositories[] | {name, url, suite, components, architecture, release}]' "$APP_LOCK")" \
  "the lock's repository, with the digest of the signed Release"

step "the lock is stable: again, and from a cold index cache, byte for byte"
cp "$APP_LOCK" "$T/app.lock.1"
"$KILN" --store "$S" lock "$APP" >/dev/null 2>&1 || fail "second kiln lock failed"
assert_file_eq "$T/app.lock.1" "$APP_LOCK" "kiln lock twice"
"$KILN" --store "$T/cold-store" lock "$APP" --json >"$T/lock.json" 2>/dev/null || fail "kiln lock with a cold cache failed"
assert_file_eq "$T/app.lock.1" "$APP_LOCK" "kiln lock with a cold index cache"
jq -e --arg lock "$APP_LOCK" '.lock == $lock and .packages == 7 and (.bytes | type) == "number"' "$T/lock.json" >/dev/null ||
  fail "kiln lock --json: $(cat "$T/lock.json")"

step "versions: the newest by default, name=version pins, an unknown version lists what there is"
pkg_template "$T/foo/kiln.yaml" foo "libfoo"
"$KILN" --store "$S" lock "$T/foo/kiln.yaml" >/dev/null 2>&1 || fail "lock libfoo failed"
assert_eq "data-common 1.0-1 all
libbase 1.0-1 amd64
libfoo 2.0-1 amd64" "$(lock_packages "$T/foo/kiln.lock")" "libfoo unpinned: the newest"
pkg_template "$T/foo13/kiln.yaml" foo "libfoo=1.3-1"
"$KILN" --store "$S" lock "$T/foo13/kiln.yaml" >/dev/null 2>&1 || fail "lock libfoo=1.3-1 failed"
assert_eq "libfoo 1.3-1 amd64" "$(lock_packages "$T/foo13/kiln.lock" | grep '^libfoo ')" "libfoo=1.3-1"
pkg_template "$T/foo99/kiln.yaml" foo "libfoo=9.9-1"
expect_error 1 "package libfoo has no version 9.9-1 (available: 2.0-1, 1.3-1)" "$KILN" --store "$S" lock "$T/foo99/kiln.yaml"
[[ ! -e $T/foo99/kiln.lock ]] || fail "a lock was written for an unknown version"
pkg_template "$T/nosuch/kiln.yaml" nosuch "no-such-package"
expect_error 1 "no package named no-such-package" "$KILN" --store "$S" lock "$T/nosuch/kiln.yaml"
pkg_template "$T/virt/kiln.yaml" virt "virtual-editor"
expect_error 1 "virtual-editor is virtual, provided by editor-impl, editor-other" "$KILN" --store "$S" lock "$T/virt/kiln.yaml"

step "exclude: the other provider of a virtual package; an excluded only alternative is an error"
pkg_template "$T/ex/kiln.yaml" ex "app" "exclude: [editor-impl]"
"$KILN" --store "$S" lock "$T/ex/kiln.yaml" >/dev/null 2>"$T/ex.err" || fail "lock with exclude failed: $(cat "$T/ex.err")"
assert_eq "${APP_CLOSURE/editor-impl /editor-other }" "$(lock_packages "$T/ex/kiln.lock")" \
  "editor-impl excluded: editor-other provides virtual-editor"
pkg_template "$T/ex2/kiln.yaml" ex2 "app" "exclude: [altpkg]"
expect_error 1 "cannot satisfy ghost-mta | altpkg, required by the template -> app" "$KILN" --store "$S" lock "$T/ex2/kiln.yaml"
assert_contains "$ERR" "altpkg is excluded" "why the alternatives fail"
[[ ! -e $T/ex2/kiln.lock ]] || fail "a lock was written for an unresolvable template"

step "a dependency cycle locks and builds, per package"
pkg_template "$T/cyc/kiln.yaml" cyc "cyc-a" "layering: per-package"
"$KILN" --store "$S" lock "$T/cyc/kiln.yaml" >/dev/null 2>&1 || fail "lock cyc-a failed"
assert_eq "cyc-a 1.0-1 amd64
cyc-b 1.0-1 amd64" "$(lock_packages "$T/cyc/kiln.lock")" "the cycle's packages"
build_json "$T/cyc.json" --store "$S" build "$T/cyc/kiln.yaml" --locked
assert_eq 2 "$(jq '.layers | length' "$T/cyc.json")" "one layer per package of the cycle"

step "a metapackage (no files): its layer holds its status.d entry"
pkg_template "$T/meta/kiln.yaml" meta "meta" "layering: per-package"
build_json "$T/meta.json" --store "$S" build "$T/meta/kiln.yaml"
assert_eq '["package altpkg","package meta"]' "$(jq -c '[.layers[].name]' "$T/meta.json")" "the metapackage's layers"
assert_eq "/var/lib/dpkg/status.d/meta" \
  "$("$KILN" --store "$S" inspect meta:1.0.0 --files --json | jq -r '.layers[1].files[] | select(.type == "file") | .path')" \
  "the only file of the metapackage's layer"

step "conflicts: Conflicts, a versioned Breaks, two providers that conflict on their virtual package"
pkg_template "$T/conflict/kiln.yaml" conflict "conflict-a, conflict-b"
expect_error 1 "package conflict-a 1.0-1 conflicts with conflict-b 1.0-1" "$KILN" --store "$S" lock "$T/conflict/kiln.yaml"
[[ ! -e $T/conflict/kiln.lock ]] || fail "a lock was written for conflicting packages"
pkg_template "$T/breaks/kiln.yaml" breaks "app, breaker"
expect_error 1 "package breaker 1.0-1 conflicts with libfoo 1.3-1 (libfoo (<< 1.5)); libfoo is required by the template -> app" \
  "$KILN" --store "$S" lock "$T/breaks/kiln.yaml"
pkg_template "$T/editors/kiln.yaml" editors "editor-impl, editor-other"
expect_error 1 "conflicts with" "$KILN" --store "$S" lock "$T/editors/kiln.yaml"
assert_contains "$ERR" "editor-impl 1.0-1" "the conflict names editor-impl"
assert_contains "$ERR" "editor-other 1.0-1" "the conflict names editor-other"
assert_contains "$ERR" "virtual-editor" "the conflict names the virtual package"
# A build without a lock resolves too, and fails the same way, writing nothing.
before=$(store_fingerprint "$S")
expect_error 1 "package conflict-a 1.0-1 conflicts with conflict-b 1.0-1" "$KILN" --store "$S" build "$T/conflict/kiln.yaml"
[[ ! -e $T/conflict/kiln.lock ]] || fail "a failed build wrote a lock"
assert_eq "$before" "$(store_fingerprint "$S")" "store after the refused build"

step "a missing dependency: the package and the chain that required it"
pkg_template "$T/missing/kiln.yaml" missing "needs-broken"
expect_error 1 "cannot satisfy ghost-lib (>= 1), required by the template -> needs-broken -> broken" \
  "$KILN" --store "$S" lock "$T/missing/kiln.yaml"
assert_contains "$ERR" "no package named or providing ghost-lib" "why ghost-lib cannot be had"
[[ ! -e $T/missing/kiln.lock ]] || fail "a lock was written with a missing dependency"

step "InRelease: the wrong keyring, a tampered, an unsigned InRelease are refused (exit 1); a tampered index too"
PKG_KEYRING=$APT_WRONG_KEYRING pkg_template "$T/wrongkey/kiln.yaml" wrongkey "app"
expect_error 1 "$APT_URL/dists/stable/InRelease is not signed by a key in $APT_WRONG_KEYRING" \
  "$KILN" --store "$T/sig-store" lock "$T/wrongkey/kiln.yaml"
[[ ! -e $T/wrongkey/kiln.lock ]] || fail "a lock was written from an unverified InRelease"
expect_error 1 "is not signed by a key in $APT_WRONG_KEYRING" "$KILN" --store "$T/sig-store" build "$T/wrongkey/kiln.yaml"
[[ ! -e $T/wrongkey/kiln.lock ]] || fail "a build wrote a lock from an unverified InRelease"

apt_copy tampered-inrelease
perl -pi -e 's/^Label: kiln-test$/Label: kiln-evil/' "$COPY_DIR/dists/stable/InRelease"
grep -q '^Label: kiln-evil$' "$COPY_DIR/dists/stable/InRelease" || fail "the test did not change InRelease"
PKG_URL=$COPY_URL pkg_template "$T/tampered/kiln.yaml" tampered "app"
expect_error 1 "$COPY_URL/dists/stable/InRelease is not signed by a key in $APT_KEYRING" \
  "$KILN" --store "$T/sig-store" lock "$T/tampered/kiln.yaml"
assert_contains "$ERR" "BAD signature" "gpgv's verdict is shown"
[[ ! -e $T/tampered/kiln.lock ]] || fail "a lock was written from a tampered InRelease"

cp "$POOL/dists/stable/Release" "$COPY_DIR/dists/stable/InRelease"  # the same text, unsigned
expect_error 1 "$COPY_URL/dists/stable/InRelease is not signed by a key in $APT_KEYRING" \
  "$KILN" --store "$T/sig-store" lock "$T/tampered/kiln.yaml"
[[ ! -e $T/tampered/kiln.lock ]] || fail "a lock was written from an unsigned InRelease"

# A signed InRelease, and an index that is not the one it lists.
cp "$POOL/dists/stable/InRelease" "$COPY_DIR/dists/stable/InRelease"
perl -pi -e 's/^Version: 1\.3-1$/Version: 1.4-1/' "$COPY_DIR/dists/stable/main/binary-amd64/Packages"
xz -c "$COPY_DIR/dists/stable/main/binary-amd64/Packages" >"$COPY_DIR/dists/stable/main/binary-amd64/Packages.xz"
gzip -nc "$COPY_DIR/dists/stable/main/binary-amd64/Packages" >"$COPY_DIR/dists/stable/main/binary-amd64/Packages.gz"
expect_error 2 "content does not match the SHA-256 the signed Release gives" \
  "$KILN" --store "$T/index-store" lock "$T/tampered/kiln.yaml"
[[ ! -e $T/tampered/kiln.lock ]] || fail "a lock was written from a tampered index"
if [[ -d $T/index-store/kiln/cache/apt/indexes ]]; then
  assert_eq "" "$(ls -A "$T/index-store/kiln/cache/apt/indexes")" "the index cache after a tampered index"
fi

step "InRelease not found: a wrong suite"
mkdir -p "$T/nosuite"
sed 's/suite: stable/suite: nosuch/' "$APP" >"$T/nosuite/kiln.yaml"
expect_error 1 "$APT_URL/dists/nosuch/InRelease not found" "$KILN" --store "$S" lock "$T/nosuite/kiln.yaml"

step "a .deb changed on the server after locking: refused with both digests, never cached; good .debs stay"
apt_copy tampered-deb
C=$T/cache-store
PKG_URL=$COPY_URL pkg_template "$T/lb/kiln.yaml" lb "libbase"
build_digest --store "$C" build "$T/lb/kiln.yaml" >/dev/null  # caches libbase and data-common
good=$(cache_debs "$C")
assert_eq 2 "$(wc -l <<<"$good")" "cached .debs after building libbase"
PKG_URL=$COPY_URL pkg_template "$T/tapp/kiln.yaml" app "app" "layering: per-package"
"$KILN" --store "$C" lock "$T/tapp/kiln.yaml" >/dev/null 2>&1 || fail "lock against the copy failed"
deb=$COPY_DIR/pool/main/a/app/app_2.0-1_amd64.deb
locked=$(jq -r '.packages[] | select(.name == "app") | .sha256' "$T/tapp/kiln.lock")
size=$(stat -c %s "$deb")
flip_byte "$deb"
bad=$(sha256sum "$deb" | cut -d' ' -f1)
assert_ne "$locked" "$bad" "the tampered .deb's digest"
assert_eq "$size" "$(stat -c %s "$deb")" "the tampered .deb keeps its size"
expect_error 2 "package app 2.0-1" "$KILN" --store "$C" build "$T/tapp/kiln.yaml" --locked
assert_contains "$ERR" "$bad" "the error gives the digest of what was served"
assert_contains "$ERR" "$locked" "the error gives the digest the lock pins"
cache_is_clean "$C"
assert_not_contains "$(cache_debs "$C")" "$bad" "the package cache"
assert_not_contains "$(cache_debs "$C")" "$locked" "the package cache (app's .deb never arrived)"
while read -r line; do
  assert_contains "$(cache_debs "$C")" "$line" "a good .deb cached before stays"
done <<<"$good"
assert_eq "[]" "$("$KILN" --store "$C" images --json | jq -c '[.[] | select(.name == "app:1.0.0")]')" "no image from the refused build"

step "a .deb larger than the lock says: refused, never cached"
cp "$POOL/pool/main/a/app/app_2.0-1_amd64.deb" "$deb"
printf 'x' >>"$deb"
rc=0
"$KILN" --store "$C" build "$T/tapp/kiln.yaml" --locked >"$T/big.out" 2>"$T/big.err" || rc=$?
assert_eq 2 "$rc" "exit code of a build fetching an oversized .deb ($(cat "$T/big.err"))"
assert_contains "$(cat "$T/big.err")" "app_2.0-1_amd64.deb" "the error names the .deb"
cache_is_clean "$C"
assert_not_contains "$(cache_debs "$C")" "$locked" "the package cache after the oversized .deb"

step "the .deb gone from the server: the hint to lock again"
rm "$deb"
expect_error 2 "package app 2.0-1: $COPY_URL/pool/main/a/app/app_2.0-1_amd64.deb is gone from the mirror (run kiln lock" \
  "$KILN" --store "$C" build "$T/tapp/kiln.yaml" --locked
cache_is_clean "$C"

step "the right .deb again: the build works and caches it"
cp "$POOL/pool/main/a/app/app_2.0-1_amd64.deb" "$deb"
D_COPY=$(build_digest --store "$C" build "$T/tapp/kiln.yaml" --locked)
cache_is_clean "$C"
assert_eq 7 "$(cache_debs "$C" | wc -l)" "cached .debs after the good build"

step "a corrupted cache entry is not used: fetched again"
cached=$C/kiln/cache/debs/$locked.deb
flip_byte "$cached"
assert_eq "$D_COPY" "$(build_digest --store "$C" build "$T/tapp/kiln.yaml" --locked)" "digest after repairing the cache"
cache_is_clean "$C"

step "a stale lock: include, exclude or repository changed -> exit 1 with the hint; layering may change"
build_digest --store "$S" build "$APP" --locked >/dev/null
cp "$APP_LOCK" "$T/app.lock.before"
before=$(store_fingerprint "$S")
for edit in 's/include: \[app\]/include: [app, other]/' \
  's/include: \[app\]/include: [app]\n  exclude: [editor-other]/' \
  's/include: \[app\]/include: ["app=2.0-1"]/' \
  's|url: http://127\.0\.0\.1:|url: http://localhost:|'; do
  mkdir -p "$T/stale"
  sed "$edit" "$APP" >"$T/stale/kiln.yaml"
  cp "$APP_LOCK" "$T/stale/kiln.lock"
  cmp -s "$APP" "$T/stale/kiln.yaml" && fail "the edit '$edit' changed nothing"
  expect_error 1 "$T/stale/kiln.lock no longer matches the template's packages" "$KILN" --store "$S" build "$T/stale/kiln.yaml"
  assert_contains "$ERR" "run kiln lock $T/stale/kiln.yaml" "the hint"
  expect_error 1 "no longer matches the template's packages" "$KILN" --store "$S" build "$T/stale/kiln.yaml" --locked
  assert_file_eq "$APP_LOCK" "$T/stale/kiln.lock" "the stale lock is left as it was"
done
assert_eq "$before" "$(store_fingerprint "$S")" "store after the stale-lock builds"
mkdir -p "$T/relayer"
sed 's/layering: per-package/layering: single/; s/^name: app$/name: app-single/' "$APP" >"$T/relayer/kiln.yaml"
cp "$APP_LOCK" "$T/relayer/kiln.lock"
build_digest --store "$S" build "$T/relayer/kiln.yaml" --locked >/dev/null

step "--locked without a lock: exit 1, nothing written"
mkdir -p "$T/nolock"
cp "$APP" "$T/nolock/kiln.yaml"
before=$(store_fingerprint "$S")
expect_error 1 "$T/nolock/kiln.lock: no lock file, and --locked builds only from one (run kiln lock $T/nolock/kiln.yaml)" \
  "$KILN" --store "$S" build "$T/nolock/kiln.yaml" --locked
[[ ! -e $T/nolock/kiln.lock ]] || fail "--locked wrote a lock"
assert_eq "$before" "$(store_fingerprint "$S")" "store after --locked without a lock"

step "without --locked and no lock: the lock is written (as kiln lock writes it) and the build works"
"$KILN" --store "$T/fresh-store" build "$T/nolock/kiln.yaml" --json >"$T/nolock.json" 2>"$T/nolock.err" ||
  fail "build without a lock failed: $(cat "$T/nolock.err")"
assert_contains "$(cat "$T/nolock.err")" "kiln: warning: wrote $T/nolock/kiln.lock (7 packages)" "the build says it wrote the lock"
assert_file_eq "$T/app.lock.1" "$T/nolock/kiln.lock" "the lock the build wrote"
assert_eq "$(jq -r .digest "$T/nolock.json")" "$(build_digest --store "$T/fresh-store" build "$T/nolock/kiln.yaml" --locked)" \
  "then --locked builds the same image"

step "the image: status.d for exactly the locked packages, md5sums where shipped"
build_json "$T/app.json" --store "$S" build "$APP" --locked
assert_contains "$(cat "$T/app.json.stderr")" \
  "kiln: warning: 1 package has maintainer scripts, which kiln does not run: withscript" \
  "the build says which package has maintainer scripts"
assert_eq "altpkg
app
app.md5sums
data-common
editor-impl
libbase
libbase.md5sums
libfoo
libfoo.md5sums
withscript" "$(status_d "$S" app:1.0.0)" "/var/lib/dpkg/status.d"
assert_eq "$(jq -r '.packages[].name' "$APP_LOCK" | LC_ALL=C sort)" \
  "$(status_d "$S" app:1.0.0 | grep -v '\.md5sums$')" "status.d names exactly the locked packages"
assert_eq "$(jq -r '.packages[] | "package \(.name)"' "$APP_LOCK" | LC_ALL=C sort)" \
  "$(jq -r '.layers[].name' "$T/app.json" | LC_ALL=C sort)" "one layer per locked package"

"$KILN" --store "$S" export app:1.0.0 "rootfs:$T/app-root.tar" >/dev/null
for p in app libbase libfoo data-common withscript; do
  deb=$POOL/$(jq -r --arg p "$p" '.packages[] | select(.name == $p) | .filename' "$APP_LOCK")
  assert_eq "$(dpkg-deb --info "$deb" control)" "$(tar -xOf "$T/app-root.tar" "var/lib/dpkg/status.d/$p")" \
    "status.d/$p is the package's control file"
  version=$(jq -r --arg p "$p" '.packages[] | select(.name == $p) | .version' "$APP_LOCK")
  assert_contains "$(tar -xOf "$T/app-root.tar" "var/lib/dpkg/status.d/$p")" "Version: $version" "status.d/$p's version"
done
for p in app libbase libfoo; do
  deb=$POOL/$(jq -r --arg p "$p" '.packages[] | select(.name == $p) | .filename' "$APP_LOCK")
  assert_eq "$(dpkg-deb --info "$deb" md5sums)" "$(tar -xOf "$T/app-root.tar" "var/lib/dpkg/status.d/$p.md5sums")" \
    "status.d/$p.md5sums is the package's md5sums"
done

step "the image: the package files with their modes, owners and links; scripts not run nor shipped"
image_files "$S" app:1.0.0 >"$T/files.jsonl"
file_is() {  # PATH TYPE MODE [LINK]
  local got
  got=$(jq -r --arg p "$1" 'select(.path == $p) | "\(.type) \(.mode) \(.uid):\(.gid) \(.link // "")"' "$T/files.jsonl")
  assert_eq "$2 $3 0:0 ${4:-}" "$got" "$1 in the image (type mode owner link)"
}
file_is /usr/bin/app file 0755
file_is /usr/bin/app-hardlink hardlink 0755 usr/bin/app
file_is /usr/bin/app-link symlink 0777 app
file_is /etc/app/app.conf file 0640
file_is /usr/lib/app/helper file 4755
file_is /var/lib/app directory 0700
file_is /usr/lib/x86_64-linux-gnu/libbase.so.1 symlink 0777 libbase.so.1.0
file_is /usr/lib/x86_64-linux-gnu/libfoo.so.1 file 0644
file_is /usr/share/data-common/data.txt file 0644
file_is /usr/bin/editor-impl file 0755
assert_eq "libfoo 1.3-1" "$(tar -xOf "$T/app-root.tar" usr/lib/x86_64-linux-gnu/libfoo.so.1)" "libfoo's file is 1.3-1's"
assert_eq "$(printf '#!/bin/sh\necho app 2.0')" "$(tar -xOf "$T/app-root.tar" usr/bin/app)" "/usr/bin/app's content"
paths=$(jq -r .path "$T/files.jsonl")
assert_not_contains "$paths" "withscript.stamp" "the postinst was not run"
assert_not_contains "$paths" "postinst" "maintainer scripts are not in the image"
assert_not_contains "$paths" "DEBIAN" "control members are not in the image"

# An independent reader: umoci unpacks the same tree.
umoci unpack --rootless --image "$S:app:1.0.0" "$T/bundle" >/dev/null 2>"$T/umoci.err" ||
  fail "umoci unpack failed: $(cat "$T/umoci.err")"
R=$T/bundle/rootfs
assert_eq "$(status_d "$S" app:1.0.0)" "$(find "$R/var/lib/dpkg/status.d" -mindepth 1 -printf '%f\n' | LC_ALL=C sort)" "status.d as umoci unpacks it"
assert_eq 4755 "$(stat -c %a "$R/usr/lib/app/helper")" "helper's mode after umoci unpack"
assert_eq 640 "$(stat -c %a "$R/etc/app/app.conf")" "app.conf's mode after umoci unpack"
assert_eq 700 "$(stat -c %a "$R/var/lib/app")" "/var/lib/app's mode after umoci unpack"
assert_eq "$(stat -c %i "$R/usr/bin/app")" "$(stat -c %i "$R/usr/bin/app-hardlink")" "app-hardlink is a hard link after umoci unpack"
assert_eq app "$(readlink "$R/usr/bin/app-link")" "app-link after umoci unpack"
(cd "$R" && md5sum -c --quiet var/lib/dpkg/status.d/app.md5sums) || fail "app's md5sums do not match its files in the image"
(cd "$R" && md5sum -c --quiet var/lib/dpkg/status.d/libfoo.md5sums) || fail "libfoo's md5sums do not match its files in the image"
