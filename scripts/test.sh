#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test on SQLite and,
# through TEST_DATABASE_URL, on PostgreSQL (each test in its own fresh
# database). Also what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"

if url=$(scripts/postgres-test-url.sh); then
  export TEST_DATABASE_URL="$url"
  echo "test: PostgreSQL tests enabled"
elif [ "${CI:-}" = "true" ]; then
  echo "test: PostgreSQL is required in CI" >&2
  exit 1
else
  echo "test: WARNING: no PostgreSQL; running the SQLite half only" >&2
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
mkdir -p target
cargo test --workspace --locked 2>&1 | tee target/test-output.log
echo "== schemathesis against the served OpenAPI document"
scripts/schemathesis.sh target/debug/attestation
# One closing line with the totals of every cargo test binary above.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.log
