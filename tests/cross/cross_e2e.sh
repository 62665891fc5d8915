#!/usr/bin/env bash
# cross_e2e.sh HOST_BUILD CROSS_BUILD SOURCE_DIR ARCH
# An ARCH program under the ARCH tap sends a MAC address; the ARCH agent
# (both under qemu-user) catches it; a native collector judges it. Every wait
# polls for the thing it waits for, with a deadline.
set -euo pipefail
host=$1 cross=$2 src=$3 arch=$4
emu=(qemu-"$arch")  # the multiarch libraries: see cmake/toolchains/
fail() {
  echo "cross_e2e: $*" >&2
  for f in "${tmp:-/nonexistent}"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 30 "$f"; }; done >&2
  exit 1
}
for f in "$host/bin/idflow-collector" "$host/bin/idflowctl"; do
  [ -x "$f" ] || fail "$f is missing: build the native tree first (IDFLOW_HOST_BUILD_DIR)"
done
agent_bin=$cross/bin/idflow-agent tap=$cross/lib/libidflow-tap.so
sender=$cross/bin/tap_test_sender
for f in "$agent_bin" "$tap" "$sender"; do
  [ -e "$f" ] || fail "$f is missing"
  file -L "$f" | grep -q "ARM aarch64" || fail "$f is not an $arch binary: $(file -L "$f")"
done
command -v "${emu[0]}" >/dev/null || fail "${emu[0]} not found (package qemu-user)"

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${keep:-0}" = 1 ]; then echo "cross_e2e: logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'keep=1; for f in "$tmp"/*.log; do echo "== $f"; tail -n 40 "$f"; done >&2' ERR
# poll SECONDS CMD...: runs CMD until it succeeds, at most SECONDS.
poll() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

"$host/bin/idflow-collector" --listen 127.0.0.1:0 --http 127.0.0.1:0 \
  --store "sqlite:$tmp/idflow.db" --policies "$src/policies" \
  --port-file "$tmp/ports" >"$tmp/collector.log" 2>&1 &
pids+=($!)
poll 60 grep -q '^grpc=' "$tmp/ports" 2>/dev/null || fail "collector did not start"
grpc=$(sed -n 's/^grpc=//p' "$tmp/ports")

# A device with one network interface whose MAC the agent discovers.
mac=3c:22:fb:7a:41:9e
mkdir -p "$tmp/sys/class/net/eth0"
echo "$mac" >"$tmp/sys/class/net/eth0/address"
cat >"$tmp/identity.yaml" <<YAML
device:
  id: cross-$arch-0001
  class: head-unit
  firmware: cross-e2e
YAML
"${emu[@]}" "$agent_bin" --collector "127.0.0.1:$grpc" --socket "$tmp/agent.sock" \
  --spool "$tmp/spool" --identity "$tmp/identity.yaml" --sysfs-root "$tmp/sys" \
  >"$tmp/agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
poll 60 test -S "$tmp/agent.sock" || fail "agent did not open its socket"
poll 60 grep -q "cross-$arch-0001.*connected" "$tmp/collector.log" || fail "agent did not reach the collector"
grep -q "$arch\|aarch64" <(file -L "$agent_bin") || true

# The app: an ARCH program with the ARCH tap, env for the guest only (-E), so
# the x86-64 emulator itself never loads the ARM library.
"${emu[@]}" -E "LD_PRELOAD=$tap" -E "IDFLOW_SOCKET=$tmp/agent.sock" \
  "$sender" udp 9 "id mac=$mac end" >"$tmp/sender.log" 2>&1 || fail "the tapped sender failed"

# The verdict, read back from the native collector.
has_mac_verdict() {
  # Exit status 1 means "violations found" (a QA pipeline fails on it).
  local rc=0
  "$host/bin/idflowctl" violations --collector "127.0.0.1:$grpc" --format json \
    --all >"$tmp/verdicts.json" 2>"$tmp/idflowctl.log" || rc=$?
  ((rc <= 1)) && grep -q '"data_type":"mac_address"' "$tmp/verdicts.json"
}
poll 30 has_mac_verdict || {
  cat "$tmp/verdicts.json" >&2
  "$host/bin/idflowctl" agents --collector "127.0.0.1:$grpc" >&2 || true
  fail "no verdict on a mac_address from the $arch agent"
}
grep -q "tap_test_sender" "$tmp/verdicts.json" || fail "the verdict does not name the sending module"
# tap_test_sender is no declared SDK: its MAC flow is an undeclared party.
grep -q "\"verdict\":\"undeclared_party\"" "$tmp/verdicts.json" || fail "not judged as an undeclared party"
grep -q "cross-$arch-0001" "$tmp/verdicts.json" || fail "the verdict does not name the device"
echo "cross_e2e: $arch tap -> $arch agent -> native collector: mac_address judged"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps(d, indent=1)[:1500])' \
  "$tmp/verdicts.json" || cat "$tmp/verdicts.json"
