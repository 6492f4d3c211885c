#!/usr/bin/env bash
# kiln's output read by independent tools: skopeo (containers/image), umoci
# (opencontainers/umoci), GNU tar, and the kernel (chroot and run the binary).
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool skopeo umoci jq tar perl base64

S=$T/store
step "build examples/hello into the store"
build_json "$T/hello.json" --store "$S" build "$HELLO"
D=$(jq -r .digest "$T/hello.json")
CONFIG=$(jq -r .config "$T/hello.json")
LAYERS=$(jq -c '[.layers[].digest]' "$T/hello.json")
DIFF_IDS=$(jq -c '[.layers[].diffId]' "$T/hello.json")
assert_eq '["filesystem","app","accounts"]' "$(jq -c '[.layers[].name]' "$T/hello.json")" "hello's layers"

step "skopeo inspect reads the store as an OCI layout"
skopeo inspect "oci:$S:hello:1.0.0" >"$T/inspect.json"
assert_eq "$D" "$(jq -r .Digest "$T/inspect.json")" "skopeo's digest of hello:1.0.0"
assert_eq "$LAYERS" "$(jq -c .Layers "$T/inspect.json")" "skopeo's layer digests"
assert_eq "amd64/linux" "$(jq -r '.Architecture + "/" + .Os' "$T/inspect.json")"
assert_eq "1970-01-01T00:00:00Z" "$(jq -r .Created "$T/inspect.json")"
skopeo inspect --raw "oci:$S:hello:1.0.0" >"$T/manifest.json"
assert_eq "$D" "$(sha256_of "$T/manifest.json")" "sha256 of the raw manifest skopeo read"
assert_eq "$CONFIG" "$(jq -r .config.digest "$T/manifest.json")"
skopeo inspect --config "oci:$S:hello:1.0.0" >"$T/config.json"
assert_eq "$DIFF_IDS" "$(jq -c .rootfs.diff_ids "$T/config.json")" "config diff_ids"
assert_eq '["/usr/bin/hello"]' "$(jq -c .config.Entrypoint "$T/config.json")"
assert_eq "65532:65532" "$(jq -r .config.User "$T/config.json")"
# Each layer blob decompresses (with gzip, not kiln) to its diff_id.
for i in 0 1 2; do
  blob=$(blob_path "$S" "$(jq -r ".layers[$i].digest" "$T/manifest.json")")
  assert_eq "$(jq -r ".rootfs.diff_ids[$i]" "$T/config.json")" "sha256:$(gzip -dc "$blob" | sha256sum | cut -d' ' -f1)" \
    "gunzip of layer $i hashes to its diff_id"
done

step "skopeo copy store -> OCI dir keeps the digest and the blobs"
skopeo copy -q "oci:$S:hello:1.0.0" "oci:$T/copy:x" >/dev/null
assert_eq "$D" "$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "x") | .digest' "$T/copy/index.json")"
for digest in "$D" "$CONFIG" $(jq -r '.[]' <<<"$LAYERS"); do
  cmp -s "$(blob_path "$S" "$digest")" "$(blob_path "$T/copy" "$digest")" || fail "blob $digest differs after skopeo copy"
done

step "build --output oci:DIR and oci:DIR:REF"
assert_eq "$D" "$(build_digest --store "$T/store2" build "$HELLO" --output "oci:$T/out" --output "oci:$T/out2:myref")"
jq -e '.imageLayoutVersion == "1.0.0"' "$T/out/oci-layout" >/dev/null || fail "oci-layout file of --output oci:"
assert_eq "$D" "$(skopeo inspect "oci:$T/out:1.0.0" | jq -r .Digest)" "the oci: output is tagged with the version"
assert_eq "$D" "$(skopeo inspect "oci:$T/out2:myref" | jq -r .Digest)" "the oci:DIR:REF output"
skopeo copy -q "oci:$T/out2:myref" "oci:$T/out-copy:y" >/dev/null
assert_eq "$D" "$(skopeo inspect "oci:$T/out-copy:y" | jq -r .Digest)" "skopeo copy of the oci: output"

step "umoci unpack --rootless: files, modes, symlink, owners"
umoci unpack --rootless --image "$S:hello:1.0.0" "$T/bundle" >/dev/null 2>"$T/umoci.err" ||
  fail "umoci unpack failed: $(cat "$T/umoci.err")"
R=$T/bundle/rootfs
mode() { stat -c %a "$R/$1"; }
assert_eq 755 "$(mode usr/bin/hello)" "/usr/bin/hello mode"
assert_eq 644 "$(mode etc/hello.txt)" "/etc/hello.txt mode"
assert_eq 750 "$(mode var/lib/hello)" "/var/lib/hello mode"
assert_eq 755 "$(mode home/nonroot)" "/home/nonroot mode"
assert_eq 1777 "$(mode tmp)" "/tmp mode"
assert_eq 700 "$(mode root)" "/root mode"
assert_eq 600 "$(mode etc/shadow)" "/etc/shadow mode"
[[ -L $R/usr/bin/hi ]] || fail "/usr/bin/hi is not a symlink"
assert_eq hello "$(readlink "$R/usr/bin/hi")" "/usr/bin/hi target"
assert_eq "hello from kiln" "$(cat "$R/etc/hello.txt")"
cmp -s "$HELLO_DIR/bin/hello" "$R/usr/bin/hello" || fail "/usr/bin/hello differs from examples/hello/bin/hello"
assert_contains "$(cat "$R/etc/passwd")" "nonroot:x:65532:65532:"

# umoci --rootless cannot chown, so it records each owner that is not root in
# the mtree manifest as xattr.user.rootlesscontainers=<base64 protobuf>
# (field 1 uid, field 2 gid, varints; absent means 0).
mtree=$(ls "$T"/bundle/sha256_*.mtree)
# Prints "path<TAB>xattr" for every entry of an mtree file.
mtree_owners() {
  perl -ne '
    chomp; s/^\s+//;
    next if $_ eq "" || /^#/ || /^\/set\s/;
    if ($_ eq "..") { pop @dir; next }
    my ($name, @kw) = split /\s+/;
    my %kw = map { /^([^=]+)=(.*)$/ ? ($1, $2) : ($_, "") } @kw;
    print join("/", @dir, $name), "\t", ($kw{"xattr.user.rootlesscontainers"} // ""), "\n" unless $name eq ".";
    push @dir, $name if ($kw{type} // "") eq "dir" && $name ne ".";
  ' "$1"
}
decode_rootless() {  # BASE64 -> "uid:gid"
  [[ -z $1 ]] && { echo "0:0"; return; }
  printf '%s' "$1" | base64 -d | perl -e '
    local $/; my @b = unpack("C*", <STDIN>); my ($i, %f) = (0, (1 => 0, 2 => 0));
    my $varint = sub {
      my ($v, $s) = (0, 0);
      while (1) { my $c = $b[$i++]; die "truncated varint\n" unless defined $c;
                  $v |= ($c & 0x7f) << $s; $s += 7; last unless $c & 0x80; }
      return $v;
    };
    while ($i < @b) { my $key = $varint->(); die "unexpected wire type\n" if ($key & 7) != 0;
                      $f{$key >> 3} = $varint->(); }
    print "$f{1}:$f{2}\n";'
}
assert_eq "65532:65532" "$(decode_rootless CPz/AxD8/wM=)" "the decoder itself"
mtree_owners "$mtree" >"$T/owners.tsv"
owner_of() {
  local line
  line=$(grep -P "^\Q$1\E\t" "$T/owners.tsv") || fail "$1 is not in umoci's mtree"
  decode_rootless "${line#*$'\t'}"
}
assert_eq "65532:65532" "$(owner_of var/lib/hello)" "owner of /var/lib/hello"
assert_eq "65532:65532" "$(owner_of home/nonroot)" "owner of /home/nonroot"
assert_eq "0:0" "$(owner_of usr/bin/hello)" "owner of /usr/bin/hello"
assert_eq "0:0" "$(owner_of etc/shadow)" "owner of /etc/shadow"

if [[ $EUID -eq 0 && $(uname -m) == x86_64 ]]; then
  step "chroot into the unpacked rootfs and run hello"
  assert_eq "hello from kiln" "$(chroot "$R" /usr/bin/hello)" "output of /usr/bin/hello in the image"
  assert_eq "hello from kiln" "$(chroot "$R" /usr/bin/hi)" "output of /usr/bin/hi in the image"
else
  step "SKIP chroot run (needs root on x86_64)"
fi

step "export docker-archive: skopeo reads it, layers are the diff_ids"
assert_eq "docker-archive:$T/d.tar:hello:1.0.0" "$("$KILN" --store "$S" export hello:1.0.0 "docker-archive:$T/d.tar")"
skopeo inspect "docker-archive:$T/d.tar" >"$T/d.json"
assert_eq "$DIFF_IDS" "$(jq -c .Layers "$T/d.json")" "docker-archive layer digests are the diff_ids"
assert_eq "$DIFF_IDS" "$(skopeo inspect --config "docker-archive:$T/d.tar" | jq -c .rootfs.diff_ids)"
tar -xOf "$T/d.tar" manifest.json >"$T/d-manifest.json"
assert_eq '["hello:1.0.0"]' "$(jq -c '.[0].RepoTags' "$T/d-manifest.json")" "docker load tag"
mkdir "$T/d"
tar -xf "$T/d.tar" -C "$T/d"
for layer in $(jq -r '.[0].Layers[]' "$T/d-manifest.json"); do
  assert_contains "$DIFF_IDS" "$(sha256_of "$T/d/$layer")" "layer file $layer is an uncompressed diff"
done
assert_eq "$CONFIG" "$(sha256_of "$T/d/$(jq -r '.[0].Config' "$T/d-manifest.json")")" "docker-archive config bytes"
skopeo copy -q "docker-archive:$T/d.tar" "oci:$T/from-archive:x" >/dev/null
assert_eq "$DIFF_IDS" "$(skopeo inspect --config "oci:$T/from-archive:x" | jq -c .rootfs.diff_ids)" \
  "skopeo copy docker-archive -> oci"
# skopeo rewrites the config when it converts to OCI; the content stays.
assert_eq "$(jq -S . "$T/config.json")" "$(skopeo inspect --config "oci:$T/from-archive:x" | jq -S .)"
"$KILN" --store "$S" export hello:1.0.0 "docker-archive:$T/named.tar:example.com/team/hello:v1" >/dev/null
assert_eq '["example.com/team/hello:v1"]' "$(tar -xOf "$T/named.tar" manifest.json | jq -c '.[0].RepoTags')"
skopeo inspect "docker-archive:$T/named.tar" >/dev/null
"$KILN" --store "$S" build "$HELLO" -q --output "docker-archive:$T/built.tar:example.com/built:v2" >/dev/null 2>&1
assert_eq '["example.com/built:v2"]' "$(tar -xOf "$T/built.tar" manifest.json | jq -c '.[0].RepoTags')" "build --output docker-archive:"
assert_eq "$DIFF_IDS" "$(skopeo inspect "docker-archive:$T/built.tar" | jq -c .Layers)" "skopeo inspect of build --output docker-archive:"

step "export rootfs: tar lists every entry with numeric owners and mtime 0"
"$KILN" --store "$S" export hello:1.0.0 "rootfs:$T/rootfs.tar" >/dev/null
size=$(stat -c %s "$HELLO_DIR/bin/hello")
TZ=UTC tar --numeric-owner --full-time -tvf "$T/rootfs.tar" | awk '{$3 = ($3 == 0 ? "" : $3 " "); print}' |
  sed 's/  */ /g' >"$T/rootfs.list"
cat >"$T/rootfs.expected" <<EOF
drwxr-xr-x 0/0 1970-01-01 00:00:00 etc/
-rw-r--r-- 0/0 44 1970-01-01 00:00:00 etc/group
-rw-r--r-- 0/0 16 1970-01-01 00:00:00 etc/hello.txt
-rw-r--r-- 0/0 58 1970-01-01 00:00:00 etc/nsswitch.conf
-rw-r--r-- 0/0 49 1970-01-01 00:00:00 etc/os-release
-rw-r--r-- 0/0 132 1970-01-01 00:00:00 etc/passwd
-rw------- 0/0 68 1970-01-01 00:00:00 etc/shadow
drwxr-xr-x 0/0 1970-01-01 00:00:00 home/
drwxr-xr-x 65532/65532 1970-01-01 00:00:00 home/nonroot/
drwx------ 0/0 1970-01-01 00:00:00 root/
drwxrwxrwt 0/0 1970-01-01 00:00:00 tmp/
drwxr-xr-x 0/0 1970-01-01 00:00:00 usr/
drwxr-xr-x 0/0 1970-01-01 00:00:00 usr/bin/
-rwxr-xr-x 0/0 $size 1970-01-01 00:00:00 usr/bin/hello
lrwxrwxrwx 0/0 1970-01-01 00:00:00 usr/bin/hi -> hello
drwxr-xr-x 0/0 1970-01-01 00:00:00 usr/lib/
drwxr-xr-x 0/0 1970-01-01 00:00:00 var/
drwxr-xr-x 0/0 1970-01-01 00:00:00 var/lib/
drwxr-x--- 65532/65532 1970-01-01 00:00:00 var/lib/hello/
drwxrwxrwt 0/0 1970-01-01 00:00:00 var/tmp/
EOF
assert_file_eq "$T/rootfs.expected" "$T/rootfs.list" "rootfs export listing"
# No host user or group names in any layer: only numbers.
# (Through a file: `grep -q` ending a pipe early would leave tar or awk to die
# of SIGPIPE, and under pipefail the failure would go unseen.)
tar -tvf "$T/rootfs.tar" | awk '{print $2}' >"$T/rootfs.owners"
if grep -qv -E '^[0-9]+/[0-9]+$' "$T/rootfs.owners"; then
  fail "a rootfs entry has a user or group name: $(grep -v -E '^[0-9]+/[0-9]+$' "$T/rootfs.owners" | sort -u | tr '\n' ' ')"
fi
# The archive extracts with the image's owners (GNU tar as root keeps them).
if [[ $EUID -eq 0 ]]; then
  mkdir "$T/x"
  tar --numeric-owner -xpf "$T/rootfs.tar" -C "$T/x"
  assert_eq "65532:65532 750" "$(stat -c '%u:%g %a' "$T/x/var/lib/hello")" "extracted /var/lib/hello"
fi
# A build date stamps every mtime.
"$KILN" --store "$T/store-date" build "$HELLO" --source-date-epoch 1700000000 --output "rootfs:$T/dated.tar" -q >/dev/null
dates=$(TZ=UTC tar --full-time -tvf "$T/dated.tar" | awk '{print $4 " " $5}' | sort -u)
assert_eq "2023-11-14 22:13:20" "$dates" "every mtime is --source-date-epoch"

step "zstd: skopeo and umoci read a --compression zstd build"
ZS=$T/zstore
build_json "$T/zstd.json" --store "$ZS" build "$HELLO" --compression zstd
ZD=$(jq -r .digest "$T/zstd.json")
assert_ne "$D" "$ZD" "zstd and gzip builds"
assert_eq "$DIFF_IDS" "$(jq -c '[.layers[].diffId]' "$T/zstd.json")" "zstd layers have the gzip layers' diff_ids"
assert_eq "$ZD" "$(skopeo inspect "oci:$ZS:hello:1.0.0" | jq -r .Digest)" "skopeo's digest of the zstd image"
skopeo inspect --raw "oci:$ZS:hello:1.0.0" >"$T/zmanifest.json"
assert_eq '["application/vnd.oci.image.layer.v1.tar+zstd"]' "$(jq -c '[.layers[].mediaType] | unique' "$T/zmanifest.json")"
if command -v zstd >/dev/null; then
  for i in 0 1 2; do
    blob=$(blob_path "$ZS" "$(jq -r ".layers[$i].digest" "$T/zmanifest.json")")
    assert_eq "$(jq -r ".layers[$i].diffId" "$T/zstd.json")" "sha256:$(zstd -qdc "$blob" | sha256sum | cut -d' ' -f1)" \
      "zstd -d of layer $i hashes to its diff_id"
  done
fi
# skopeo decodes the zstd layers (Go's zstd decoder) and re-encodes them as gzip.
skopeo copy -q --dest-compress --dest-compress-format gzip "oci:$ZS:hello:1.0.0" "oci:$T/zconv:x" >/dev/null
skopeo inspect --raw "oci:$T/zconv:x" >"$T/zconv.json"
assert_eq '["application/vnd.oci.image.layer.v1.tar+gzip"]' "$(jq -c '[.layers[].mediaType] | unique' "$T/zconv.json")"
for i in 0 1 2; do
  blob=$(blob_path "$T/zconv" "$(jq -r ".layers[$i].digest" "$T/zconv.json")")
  assert_eq "$(jq -r ".layers[$i].diffId" "$T/zstd.json")" "sha256:$(gzip -dc "$blob" | sha256sum | cut -d' ' -f1)" \
    "layer $i decoded by skopeo hashes to its diff_id"
done
# umoci reads zstd layers from 0.5; older umoci refuses the media type, so
# unpack what skopeo converted.
if umoci unpack --rootless --image "$ZS:hello:1.0.0" "$T/zbundle" >/dev/null 2>"$T/zumoci.err"; then
  zroot=$T/zbundle/rootfs
elif grep -q "not correct mediatype" "$T/zumoci.err"; then
  step "note: $(umoci --version) cannot unpack zstd layers; unpacking skopeo's gzip conversion"
  umoci unpack --rootless --image "$T/zconv:x" "$T/zbundle" >/dev/null 2>"$T/zumoci.err" ||
    fail "umoci unpack of the converted zstd image: $(cat "$T/zumoci.err")"
  zroot=$T/zbundle/rootfs
else
  fail "umoci unpack of the zstd image: $(cat "$T/zumoci.err")"
fi
assert_eq "hello from kiln" "$(cat "$zroot/etc/hello.txt")"
assert_eq 755 "$(stat -c %a "$zroot/usr/bin/hello")"
assert_eq 750 "$(stat -c %a "$zroot/var/lib/hello")"
assert_eq hello "$(readlink "$zroot/usr/bin/hi")"

step "edge cases: long names and link targets, UTF-8, big ids, setuid, the latest ustar mtime"
E=$T/edge
long=$(printf 'd%.0s' {1..60})/$(printf 'e%.0s' {1..60})/$(printf 'f%.0s' {1..60})
longname=file-with-a-long-name-$(printf 'x%.0s' {1..80})
longtarget=$(printf 'z%.0s' {1..150})
mkdir -p "$E/tree/$long" "$E/tree/späce dir"
echo long >"$E/tree/$long/$longname"
echo utf8 >"$E/tree/späce dir/ünï cödé.txt"
ln -s "$longtarget" "$E/tree/longlink"
cat >"$E/kiln.yaml" <<'YAML'
apiVersion: kiln.dev/v1
name: edge
version: 1.0.0
layers:
  - name: edge
    files:
      - {src: tree, dest: /opt}
      - {dest: /usr/bin/suid, content: "x", mode: "4755"}
    dirs:
      - {path: /big, owner: "3000000:3000001"}
YAML
# 8589934591 is the largest mtime a ustar header holds (11 octal digits).
"$KILN" --store "$T/edge-store" build "$E/kiln.yaml" --source-date-epoch 8589934591 --output "rootfs:$T/edge.tar" -q \
  >/dev/null 2>"$T/edge.err" || fail "edge build: $(cat "$T/edge.err")"
# C.UTF-8: GNU tar prints other names with octal escapes in the C locale.
LC_ALL=C.UTF-8 TZ=UTC tar --numeric-owner --full-time -tvf "$T/edge.tar" >"$T/edge.list"
edge_line() { grep -F -- " $1" "$T/edge.list" | sed 's/  */ /g' || fail "no $1 in the rootfs tar:"$'\n'"$(cat "$T/edge.list")"; }
assert_eq "-rw-r--r-- 0/0 5 2242-03-16 12:56:31 opt/$long/$longname" "$(edge_line "opt/$long/$longname")"
assert_eq "lrwxrwxrwx 0/0 0 2242-03-16 12:56:31 opt/longlink -> $longtarget" "$(edge_line "opt/longlink")"
assert_eq "-rw-r--r-- 0/0 5 2242-03-16 12:56:31 opt/späce dir/ünï cödé.txt" "$(edge_line "opt/späce dir/ünï")"
assert_eq "drwxr-xr-x 3000000/3000001 0 2242-03-16 12:56:31 big/" "$(edge_line "big/")"
assert_eq "-rwsr-xr-x 0/0 1 2242-03-16 12:56:31 usr/bin/suid" "$(edge_line "usr/bin/suid")"
umoci unpack --rootless --image "$T/edge-store:edge:1.0.0" "$T/edge-bundle" >/dev/null 2>"$T/edge-umoci.err" ||
  fail "umoci unpack of the edge image: $(cat "$T/edge-umoci.err")"
ER=$T/edge-bundle/rootfs
assert_eq long "$(cat "$ER/opt/$long/$longname")"
assert_eq utf8 "$(cat "$ER/opt/späce dir/ünï cödé.txt")"
assert_eq "$longtarget" "$(readlink "$ER/opt/longlink")"
assert_eq 4755 "$(stat -c %a "$ER/usr/bin/suid")"
mtree_owners "$(ls "$T"/edge-bundle/sha256_*.mtree)" >"$T/owners.tsv"
assert_eq "3000000:3000001" "$(owner_of big)" "owner of /big (over 2^21: not in ustar's octal fields)"
