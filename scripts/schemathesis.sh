#!/usr/bin/env bash
# Property-based API testing with schemathesis, a real OpenAPI client: it
# generates requests from /openapi.json (valid and invalid) against a fresh
# server and checks that nothing answers 5xx, that status codes and bodies
# match the document, and that schema-valid requests are accepted.
# Usage: scripts/schemathesis.sh PATH/TO/attestation
set -euo pipefail
binary=$(realpath "$1")
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/target/schemathesis-venv"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis>=4,<5"
fi

work=$(mktemp -d)
token="schemathesis-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work" && ITL_ADMIN_TOKEN="$token" ITL_CA_KEY_PASSPHRASE=schemathesis ITL_LOG=warn \
   exec "$binary" serve --listen "127.0.0.1:$port") > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done

cd "$work"
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  -H "Authorization: Bearer $token" --checks all --max-examples 100 \
  --seed 1 --no-color
if grep -q "panicked" "$work/server.log"; then
  echo "schemathesis: the server panicked:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
