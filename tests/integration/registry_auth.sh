#!/usr/bin/env bash
# Authentication and TLS against the fixture's registries: basic auth
# (htpasswd, bcrypt) refused without or with wrong credentials (exit 1) and
# accepted from --creds, KILN_REGISTRY_CREDS, ~/.docker/config.json ("auths"
# with base64 "auth") and a docker-credential helper ("credHelpers" and
# "credsStore"); the password never shows in any output, failing runs
# included; bearer tokens from the proxy's token service (with a bounded
# number of token requests); TLS refused without the CA (exit 2, pointing at
# --ca-file, nothing pushed), accepted with --ca-file, and with --insecure
# (with a warning).
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_REGISTRY_FIXTURE:?the registry fixture dir (tests/fixtures/registry.sh start DIR)}/env"
# shellcheck source=../registry_lib.sh
source "$(dirname "$0")/../registry_lib.sh"

S=$T/store
NS=auth-$RUN
CREDS=$REG_USER:$REG_PASS

step "build examples/hello"
D=$(build_digest --store "$S" build "$HELLO")

# Every kiln run of this test leaves its output in $T/*.out / *.err (kiln_ok)
# or $T/.out / .err (expect_error); those of expect_error are kept here.
keep_outputs() { cp "$T/.out" "$T/$1.out"; cp "$T/.err" "$T/$1.err"; }

# --- basic auth
step "basic auth: no credentials -> exit 1, authentication required"
expect_error 1 "authentication required" "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/none"
assert_contains "$ERR" "$REG_BASIC" "the error names the registry"
keep_outputs noauth
assert_eq 404 "$(manifest_status "http://$REG_BASIC" "$NS/none" 1.0.0 -u "$CREDS")" "manifest pushed without credentials"

step "basic auth: a wrong password -> exit 1, not shown"
WRONG=wrong-pass-$RUN
expect_error 1 "authentication failed" "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/wrong" \
  --creds "$REG_USER:$WRONG"
keep_outputs wrong
assert_not_contains "$ERR_ALL$OUT" "$WRONG" "output of a run with a wrong password"
assert_not_contains "$ERR_ALL$OUT" "$(printf '%s:%s' "$REG_USER" "$WRONG" | base64 -w0)" "output of a run with a wrong password"
assert_eq 404 "$(manifest_status "http://$REG_BASIC" "$NS/wrong" 1.0.0 -u "$CREDS")" "manifest pushed with a wrong password"

step "basic auth: --creds"
kiln_ok creds --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/hello" --creds "$CREDS" --json
assert_eq "$D" "$(json_field "$T/creds.out" .digest)"
assert_eq "$D" "$(remote_digest "$REG_BASIC/$NS/hello:1.0.0" --creds "$CREDS")" "skopeo inspect with the credentials"

step "basic auth: KILN_REGISTRY_CREDS (pull into an empty store)"
KILN_REGISTRY_CREDS=$CREDS kiln_ok envcreds --store "$T/pulled-env" pull "docker://$REG_BASIC/$NS/hello:1.0.0" --json
assert_eq "$D" "$(json_field "$T/envcreds.out" .digest)"
assert_store_clean "$T/pulled-env"

step "basic auth: --creds wins over KILN_REGISTRY_CREDS"
KILN_REGISTRY_CREDS=$REG_USER:$WRONG kiln_ok credswins --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/hello" \
  --creds "$CREDS" --json
assert_eq true "$(json_field "$T/credswins.out" .unchanged)"

step "basic auth: ~/.docker/config.json with a base64 auth entry"
mkdir -p "$HOME/.docker"
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REG_BASIC" "$(printf '%s' "$CREDS" | base64 -w0)" >"$HOME/.docker/config.json"
kiln_ok dockercfg --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/config" --json
assert_eq "$D" "$(remote_digest "$REG_BASIC/$NS/config:1.0.0" --creds "$CREDS")" "pushed with the docker config's credentials"
kiln_ok dockercfgpull --store "$T/pulled-cfg" pull "docker://$REG_BASIC/$NS/config:1.0.0" -q
assert_eq "$NS/config:1.0.0 $D" "$(cat "$T/dockercfgpull.out")" "pull -q with the docker config's credentials"

step "basic auth: a credential helper (credHelpers, docker-credential-NAME get)"
BIN=$T/bin
mkdir -p "$BIN"
# The helper protocol: `get` reads the server on stdin, answers JSON.
cat >"$BIN/docker-credential-kilntest" <<EOF
#!/bin/sh
[ "\$1" = get ] || { echo "unsupported: \$1" >&2; exit 1; }
read -r server
echo "\$server" >>"$T/helper.log"
case "\$server" in
  *$REG_BASIC*) printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' "\$server" "$REG_USER" "\$(cat "$T/helper.secret")" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
EOF
chmod +x "$BIN/docker-credential-kilntest"
printf '%s' "$REG_PASS" >"$T/helper.secret"
printf '{"auths": {}, "credHelpers": {"%s": "kilntest"}}\n' "$REG_BASIC" >"$HOME/.docker/config.json"
PATH=$BIN:$PATH kiln_ok helper --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/helper" --json
assert_eq "$D" "$(remote_digest "$REG_BASIC/$NS/helper:1.0.0" --creds "$CREDS")" "pushed with the helper's credentials"
assert_contains "$(cat "$T/helper.log")" "$REG_BASIC" "the helper was asked for the registry"

step "basic auth: credsStore"
: >"$T/helper.log"
printf '{"credsStore": "kilntest"}\n' >"$HOME/.docker/config.json"
PATH=$BIN:$PATH kiln_ok store --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/store" --json
assert_eq "$D" "$(remote_digest "$REG_BASIC/$NS/store:1.0.0" --creds "$CREDS")" "pushed with the creds store's credentials"
assert_contains "$(cat "$T/helper.log")" "$REG_BASIC" "the creds store was asked for the registry"

step "basic auth: a helper that answers a wrong secret -> exit 1, the secret not shown"
printf '%s' "helper-$WRONG" >"$T/helper.secret"
PATH=$BIN:$PATH expect_error 1 "authentication failed" "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/helper-wrong"
keep_outputs helperwrong
assert_not_contains "$ERR_ALL$OUT" "helper-$WRONG" "output of a run with the helper's wrong secret"
printf '{"credHelpers": {"%s": "nosuchhelper"}}\n' "$REG_BASIC" >"$HOME/.docker/config.json"
expect_error 1 "docker-credential-nosuchhelper" "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/nohelper"
keep_outputs nohelper
# A helper whose answer is JSON but not the protocol's object: exit 2 (the
# machine's set-up is wrong), named.
cat >"$BIN/docker-credential-kilnodd" <<EOF
#!/bin/sh
echo '["$REG_PASS"]'
EOF
chmod +x "$BIN/docker-credential-kilnodd"
printf '{"credHelpers": {"%s": "kilnodd"}}\n' "$REG_BASIC" >"$HOME/.docker/config.json"
PATH=$BIN:$PATH expect_error 2 "docker-credential-kilnodd get for $REG_BASIC returned JSON without the strings Username and Secret" \
  "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/oddhelper"
keep_outputs oddhelper
rm -f "$HOME/.docker/config.json"

step "failing runs with the right password do not show it either"
expect_error 1 "no such image" "$KILN" --store "$T/pulled-missing" pull "docker://$REG_BASIC/$NS/hello:9.9.9" --creds "$CREDS"
keep_outputs missing
KILN_REGISTRY_CREDS=$REG_PASS expect_error 1 "KILN_REGISTRY_CREDS must be USER:PASSWORD" \
  "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/malformed"
keep_outputs malformed
expect_error 1 "--creds must be USER:PASSWORD" \
  "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_BASIC/$NS/malformed" --creds "$REG_PASS"
keep_outputs malformed2

# --- bearer tokens
step "bearer token: anonymous -> exit 1 naming the token service"
proxy_reset "$REG_TOKEN"
expect_error 1 "token service http://$REG_TOKEN" "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_TOKEN/$NS/tok-anon"
keep_outputs tokanon
assert_contains "$ERR" "anonymous" "the error says access was anonymous"
assert_eq 404 "$(manifest_status "http://$REG_PLAIN" "$NS/tok-anon" 1.0.0)" "manifest pushed anonymously"

step "bearer token: wrong credentials -> exit 1"
expect_error 1 "refused the credentials" "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_TOKEN/$NS/tok-wrong" \
  --creds "$REG_USER:$WRONG"
keep_outputs tokwrong
assert_not_contains "$ERR_ALL$OUT" "$WRONG" "output of a token run with a wrong password"

step "bearer token: push with credentials, a bounded number of token requests"
proxy_reset "$REG_TOKEN"
kiln_ok tokpush --store "$S" push hello:1.0.0 "docker://$REG_TOKEN/$NS/tok" --creds "$CREDS" --json
stats=$(proxy_stats "$REG_TOKEN")
assert_eq "$D" "$(remote_digest "$REG_PLAIN/$NS/tok:1.0.0")" "the image pushed through the token proxy"
tokens=$(stat_of "$stats" "GET token")
requests=$(jq '[to_entries[] | select(.key != "GET token") | .value] | add' <<<"$stats")
[[ $tokens -ge 1 && $tokens -le 2 ]] || fail "token requests for one push: $tokens (stats: $stats)"
[[ $requests -ge 10 ]] || fail "the push made only $requests registry requests: $stats"

step "bearer token: pull with credentials into an empty store"
proxy_reset "$REG_TOKEN"
kiln_ok tokpull --store "$T/pulled-token" pull "docker://$REG_TOKEN/$NS/tok:1.0.0" --creds "$CREDS" --json
stats=$(proxy_stats "$REG_TOKEN")
assert_eq "$D" "$(json_field "$T/tokpull.out" .digest)"
tokens=$(stat_of "$stats" "GET token")
[[ $tokens -ge 1 && $tokens -le 2 ]] || fail "token requests for one pull: $tokens (stats: $stats)"
assert_store_clean "$T/pulled-token"

# --- TLS
CERTS=$T/certs  # skopeo's --cert-dir wants *.crt files
mkdir -p "$CERTS"
cp "$REG_CA" "$CERTS/ca.crt"
step "TLS: an untrusted certificate -> exit 2 suggesting --ca-file, no plain-HTTP fallback, nothing pushed"
expect_error 2 "--ca-file" "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_TLS/$NS/untrusted"
keep_outputs untrusted
assert_contains "$ERR" "$REG_TLS" "the error names the registry"
assert_not_contains "$ERR_ALL" "plain HTTP" "a TLS registry is never retried over plain HTTP"
assert_eq 404 "$(manifest_status "https://$REG_TLS" "$NS/untrusted" 1.0.0 --cacert "$REG_CA")" "manifest pushed without trust"
expect_error 2 "--ca-file" "$KILN" --store "$T/pulled-untrusted" pull "docker://$REG_TLS/$NS/untrusted:1.0.0"

step "TLS: a CA that did not sign the certificate -> exit 2"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=another CA" \
  -keyout "$T/other.key" -out "$T/other.pem" 2>/dev/null || fail "openssl cannot make a CA"
expect_error 2 "$REG_TLS" "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_TLS/$NS/othertrust" --ca-file "$T/other.pem"
assert_eq 404 "$(manifest_status "https://$REG_TLS" "$NS/othertrust" 1.0.0 --cacert "$REG_CA")" "manifest pushed with another CA"

step "TLS: --ca-file of a file that is not there -> exit 1"
expect_error 1 "--ca-file" "$KILN" --store "$S" push hello:1.0.0 "docker://$REG_TLS/$NS/noca" --ca-file "$T/no-such-ca.pem"

step "TLS: --ca-file"
kiln_ok tls --store "$S" push hello:1.0.0 "docker://$REG_TLS/$NS/hello" --ca-file "$REG_CA" --json
assert_not_contains "$(cat "$T/tls.err")" "warning" "a verified TLS push warns about nothing"
assert_eq "$D" "$(skopeo inspect --cert-dir "$CERTS" "docker://$REG_TLS/$NS/hello:1.0.0" | jq -r .Digest)" \
  "skopeo (verifying TLS) reads the digest"
kiln_ok tlspull --store "$T/pulled-tls" pull "docker://$REG_TLS/$NS/hello:1.0.0" --ca-file "$REG_CA" --json
assert_eq "$D" "$(json_field "$T/tlspull.out" .digest)"
assert_store_clean "$T/pulled-tls"

step "TLS: --insecure works and warns"
kiln_ok insecure --store "$S" push hello:1.0.0 "docker://$REG_TLS/$NS/insecure" --insecure --json
assert_contains "$(cat "$T/insecure.err")" "kiln: warning: $REG_TLS: TLS certificates are not verified (--insecure)"
assert_eq "$D" "$(skopeo inspect --cert-dir "$CERTS" "docker://$REG_TLS/$NS/insecure:1.0.0" | jq -r .Digest)" \
  "the image pushed with --insecure"

step "no run showed the password"
assert_secret_free "$T"/*.out "$T"/*.err
