#!/usr/bin/env bash
# Scale mode: self-register, approve and attest N machines (default
# 100,000), then time machine-list pages, /metrics and audit verification
# over the resulting log, and report the server's peak RSS.
# Usage: scripts/bench/scale.sh LABEL [DATABASE_URL]   (N from $MACHINES)
# Needs release builds: cargo build --release -p attestation -p attest-fleet-sim
set -u
cd "$(dirname "$0")/../.."
label=${1:?label}
machines=${MACHINES:-100000}
work=${BENCH_DIR:-/tmp/attest-bench}
mkdir -p "$work"
T=bench-token-$(openssl rand -hex 16)
rm -rf "$work/data"
# The short path: no nonce, quote or AK credential required (the flow
# benchmark covers those); the fleet is what grows here.
export ITL_DATA_DIR=$work/data ITL_ADMIN_TOKEN=$T ITL_CONFIG_CACHE_DIR=examples/role-configs \
  ITL_LISTEN=127.0.0.1:9000 ITL_LOG=warn
if [ -n "${2:-}" ]; then export DATABASE_URL=$2; fi
. scripts/bench/server.sh
start_server "$work/server-scale-$label.log" || exit 1
target/release/attestation-fleet-sim --url http://127.0.0.1:9000 --scale -n "$machines" -c 64 \
  --server-pid "$server" --json "$work/scale-$label.json" | tee "$work/scale-$label.txt"
exit "${PIPESTATUS[0]}"
