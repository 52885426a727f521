#!/usr/bin/env bash
# Times the scale-mode reads (median of 5, curl) against an existing
# database, e.g. a scale run's PostgreSQL database after autovacuum.
# Usage: scripts/bench/probe.sh [DATABASE_URL]   (SQLite: $BENCH_DIR/data)
set -u
cd "$(dirname "$0")/../.."
work=${BENCH_DIR:-/tmp/attest-bench}
T=probe-$(openssl rand -hex 16)
export ITL_ADMIN_TOKEN=$T ITL_LOG=warn ITL_LISTEN=127.0.0.1:9000 ITL_DATA_DIR=$work/data
if [ -n "${1:-}" ]; then export DATABASE_URL=$1; fi
. scripts/bench/server.sh
start_server "$work/server-probe.log" || exit 1
for path in "/api/v1/machines?page=1&per_page=100" "/api/v1/machines?page=500&per_page=100" \
  "/api/v1/machines?page=1000&per_page=100" "/api/v1/machines?status=attested&page=1&per_page=100" \
  "/metrics" "/api/v1/audit/verify"; do
  median=$(for _ in 1 2 3 4 5; do
    curl -s -o /dev/null -H "Authorization: Bearer $T" -w '%{time_total}\n' "localhost:9000$path"
  done | sort -n | sed -n 3p)
  echo "$path median ${median}s"
done
