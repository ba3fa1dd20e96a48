# shellcheck shell=bash
# Shared by packaging/test-*.sh (sourced): messages, a free loopback port, the REST calls the tests
# make, and starting and stopping a server process with deadlines.
# The sourcing script sets `name` (for messages), `work` (its temporary directory), `base` (the
# server's URL) and `server_pid`.
# shellcheck disable=SC2154 # name, work and base are the sourcing script's

log() { echo "$name: $*"; }
fail() {
    echo "$name: FAILED: $*" >&2
    exit 1
}

# A loopback port nothing listens on.
free_port() {
    local candidate
    for candidate in $(shuf -i 20000-40000 -n 50); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    fail "no free port"
}

# Waits until $base/healthz answers, while the process $server_pid lives, for at most 60 s.
wait_healthy() {
    local deadline=$((SECONDS + 60))
    until curl -sf "$base/healthz" >/dev/null; do
        kill -0 "$server_pid" 2>/dev/null || fail "the server exited during start-up"
        [ "$SECONDS" -lt "$deadline" ] || fail "/healthz did not answer within 60 s"
        sleep 0.1
    done
}

# Stops $server_pid with SIGTERM; a clean stop (the server drains, the store flushes) exits 0.
stop_server() {
    kill -TERM "$server_pid"
    local status=0
    wait "$server_pid" || status=$?
    server_pid=""
    [ "$status" = 0 ] || fail "the server exited with $status on SIGTERM"
}

# Stops a server left running and shows its log when the test failed. For `trap … EXIT`.
stop_leftover_server() {
    if [ -n "${server_pid:-}" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$1" != 0 ] && [ -f "$work/server.log" ]; then
        echo "--- server log" >&2
        tail -n 40 "$work/server.log" >&2
    fi
}

# api METHOD PATH [JSON]: prints the answer's body; fails on a non-2xx answer. Sends $TOKEN if set.
api() {
    local method=$1 path=$2 body=${3:-}
    local args=(-sS -X "$method" -H 'Content-Type: application/json' -w '\n%{http_code}')
    [ -n "${TOKEN:-}" ] && args+=(-H "Authorization: Bearer $TOKEN")
    [ -n "$body" ] && args+=(-d "$body")
    local out code
    out=$(curl "${args[@]}" "$base$path")
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    [ "${code:0:1}" = 2 ] || fail "$method $path answered $code: $out"
    printf '%s' "$out"
}

# A string field of a JSON body on stdin (flat enough for the answers used here).
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }

# Signs an account in and sets TOKEN.
sign_in() {
    TOKEN=""
    TOKEN=$(api POST /api/v1/auth/token "{\"email\": \"$1\", \"password\": \"$2\"}" | json_field token)
    [ -n "$TOKEN" ] || fail "no token for $1"
}

# As the admin (TOKEN), creates the customer alice; signs her in and creates a ticket. Prints its number.
create_customer_ticket() {
    api POST /api/v1/admin/users '{"email": "alice@example.com", "name": "Alice", "password": "alice-password-1", "role": "customer"}' >/dev/null
    sign_in alice@example.com alice-password-1
    local number
    number=$(api POST /api/v1/tickets "{\"kind\": \"problem_report\", \"subject\": \"$1\", \"description\": \"Created by $name.\"}" | json_field number)
    [ -n "$number" ] || fail "no ticket number"
    echo "$number"
}

# Signs alice in and checks that ticket $1 still has the subject $2.
expect_ticket() {
    sign_in alice@example.com alice-password-1
    api GET "/api/v1/tickets/$1" | grep -qF "\"subject\":\"$2\"" || fail "ticket $1 is gone"
    log "ticket $1 is still there"
}
