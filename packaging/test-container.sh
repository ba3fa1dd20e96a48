#!/usr/bin/env bash
# The container image as an operator meets it: build the static binary and the image without a
# daemon (buildah), check its configuration, then run it from its unpacked layers (umoci) as its
# own non-root UID with a volume: /healthz and the image's HEALTHCHECK answer, a ticket is created,
# and a fresh container on the same volume still has it.
#
# Needs root (chroot, bind mounts). Everything it makes lives in a temporary directory, including
# buildah's image store. Environment: CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."

name=test-container
# shellcheck source=packaging/test-lib.sh
. packaging/test-lib.sh
[ "$(id -u)" = 0 ] || fail "run as root (chroot and bind mounts)"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
target=x86_64-unknown-linux-musl
work=$(mktemp -d)
server_pid=""
mounted=()
cleanup() {
    local status=$?
    stop_leftover_server "$status"
    for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || true; done
    # Never into a mount that could not be undone.
    rm -rf --one-file-system "$work"
    exit "$status"
}
trap cleanup EXIT

# --- tools
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v umoci >/dev/null || missing+=(umoci)
command -v musl-gcc >/dev/null || missing+=(musl-tools)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

# --- the static binary (ring and aws-lc compile C: Debian's musl-gcc does that for musl)
log "building the static binary"
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target "$target"
binary="$CARGO_TARGET_DIR/$target/release/deskbridge"
if readelf -l "$binary" | grep -q "program interpreter"; then fail "the binary is not static"; fi

# --- the image
context="$work/context"
mkdir -p "$context/data"
chmod 0750 "$context/data"
cp "$binary" "$context/deskbridge"
cp /etc/ssl/certs/ca-certificates.crt "$context/ca-certificates.crt"
storage=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
log "buildah build"
buildah "${storage[@]}" build --quiet --format docker --isolation chroot \
    -f packaging/container/Containerfile -t localhost/deskbridge:test "$context" >/dev/null
inspect() { buildah "${storage[@]}" inspect --type image --format "$1" localhost/deskbridge:test; }
[ "$(inspect '{{.Docker.Config.User}}')" = "10001:10001" ] || fail "the image does not run as 10001"
inspect '{{.Docker.Config.Healthcheck.Test}}' | grep -q "deskbridge healthcheck" || fail "no HEALTHCHECK"
inspect '{{.Docker.Config.Volumes}}' | grep -q "/var/lib/deskbridge" || fail "no volume"
inspect '{{.Docker.Config.ExposedPorts}}' | grep -q "8080/tcp" || fail "port 8080 is not exposed"
buildah "${storage[@]}" push --quiet localhost/deskbridge:test "oci:$work/oci:deskbridge" >/dev/null
compressed=$(du -cb "$work"/oci/blobs/sha256/* | tail -n 1 | cut -f 1)
log "image size: $compressed bytes compressed ($((compressed / 1024)) KiB)"
[ "$compressed" -lt $((30 * 1024 * 1024)) ] || fail "the image is larger than 30 MiB"

# --- run it: a fresh container (unpacked layers) with the image's user, environment and command
lines() { inspect "{{range $1}}{{println .}}{{end}}" | sed '/^$/d'; }
mapfile -t image_env < <(lines .Docker.Config.Env)
mapfile -t entrypoint < <(lines .Docker.Config.Entrypoint; lines .Docker.Config.Cmd)
mapfile -t healthcheck < <(lines .Docker.Config.Healthcheck.Test)
[ "${healthcheck[0]}" = CMD ] || fail "HEALTHCHECK is not in exec form"
healthcheck=("${healthcheck[@]:1}")
user=$(inspect '{{.Docker.Config.User}}')

port=$(free_port)
base="http://127.0.0.1:$port"
volume="$work/volume"
mkdir -m 0750 "$volume"
chown 10001:10001 "$volume"
printf 'admin-password-1\n' >"$work/admin-password"

# The host's network, as `podman run --network host` would; the bind address is moved to a free
# loopback port so the test cannot collide with another server here.
run_env=("${image_env[@]}"
    "DESKBRIDGE__SERVER__BIND=127.0.0.1:$port"
    "DESKBRIDGE__BOOTSTRAP__ADMIN_EMAIL=admin@example.com"
    "DESKBRIDGE__BOOTSTRAP__ADMIN_PASSWORD_FILE=/run/secrets/admin-password"
    "DESKBRIDGE__LOG__FORMAT=json")
rootfs=""
in_container() { # command… — runs inside the current container as the image's user
    exec env -i "${run_env[@]}" chroot --userspec="$user" --groups="${user#*:}" "$rootfs" "$@"
}

start_container() {
    local bundle="$work/bundle-$1"
    umoci unpack --image "$work/oci:deskbridge" "$bundle" >/dev/null
    rootfs="$bundle/rootfs"
    [ "$1" != 1 ] || log "image size: $(du -sb "$rootfs" | cut -f 1) bytes unpacked"
    mount --bind "$volume" "$rootfs/var/lib/deskbridge"
    mounted+=("$rootfs/var/lib/deskbridge")
    mkdir -p "$rootfs/run/secrets"
    install -m 0400 -o 10001 -g 10001 "$work/admin-password" "$rootfs/run/secrets/admin-password"
    : >"$work/server.log"
    # The subshell becomes the server (exec), so $server_pid is the process SIGTERM must reach.
    (in_container "${entrypoint[@]}") 2>>"$work/server.log" &
    server_pid=$!
    wait_healthy
    [ "$(stat -c %u "/proc/$server_pid")" = 10001 ] || fail "the server does not run as UID 10001"
    (in_container "${healthcheck[@]}") || fail "the image's HEALTHCHECK fails"
}

stop_container() {
    stop_server
    umount "$rootfs/var/lib/deskbridge"
    mounted=()
}

log "running the image as $user on $base"
start_container 1
sign_in admin@example.com admin-password-1
number=$(create_customer_ticket "Container ticket")
log "created ticket $number"
stop_container
[ "$(stat -c %u "$volume/db")" = 10001 ] || fail "the store on the volume is not owned by 10001"

log "a fresh container on the same volume"
start_container 2
expect_ticket "$number" "Container ticket"
stop_container

log "passed (image $compressed bytes compressed)"
