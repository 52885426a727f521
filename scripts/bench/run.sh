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
# Drops and creates database $1, then runs the rest of the arguments with
# its URL appended. Fails, and says so, if the database cannot be made.
on_fresh_pg() {
  local db=$1
  shift
  if psql -q -v ON_ERROR_STOP=1 "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null &&
    psql -q -v ON_ERROR_STOP=1 "$admin" -c "CREATE DATABASE $db" >/dev/null; then
    "$@" "${admin%/*}/$db"
  else
    echo "cannot create a fresh PostgreSQL database through $admin" >&2
    return 1
  fi
}
cargo build --release --locked -p attestation -p attest-fleet-sim
failed=0
echo "== flow, SQLite"
env -u DATABASE_URL scripts/bench/flow.sh sqlite || failed=1
echo "== flow, PostgreSQL"
on_fresh_pg attest_flowbench scripts/bench/flow.sh pg || failed=1
if $scale; then
  scale_machines=${SCALE_MACHINES:-100000}
  echo "== scale, SQLite"
  env -u DATABASE_URL MACHINES="$scale_machines" scripts/bench/scale.sh sqlite || failed=1
  echo "== scale, PostgreSQL"
  on_fresh_pg attest_scalebench env MACHINES="$scale_machines" scripts/bench/scale.sh pg || failed=1
fi
exit $failed
