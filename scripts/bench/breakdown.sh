#!/usr/bin/env bash
# Where the server's time goes (issue 23): the whole flow with the server
# and the simulator pinned to separate cores (SERVER_CPUS=0, SIM_CPUS=1
# unless set), the server's own CPU time per complete flow and per
# verified quote (fleet-sim --server-pid), a perf profile of the server
# over the run (flows, then ATTEST_ROUNDS re-attests per machine), and
# SQL statements and committed write transactions per flow and per
# re-attest: two more runs, without and with the re-attests, with sqlx's
# statement log on (statements of the background tasks, which poll on a
# timer, are left out by their tables) and the commit counter of /metrics.
# Usage: scripts/bench/breakdown.sh [DATABASE_URL]   (SQLite without one;
#   a PostgreSQL URL names a database that is dropped and created first)
#   MACHINES (default 500), ATTEST_ROUNDS (default 10), CONCURRENCY (64);
#   AK=p256 for P-256 AKs (flow.sh).
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
[ -n "$url" ] && backend=pg
fresh_db() {
  [ -z "$url" ] && return 0
  local admin="${url%/*}/postgres" db="${url##*/}"
  psql -q -v ON_ERROR_STOP=1 "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null
  psql -q -v ON_ERROR_STOP=1 "$admin" -c "CREATE DATABASE $db" >/dev/null
}
label=breakdown-$backend
fresh_db
PROFILE="$work/perf-$backend.data" scripts/bench/flow.sh "$label" $url >/dev/null
# Request statements and commits of a run labelled $1.
statements() {
  grep 'sqlx::query' "$work/server-$1.log" |
    grep -cvE 'rate_limit_counts|activity_outbox|extension_webhook_queue' || true
}
commits() { sed -n 's/^attestation_db_write_transactions_total{outcome="committed"} //p' "$work/metrics-$1.txt"; }
for rounds in 0 "$ATTEST_ROUNDS"; do
  fresh_db
  ATTEST_ROUNDS=$rounds ITL_LOG=info,sqlx::query=debug \
    scripts/bench/flow.sh "$backend-count-$rounds" $url >/dev/null
done
s0=$(statements "$backend-count-0") s1=$(statements "$backend-count-$ATTEST_ROUNDS")
c0=$(commits "$backend-count-0") c1=$(commits "$backend-count-$ATTEST_ROUNDS")
quotes=$((MACHINES * ATTEST_ROUNDS))
echo "== $backend, ${AK:-p384} AKs: $MACHINES machines, $ATTEST_ROUNDS re-attests each, concurrency $CONCURRENCY, server on CPU $SERVER_CPUS, simulator on CPU $SIM_CPUS"
grep -E "machines/s|whole flow|server CPU|verified quotes/s|service throughput" "$work/sim-$label.txt"
echo "per complete flow: $(echo "scale=1; $s0 / $MACHINES" | bc) statements, $(echo "scale=2; $c0 / $MACHINES" | bc) committed write transactions"
echo "per re-attest (challenge + attest): $(echo "scale=2; ($s1 - $s0) / $quotes" | bc) statements, $(echo "scale=2; ($c1 - $c0) / $quotes" | bc) committed write transactions"
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
