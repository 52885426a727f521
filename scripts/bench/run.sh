#!/usr/bin/env bash
# The fleet benchmark from one command: builds the release binaries, then
# runs the whole flow (scripts/bench/flow.sh) on SQLite and on PostgreSQL,
# each on a fresh database, and with --scale also the 100,000-machine scale
# mode (scripts/bench/scale.sh) on both. Reports and logs go to $BENCH_DIR
# (default /tmp/attest-bench); docs/benchmarks.md explains the figures.
# Usage: scripts/bench/run.sh [--scale]
#   PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres) is
#   where the benchmark databases attest_flowbench / attest_scalebench are
#   dropped and created. MACHINES and CONCURRENCY pass through to flow.sh
#   (scale.sh takes MACHINES too; set SCALE_MACHINES for it).
set -eu
cd "$(dirname "$0")/../.."
scale=false
case "${1:-}" in
  --scale) scale=true ;;
  "") ;;
  *) echo "usage: $0 [--scale]" >&2; exit 2 ;;
esac
admin=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
fresh_pg() {
  psql -q "$admin" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
  echo "${admin%/*}/$1"
}
cargo build --release --locked -p attestation -p attest-fleet-sim
failed=0
echo "== flow, SQLite"
scripts/bench/flow.sh sqlite || failed=1
echo "== flow, PostgreSQL"
scripts/bench/flow.sh pg "$(fresh_pg attest_flowbench)" || failed=1
if $scale; then
  echo "== scale, SQLite"
  MACHINES=${SCALE_MACHINES:-100000} scripts/bench/scale.sh sqlite || failed=1
  echo "== scale, PostgreSQL"
  MACHINES=${SCALE_MACHINES:-100000} scripts/bench/scale.sh pg "$(fresh_pg attest_scalebench)" || failed=1
fi
exit $failed
