#!/usr/bin/env bash
# Property-based API testing with schemathesis, a real OpenAPI client: it
# generates requests from /openapi.json (valid and invalid) against a fresh
# server and checks that nothing answers 5xx, that status codes and bodies
# match the document, and that schema-valid requests are accepted. Both
# applications of the one server process are tested: the attestation API
# (as the break-glass operator) and the certificate-lifecycle API on its
# own listener (with an admin API key from its day-0 bootstrap).
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
# A loopback Talos Image Factory (POST /schematics → {"id": sha256(body)}),
# so /register can succeed without the internet.
factory_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$factory_port" > "$work/factory.log" 2>&1 <<'PY' &
import hashlib, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path != "/schematics" or not body.startswith(b"customization:"):
            self.send_response(400); self.end_headers(); return
        out = json.dumps({"id": hashlib.sha256(body).hexdigest()}).encode()
        self.send_response(201); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out))); self.end_headers(); self.wfile.write(out)
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
factory=$!
hex16() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
token="schemathesis-$(hex16)"
bootstrap_token="bootstrap-$(hex16)"
port=$(free_port)
certs_port=$(free_port)
# Loopback is exempt from the per-source rate limits: every generated
# request comes from 127.0.0.1 and must reach the logic behind the limit
# (the limits themselves are tested in crates/server/tests/limits.rs).
# The certificate-lifecycle listener speaks plain HTTP here (ITL_CERTS_TLS=off).
(cd "$work" && ITL_RATE_LIMIT_EXEMPT=127.0.0.0/8 ITL_ADMIN_TOKEN="$token" ITL_CA_KEY_PASSPHRASE=schemathesis ITL_LOG=warn \
   ITL_IMAGE_FACTORY_URL="http://127.0.0.1:$factory_port" \
   ITL_CERTS_LISTEN="127.0.0.1:$certs_port" ITL_CERTS_TLS=off CERTCTL_BOOTSTRAP_TOKEN="$bootstrap_token" \
   exec "$binary" serve --listen "127.0.0.1:$port") > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server $factory 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null \
    && curl -sf "http://127.0.0.1:$certs_port/health" >/dev/null && break
  sleep 0.1
done
# The certificate-lifecycle API's first administrator key. The bootstrap
# closes after this use, which the configuration's comment explains.
certs_key=$(curl -sf -X POST -H 'content-type: application/json' \
  -d "{\"token\": \"$bootstrap_token\", \"actor_name\": \"schemathesis\"}" \
  "http://127.0.0.1:$certs_port/api/v1/auth/bootstrap" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["key_value"])')
# Resources with known ids (the configuration's dictionaries name them),
# down to an issued certificate, so generated requests find something.
certs_post() {
  curl -sf -X POST -H "Authorization: Bearer $certs_key" -H 'content-type: application/json' \
    -d "$2" "http://127.0.0.1:$certs_port$1" >/dev/null \
    || { echo "schemathesis: seeding $1 failed" >&2; exit 1; }
}
certs_post /api/v1/issuers '{"id": "iss-st", "name": "schemathesis CA", "type": "GenericCA",
  "config": {"common_name": "schemathesis root", "key_algorithm": "ECDSA-P256"}}'
certs_post /api/v1/teams '{"id": "t-st", "name": "schemathesis team"}'
certs_post /api/v1/owners '{"id": "o-st", "name": "schemathesis owner", "email": "st@example.com", "team_id": "t-st"}'
certs_post /api/v1/renewal-policies '{"id": "rp-st", "name": "schemathesis policy", "max_retries": 1}'
certs_post /api/v1/profiles '{"id": "prof-st", "name": "schemathesis profile",
  "allowed_key_algorithms": [{"algorithm": "ECDSA", "min_size": 256}]}'
certs_post /api/v1/certificates '{"id": "mc-st", "name": "schemathesis", "common_name": "st.example.com",
  "owner_id": "o-st", "team_id": "t-st", "issuer_id": "iss-st", "renewal_policy_id": "rp-st",
  "certificate_profile_id": "prof-st"}'
certs_post /api/v1/certificates/mc-st/renew '{}'

cd "$work"
# Both runs always run, so one failing does not hide the other's report.
status=0
"$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" \
  -H "Authorization: Bearer $token" --checks all --max-examples 100 \
  --seed 1 --no-color || status=1
"$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run "http://127.0.0.1:$certs_port/openapi.json" \
  -H "Authorization: Bearer $certs_key" --checks all --max-examples 50 \
  --seed 1 --no-color || status=1
if grep -q "panicked" "$work/server.log"; then
  echo "schemathesis: the server panicked:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
exit "$status"
