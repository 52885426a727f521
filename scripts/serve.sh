#!/usr/bin/env bash
# Runs the attestation service on the embedded SQLite default
# (127.0.0.1:9000, database under ./data). Extra arguments go to
# `attestation serve`, e.g. scripts/serve.sh --listen 0.0.0.0:9000
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo run --release --locked -p attestation -- serve "$@"
