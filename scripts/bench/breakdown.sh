#!/usr/bin/env bash
# Where the server's time goes (issue 23): the whole flow with the server
# and the simulator pinned to separate cores (SERVER_CPUS=0, SIM_CPUS=1
# unless set), the server's own CPU time per complete flow and per
# verified quote (fleet-sim --server-pid), and a perf profile of the
# server over the run (flows, then ATTEST_ROUNDS re-attests per machine).
# Usage: scripts/bench/breakdown.sh [DATABASE_URL]   (SQLite without one;
#   a PostgreSQL URL names a database that is dropped and created first)
#   MACHINES (default 500), ATTEST_ROUNDS (default 10), CONCURRENCY (64).
# Needs release builds (cargo build --release -p attestation -p attest-fleet-sim)
# and perf (Debian: linux-perf). Prints a summary; files in $BENCH_DIR.
set -eu
cd "$(dirname "$0")/../.."
work=${BENCH_DIR:-/tmp/attest-bench}
mkdir -p "$work"
url=${1:-}
export MACHINES=${MACHINES:-500} CONCURRENCY=${CONCURRENCY:-64} ATTEST_ROUNDS=${ATTEST_ROUNDS:-10}
export SERVER_CPUS=${SERVER_CPUS-0} SIM_CPUS=${SIM_CPUS-1}
backend=sqlite
if [ -n "$url" ]; then
  backend=pg
  admin="${url%/*}/postgres" db="${url##*/}"
  psql -q -v ON_ERROR_STOP=1 "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null
  psql -q -v ON_ERROR_STOP=1 "$admin" -c "CREATE DATABASE $db" >/dev/null
fi
label=breakdown-$backend
PROFILE="$work/perf-$backend.data" scripts/bench/flow.sh "$label" $url >/dev/null
echo "== $backend: $MACHINES machines, $ATTEST_ROUNDS re-attests each, concurrency $CONCURRENCY, server on CPU $SERVER_CPUS, simulator on CPU $SIM_CPUS"
grep -E "machines/s|whole flow|server CPU|verified quotes/s|service throughput" "$work/sim-$label.txt"
profile() { perf report -i "$work/perf-$backend.data" --no-children -g none --stdio --percent-limit 0 "$@" 2>/dev/null | grep -E '^ +[0-9.]+%'; }
echo "-- the server's profile (self time), by kind:"
profile --sort symbol | awk '
  { pct = $1; sub(/%/, "", pct); sym = $0 }
  sym ~ /\[k\]/ { k["kernel (scheduling, syscalls, I/O)"] += pct; next }
  sym ~ /aws_lc|p256|p384|sha2|bignum|ecdsa|rsa/ { k["cryptography"] += pct; next }
  sym ~ /sqlite3|pcache|btree|vdbe/ { k["SQLite"] += pct; next }
  sym ~ /malloc|free|_int_|unlink_chunk|memmove|memcpy/ { k["allocator and copies"] += pct; next }
  { k["other (server, tokio, hyper, serde, …)"] += pct }
  END { for (n in k) printf "  %6.2f%%  %s\n", k[n], n }' | sort -rn
echo "-- by symbol (top 20):"
profile --sort symbol | head -20 | sed -E 's/[[:space:]]+$//' | cut -c1-100
