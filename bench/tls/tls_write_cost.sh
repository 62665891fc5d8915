#!/usr/bin/env bash
# The cost of one TLS write under the agent's uprobe source against bare,
# beside the tap's cost on the same write through libssl.so (issue 14).
#   bench/tls/tls_write_cost.sh BUILD_DIR [SECONDS] [SIZES]
# Starts a collector and an agent (root: the agent loads BPF) in a temp dir,
# with an identity that declares one MAC address, then per size runs, one
# after the other so that every ratio comes from the same minute:
#   bare       idflow-bench-tls-write-static, directly
#   uprobe     the same under `idflowctl run` (the agent probes its SSL_write)
#   uprobe+id  the same with the MAC in every write (--with-identifier): every
#              write is an event the agent matches and sends
#   bare-dyn   idflow-bench-tls-write (libssl.so), directly
#   tap        the same under `idflowctl run` (libidflow-tap.so preloaded)
#   tap+id     the same with the MAC in every write
#   trap       (when bpftrace is installed) the static binary directly with a
#              count-only bpftrace uprobe on its SSL_write: the trap alone,
#              without the agent's program (stack, copy, ring buffer)
# Each run is one process for one size (SECONDS, default 1, of timed writes in
# 5 rounds; median ns per write). The agent's CPU (utime+stime, /proc/PID/stat)
# is taken before each run and after the agent has gone quiet again, and
# divided by all the program's SSL_write calls (warm-up included). Drops and
# events come from `idflowctl agent status --json` before and after.
# AGENT_ARGS (environment): more idflow-agent flags, e.g.
# "--tls-uprobe-ring-kb 16384"; NO_BPFTRACE=1 skips the trap case.
set -euo pipefail
BUILD=${1:?usage: tls_write_cost.sh BUILD_DIR [SECONDS] [SIZES]}
SECS=${2:-1}
SIZES=${3:-64,1024,16384}
BIN=$(cd "$BUILD/bin" && pwd)
LIB=$(cd "$BUILD/lib" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
STATIC=$BIN/idflow-bench-tls-write-static
DYNAMIC=$BIN/idflow-bench-tls-write
CTL=$BIN/idflowctl
MAC=5c:cf:7f:a1:b2:c3
for f in "$STATIC" "$DYNAMIC" "$CTL" "$BIN/idflow-agent" "$BIN/idflow-collector" \
  "$LIB/libidflow-tap.so"; do
  [ -e "$f" ] || { echo "tls_write_cost: missing $f (ninja -C $BUILD idflow_bench_tls)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || echo "tls_write_cost: warning: not root; the agent may not load BPF" >&2

DIR=$(mktemp -d /tmp/idflow-tls-cost-XXXXXX)
cleanup() {
  [ -n "${BT:-}" ] && kill -INT "$BT" 2>/dev/null && wait "$BT" 2>/dev/null || true
  [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null || true
  [ -n "${COLLECTOR:-}" ] && kill "$COLLECTOR" 2>/dev/null && wait "$COLLECTOR" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "tls_write_cost: $*" >&2; exit 1; }

cat >"$DIR/identity.yaml" <<YAML
device: {id: bench-tls-0001, class: bench, firmware: "1"}
identifiers:
  - {kind: mac_address, value: "$MAC", instance: bench0}
YAML
"$BIN/idflow-collector" --listen 127.0.0.1:0 --http 127.0.0.1:0 --store "sqlite:$DIR/db" \
  --policies "$SRC/policies" --port-file "$DIR/ports" 2>"$DIR/collector.log" &
COLLECTOR=$!
for _ in $(seq 300); do grep -q grpc= "$DIR/ports" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^grpc=//p' "$DIR/ports")
[ -n "$PORT" ] || { cat "$DIR/collector.log" >&2; die "the collector did not start"; }
# shellcheck disable=SC2086 # AGENT_ARGS: several flags, split on purpose
"$BIN/idflow-agent" --collector "127.0.0.1:$PORT" --socket "$DIR/agent.sock" \
  --spool "$DIR/spool" --identity "$DIR/identity.yaml" --config "" ${AGENT_ARGS:-} \
  2>"$DIR/agent.log" &
AGENT=$!
for _ in $(seq 300); do [ -S "$DIR/agent.sock" ] && break; sleep 0.1; done
[ -S "$DIR/agent.sock" ] || { cat "$DIR/agent.log" >&2; die "the agent did not start"; }
sleep 1 # start-up (pattern compile, first connect) settles before measuring

HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$AGENT/stat"; }
status() { "$CTL" agent status --socket "$DIR/agent.sock" --json; }
# drops: the sum over causes; events: last_seq (events the agent numbered).
drops() { status | sed -n 's/.*"drops":{\([^}]*\)}.*/\1/p' | tr ',' '\n' | awk -F: '{s += $2} END {print s + 0}'; }
drop_detail() { status | sed -n 's/.*"drops":{\([^}]*\)}.*/\1/p'; }
last_seq() { status | sed -n 's/.*"last_seq":\([0-9]*\).*/\1/p'; }
# Waits until the agent's CPU counter stands still for 0.5 s (at most 10 s):
# it has matched and spooled what the run put in its ring.
settle() {
  local prev now
  prev=$(ticks)
  for _ in $(seq 20); do
    sleep 0.5
    now=$(ticks)
    [ "$now" = "$prev" ] && return 0
    prev=$now
  done
}
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $2"; }

# Idle agent CPU, as the floor the per-run figures sit on.
T0=$(ticks); sleep 3; IDLE=$(($(ticks) - T0))

declare -A NS MIN MAX CPU AGENT_NS EVENTS DROPS WRITES
COVERAGE_UPROBE="" COVERAGE_TAP=""
# run_case CASE SIZE CMD...
run_case() {
  local case=$1 size=$2
  shift 2
  local out="$DIR/$case-$size.out" err="$DIR/$case-$size.err"
  local d0 s0 t0 t1 line writes rounds warm total hits=""
  if [ "$case" = trap ]; then
    bpftrace -e "uprobe:$STATIC:SSL_write { @calls = count(); }" >"$DIR/bt.out" 2>&1 &
    BT=$!
    for _ in $(seq 200); do grep -qs Attaching "$DIR/bt.out" && break; sleep 0.05; done
    sleep 0.5 # the probe is in place shortly after the banner
  fi
  d0=$(drops); s0=$(last_seq); t0=$(ticks)
  "$@" --seconds "$SECS" --sizes "$size" >"$out" 2>"$err" ||
    { cat "$out" "$err" >&2; die "$case size $size failed"; }
  settle
  if [ "$case" = trap ]; then
    kill -INT "$BT"; wait "$BT" 2>/dev/null || true; BT=""
    hits=" probe_hits=$(sed -n 's/^@calls: //p' "$DIR/bt.out")"
    [ "$hits" != " probe_hits=" ] || { cat "$DIR/bt.out" >&2; die "bpftrace: no count"; }
  fi
  t1=$(ticks)
  line=$(grep "^size=$size " "$out") || { cat "$out" "$err" >&2; die "$case: no result"; }
  writes=$(field writes "$line"); rounds=$(field rounds "$line"); warm=$(field warmup "$line")
  total=$((warm + rounds * writes))
  WRITES[$case,$size]=$total
  NS[$case,$size]=$(field ns_per_write "$line")
  MIN[$case,$size]=$(field min "$line")
  MAX[$case,$size]=$(field max "$line")
  CPU[$case,$size]=$(field cpu_ns_per_write "$line")
  AGENT_NS[$case,$size]=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$total" \
    'BEGIN {printf "%.0f", t / hz * 1e9 / n}')
  EVENTS[$case,$size]=$(($(last_seq) - s0))
  DROPS[$case,$size]=$(($(drops) - d0))
  echo "  $case: $line agent_ticks=$((t1 - t0)) events=${EVENTS[$case,$size]} drops=${DROPS[$case,$size]}$hits"
  if [[ $case == uprobe* ]]; then
    local cov
    cov=$(grep '^idflowctl run: tls:' "$err" || true)
    grep -q 'uprobe: openssl SSL_write in' <<<"$cov" ||
      die "$case: the uprobes did not attach: ${cov:-no coverage line} ($(head -3 "$err"))"
    COVERAGE_UPROBE=$cov
  elif [[ $case == tap* ]]; then
    COVERAGE_TAP=$(grep '^idflowctl run: tls:' "$err" || true)
  fi
}

echo "tls_write_cost: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); ${SECS}s per size and case"
"$STATIC" --seconds 0.01 --sizes 64 | head -1
RUN=("$CTL" run --socket "$DIR/agent.sock" --tap "$LIB/libidflow-tap.so" --)
IFS=, read -ra SIZE_LIST <<<"$SIZES"
CASES=(bare uprobe uprobe+id bare-dyn tap tap+id)
TRAP=0
if [ "${NO_BPFTRACE:-0}" != 1 ] && command -v bpftrace >/dev/null; then
  TRAP=1
  CASES+=(trap)
fi
for size in "${SIZE_LIST[@]}"; do
  echo "size $size:"
  run_case bare "$size" "$STATIC"
  run_case uprobe "$size" "${RUN[@]}" "$STATIC"
  run_case uprobe+id "$size" "${RUN[@]}" "$STATIC" --with-identifier "$MAC"
  run_case bare-dyn "$size" "$DYNAMIC"
  run_case tap "$size" "${RUN[@]}" "$DYNAMIC"
  run_case tap+id "$size" "${RUN[@]}" "$DYNAMIC" --with-identifier "$MAC"
  [ "$TRAP" = 1 ] && run_case trap "$size" "$STATIC"
done
echo "coverage (uprobe runs): $COVERAGE_UPROBE"
echo "coverage (tap runs):    $COVERAGE_TAP"
echo "agent idle: $IDLE ticks of 1/$HZ s in 3 s"
echo
echo "ns per SSL_write, wall, median of 5 rounds [min-max]; ratios of medians"
printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' size bare \
  uprobe uprobe/bare "uprobe+id" "uprobe+id/bare" bare-dyn tap tap/bare-dyn "tap+id" \
  "tap+id/bare-dyn" trap trap/bare
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
cell() { [ -n "${NS[$1,$2]:-}" ] && echo "${NS[$1,$2]} [${MIN[$1,$2]}-${MAX[$1,$2]}]" || echo -; }
ratio() {
  [ -n "${NS[$1,$3]:-}" ] || { echo -; return; }
  awk -v a="${NS[$1,$3]}" -v b="${NS[$2,$3]}" 'BEGIN {printf "%.2f", a / b}'
}
for size in "${SIZE_LIST[@]}"; do
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$size" \
    "$(cell bare "$size")" "$(cell uprobe "$size")" "$(ratio uprobe bare "$size")" \
    "$(cell uprobe+id "$size")" "$(ratio uprobe+id bare "$size")" "$(cell bare-dyn "$size")" \
    "$(cell tap "$size")" "$(ratio tap bare-dyn "$size")" "$(cell tap+id "$size")" \
    "$(ratio tap+id bare-dyn "$size")" "$(cell trap "$size")" "$(ratio trap bare "$size")"
done
echo
echo "writer thread CPU ns per write (median round) and its ratio to the unobserved binary's;"
echo "agent CPU ns per write (over the run's writes, warm-up included, until the agent is"
echo "quiet; 1 tick = $((1000 / HZ)) ms); SSL_write calls of the run; events; drops"
printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' size case "writer cpu" ratio "agent cpu" \
  writes events drops
echo "|---|---|---|---|---|---|---|---|"
for size in "${SIZE_LIST[@]}"; do
  for case in "${CASES[@]}"; do
    base=bare
    [[ $case == tap* || $case == bare-dyn ]] && base=bare-dyn
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$size" "$case" "${CPU[$case,$size]}" \
      "$(awk -v a="${CPU[$case,$size]}" -v b="${CPU[$base,$size]}" 'BEGIN {printf "%.2f", a / b}')" \
      "${AGENT_NS[$case,$size]}" "${WRITES[$case,$size]}" "${EVENTS[$case,$size]}" \
      "${DROPS[$case,$size]}"
  done
done
echo
echo "drops at the end (agent status): $(drop_detail)"
grep -iE 'drop|lost|uprobe' "$DIR/agent.log" | tail -5 | sed 's/^/agent log: /' || true
TOTAL=$(drops)
[ "$TOTAL" = 0 ] || echo "tls_write_cost: warning: $TOTAL event(s) dropped" >&2
