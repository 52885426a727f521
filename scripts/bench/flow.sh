#!/usr/bin/env bash
# The whole fleet flow with every check on (nonce, quote, AK credential,
# encrypted delivery), every built-in extension loaded and a webhook
# delivering machine.registered / machine.approved to a loopback receiver.
# Usage: scripts/bench/flow.sh LABEL [DATABASE_URL]
#   MACHINES (default 1000) and CONCURRENCY (default 64) set the run;
#   ATTEST_ROUNDS (default 5) re-attests per machine afterwards (quotes/s);
#   SERVER_CPUS / SIM_CPUS (e.g. 0 and 1) pin server and simulator apart;
#   PROFILE=FILE records the server with `perf record -g` during the run;
#   AK=p256 gives the machines P-256 AKs (and the server ITL_AK_POLICY=standard).
# Needs release builds: cargo build --release -p attestation -p attest-fleet-sim
# Exits non-zero when the simulator reports any failed flow or re-attest.
set -u
cd "$(dirname "$0")/../.."
label=${1:?label}
work=${BENCH_DIR:-/tmp/attest-bench}
mkdir -p "$work"
T=bench-token-$(openssl rand -hex 16)
rm -rf "$work/data"
python3 scripts/bench/webhook-receiver.py 9300 >/dev/null 2>&1 &
receiver=$!
export ITL_DATA_DIR=$work/data ITL_ADMIN_TOKEN=$T \
  ITL_CONFIG_CACHE_DIR=examples/role-configs ITL_REQUIRE_NONCE=true ITL_REQUIRE_QUOTE=true \
  ITL_REQUIRE_AK_CREDENTIAL=true ITL_REQUIRE_ENCRYPTED_DELIVERY=true \
  ITL_WEBHOOK_ALLOW_PRIVATE_TARGETS=true ITL_SHARED_SECRET_MASTER_KEY=$(openssl rand -hex 32) \
  ITL_LISTEN=127.0.0.1:9000
if [ -n "${2:-}" ]; then export DATABASE_URL=$2; fi
if [ "${AK:-p384}" = p256 ]; then export ITL_AK_POLICY=standard; fi
. scripts/bench/server.sh
start_server "$work/server-$label.log" "$receiver" || exit 1
curl -s -o /dev/null -H "Authorization: Bearer $T" -H 'content-type: application/json' \
  -d '{"url":"http://127.0.0.1:9300/hook","events":["machine.registered","machine.approved"],"secret":"bench-secret"}' \
  localhost:9000/api/v1/webhooks
if [ -n "${PROFILE:-}" ]; then
  perf record -q -F 499 -g -p "$server" -o "$PROFILE" 2>/dev/null &
  profiler=$!
fi
t0=$(date +%s.%N)
machines=${MACHINES:-1000}
ITL_ADMIN_TOKEN=$T ${SIM_CPUS:+taskset -c "$SIM_CPUS"} target/release/attestation-fleet-sim \
  --url http://127.0.0.1:9000 -n "$machines" -c "${CONCURRENCY:-64}" \
  --attest-rounds "${ATTEST_ROUNDS:-5}" --server-pid "$server" --ak "${AK:-p384}" \
  --json "$work/report-$label.json" | tee "$work/sim-$label.txt"
status=${PIPESTATUS[0]}
if [ -n "${profiler:-}" ]; then kill -INT "$profiler"; wait "$profiler"; fi
curl -s localhost:9000/metrics >"$work/metrics-$label.txt"
t1=$(date +%s.%N)
n=0
# A failed run cannot deliver every event: do not wait for them.
[ "$status" -eq 0 ] && for _ in $(seq 1 240); do
  n=$(curl -s localhost:9300/ | cut -d' ' -f1)
  n=${n:-0}
  [ "$n" -ge $((2 * machines)) ] && break
  sleep 0.5
done
t2=$(date +%s.%N)
echo "deliveries=$n sim_s=$(echo "$t1-$t0" | bc) drained_after_s=$(echo "$t2-$t1" | bc)"
for _ in 1 2 3 4 5; do
  curl -s -o /dev/null -w "GET /metrics %{time_total}s %{size_download}B\n" localhost:9000/metrics
done
grep VmHWM /proc/$server/status
exit "$status"
