#!/usr/bin/env bash
# Every bad input is refused with exit 1 and a message naming the problem —
# at file:line:col with the source line and a caret when it is in a template —
# and leaves the store exactly as it was. The store holds hello:1.0.0 first;
# every bad template has a good layer before the bad one, so a build that
# wrote blobs before noticing would show up in the fingerprint.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_tool perl tar sha256sum jq

S=$T/store
step "store with hello:1.0.0"
HELLO_DIGEST=$(build_digest --store "$S" build "$HELLO")
FINGERPRINT=$(store_fingerprint "$S")
unchanged() {
  assert_eq "$FINGERPRINT" "$(store_fingerprint "$S")" "the store changed after: $1"
}

W=$T/ctx  # the build context of the bad templates
mkdir -p "$W"
echo "a context file" >"$W/data.txt"
echo "outside the context" >"$T/outside.txt"

# bad NAME: writes $W/NAME.yaml, a template whose first layer is good, with
# stdin appended (more layers, or other top-level keys); prints its path.
bad() {
  local f=$W/$1.yaml
  {
    cat <<'EOF'
apiVersion: kiln.dev/v1
name: bad
version: 1.0.0
layers:
  - name: good
    files:
      - {dest: /etc/good.txt, content: "a good layer before the bad one\n"}
EOF
    cat
  } >"$f"
  echo "$f"
}

# template_case WHAT FILE AT MESSAGE [KILN BUILD ARGS...]: building FILE fails
# with exit 1 and MESSAGE at the line and column where AT starts; store unchanged.
template_case() {
  local what=$1 f=$2 at=$3 msg=$4
  shift 4
  step "$what"
  local where
  where=$(loc "$f" "$at")
  expect_template_error "$f" "${where% *}" "${where#* }" "$msg" "$KILN" --store "$S" build "$f" "$@"
  unchanged "$what"
}

# plain_case WHAT MESSAGE KILN BUILD ARGS...: exit 1 with MESSAGE; store unchanged.
plain_case() {
  local what=$1 msg=$2
  shift 2
  step "$what"
  expect_error 1 "$msg" "$KILN" --store "$S" "$@"
  unchanged "$what"
}

# --- the template's text
f=$(bad unknown_key <<'EOF'
  - name: app
    filez: []
EOF
)
template_case "unknown key in a layer" "$f" "filez" 'unknown key "filez" in layers[1] (did you mean "files"?)'

f=$(bad unknown_top_key <<'EOF'
entrypoint: [/bin/sh]
EOF
)
template_case "unknown top-level key" "$f" "entrypoint" 'unknown key "entrypoint" in the template'

f=$(bad wrong_type_files <<'EOF'
  - name: app
    files: {dest: /x, content: hi}
EOF
)
template_case "wrong type: files is a map" "$f" "{dest: /x" 'files must be a list, not a map'

f=$(bad wrong_type_entrypoint <<'EOF'
config:
  entrypoint: /bin/sh
EOF
)
template_case "wrong type: entrypoint is a string" "$f" "/bin/sh" 'config.entrypoint must be a list of strings, not a string'

f=$(bad wrong_type_uid <<'EOF'
accounts:
  users:
    - {name: app, uid: abc}
EOF
)
template_case "wrong type: uid is not a number" "$f" "abc" 'accounts.users[0].uid must be a whole number from 0 to 2147483647, not "abc"'

f=$(bad bad_mode <<'EOF'
  - name: app
    files:
      - {dest: /etc/x, content: hi, mode: "0855"}
EOF
)
template_case "bad mode 0855" "$f" '"0855"' 'files[0].mode must be an octal mode such as "0644" or "0755", not "0855"'

f=$(bad unknown_user <<'EOF'
  - name: app
    dirs:
      - {path: /srv/app, owner: nosuchuser}
EOF
)
template_case "owner names an unknown user" "$f" "nosuchuser" 'owner "nosuchuser": no user named "nosuchuser"'

f=$(bad unknown_group <<'EOF'
  - name: app
    dirs:
      - {path: /srv/app, owner: "0:nosuchgroup"}
EOF
)
template_case "owner names an unknown group" "$f" '"0:nosuchgroup"' 'no group named "nosuchgroup"'

f=$(bad relative_dest <<'EOF'
  - name: app
    files:
      - {dest: etc/x, content: hi}
EOF
)
template_case "relative dest" "$f" "etc/x" 'files[0].dest "etc/x" must be an absolute path (start with /)'

f=$(bad dotdot_dest <<'EOF'
  - name: app
    files:
      - {dest: /etc/../x, content: hi}
EOF
)
template_case "dest with .." "$f" "/etc/../x" 'files[0].dest "/etc/../x" must not contain ".."'

f=$(bad twice <<'EOF'
  - name: app
    files:
      - {dest: /srv/twice.txt, content: one}
      - {dest: /srv/twice.txt, content: two}
EOF
)
one=$(loc "$f" "{dest: /srv/twice.txt, content: one}")
two=$(loc "$f" "{dest: /srv/twice.txt, content: two}")
template_case "two files claim one path" "$f" "{dest: /srv/twice.txt, content: two}" \
  "/srv/twice.txt is declared twice: by files[1] at $f:${two/ /:} and by files[0] at $f:${one/ /:}"

f=$(bad twice_kinds <<'EOF'
  - name: app
    files:
      - {dest: /srv/a, content: a}
    symlinks:
      - {path: /srv/a, target: b}
EOF
)
template_case "a file and a symlink claim one path" "$f" "{path: /srv/a" '/srv/a is declared twice'

f=$(bad missing_src <<'EOF'
  - name: app
    files:
      - {src: nothere.txt, dest: /x}
EOF
)
template_case "missing source file" "$f" "nothere.txt" '"nothere.txt": no such file in the build context'

f=$(bad escape_dotdot <<'EOF'
  - name: app
    files:
      - {src: ../outside.txt, dest: /x}
EOF
)
template_case "src escapes the context with ../" "$f" "../outside.txt" '"../outside.txt" leads outside the build context'

ln -s ../outside.txt "$W/rel-link"
f=$(bad escape_rel_link <<'EOF'
  - name: app
    files:
      - {src: rel-link, dest: /x}
EOF
)
template_case "src is a symlink leading out of the context" "$f" "rel-link" '"rel-link" leads outside the build context'

ln -s /etc/passwd "$W/abs-link"
f=$(bad escape_abs_link <<'EOF'
  - name: app
    files:
      - {src: abs-link, dest: /x}
EOF
)
template_case "src is an absolute symlink" "$f" "abs-link" 'is or goes through a symlink to /etc/passwd, outside the build context'

f=$(bad hardlink_nowhere <<'EOF'
  - name: app
    hardlinks:
      - {path: /x, target: /nothere}
EOF
)
template_case "hardlink to a path the layer does not add" "$f" "/nothere" 'hardlink target /nothere must be a regular file added by this layer'

f=$(bad remove_missing <<'EOF'
  - name: app
    remove: [/nothere]
EOF
)
template_case "remove: a path that does not exist below" "$f" "/nothere" '/nothere does not exist in the layers below'

cat >"$W/bad_semver.yaml" <<'EOF'
apiVersion: kiln.dev/v1
name: bad
version: 1.0
layers:
  - name: good
    files:
      - {dest: /etc/good.txt, content: "good\n"}
EOF
template_case "version is not semver" "$W/bad_semver.yaml" "1.0" 'version "1.0" is not a semantic version'

f=$(bad extends_nothing <<'EOF'
extends: no-such-template
EOF
)
template_case "extends an unknown stock template" "$f" "no-such-template" 'extends: no stock template named "no-such-template"'

f=$(bad yaml_syntax <<'EOF'
  - name: app
    files:
      - dest: /x
       content: hi
EOF
)
template_case "YAML syntax error" "$f" "content: hi" 'invalid YAML: end of sequence not found'

f=$(bad undeclared_arg <<'EOF'
args:
  GREETING: hi
EOF
)
plain_case "--set of an undeclared arg" '--set NOPE: the template declares no such arg (args: GREETING)' \
  build "$f" --set NOPE=1
plain_case "--set without =" '--set "GREETING": expected KEY=VALUE' build "$f" --set GREETING
plain_case "--source-date-epoch abc" \
  '--source-date-epoch must be a Unix timestamp in seconds (a whole number), not "abc"' \
  build "$HELLO" --source-date-epoch abc
plain_case "--source-date-epoch 1.5" '--source-date-epoch must be a Unix timestamp' build "$HELLO" --source-date-epoch 1.5
step "--source-date-epoch 8589934592, past what a ustar mtime field holds"
# Either kiln writes it (a PAX mtime record) or refuses it with exit 1 before
# writing a blob; today it refuses while writing the first layer.
rc=0
"$KILN" --store "$T/epoch-store" build "$HELLO" --source-date-epoch 8589934592 --output "rootfs:$T/epoch.tar" \
  >"$T/epoch.out" 2>"$T/epoch.err" || rc=$?
if [[ $rc -eq 0 ]]; then
  assert_eq "2242-03-16 12:56:32" "$(TZ=UTC tar --full-time -tvf "$T/epoch.tar" | awk '{print $4 " " $5}' | sort -u)"
else
  assert_eq 1 "$rc" "exit code for an out-of-range build date"
  assert_contains "$(cat "$T/epoch.err")" "8589934592"
  assert_eq 0 "$(find "$T/epoch-store/blobs" -type f 2>/dev/null | wc -l)" "blobs written for a refused build date"
fi
step "SOURCE_DATE_EPOCH=abc"
expect_error 1 'SOURCE_DATE_EPOCH must be a Unix timestamp in seconds (a whole number), not "abc"' \
  env SOURCE_DATE_EPOCH=abc "$KILN" --store "$S" build "$HELLO"
unchanged "SOURCE_DATE_EPOCH=abc"
plain_case "a template file that does not exist" "$T/nothere.yaml: no such template file" build "$T/nothere.yaml"
plain_case "--compression lz4" '--compression must be gzip or zstd, not "lz4"' build "$HELLO" --compression lz4

# --- tarballs: pinned by sha256, and nothing in them may escape the layer
# mktar OUT SPEC...: a ustar archive written byte by byte. SPEC is
#   f:NAME:CONTENT  d:NAME  l:NAME:TARGET (symlink)  h:NAME:TARGET (hardlink)
#   c:NAME:MAJOR,MINOR (character device)
mktar() {
  perl -e '
    use strict; use warnings;
    my $out = shift;
    open(my $fh, ">", $out) or die "$out: $!";
    binmode $fh;
    for my $spec (@ARGV) {
      my ($t, $name, $arg) = split /:/, $spec, 3;
      $arg //= "";
      my ($type, $size, $link, $maj, $min, $data, $mode) = ("0", 0, "", 0, 0, "", 0644);
      if    ($t eq "f") { $data = $arg; $size = length $arg }
      elsif ($t eq "d") { $type = "5"; $mode = 0755 }
      elsif ($t eq "l") { $type = "2"; $link = $arg; $mode = 0777 }
      elsif ($t eq "h") { $type = "1"; $link = $arg }
      elsif ($t eq "c") { $type = "3"; ($maj, $min) = split /,/, $arg; $mode = 0666 }
      else { die "mktar: unknown type $t\n" }
      my $h = pack("a100 a8 a8 a8 a12 a12 a8 a1 a100 a6 a2 a32 a32 a8 a8 a155 a12",
        $name, sprintf("%07o", $mode), sprintf("%07o", 0), sprintf("%07o", 0),
        sprintf("%011o", $size), sprintf("%011o", 0), " " x 8, $type, $link,
        "ustar", "00", "root", "root", sprintf("%07o", $maj), sprintf("%07o", $min), "", "");
      substr($h, 148, 8) = sprintf("%06o", unpack("%32C*", $h)) . "\0 ";
      print $fh $h;
      print $fh $data, "\0" x ((512 - $size % 512) % 512) if $size;
    }
    print $fh "\0" x 1024;
    close $fh or die "$out: $!";
  ' "$@"
}

# tarball_template NAME TAR [EXTRA]: a template whose second layer unpacks
# $W/TAR, pinned by its real sha256; EXTRA is more of the tarball's flow map.
tarball_template() {
  local sha
  sha=$(sha256sum "$W/$2" | cut -d' ' -f1)
  bad "$1" <<EOF
  - name: app
    tarballs:
      - {src: $2, sha256: "$sha"${3:-}}
EOF
}
# tarball_case WHAT TAR MESSAGE: the error points at the tarball entry.
tarball_case() {
  local f
  f=$(tarball_template "${2%.tar}" "$2")
  template_case "tarball: $1" "$f" "{src: $2" "$3"
}

mktar "$W/good.tar" d:srv/ f:srv/a:hello l:srv/s:a h:srv/h:srv/a l:srv/etc-link:/etc
f=$(tarball_template sha_mismatch good.tar)
good_sha=$(sha256sum "$W/good.tar" | cut -d' ' -f1)
wrong_sha=$(printf '%s' "$good_sha" | tr '0-9a-f' '1-9a-f0')
sed -i "s/$good_sha/$wrong_sha/" "$f"
template_case "tarball whose sha256 differs from the pin" "$f" "\"$wrong_sha\"" \
  "good.tar has sha256 $good_sha, but the template pins $wrong_sha"

mkdir -p "$T/src/sub"
echo evil >"$T/src/sub/x"
tar -cf "$W/dotdot.tar" -P -C "$T/src" --transform 's,^sub/x$,../evil,' sub/x
[[ $(tar -tf "$W/dotdot.tar" 2>/dev/null) == "../evil" ]] || fail "could not make a tarball with ../evil"
tarball_case 'a "../evil" entry' dotdot.tar 'entry "../evil": entry name contains ".."'

tar -cf "$W/absolute.tar" -P -C "$T/src" --transform 's,^sub/x$,/etc/passwd,' sub/x
[[ $(tar -tf "$W/absolute.tar" 2>/dev/null) == "/etc/passwd" ]] || fail "could not make a tarball with /etc/passwd"
tarball_case 'an absolute "/etc/passwd" entry' absolute.tar 'entry "/etc/passwd": absolute entry name'

mktar "$W/hardlink_missing.tar" f:a:x h:b:nothere
tarball_case "a hardlink to a name not in the archive" hardlink_missing.tar \
  'entry "b": hardlink target "nothere" is not a file earlier in the archive'
mktar "$W/hardlink_dotdot.tar" f:a:x h:b:../../etc/passwd
tarball_case "a hardlink to ../../etc/passwd" hardlink_dotdot.tar 'hardlink target "../../etc/passwd" leaves the archive'
mktar "$W/hardlink_abs.tar" f:a:x h:b:/etc/passwd
tarball_case "a hardlink to /etc/passwd" hardlink_abs.tar 'hardlink target "/etc/passwd" leaves the archive'
mktar "$W/hardlink_later.tar" h:b:a f:a:x
tarball_case "a hardlink to a file that comes later" hardlink_later.tar 'hardlink target "a" is not a file earlier in the archive'

if [[ $EUID -eq 0 ]] && mkdir "$T/dev" && mknod "$T/dev/null" c 1 3 2>/dev/null; then
  tar -cf "$W/device.tar" -C "$T/dev" null
else
  mktar "$W/device.tar" c:null:1,3
fi
[[ $(tar -tvf "$W/device.tar") == c* ]] || fail "could not make a tarball with a character device"
tarball_case "a character device without allowDevices" device.tar \
  'entry "null" is a character device; set allowDevices: true on the tarball to keep device nodes'

mktar "$W/duplicate.tar" f:a:x f:a:y
tarball_case "the same file twice" duplicate.tar 'entry "a": /a appears twice in the archive'

mktar "$W/through_symlink.tar" l:a:/etc f:a/passwd:pwned
tarball_case "a symlink a -> /etc, then a/passwd" through_symlink.tar \
  'entry "a/passwd": cannot place /a/passwd: /a is declared as a symlink in this layer'
mktar "$W/through_relative_symlink.tar" d:d/ l:d/up:../../.. f:d/up/etc/passwd:pwned
tarball_case "a symlink d/up -> ../../.., then d/up/etc/passwd" through_relative_symlink.tar \
  'cannot place /d/up/etc/passwd: /d/up is declared as a symlink in this layer'

# The same archives are fine when they are fine: the checks above fail for
# the reason they name, not because the archives are malformed.
step "control: good tarballs build (in another store)"
f=$(tarball_template good good.tar)
"$KILN" --store "$T/control" build "$f" -q >/dev/null
"$KILN" --store "$T/control" inspect bad:1.0.0 --files --json >"$T/control.json"
assert_eq '["/srv","/srv/a","/srv/etc-link","/srv/h","/srv/s"]' \
  "$(jq -c '[.layers[1].files[].path]' "$T/control.json")" "entries of good.tar"
assert_eq '{"type":"hardlink","link":"srv/a"}' \
  "$(jq -c '.layers[1].files[] | select(.path == "/srv/h") | {type, link}' "$T/control.json")"
f=$(tarball_template device_allowed device.tar ", allowDevices: true")
sed -i 's/^version: 1.0.0$/version: 1.0.1/' "$f"
"$KILN" --store "$T/control" build "$f" -q >/dev/null
assert_eq "character device" \
  "$("$KILN" --store "$T/control" inspect bad:1.0.1 --files --json | jq -r '.layers[1].files[] | select(.path == "/null") | .type')" \
  "a device with allowDevices: true"
step "control: a symlink in a lower layer is followed inside the image root"
mkdir -p "$T/through"
printf x >"$T/through/f"
tar -cf "$W/lower_symlink.tar" -C "$T/through" --transform 's,^f$,a/passwd,' f
cat >"$W/lower_symlink.yaml" <<EOF
apiVersion: kiln.dev/v1
name: through
version: 1.0.0
layers:
  - name: links
    symlinks:
      - {path: /a, target: /etc}
      - {path: /b, target: ../../..}
  - name: data
    tarballs:
      - {src: lower_symlink.tar, sha256: "$(sha256sum "$W/lower_symlink.tar" | cut -d' ' -f1)"}
    files:
      - {dest: /b/x, content: hi}
EOF
"$KILN" --store "$T/control" build "$W/lower_symlink.yaml" -q >/dev/null
assert_eq '["/etc","/etc/passwd","/x"]' \
  "$("$KILN" --store "$T/control" inspect through:1.0.0 --files --json | jq -c '[.layers[1].files[].path]')" \
  "entries written through /a -> /etc and /b -> ../../.. land inside the image root"
unchanged "the control builds (another store)"

# --- versions are immutable
step "rebuilding hello:1.0.0 with other content is refused"
index_before=$(cat "$S/index.json")
expect_error 1 "hello:1.0.0 already holds $HELLO_DIGEST and versions are immutable" \
  "$KILN" --store "$S" build "$HELLO" --set GREETING=other
assert_contains "$ERR" "--replace" "the error says how to move the tag"
assert_eq "$index_before" "$(cat "$S/index.json")" "the store's index after a refused rebuild"
assert_eq "$HELLO_DIGEST" "$("$KILN" --store "$S" images --json | jq -r '.[] | select(.name == "hello:1.0.0") | .digest')" \
  "hello:1.0.0 after a refused rebuild"
step "the same content again is a no-op"
assert_eq "$HELLO_DIGEST" "$(build_digest --store "$S" build "$HELLO")"
assert_eq "$index_before" "$(cat "$S/index.json")" "the store's index after rebuilding the same image"
step "--replace moves the tag"
build_json "$T/replaced.json" --store "$S" build "$HELLO" --set GREETING=other --replace
new=$(jq -r .digest "$T/replaced.json")
assert_ne "$HELLO_DIGEST" "$new" "the digest with GREETING=other"
jq -e '.tagMoved == true' "$T/replaced.json" >/dev/null || fail "--replace should report tagMoved"
assert_eq "$new" "$("$KILN" --store "$S" images --json | jq -r '.[] | select(.name == "hello:1.0.0") | .digest')" \
  "hello:1.0.0 after --replace"
