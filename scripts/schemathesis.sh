#!/usr/bin/env bash
# API fuzzing: schemathesis against the OpenAPI document the running binary serves, once with an
# admin token and once with a customer token. Checks: no 5xx (not_a_server_error) and every answer
# as documented (status code, content type, body schema). Installs schemathesis (pinned) into a
# venv under the target dir; needs python3 with venv. Runs in a few minutes (examples are limited).
#
#   scripts/schemathesis.sh              against the debug build
#   SCHEMATHESIS_EXAMPLES=50 scripts/schemathesis.sh   more examples per operation
#   DESKBRIDGE_BIN=target/debug/deskbridge scripts/schemathesis.sh   a binary built already
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
examples=${SCHEMATHESIS_EXAMPLES:-40}
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target"
target=$(cd "$target" && pwd)
venv="$target/schemathesis-$version"
if [ ! -x "$venv/bin/schemathesis" ]; then
    echo "== installing schemathesis $version into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

# `cargo test` builds the binary with the tests' features; building it alone would compile again.
if [ -z "${DESKBRIDGE_BIN:-}" ]; then
    cargo build --locked --bin deskbridge
fi
work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
admin_password=schemathesis-admin-password
cat >"$work/deskbridge.toml" <<TOML
[server]
bind = "127.0.0.1:$port"
[storage]
data_dir = "$work/data"
cache_mb = 16
[sdp]
# Nothing listens there: sync runs (so its admin operations answer) and finds SDP unreachable.
base_url = "http://127.0.0.1:9"
api_key = "schemathesis-api-key"
[bootstrap]
admin_email = "admin@example.com"
admin_password = "$admin_password"
[auth]
# The fuzzer signs in thousands of times from one address.
login_attempts_per_account = 1000000
login_attempts_per_address = 1000000
[log]
level = "error"
TOML
env -u DESKBRIDGE_CONFIG "${DESKBRIDGE_BIN:-$target/debug/deskbridge}" serve --config "$work/deskbridge.toml" \
    >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; echo "schemathesis: the server exited" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null

token() {
    curl -fsS -X POST "$base/api/v1/auth/token" -H 'Content-Type: application/json' \
        -d "{\"email\": \"$1\", \"password\": \"$2\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
admin=$(token admin@example.com "$admin_password")
curl -fsS -X POST "$base/api/v1/admin/users" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' \
    -d '{"email": "customer@example.com", "name": "Customer", "password": "customer-password-123", "role": "customer", "organization": "Acme"}' >/dev/null
customer=$(token customer@example.com customer-password-123)
# A ticket, so that routes with a ticket number have something to find.
curl -fsS -X POST "$base/api/v1/tickets" -H "Authorization: Bearer $customer" \
    -H 'Content-Type: application/json' \
    -d '{"kind": "problem_report", "subject": "Fuzzed", "description": "A ticket to find."}' >/dev/null

status=0
# The customer first: the admin's run may disable or reset any account, its own included.
for who in customer admin; do
    echo "== schemathesis as $who ($examples examples per operation)"
    # Signing out or revoking the token would end the run's identity: those operations are left out.
    # Run from the temp dir: schemathesis keeps a cache in the working directory.
    (cd "$work" && "$venv/bin/schemathesis" run "$base/api/v1/openapi.json" \
        --url "$base" \
        --header "Authorization: Bearer ${!who}" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --max-examples "$examples" \
        --exclude-method DELETE --exclude-path-regex '^/api/v1/auth/' \
        --request-timeout 30 \
        --no-color \
        --seed 1) \
        || status=1
done
if [ "$status" != 0 ]; then
    echo "== server log (last lines)"
    tail -n 40 "$work/server.log"
fi
exit "$status"
