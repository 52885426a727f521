#!/usr/bin/env bash
# Prints a PostgreSQL URL the tests can use to create throw-away databases,
# starting the local cluster if it is installed but stopped. On a fresh
# Debian install (peer/scram auth, no password) it gives the `postgres` role a
# password for loopback connections. Exits non-zero if no server can be had.
set -euo pipefail

url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
try() { psql "$1" -qtAc 'select 1' >/dev/null 2>&1; }

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  for version in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 2>&1 || true
  done
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

if try "$url"; then echo "$url"; exit 0; fi

fallback="postgres://postgres:postgres@127.0.0.1:5432/postgres"
if try "$fallback"; then echo "$fallback"; exit 0; fi
if [ "$(id -u)" -eq 0 ] && command -v su >/dev/null; then
  su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >&2 && try "$fallback" && { echo "$fallback"; exit 0; }
fi
echo "postgres-test-url: no PostgreSQL reachable on 127.0.0.1:5432" >&2
exit 1
