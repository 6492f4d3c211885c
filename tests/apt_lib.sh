# shellcheck shell=bash
# Helpers for the Debian package tests. Source after lib.sh and the fixture's env:
#   source "$(dirname "$0")/../lib.sh"
#   source "${KILN_APT_FIXTURE:?...}/env"
#   source "$(dirname "$0")/../apt_lib.sh"
# The fixture (fixtures/aptrepo.sh) serves one repository at $APT_URL that no
# test changes: the tests may run at the same time. A test that tampers with
# a repository works on its own copy (apt_copy), removed when it ends.
# Needs jq, perl (perl-base), dpkg-deb.

[[ -n ${APT_URL:-} && -n ${APT_KEYRING:-} && -d ${APT_DIR:-} ]] ||
  fail "the APT fixture's env is not loaded (tests/fixtures/aptrepo.sh start DIR; KILN_APT_FIXTURE=DIR)"
need_tool jq perl dpkg-deb

# Every request goes straight to 127.0.0.1.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# A per-run id, so copies of the repository never collide.
# shellcheck disable=SC2034  # used by the scripts
RUN=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')

# What the fixture's `app` resolves to: "name version architecture", sorted.
# shellcheck disable=SC2034
APP_CLOSURE="altpkg 1.0-1 amd64
app 2.0-1 amd64
data-common 1.0-1 all
editor-impl 1.0-1 amd64
libbase 1.0-1 amd64
libfoo 1.3-1 amd64
withscript 1.0-1 amd64"

# pkg_template FILE NAME INCLUDES [YAML LINES...]: a template of packages only.
# INCLUDES is the flow list's inside ("app, other"); each further argument is
# a line put under `packages:` ("layering: per-package", "exclude: [x]").
# The repository is $PKG_URL (default $APT_URL), signed by $PKG_KEYRING
# (default $APT_KEYRING).
pkg_template() {
  local file=$1 name=$2 include=$3
  shift 3
  mkdir -p "$(dirname "$file")"
  {
    echo "apiVersion: kiln.dev/v1"
    echo "name: $name"
    echo "version: 1.0.0"
    echo "packages:"
    echo "  repositories:"
    echo "    - name: test"
    echo "      url: ${PKG_URL:-$APT_URL}"
    echo "      suite: stable"
    echo "      components: [main]"
    echo "      keyring: ${PKG_KEYRING:-$APT_KEYRING}"
    echo "  include: [$include]"
    local line
    for line in "$@"; do echo "  $line"; done
  } >"$file"
}

# apt_copy NAME: a copy of the fixture's repository that this test may change,
# served at $COPY_URL from $COPY_DIR (removed when the test ends).
apt_copy() {
  COPY_DIR=$APT_DIR/www/$1-$RUN
  rm -rf "$COPY_DIR"
  cp -a "$APT_DIR/www/debian" "$COPY_DIR"
  CLEANUP_DIRS+=("$COPY_DIR")
  # shellcheck disable=SC2034  # used by the scripts
  COPY_URL=$APT_SERVER/$1-$RUN
}

# lock_packages LOCK: "name version architecture" per locked package, in file order.
lock_packages() { jq -r '.packages[] | "\(.name) \(.version) \(.architecture)"' "$1"; }

# flip_byte FILE: inverts the byte in the middle of FILE (same name and size).
flip_byte() {
  perl -e 'open(my $f, "+<", $ARGV[0]) or die "$ARGV[0]: $!"; binmode $f;
    my $at = int((-s $f) / 2); seek($f, $at, 0); read($f, my $c, 1);
    seek($f, $at, 0); print $f chr(ord($c) ^ 0xff); close $f or die;' "$1"
}

# image_files STORE REF: every path of the image's layers, one JSON object a
# line ({path, type, mode, uid, gid, size, link}), from kiln inspect --files.
image_files() {
  "$KILN" --store "$1" inspect "$2" --files --json | jq -c '.layers[].files[]'
}

# status_d STORE REF: the names under /var/lib/dpkg/status.d, sorted.
status_d() {
  image_files "$1" "$2" | jq -r 'select(.path | startswith("/var/lib/dpkg/status.d/")) | .path | ltrimstr("/var/lib/dpkg/status.d/")' |
    LC_ALL=C sort
}

# cache_debs STORE: the package cache, "name sha256-of-content" per file, sorted.
cache_debs() {
  local d=$1/kiln/cache/debs f
  [[ -d $d ]] || return 0
  for f in "$d"/* "$d"/.[!.]*; do
    [[ -e $f ]] || continue
    echo "$(basename "$f") $(sha256sum "$f" | cut -d' ' -f1)"
  done | LC_ALL=C sort
}

# cache_is_clean STORE: every file in the package cache is NAME.deb whose
# content has the SHA-256 NAME (no temporary or unverified file).
cache_is_clean() {
  local name sum
  while read -r name sum; do
    [[ -n $name ]] || continue
    [[ $name == "$sum.deb" ]] || fail "the package cache holds $name, whose content has sha256 $sum"
  done <<<"$(cache_debs "$1")"
}
