# Sourced by the benchmark scripts: stops a bench server left running,
# starts the release server with the environment already exported, stops
# it on exit, and waits until it answers. Usage: start_server LOGFILE [other pids to stop on exit]
# SERVER_CPUS (e.g. 0) pins the server to those CPUs with taskset.
start_server() {
  local log=$1
  shift
  # One simulator drives the whole fleet from one address, and scale mode
  # queues its machines for approval by the thousand: no per-source limits
  # or pending cap in benchmarks. Its operators log in through the
  # simulator's own OIDC provider (fleet-sim --idp-listen).
  export ITL_RATE_LIMIT_ATTEST_PER_MINUTE=0 ITL_RATE_LIMIT_REGISTER_PER_MINUTE=0 \
    ITL_MAX_PENDING_MACHINES=10000000 \
    ITL_OIDC_ISSUER=http://127.0.0.1:9901/realms/fleet-sim ITL_OIDC_AUDIENCE=attestation-fleet-sim
  pkill -f "target/release/attestation serve" || true
  ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} target/release/attestation serve >"$log" 2>&1 &
  server=$!
  # shellcheck disable=SC2064
  trap "kill $server $* 2>/dev/null" EXIT
  for _ in $(seq 1 100); do
    curl -sf "http://${ITL_LISTEN:-127.0.0.1:9000}/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start; see $log" >&2
  return 1
}
