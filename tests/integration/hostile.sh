#!/usr/bin/env bash
# Hostile inputs: malicious or broken tarballs, templates, OCI layouts and
# Debian packages (hostile/README.md lists every case and how hostile/make.py
# makes it). Each is refused with the exit code and a message naming the
# input (the template's file:line:col, the archive entry, the blob), and
# leaves no trace: the store as it was (or, where a build may have started,
# `kiln store fsck` clean and no new image), the inputs and everything else
# below $T unchanged, and no file at the canary path the escapes aim at.
# A few inputs are fine and their documented treatment is checked (a
# directory listed twice, a fifo, setuid and devices when declared).
# Registry answers that lie are in hostile_registry.sh.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../hostile_lib.sh
source "$(dirname "$0")/../hostile_lib.sh"
need_tool sha256sum gpg gpgv curl

S=$T/store
CANARY=$T/outside  # every escape aims at $CANARY/canary
W=$T/ctx           # the build context: the tarballs
Y=$T/written       # the templates (and locks) the test writes
mkdir -p "$CANARY" "$W" "$Y"
step "the corpus"
make_corpus tarballs "$W" "$CANARY"
make_corpus templates "$T/tpl"
make_corpus oci "$T/oci"
make_corpus debs "$T/debs"

step "store with hello:1.0.0"
build_digest --store "$S" build "$HELLO" >/dev/null
FINGERPRINT=$(store_fingerprint "$S")
IMAGES=$(image_names "$S")
# What must never change: the inputs, and everything below $T but the
# stores, the templates the test writes and the assertions' scratch files.
outside_state() {
  tree_state "$T" | grep -v -e " $T/store" -e " $T/control" -e " $T/debstore" \
    -e " $T/written" -e " $T/\.[a-z]" -e " $T/home" -e " $T/[a-z-]*\.\(out\|err\|log\)" || true
}
OUTSIDE=$(outside_state)

# no_trace WHAT: the store unchanged, nothing else written, no canary.
no_trace() {
  assert_eq "$FINGERPRINT" "$(store_fingerprint "$S")" "the store changed after: $1"
  local now
  now=$(outside_state)
  [[ $now == "$OUTSIDE" ]] ||
    fail "files outside the store changed after: $1"$'\n'"$(diff <(echo "$OUTSIDE") <(echo "$now"))"
  [[ ! -e $CANARY/canary ]] || fail "$1 wrote $CANARY/canary"
  case_done
}

# ---------------------------------------------------------------------------
# Tarballs (layers[].tarballs)

# tarball_template TAR [EXTRA]: a template whose second layer unpacks $W/TAR,
# pinned by its real sha256 (EXTRA: more of the flow map); prints its path.
tarball_template() {
  local f=$Y/${1//./_}.yaml sha
  sha=$(sha256sum "$W/$1" | cut -d' ' -f1)
  cat >"$f" <<EOF
# context: $W
apiVersion: kiln.dev/v1
name: hostile
version: 1.0.0
layers:
  - name: good
    files:
      - {dest: /etc/good.txt, content: "a good layer before the bad one\n"}
  - name: app
    tarballs:
      - {src: $1, sha256: "$sha"${2:-}}
EOF
  echo "$f"
}

# tar_case TAR MESSAGE [EXTRA]: refused with exit 1 and MESSAGE at the
# tarball's line and column, before anything is written.
tar_case() {
  local tar=$1 msg=$2 f where
  step "tarball $tar"
  f=$(tarball_template "$tar" "${3:-}")
  where=$(loc "$f" "{src: $tar")
  expect_template_error "$f" "${where% *}" "${where#* }" "$msg" "$KILN" --store "$S" build "$f" --context "$W"
  no_trace "tarball $tar"
}

tar_case dotdot.tar 'entry "../canary": entry name contains ".."'
tar_case dotdot_deep.tar 'entry name contains ".."'
tar_case absolute.tar "entry \"$CANARY/canary\": absolute entry name"
tar_case absolute_pax.tar "entry \"$CANARY/canary\": absolute entry name"
tar_case symlink_escape.tar 'cannot place /esc/canary: /esc is declared as a symlink in this layer'
tar_case symlink_rel_escape.tar '/srv/up is declared as a symlink in this layer'
tar_case symlink_chain.tar '/a is declared as a symlink in this layer'
tar_case hardlink_outside.tar "hardlink target \"$CANARY/canary\" leaves the archive"
tar_case hardlink_dotdot.tar 'hardlink target "../../../../etc/shadow" leaves the archive'
tar_case hardlink_missing.tar 'hardlink target "nothere" is not a file earlier in the archive'
tar_case hardlink_to_dir.tar 'hardlink target "dir" is not a file earlier in the archive'
tar_case hardlink_to_symlink.tar 'hardlink target "s" is not a file earlier in the archive'
tar_case duplicate_file.tar 'entry "srv/a": /srv/a appears twice in the archive'
tar_case duplicate_file_symlink.tar '/srv/a appears twice in the archive'
tar_case pax_huge.tar 'tarball pax_huge.tar: reading entry header: Special header too large'
tar_case gnu_longname_huge.tar 'reading entry header: Special header too large'
tar_case pax_size_absurd.tar 'which takes tarball pax_size_absurd.tar past 1.0 GB unpacked'
tar_case long_component.tar 'is 300 bytes long, more than a Linux file system holds (255)'
tar_case long_path.tar 'bytes long, more than Linux takes (4095)'
tar_case truncated.tar 'tarball truncated.tar: reading entry data: Truncated tar archive'
tar_case truncated_header.tar 'tarball truncated_header.tar: reading entry header: Truncated tar archive'
tar_case truncated.tar.gz 'tarball truncated.tar.gz: opening: truncated gzip input'
tar_case corrupt.tar.gz 'tarball corrupt.tar.gz: reading entry'
tar_case not_a_tar.tar 'tarball not_a_tar.tar: opening: Unrecognized archive format'
tar_case bad_checksum.tar 'tarball bad_checksum.tar: opening: Unrecognized archive format'
tar_case empty.tar 'tarball empty.tar: opening: Unrecognized archive format'
t0=$(date +%s)
tar_case bomb.tar.gz 'entry "zeros" holds 10.7 GB, which takes tarball bomb.tar.gz past 1.0 GB unpacked: a tarball may unpack to 100 times its size or 1.0 GB, whichever is more; set maxUnpackedSize on the tarball to allow more'
tar_case bomb_many.tar.gz 'entry "f003" holds 268.4 MB, which takes tarball bomb_many.tar.gz past 1.0 GB unpacked'
tar_case sparse_bomb.tar 'holds 1.1 TB, which takes tarball sparse_bomb.tar past 1.0 GB unpacked'
[[ $(($(date +%s) - t0)) -lt 30 ]] || fail "the bombs took $(($(date +%s) - t0)) s to refuse"
tar_case device_char.tar 'entry "dev/kmem" is a character device; set allowDevices: true on the tarball to keep device nodes'
tar_case device_block.tar 'entry "dev/sda" is a block device'
tar_case setuid.tar 'entry "usr/bin/rootshell" is setuid (mode 4755); set allowSetuid: true on the tarball to keep setuid and setgid files'
tar_case setgid.tar 'entry "usr/bin/groupshell" is setgid (mode 2755)'
tar_case whiteout.tar '/etc/.wh.passwd has an OCI whiteout name'
tar_case uid_wraps.tar 'entry "owned": owner id 4294967296 does not fit in 32 bits'
tar_case bad_utf8_name.tar 'is not valid UTF-8'
tar_case good.tar 'entry "srv/b" holds 100 B, which takes tarball good.tar past 150 B unpacked: its maxUnpackedSize' \
  ', maxUnpackedSize: "150"'
step "tarball: maxUnpackedSize that is not a size"
f=$(tarball_template fifo.tar ', maxUnpackedSize: lots')
where=$(loc "$f" "lots")
expect_template_error "$f" "${where% *}" "${where#* }" 'maxUnpackedSize must be a size such as 20GiB, not "lots"' \
  "$KILN" --store "$S" build "$f" --context "$W"
no_trace "maxUnpackedSize: lots"

# The same kinds of archive are accepted where they are fine, as documented:
# a directory listed twice takes the later entry's metadata (as tar
# extracting it does); fifos and sticky directories are kept; an unknown
# type flag is a regular file (POSIX); setuid files and devices when the
# template declares them; a tarball under a raised maxUnpackedSize.
step "controls: what the rules allow (in another store)"
C=$T/control
control() {  # NAME TAR EXTRA JQ_FILTER EXPECTED
  local f
  f=$(tarball_template "$2" "$3")
  sed -i "s/^name: hostile$/name: $1/" "$f"
  kiln_ok "control-$1" --store "$C" build "$f" --context "$W"
  assert_eq "$5" "$("$KILN" --store "$C" inspect "$1:1.0.0" --files --json |
    jq -c "[.layers[1].files[] | $4]")" "control $1"
}
control dupdir duplicate_dir.tar "" 'select(.path == "/srv") | .mode' '["0750"]'
control fifo fifo.tar "" 'select(.path == "/run/fifo") | .type' '["fifo"]'
control sticky sticky.tar "" 'select(.path == "/tmp") | .mode' '["1777"]'
control unknown unknown_type.tar "" 'select(.path == "/weird") | [.type, .size]' '[["file",4]]'
control setuid setuid.tar ", allowSetuid: true" 'select(.path == "/usr/bin/rootshell") | .mode' '["4755"]'
control devices device_char.tar ", allowDevices: true" 'select(.path == "/dev/kmem") | .type' '["character device"]'
control raised good.tar ', maxUnpackedSize: "200"' 'select(.path == "/srv/b") | .size' '[100]'
store_clean "$C"
no_trace "the controls (another store)"

# ---------------------------------------------------------------------------
# Templates
TPL=$T/tpl

# tpl_case NAME EXIT MESSAGE [LINE]: building tpl/NAME.yaml fails with EXIT
# and MESSAGE (at LINE of the file when given); the store unchanged.
tpl_case() {
  local f=$TPL/$1.yaml rc=$2 msg=$3 line=${4:-}
  step "template $1"
  local t0=$SECONDS
  expect_error "$rc" "$msg" "$KILN" --store "$S" build "$f"
  [[ -z $line ]] || assert_contains "$(first_line)" "kiln: error: $f:$line:" "the error's location"
  [[ $((SECONDS - t0)) -lt 10 ]] || fail "template $1 took $((SECONDS - t0)) s to refuse"
  no_trace "template $1"
}

tpl_case billion_laughs 1 'annotations.l1 must be a string, not a list' 6
tpl_case alias_layers 1 'template has more than 200000 values (alias expansion?)'
tpl_case alias_content 1 "the template's values add up to more than 32 MiB (aliases or \${} used many times?)" 7
tpl_case deep_flow 1 'invalid YAML: nested 500 levels deep' 4
tpl_case deep_map 1 'invalid YAML: nested 500 levels deep' 4
tpl_case deeper_flow 1 'invalid YAML: nested 500 levels deep' 4
tpl_case huge 1 'template is larger than 1 MiB'
tpl_case nul 1 'not a text file (contains NUL bytes)'
tpl_case utf16 1 'not a text file (contains NUL bytes)'
tpl_case bad_utf8 1 'not valid UTF-8 (templates are UTF-8 text)' 5
tpl_case subst_loop 1 'args refer to each other in a loop: A -> B -> A' 5
tpl_case subst_self 1 'args refer to each other in a loop: A -> A' 5
tpl_case subst_loop3 1 'args refer to each other in a loop: A -> B -> C -> A' 5
tpl_case subst_exponential 1 'args.A17 expands to more than 1048576 bytes'
tpl_case subst_fanout 1 'substituting ${B12} makes this value larger than 32 MiB' 21
tpl_case subst_unterminated 1 'unterminated ${ (write $${ for a literal ${)' 7
step "template: a directory"
expect_error 1 "$TPL: is a directory, not a template file" "$KILN" --store "$S" build "$TPL"
no_trace "a directory as the template"

# ---------------------------------------------------------------------------
# OCI layouts, as oci:DIR:TAG to inspect, export and build on.
O=$T/oci

# oci_cmd EXIT MESSAGE KILN ARGS...: one command on a layout; the store and
# the layouts unchanged, and an export writes no destination.
oci_cmd() {
  local rc=$1 msg=$2
  shift 2
  expect_error "$rc" "$msg" "$KILN" --store "$S" "$@"
  [[ ! -e $T/exported ]] || fail "a refused export left $T/exported: $*"
  no_trace "kiln $*"
}

# base_template LAYOUT: a template on oci:LAYOUT:1.0.0; prints its path.
base_template() {
  cat >"$Y/base-$1.yaml" <<EOF
apiVersion: kiln.dev/v1
name: onbase
version: 1.0.0
base: oci:$O/$1:1.0.0
layers:
  - name: app
    files:
      - {dest: /etc/x, content: "x"}
EOF
  echo "$Y/base-$1.yaml"
}

# oci_case LAYOUT EXIT MESSAGE [FILES_MESSAGE]: inspect, export to another
# layout and build on it are refused with MESSAGE; with FILES_MESSAGE the
# manifest and config are sound and only reading the layers (inspect
# --files, a rootfs export, a build) is refused, with that message.
oci_case() {
  local lay=$1 rc=$2 msg=$3 files=${4:-}
  step "oci layout $lay"
  local ref=oci:$O/$lay:1.0.0
  if [[ -z $files ]]; then
    oci_cmd "$rc" "$msg" inspect "$ref"
    oci_cmd "$rc" "$msg" export "$ref" "oci:$T/exported:x"
    files=$msg
  fi
  oci_cmd "$rc" "$files" inspect "$ref" --files
  oci_cmd "$rc" "$files" export "$ref" "rootfs:$T/exported"
  oci_cmd "$rc" "$files" build "$(base_template "$lay")"
}

step "oci layout good (the control)"
kiln_ok oci-good inspect "oci:$O/good:1.0.0" --files
kiln_ok oci-good-build --store "$T/control" build "$(base_template good)"
kiln_ok oci-good-export --store "$T/control" export "oci:$O/good:1.0.0" "oci:$T/control-export:x"
rm -rf "$T/control-export"
OUTSIDE=$(outside_state)

oci_case blob_wrong_content 1 '' 'layer 1 (496afa22f8c5): opening: gzip decompression failed'
oci_cmd 1 'blob sha256:496afa22f8c5352538b7fe818c7db5383a3f226277d120035c7bcbde2aeff62e is corrupt' \
  export "oci:$O/blob_wrong_content:1.0.0" "oci:$T/exported:x"
oci_case manifest_wrong_digest 1 "blob sha256:$(printf 'ab%.0s' {1..32}) does not match its digest or size"
oci_case config_wrong_digest 1 "blob sha256:$(printf 'cd%.0s' {1..32}) does not match its digest or size"
oci_case size_too_small 1 '' 'layer 1 (496afa22f8c5): the manifest says 10 bytes, blob sha256:496afa22f8c5352538b7fe818c7db5383a3f226277d120035c7bcbde2aeff62e has 138'
oci_cmd 1 'has 138 bytes, expected 10' export "oci:$O/size_too_small:1.0.0" "oci:$T/exported:x"
oci_case size_too_large 1 '' 'the manifest says 1138 bytes'
oci_cmd 1 'has 138 bytes, expected 1138' export "oci:$O/size_too_large:1.0.0" "oci:$T/exported:x"
oci_case size_absurd 1 'manifest layers[0]: size of sha256:496afa22f8c5352538b7fe818c7db5383a3f226277d120035c7bcbde2aeff62e must be a whole number from 0 to 2^50'
oci_case size_negative 1 'must be a whole number from 0 to 2^50'
oci_case manifest_size_absurd 1 'claims 562949953421312 bytes, more than 4194304 allowed'
oci_case layer_media_type_unknown 1 '' 'media type "application/x-kiln-hostile"'
oci_case manifest_media_type_unknown 1 '"application/x-kiln-hostile" is not an image manifest'
oci_case manifest_claims_index 1 'is not an image index'
oci_case index_self 1 'does not match its digest or size'
oci_case index_nested 1 'its linux/amd64 entry is another image index (kiln reads one level)'
oci_case config_not_json 1 'config: invalid JSON'
oci_case config_not_object 1 'config: not a JSON object'
oci_case config_deep_json 1 'config: invalid JSON: nested more than 512 levels deep'
oci_case config_bad_utf8 1 'config: invalid JSON'
oci_case config_diff_ids_mismatch 1 'the config lists 2 diff_ids for 1 layers'
oci_case layer_not_tar 1 '' 'opening: Unrecognized archive format'
oci_case layer_garbage 1 '' 'opening: Unrecognized archive format'
oci_case layer_truncated 1 '' 'layer 1 (213395771b78): reading entry'
oci_case layer_dotdot 1 '' 'entry "../../../canary": entry name contains ".."'
oci_case index_not_json 1 'index.json: invalid JSON'
oci_case layout_version 1 'imageLayoutVersion 9.0.0 is not supported (kiln reads 1.x)'
oci_case blob_is_directory 1 '' 'has no bytes (not a file)'
oci_case no_blobs_dir 1 'is missing'

# ---------------------------------------------------------------------------
# Debian packages, from a repository of the corpus' .debs signed with a
# throw-away key (no maintainer is needed for what kiln reads).
step "a signed repository of hostile .debs"
R=$T/repo
mkdir -p "$R/pool" "$R/dists/stable/main/binary-amd64" "$T/gnupg"
chmod 700 "$T/gnupg"
P=$R/dists/stable/main/binary-amd64/Packages
for deb in "$T/debs"/*.deb; do
  name=$(basename "$deb")
  cp "$deb" "$R/pool/$name"
  printf 'Package: %s\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: kiln tests <t@kiln.invalid>\nFilename: pool/%s\nSize: %s\nSHA256: %s\nDescription: hostile\n\n' \
    "${name%%_*}" "$name" "$(stat -c %s "$deb")" "$(sha256sum "$deb" | cut -d' ' -f1)" >>"$P"
done
{
  printf 'Origin: kiln-hostile\nSuite: stable\nArchitectures: amd64\nComponents: main\nSHA256:\n'
  printf ' %s %s main/binary-amd64/Packages\n' "$(sha256sum "$P" | cut -d' ' -f1)" "$(stat -c %s "$P")"
} >"$R/dists/stable/Release"
(
  export GNUPGHOME=$T/gnupg
  gpg --batch --quiet --passphrase '' --quick-gen-key 'kiln hostile <h@kiln.invalid>' ed25519 sign never 2>/dev/null
  gpg --batch --quiet --yes --clearsign -o "$R/dists/stable/InRelease" "$R/dists/stable/Release"
  gpg --batch --export >"$T/keyring.gpg"
  gpgconf --kill gpg-agent 2>/dev/null || true
)
port=$(free_port)
start_server "http://127.0.0.1:$port/dists/stable/Release" "$T/http-server.log" \
  python3 -m http.server --bind 127.0.0.1 --directory "$R" "$port"
D=$T/debstore
deb_template() {  # NAME: a template installing package NAME; prints its path
  mkdir -p "$Y/deb-$1"
  cat >"$Y/deb-$1/kiln.yaml" <<EOF
apiVersion: kiln.dev/v1
name: deb-$1
version: 1.0.0
packages:
  repositories:
    - {name: h, url: "http://127.0.0.1:$port", suite: stable, components: [main], keyring: $T/keyring.gpg}
  include: [$1]
EOF
  echo "$Y/deb-$1/kiln.yaml"
}
kiln_ok deb-good --store "$D" build "$(deb_template good)"
D_IMAGES=$(image_names "$D")
OUTSIDE=$(outside_state)

# deb_case NAME MESSAGE: the build of a template including NAME is refused
# with exit 1 and MESSAGE at the include's line; no new image, fsck clean.
deb_case() {
  local f
  step "package $1"
  f=$(deb_template "$1")
  OUTSIDE=$(outside_state)
  local t0=$SECONDS
  expect_error 1 "$2" "$KILN" --store "$D" build "$f" --locked
  [[ $((SECONDS - t0)) -lt 20 ]] || fail "package $1 took $((SECONDS - t0)) s to refuse"
  assert_contains "$(first_line)" "kiln: error: $f:7:13: " "the error points at the include"
  assert_eq "$D_IMAGES" "$(image_names "$D")" "images after package $1"
  store_clean "$D"
  no_trace "package $1"
}
# --locked needs the lock: kiln lock is not what is tested (the repository
# signs what it serves, hostile or not).
for p in dotdot absolute truncated notar bomb controlbomb symlinkout; do
  kiln_ok "lock-$p" --store "$D" lock "$(deb_template "$p")"
done
deb_case dotdot 'package dotdot 1.0-1: entry "./../../../canary": entry name contains ".."'
deb_case absolute 'package absolute 1.0-1: entry "/etc/canary": absolute entry name'
deb_case truncated 'package truncated 1.0-1: reading data.tar.gz: Truncated ar archive'
deb_case notar 'package notar 1.0-1: reading the ar archive'
deb_case bomb 'entry "./zeros" holds 10.7 GB, which takes package bomb 1.0-1 past 1.0 GB unpacked: a package may unpack to 100 times its size or 1.0 GB, whichever is more'
deb_case controlbomb 'package controlbomb 1.0-1: control.tar.gz: "./control" is larger than 16 MiB'
step "package symlinkout: its symlink is followed inside the image, as dpkg would"
kiln_ok deb-symlinkout --store "$D" build "$(deb_template symlinkout)" --locked
assert_eq '["/esc","/tmp/canary"]' \
  "$("$KILN" --store "$D" inspect deb-symlinkout:1.0.0 --files --json |
    jq -c '[.layers[0].files[].path | select(. == "/esc" or . == "/tmp/canary")]')" \
  "where the package's esc/canary went"
[[ ! -e $CANARY/canary ]] || fail "package symlinkout wrote $CANARY/canary"
case_done

assert_eq "$IMAGES" "$(image_names "$S")" "images in the store"
store_clean "$S"
echo "hostile.sh: $CASES checks passed" >&2
