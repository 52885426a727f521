#!/usr/bin/env bash
# The fleet benchmark from one command: builds the release binaries, then
# runs the whole flow (scripts/bench/flow.sh) on SQLite and on PostgreSQL,
# each on a fresh database, and with --scale also the 100,000-machine scale
# mode (scripts/bench/scale.sh) on both. Reports and logs go to $BENCH_DIR
# (default /tmp/attest-bench); docs/benchmarks.md explains the figures.
# Usage: scripts/bench/run.sh [--scale]
#   PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres; a
#   URL ending in /DATABASE, no query string) is where the benchmark
#   databases attest_flowbench / attest_scalebench are dropped and created.
#   MACHINES, CONCURRENCY and ATTEST_ROUNDS pass through to flow.sh
#   (set SCALE_MACHINES for scale.sh). The SQLite runs ignore DATABASE_URL.
set -eu
cd "$(dirname "$0")/../.."
scale=false
case "${1:-}" in
  --scale) scale=true ;;
  "") ;;
  *) echo "usage: $0 [--scale]" >&2; exit 2 ;;
esac
admin=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# Drops and creates database $1; prints its URL. Fails if either fails.
fresh_pg() {
  psql -q -v ON_ERROR_STOP=1 "$admin" -c "DROP DATABASE IF EXISTS $1" >/dev/null &&
    psql -q -v ON_ERROR_STOP=1 "$admin" -c "CREATE DATABASE $1" >/dev/null &&
    echo "${admin%/*}/$1"
}
cargo build --release --locked -p attestation -p attest-fleet-sim
failed=0
echo "== flow, SQLite"
env -u DATABASE_URL scripts/bench/flow.sh sqlite || failed=1
echo "== flow, PostgreSQL"
if url=$(fresh_pg attest_flowbench); then
  scripts/bench/flow.sh pg "$url" || failed=1
else
  echo "cannot create a fresh PostgreSQL database through $admin" >&2
  failed=1
fi
if $scale; then
  echo "== scale, SQLite"
  MACHINES=${SCALE_MACHINES:-100000} env -u DATABASE_URL scripts/bench/scale.sh sqlite || failed=1
  echo "== scale, PostgreSQL"
  if url=$(fresh_pg attest_scalebench); then
    MACHINES=${SCALE_MACHINES:-100000} scripts/bench/scale.sh pg "$url" || failed=1
  else
    echo "cannot create a fresh PostgreSQL database through $admin" >&2
    failed=1
  fi
fi
exit $failed
