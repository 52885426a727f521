#!/usr/bin/env bash
# Replays the security review's attacks (issue 15 items 1, 3, 4, 5, 6) against
# a fresh server and prints each request with the server's answer.
# Usage: scripts/security/replay-review.sh PATH/TO/attestation
# (the attacks of issue 15; each answer shown is the fixed behaviour)
set -uo pipefail
bin=$(realpath "$1"); here=$(cd "$(dirname "$0")" && pwd)
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d); idp_port=$(free); fac_port=$(free); port=$(free)
export IDP_KEY_DIR="$work"
python3 "$here/idp.py" sign init "{}" >/dev/null  # creates the signing key once
python3 "$here/idp.py" serve "$idp_port" & idp=$!
python3 - "$fac_port" <<'PY' >/dev/null 2>&1 &
import hashlib, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        out = json.dumps({"id": hashlib.sha256(body).hexdigest()}).encode()
        self.send_response(201); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out))); self.end_headers(); self.wfile.write(out)
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
fac=$!
iss="http://127.0.0.1:$idp_port/realms/itl"
(cd "$work" && ITL_ADMIN_TOKEN=breakglass-token-0123456789 ITL_CA_KEY_PASSPHRASE=demo ITL_LOG=warn \
  ITL_OIDC_ISSUER="$iss" ITL_OIDC_CLIENT_ID=attestation-service ITL_REQUIRE_QUOTE=true \
  ITL_TRUSTED_PROXIES=127.0.0.1 ITL_IMAGE_FACTORY_URL="http://127.0.0.1:$fac_port" \
  exec "$bin" serve --listen "127.0.0.1:$port") > "$work/server.log" 2>&1 & srv=$!
trap 'kill $srv $idp $fac 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
U="http://127.0.0.1:$port"
tok() { python3 "$here/idp.py" sign "$iss" "$1"; }
show() { echo "\$ $*" | sed -E 's/(Bearer )[A-Za-z0-9._-]{20,}/\1<token>/'; "$@" -s -w '\n-> HTTP %{http_code}\n'; echo; }
alice=$(tok '{"sub":"u-alice","preferred_username":"alice","aud":"attestation-service","realm_access":{"roles":["attestation-operator"]}}')
BG="Authorization: Bearer breakglass-token-0123456789"; J="Content-Type: application/json"

echo "## Item 1: minting operator certificates for other names"
show curl -X POST "$U/api/v1/operator-certs" -H "$BG" -H "$J" -d '{"cn":"alice"}'
show curl -X POST "$U/api/v1/operator-certs" -H "Authorization: Bearer $alice" -H "$J" -d '{"cn":"bob","valid_days":397}'
show curl -X POST "$U/api/v1/operator-certs" -H "Authorization: Bearer $alice" -H "$J" -d '{"valid_days":397}'
echo "(alice's own certificate, default lifetime:)"
curl -s -X POST "$U/api/v1/operator-certs" -H "Authorization: Bearer $alice" -H "$J" -d '{}' | python3 -c 'import json,sys; d=json.load(sys.stdin); print({k: d[k] for k in d if not k.endswith("pem")})'
echo

echo "## Item 5: a token whose operator role comes from another client; then one without aud"
evil=$(tok '{"sub":"u-mallory","preferred_username":"mallory","aud":"attestation-service","resource_access":{"some-other-client":{"roles":["attestation-operator"]}}}')
show curl "$U/api/v1/machines?limit=1" -H "Authorization: Bearer $evil"
noaud=$(tok '{"sub":"u-mallory","preferred_username":"mallory","realm_access":{"roles":["attestation-operator"]}}')
show curl "$U/api/v1/machines?limit=1" -H "Authorization: Bearer $noaud"

echo "## Items 3 and 4: a machine known only by its public EK"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ek.pem" 2>/dev/null
der=$(openssl pkey -in "$work/ek.pem" -pubout -outform DER | base64 -w0)
fp=$(echo "$der" | base64 -d | sha256sum | cut -d' ' -f1)
ek="\"ek_fingerprint\":\"$fp\",\"ek_cert_pem\":\"$der\",\"ek_source\":\"pub\""
echo "\$ curl -X POST $U/api/v1/register -H '$J' -d '{$ek,\"desired_role\":\"generic\",\"hw_mac\":\"52:54:00:aa:bb:cc\"}'"
first=$(curl -s -X POST "$U/api/v1/register" -H "$J" -d "{$ek,\"desired_role\":\"generic\",\"hw_mac\":\"52:54:00:aa:bb:cc\"}")
echo "$first" | cut -c1-300; echo
id=$(echo "$first" | python3 -c 'import json,sys; print(json.load(sys.stdin)["machine_id"])')
show curl -X POST "$U/api/v1/machines/$id/approve" -H "Authorization: Bearer $alice" -H "$J" -d '{"role":"generic"}'
echo "(item 4: /register again for the approved machine: no fresh token)"
show curl -X POST "$U/api/v1/register" -H "$J" -d "{$ek,\"desired_role\":\"generic\",\"hw_mac\":\"52:54:00:aa:bb:cc\"}"
echo "(item 3: request-cert with nothing but the public EK)"
show curl -X POST "$U/api/v1/machines/$id/request-cert" -H "$J" -d "{$ek}"

echo "## Item 6: one source floods the challenge endpoint"
codes=$(seq 700 | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' "$U/api/v1/attest/challenge" | sort | uniq -c | tr '\n' ' ')
echo "\$ seq 700 | xargs -P 8 -I{} curl $U/api/v1/attest/challenge   -> $codes"
show curl -i "$U/api/v1/attest/challenge"
echo "(another source, behind the trusted proxy, is not affected:)"
show curl "$U/api/v1/attest/challenge" -H "X-Forwarded-For: 192.0.2.77"
