#!/usr/bin/env bash
# Crash soak: ROUNDS rounds (default 10) of kill -9 of the deskbridge binary while customers create
# tickets against a fake SDP. After each restart every acknowledged (201) ticket must exist exactly
# once, and every stored ticket must reach the fake SDP exactly once. The rounds run in the
# integration test `crash::kill_9_during_creation_loses_no_acknowledged_ticket_and_sends_each_once`.
#
#   scripts/crash-soak.sh            10 rounds against the debug build
#   scripts/crash-soak.sh 2          2 rounds (what CI runs)
#   scripts/crash-soak.sh 10 --release   against the release build
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=10
release=
for arg in "$@"; do
    case "$arg" in
        --release) release=1 ;;
        '' | *[!0-9]*) echo "usage: $0 [ROUNDS] [--release]" >&2; exit 2 ;;
        *) rounds=$arg ;;
    esac
done

if [ -n "$release" ]; then
    cargo build --locked --release --bin deskbridge
    export DESKBRIDGE_CRASH_BIN="${CARGO_TARGET_DIR:-target}/release/deskbridge"
fi
export DESKBRIDGE_CRASH_ROUNDS="$rounds"
echo "== crash soak: $rounds rounds of kill -9${release:+ (release build)}"
cargo test --locked --test integration -- --exact \
    crash::kill_9_during_creation_loses_no_acknowledged_ticket_and_sends_each_once --nocapture
