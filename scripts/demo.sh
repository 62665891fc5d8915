#!/usr/bin/env bash
# The main job: installs dependencies, builds, starts a collector on an
# embedded SQLite file and an agent, runs a representative part of the
# scenario suite (tests/fixtures/scenario_table.h) under the tap, prints per
# SDK the declared data types against the observed ones, then the violations
# with their explanations, and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
BIN=$PWD/${BUILD_DIR:-build}/bin
WORK=$(mktemp -d /tmp/idflow-demo.XXXXXX)
cleanup() {
  [ -n "${TLS_PID:-}" ] && kill "$TLS_PID" 2>/dev/null && wait "$TLS_PID" 2>/dev/null || true
  [ -n "${AGENT_PID:-}" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null || true
  [ -n "${COLLECTOR_PID:-}" ] && kill "$COLLECTOR_PID" 2>/dev/null && wait "$COLLECTOR_PID" 2>/dev/null || true
}
trap cleanup EXIT

wait_for() {  # wait_for SECONDS CMD...: poll until CMD succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

echo "== idflow demo (work dir $WORK)"
"$BIN/idflow-collector" --listen 127.0.0.1:0 --http 127.0.0.1:0 --store "sqlite:$WORK/idflow.db" \
  --policies policies --port-file "$WORK/ports" 2>"$WORK/collector.log" &
COLLECTOR_PID=$!
wait_for 30 grep -q grpc= "$WORK/ports" || { cat "$WORK/collector.log"; exit 1; }
GRPC_PORT=$(sed -n 's/^grpc=//p' "$WORK/ports")
echo "collector: grpc 127.0.0.1:$GRPC_PORT, store $WORK/idflow.db"

# The simulated device: its identity (declared identifiers beside those found
# in sysfs) for the agent, and the properties its SDKs read them from. The
# values are demo data (tests/fixtures/scenario_table.h).
HOST=$BIN/idflow-scenario-host
"$HOST" --write-device "$WORK"
"$BIN/idflow-agent" --collector "127.0.0.1:$GRPC_PORT" --socket "$WORK/agent.sock" \
  --spool "$WORK/spool" --identity "$WORK/identity.yaml" 2>"$WORK/agent.log" &
AGENT_PID=$!
wait_for 30 test -S "$WORK/agent.sock" || { cat "$WORK/agent.log"; exit 1; }
echo "agent: socket $WORK/agent.sock, spool $WORK/spool"

# A TLS server standing in for the SDKs' HTTPS servers: it answers each GET
# with the response file the host app names (-HTTP, from /).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -keyout "$WORK/tls.key" -out "$WORK/tls.pem" 2>/dev/null
(cd / && exec openssl s_server -accept 0 -cert "$WORK/tls.pem" -key "$WORK/tls.key" -HTTP \
  >"$WORK/tls.log" 2>&1) &
TLS_PID=$!
wait_for 30 grep -q ACCEPT "$WORK/tls.log" || { cat "$WORK/tls.log"; exit 1; }
TLS_PORT=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$WORK/tls.log")

# The first interface with a real MAC address, which the SDKs read.
IFACE=none
for a in /sys/class/net/*/address; do
  mac=$(cat "$a" 2>/dev/null) || continue
  case $mac in 00:00:00:00:00:00 | 02:00:00:00:00:00 | "") continue ;; esac
  [ ${#mac} -eq 17 ] && { IFACE=$(basename "$(dirname "$a")"); break; }
done

echo "== running SDKs of the scenario suite under the tap (interface $IFACE)"
groups=0
while read -r sdk flow scenario consent; do
  if [ "$sdk" = groups ]; then groups=$flow; continue; fi
  args=()
  [ "$scenario" != - ] && args+=(--scenario "$scenario")
  if [ "$consent" != - ]; then
    IFS=, read -ra kv <<<"$consent"
    for c in "${kv[@]}"; do args+=(--consent "$c"); done
  fi
  echo "$sdk $flow: ${args[*]:-no scenario, no consent}"
  "$BIN/idflowctl" run --socket "$WORK/agent.sock" "${args[@]}" -- \
    "$HOST" --sdk "$sdk" --flow "$flow" --props "$WORK/props" --tls-port "$TLS_PORT" \
    --iface "$IFACE"
done < <("$HOST" --demo-plan --iface "$IFACE")

# Delivery is asynchronous: wait until every verdict group the runs make is
# stored (the plan says how many).
count_verdicts() {
  "$BIN/idflowctl" violations --collector "127.0.0.1:$GRPC_PORT" --all --format json | wc -l
}
# A function, so that every poll counts again.
have_verdicts() { [ "$(count_verdicts)" -ge "$groups" ]; }
wait_for 30 have_verdicts ||
  echo "warning: only $(count_verdicts) of $groups verdict groups arrived within 30 s" >&2

echo "== per SDK: declared data types against observed ones, then the violations"
set +e
"$BIN/idflowctl" summary --collector "127.0.0.1:$GRPC_PORT" --policies policies
rc=$?
set -e
echo "== idflowctl exit code $rc (1 = violations found; observations never fail a run)"
echo "== agents and data gaps (events lost before the store, per cause)"
"$BIN/idflowctl" agents --collector "127.0.0.1:$GRPC_PORT"
[ "$rc" -le 1 ]
