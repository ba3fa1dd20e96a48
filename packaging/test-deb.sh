#!/usr/bin/env bash
# The .deb as an admin meets it: build it, lintian, install, files, owners and modes, the service
# run as its own user with the installed conffile (systemd is not PID 1 here, so the unit is only
# verified), first admin through the setup token, a ticket, an upgrade that keeps the data and the
# edited conffile, then remove (keeps data and config) and purge (removes them).
#
# Needs root, and changes this machine: it installs, upgrades and purges the deskbridge package
# (purging any deskbridge already installed first). CI runs it as root.
# Environment: CARGO_TARGET_DIR (default ./target); DESKBRIDGE_DEB_NO_BUILD=1 reuses the release
# binary already built there.
set -euo pipefail
cd "$(dirname "$0")/.."

name=test-deb
# shellcheck source=packaging/test-lib.sh
. packaging/test-lib.sh
[ "$(id -u)" = 0 ] || fail "run as root (it installs packages)"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
work=$(mktemp -d)
server_pid=""
cleanup() {
    local status=$?
    stop_leftover_server "$status"
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

# --- tools
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
missing=()
command -v lintian >/dev/null || missing+=(lintian)
command -v curl >/dev/null || missing+=(curl)
command -v systemd-analyze >/dev/null || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- build: the package, and the same binary as a newer version for the upgrade
no_build=()
[ "${DESKBRIDGE_DEB_NO_BUILD:-}" = 1 ] && no_build=(--no-build)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
head -n 1 packaging/deb/changelog | grep -qF "deskbridge (${version}-1)" ||
    fail "packaging/deb/changelog does not start with version ${version}-1 (Cargo.toml)"
deb="$work/deskbridge_${version}-1_amd64.deb"
upgrade="$work/deskbridge_${version}+upgrade-1_amd64.deb"
log "building $(basename "$deb")"
cargo deb --locked "${no_build[@]}" --output "$deb"
cargo deb --locked --no-build --deb-version "${version}+upgrade-1" --output "$upgrade"
size=$(stat -c %s "$deb")
log "package size: $size bytes ($((size / 1024)) KiB)"
[ "$size" -lt $((15 * 1024 * 1024)) ] || fail "the package is larger than 15 MiB"

# --- lintian: no errors (warnings are printed; overrides live in packaging/deb/lintian-overrides)
log "lintian"
lintian --fail-on error "$deb" || fail "lintian reports errors"

# --- a clean machine
if dpkg-query -W -f='${Status}' deskbridge 2>/dev/null | grep -q installed; then
    log "purging the deskbridge package left by an earlier run"
    dpkg -P deskbridge >/dev/null
fi

# --- install
log "dpkg -i"
dpkg -i "$deb" </dev/null >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i"; }
cat "$work/install.log"
grep -q "http://127.0.0.1:8080" "$work/install.log" || fail "postinst does not say where the console is"
grep -q "setup_token" "$work/install.log" || fail "postinst does not say how to create the first admin"

expect_stat() { # path "mode owner group"
    local actual
    actual=$(stat -c '%a %U %G' "$1")
    [ "$actual" = "$2" ] || fail "$1 is '$actual', expected '$2'"
}
expect_stat /usr/bin/deskbridge "755 root root"
expect_stat /etc/deskbridge "750 root deskbridge"
expect_stat /etc/deskbridge/deskbridge.toml "640 root deskbridge"
expect_stat /var/lib/deskbridge "750 deskbridge deskbridge"
dpkg-query -W -f='${Conffiles}\n' deskbridge | grep -q "/etc/deskbridge/deskbridge.toml" ||
    fail "the config is not a conffile"
uid=$(id -u deskbridge)
[ "$uid" -lt 1000 ] || fail "deskbridge is not a system user (uid $uid)"
[ "$(getent passwd deskbridge | cut -d: -f7)" = /usr/sbin/nologin ] || fail "deskbridge has a login shell"
unit=/lib/systemd/system/deskbridge.service
[ -f "$unit" ] || unit=/usr/lib/systemd/system/deskbridge.service
[ -f "$unit" ] || fail "no systemd unit installed"
[ -L /etc/systemd/system/multi-user.target.wants/deskbridge.service ] || fail "the service is not enabled"
log "systemd-analyze verify $unit"
systemd-analyze verify "$unit" || fail "systemd-analyze verify"
deps=$(dpkg-query -W -f='${Depends}' deskbridge)
log "depends: $deps"
echo "$deps" | tr ',' '\n' | sed 's/^ *//; s/ .*//' | while read -r dep; do
    case "$dep" in libc6 | libgcc-s1 | ca-certificates) ;; *) fail "unexpected dependency $dep" ;; esac
done

# --- run it as the service would: its user, the installed conffile
port=$(free_port)
base="http://127.0.0.1:$port"

start_server() {
    : >"$work/server.log"
    # server.bind is moved off 8080 only so the test cannot collide with another server here.
    (cd / && exec setpriv --reuid deskbridge --regid deskbridge --init-groups \
        env -i PATH=/usr/bin:/bin DESKBRIDGE__SERVER__BIND="127.0.0.1:$port" \
        /usr/bin/deskbridge serve --config /etc/deskbridge/deskbridge.toml) 2>>"$work/server.log" &
    server_pid=$!
    wait_healthy
}

log "serving as the deskbridge user on $base"
start_server
setup_token=$(sed -n 's/.*"token": "\([^"]*\)".*/\1/p' "$work/server.log" | head -n 1)
[ -n "$setup_token" ] || fail "no setup token in the log"
TOKEN=""
api POST /api/v1/setup "{\"token\": \"$setup_token\", \"email\": \"admin@example.com\", \"name\": \"Admin\", \"password\": \"admin-password-1\"}" >/dev/null
sign_in admin@example.com admin-password-1
number=$(create_customer_ticket "Packaged ticket")
log "created ticket $number"
stop_server
[ "$(stat -c %U /var/lib/deskbridge/db)" = deskbridge ] || fail "the store is not owned by deskbridge"

# --- upgrade over it with an edited conffile
sed -i 's/^cache_mb = 64$/cache_mb = 32/' /etc/deskbridge/deskbridge.toml
echo "# edited by the admin" >>/etc/deskbridge/deskbridge.toml
log "dpkg -i (upgrade)"
dpkg -i "$upgrade" </dev/null >"$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log"; fail "upgrade"; }
[ "$(dpkg-query -W -f='${Version}' deskbridge)" = "${version}+upgrade-1" ] || fail "the upgrade did not install"
grep -q "^# edited by the admin$" /etc/deskbridge/deskbridge.toml || fail "the edited conffile was replaced"
grep -q "^cache_mb = 32$" /etc/deskbridge/deskbridge.toml || fail "the edited conffile was replaced"
[ ! -e /etc/deskbridge/deskbridge.toml.dpkg-new ] || fail "dpkg left the new conffile aside"
expect_stat /var/lib/deskbridge "750 deskbridge deskbridge"
start_server
expect_ticket "$number" "Packaged ticket"
stop_server

# --- remove keeps data and config; purge removes them
log "dpkg -r"
dpkg -r deskbridge >/dev/null
[ ! -e /usr/bin/deskbridge ] || fail "dpkg -r left the binary"
[ -d /var/lib/deskbridge/db ] || fail "dpkg -r removed the data"
[ -f /etc/deskbridge/deskbridge.toml ] || fail "dpkg -r removed the config"
log "dpkg -P"
dpkg -P deskbridge >/dev/null
[ ! -e /var/lib/deskbridge ] || fail "dpkg -P left /var/lib/deskbridge"
[ ! -e /etc/deskbridge ] || fail "dpkg -P left /etc/deskbridge"
! getent passwd deskbridge >/dev/null || fail "dpkg -P left the deskbridge user"

log "passed (package $size bytes)"
