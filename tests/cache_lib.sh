# shellcheck shell=bash
# Helpers for the layer cache tests: reading the cache's own files in a store.
# Source after lib.sh:
#   source "$(dirname "$0")/../cache_lib.sh"
# kiln keeps, per layer of a template, the parts its key is made of (for
# --explain) in STORE/kiln/cache/explain/<sha256 of "TEMPLATE\nLAYER">, where
# TEMPLATE is the template's absolute path: a JSON list of [part, value]
# whose sha256 is the layer's key. The entry of a key is
# STORE/kiln/cache/layers/<key hex>: {"check": …, "record": {"key", "blob",
# "diffId", …}}.

# explain_file STORE TEMPLATE LAYER: the file of the layer's parts.
explain_file() {
  echo "$1/kiln/cache/explain/$(printf '%s\n%s' "$2" "$3" | sha256sum | cut -d' ' -f1)"
}

# key_of STORE TEMPLATE LAYER: the layer's key at the template's last build
# into STORE ("sha256:…").
key_of() {
  local f
  f=$(explain_file "$@")
  [[ -f $f ]] || fail "no explain parts for layer $3 of $2 in $1"
  echo "sha256:$(sha256sum "$f" | cut -d' ' -f1)"
}

# cache_entry STORE KEY: the path of the key's cache entry.
cache_entry() { echo "$1/kiln/cache/layers/${2#sha256:}"; }

# checked_key STORE TEMPLATE LAYER: key_of, after checking that the key's
# entry exists and names that key.
checked_key() {
  local key e
  key=$(key_of "$@")
  e=$(cache_entry "$1" "$key")
  [[ -f $e ]] || fail "layer $3 of $2: no cache entry for its key $key"
  assert_eq "$key" "$(jq -r .record.key "$e")" "the key the entry of layer $3 names"
  echo "$key"
}
