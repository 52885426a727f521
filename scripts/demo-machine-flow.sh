#!/usr/bin/env bash
# Walks one machine through self-register, pending attest, dual-control
# approval, challenge + attest (apply-config), config delivery, request-cert,
# offline bundle + enroll, lock, unlock and revoke with wipe, then prints the
# CRL and the audit log. Needs a server started with ITL_ADMIN_TOKEN,
# ITL_CONFIG_CACHE_DIR=examples/role-configs and, for the operators alice
# and bob, the demo OIDC provider this script starts (the fleet simulator's):
# ITL_OIDC_ISSUER=http://127.0.0.1:9901/realms/fleet-sim
# ITL_OIDC_AUDIENCE=attestation-fleet-sim. Needs curl, jq, openssl, cargo.
# The "EK" is a software RSA key: a real machine sends its TPM EK certificate.
set -euo pipefail
API=${ATTESTATION_API_URL:-http://127.0.0.1:9000}
T=${ITL_ADMIN_TOKEN:?set ITL_ADMIN_TOKEN to the break-glass token of the server}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
# Two operators log in through a demo OIDC provider (dual control counts
# people proven by their login; the break-glass token cannot vote).
cargo build -q --manifest-path "$ROOT/Cargo.toml" -p attest-fleet-sim
"$ROOT/target/debug/attestation-fleet-sim" --idp-only alice,bob >"$WORK/tokens" 2>/dev/null &
IDP=$!
trap 'kill $IDP 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
for _ in $(seq 1 50); do [ "$(wc -l <tokens)" -ge 2 ] && break; sleep 0.1; done
ALICE=$(awk '$1=="alice"{print $2}' tokens); BOB=$(awk '$1=="bob"{print $2}' tokens)
# A software "EK": an RSA-2048 public key (a real machine sends its TPM's EK certificate)
openssl genrsa -out ek.key 2048 2>/dev/null
openssl rsa -in ek.key -pubout -outform der -out ek.der 2>/dev/null
EK=$(base64 -w0 ek.der); FP=$(sha256sum ek.der | cut -d' ' -f1)
BODY="{\"ek_fingerprint\":\"$FP\",\"ek_cert_pem\":\"$EK\",\"ek_source\":\"pub\",\"hw_mac\":\"AA-BB-CC-DD-EE-01\"}"
echo '$ curl -s -X POST $API/api/v1/self-register -d "$BODY"'
ID=$(curl -s -H 'content-type: application/json' -d "$BODY" $API/api/v1/self-register | tee /dev/stderr | jq -r .machine_id); echo
echo '$ curl -s -X POST $API/api/v1/attest -d "$BODY"     # pending: action none'
curl -s -H 'content-type: application/json' -d "$BODY" $API/api/v1/attest | jq -c '{status,action}'
APPROVE='{"role":"controlplane","hostname":"cp-01","assigned_ip":"10.0.0.1/24"}'
echo '$ curl … -H "Authorization: Bearer <alice>" $API/api/v1/machines/$ID/approve -d "$APPROVE"'
curl -s -o /dev/stderr -w '%{http_code}\n' -H "Authorization: Bearer $ALICE" -H 'content-type: application/json' -d "$APPROVE" $API/api/v1/machines/$ID/approve
echo '$ curl … -H "Authorization: Bearer <bob>" $API/api/v1/machines/$ID/approve -d "$APPROVE"'
curl -s -H "Authorization: Bearer $BOB" -H 'content-type: application/json' -d "$APPROVE" $API/api/v1/machines/$ID/approve | jq -c '{status,role,hostname,assigned_ip}'
echo '$ N=$(curl -s $API/api/v1/attest/challenge | jq -r .nonce_id)'
N=$(curl -s $API/api/v1/attest/challenge | jq -r .nonce_id)
B2=$(echo "$BODY" | jq -c --arg n "$N" '. + {nonce_id:$n}')
echo '$ curl -s -X POST $API/api/v1/attest -d "$BODY + nonce_id"'
curl -s -H 'content-type: application/json' -d "$B2" $API/api/v1/attest | jq -c '{status,action,config_url}'
echo '$ (same nonce again)'
curl -s -w ' %{http_code}\n' -H 'content-type: application/json' -d "$B2" $API/api/v1/attest
N=$(curl -s $API/api/v1/attest/challenge | jq -r .nonce_id)
CFG=$(curl -s -H 'content-type: application/json' -d "$(echo "$BODY" | jq -c --arg n "$N" '. + {nonce_id:$n}')" $API/api/v1/attest | jq -r .config_url)
echo '$ curl -s $CONFIG_URL      # the controlplane MachineConfig, hostname and address patched in'
curl -s -o config.yaml -w '%{http_code} %{content_type}\n' "$CFG"
grep -E '^ +hostname:|^ +- 10\.' config.yaml || true
echo '$ curl -s -X POST $API/api/v1/machines/$ID/request-cert -d "{ek_fingerprint, ek_cert_pem}"'
curl -s -H 'content-type: application/json' -d "$BODY" $API/api/v1/machines/$ID/request-cert > cert.json
jq -c '{machine_id,role,serial,valid_days,message}' cert.json
jq -r .enrollment_cert_pem cert.json > machine.pem; jq -r .enrollment_ca_pem cert.json > ca.pem
openssl verify -CAfile ca.pem machine.pem
echo '$ curl … $API/api/v1/machines/$ID/offline-bundle   (operator)'
curl -s -H "Authorization: Bearer $ALICE" $API/api/v1/machines/$ID/offline-bundle > bundle.json
jq -c '{install_mode,status,hostname,config_url,machineconfig: (.machineconfig|length)}' bundle.json
jq -r .enrollment_key_pem bundle.json > bundle.key; jq -r .enrollment_cert_pem bundle.json > bundle.pem
echo '$ openssl dgst -sha256 -sign bundle.key <server nonce> | base64;  curl -X POST $API/api/v1/machines/enroll'
curl -s $API/api/v1/attest/challenge | jq -j .nonce > nonce
SIG=$(openssl dgst -sha256 -sign bundle.key nonce | base64 -w0)
EB=$(jq -n --rawfile c bundle.pem --rawfile n nonce --arg s "$SIG" '{cert_pem:$c, nonce:$n, nonce_signature:$s}')
curl -s -H 'content-type: application/json' -d "$EB" $API/api/v1/machines/enroll | jq -c .
echo '$ (same nonce again)'
curl -s -w ' %{http_code}\n' -H 'content-type: application/json' -d "$EB" $API/api/v1/machines/enroll
echo '$ curl … -X POST $API/api/v1/machines/$ID/lock -d {"reason":"maintenance"}'
curl -s -H "Authorization: Bearer $ALICE" -H 'content-type: application/json' -d '{"reason":"maintenance"}' $API/api/v1/machines/$ID/lock | jq -c '{status,locked_at}'
curl -s -H 'content-type: application/json' -d "$BODY" $API/api/v1/attest | jq -c '{status,action}'
echo '$ curl … -X POST $API/api/v1/machines/$ID/unlock'
curl -s -X POST -H "Authorization: Bearer $ALICE" $API/api/v1/machines/$ID/unlock | jq -c '{status}'
echo '$ curl … -X POST $API/api/v1/machines/$ID/revoke -d {"wipe":true,"reason":"decommissioned"}'
curl -s -H "Authorization: Bearer $BOB" -H 'content-type: application/json' -d '{"wipe":true,"reason":"decommissioned"}' $API/api/v1/machines/$ID/revoke | jq -c '{status,wipe_pending}'
curl -s -H 'content-type: application/json' -d "$BODY" $API/api/v1/attest | jq -c '{status,action}'
echo '$ curl -s $API/.well-known/pki/crl/enrollment -o crl.der; openssl crl -inform DER -CAfile ca.pem …'
curl -s $API/.well-known/pki/crl/enrollment -o crl.der
openssl crl -inform DER -in crl.der -CAfile ca.pem -noout -text 2>&1 | grep -E 'verify|Serial Number|Cessation'
echo '$ curl -s -H "Authorization: Bearer $T" $API/api/v1/audit | jq …'
curl -s -H "Authorization: Bearer $T" $API/api/v1/audit | jq -r '.[] | "\(.id) \(.operator_cn) \(.action) \(.prev_state)->\(.new_state) \(.detail)"'
curl -s -H "Authorization: Bearer $T" $API/api/v1/audit/verify | jq -c .
