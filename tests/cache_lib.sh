# shellcheck shell=bash
# Helpers for the layer cache tests. Source after lib.sh:
#   source "$(dirname "$0")/../cache_lib.sh"
# A layer's key comes from `kiln build --json` (layers[].cacheKey, with
# layers[].cached); its entry is STORE/kiln/cache/layers/<key hex>. The
# entry's format is kiln's business: the tests only look for the key and the
# layer's blob digest in it, and compare entries byte for byte.

# cache_keys JSON: the cache keys of a build's own layers (not the base's),
# one a line, from its --json output file.
cache_keys() { jq -r '.layers[] | select(.fromBase | not) | .cacheKey' "$1"; }

# cache_entry STORE KEY: the path of the key's cache entry.
cache_entry() { echo "$1/kiln/cache/layers/${2#sha256:}"; }

# assert_entry STORE KEY BLOB [WHAT]: the key's entry exists and names the key
# and the layer blob BLOB.
assert_entry() {
  local e
  e=$(cache_entry "$1" "$2")
  [[ -f $e ]] || fail "${4:-}: no cache entry for key $2"
  grep -qF "$2" "$e" || fail "${4:-}: the entry of $2 does not name its key"
  grep -qF "$3" "$e" || fail "${4:-}: the entry of $2 does not name its blob $3"
}

# explain_lines FILE: kiln's --explain lines in a build's stderr (each layer's
# line and the indented reasons under it).
explain_lines() { grep -E '^(layer [0-9]+ |    )' "$1" || true; }
