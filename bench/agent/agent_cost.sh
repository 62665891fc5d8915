#!/usr/bin/env bash
# The agent's own cost (issue 8 benchmark): a program under the tap sends
# RATE identifier events per second for SECONDS with FLOWS distinct flows,
# durable spool on (group commit, --spool-sync-ms 200); the agent's CPU
# (utime+stime from /proc/PID/stat) and peak VmRSS are sampled, per thread
# too, so the profile says which part of the agent spends the time.
#   bench/agent/agent_cost.sh [BUILD_DIR] [RATE] [SECONDS] [FLOWS]
# With PERF=1 and perf installed, also records a call-graph profile.
set -euo pipefail
BUILD=${1:-build}
RATE=${2:-1000}
SECS=${3:-10}
FLOWS=${4:-50}
BIN=$BUILD/bin
LIB=$BUILD/lib
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(mktemp -d /tmp/idflow-agent-cost-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT

cat > "$DIR/identity.yaml" <<YAML
device: {id: bench-0001, class: bench, firmware: "1"}
identifiers:
  - {kind: oaid, value: "7d1c2a4e-9b3f-4c61-8e2a-5f0b6d9c3e17"}
  - {kind: device_id, value: "b71f4d2c9e8a6b30"}
YAML
"$BIN/idflow-collector" --listen 127.0.0.1:0 --http 127.0.0.1:0 --store "sqlite:$DIR/db" \
  --policies "$SRC/policies" --port-file "$DIR/ports" 2>"$DIR/collector.err" &
for _ in $(seq 100); do grep -q grpc= "$DIR/ports" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/grpc=//p' "$DIR/ports")
"$BIN/idflow-agent" --collector "127.0.0.1:$PORT" --socket "$DIR/agent.sock" \
  --spool "$DIR/spool" --identity "$DIR/identity.yaml" --spool-sync-ms 200 2>"$DIR/agent.err" &
AGENT=$!
for _ in $(seq 100); do [ -S "$DIR/agent.sock" ] && break; sleep 0.1; done
sleep 1  # let start-up (pattern compile, first connect) settle before measuring

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)
declare -A T0
for t in /proc/$AGENT/task/*; do T0[$(basename "$t")]=$(awk '{print $14 + $15}' "$t/stat"); done
C0=$(ticks $AGENT)
S0=$(date +%s.%N)
if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
  perf record -g -F 999 -p "$AGENT" -o "$DIR/perf.data" -- sleep "$SECS" 2>/dev/null &
  PERF_PID=$!
fi
LD_PRELOAD="$LIB/libidflow-tap.so" IDFLOW_SOCKET="$DIR/agent.sock" \
  "$BIN/tap_test_sender" flows 39000 "id=7d1c2a4e-9b3f-4c61-8e2a-5f0b6d9c3e17" \
  $((RATE * SECS)) "$FLOWS" "$RATE" >"$DIR/sender.out" &
SENDER=$!
PEAK=0
while kill -0 $SENDER 2>/dev/null; do
  R=$(rss $AGENT); [ "$R" -gt "$PEAK" ] && PEAK=$R
  sleep 0.2
done
wait $SENDER
C1=$(ticks $AGENT)
S1=$(date +%s.%N)
R=$(rss $AGENT); [ "$R" -gt "$PEAK" ] && PEAK=$R
echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load: $RATE events/s x ${SECS}s, $FLOWS flows; sender: $(tail -1 "$DIR/sender.out")"
awk -v c=$((C1 - C0)) -v hz="$HZ" -v s0="$S0" -v s1="$S1" -v rss="$PEAK" 'BEGIN {
  wall = s1 - s0; cpu = c / hz;
  printf "agent cpu: %.2f s over %.1f s wall = %.2f %% of a core; peak VmRSS %.1f MB\n",
         cpu, wall, 100 * cpu / wall, rss / 1024 }'
echo "per thread (cpu ticks of 1/$HZ s during the run):"
for t in /proc/$AGENT/task/*; do
  id=$(basename "$t")
  name=$(cat "$t/comm")
  now=$(awk '{print $14 + $15}' "$t/stat")
  echo "  $id $name $((now - ${T0[$id]:-0}))"
done
if [ -n "${PERF_PID:-}" ]; then
  wait "$PERF_PID" || true
  perf report -i "$DIR/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | \
    grep -E '^ +[0-9]' | head -25
fi
kill $AGENT
