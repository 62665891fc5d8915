#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz and runs
# each for SECONDS (default 60) on its checked-in seed corpus. Fails on any
# crash, leak, sanitizer report or property violation; the reproducer is left
# in build-fuzz/fuzz-artifacts/<target>/.
#   scripts/fuzz.sh [SECONDS]      env: IDFLOW_FUZZ_JOBS (ninja -j, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-60}"
BUILD=build-fuzz
TARGETS=(fuzz_statement_importer fuzz_statement_labelled fuzz_statement_markdown
         fuzz_statement_html fuzz_statement_text fuzz_cookie_importer fuzz_policy_loader
         fuzz_tap_message fuzz_tap_payload fuzz_tls_uprobe fuzz_identity)
# The tap's sniffers (agent/tap/sniff/).
TARGETS+=(fuzz_tap_http1 fuzz_tap_set_cookie fuzz_tap_http_date fuzz_tap_client_hello)

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIDFLOW_BUILD_BENCH=OFF \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
  -DIDFLOW_FUZZ=ON -DIDFLOW_ASAN=ON -DIDFLOW_UBSAN=ON >/dev/null
ninja -C "$BUILD" -j"${IDFLOW_FUZZ_JOBS:-2}" "${TARGETS[@]}"

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
failed=()
for t in "${TARGETS[@]}"; do
  seeds=()
  [ -d "tests/fuzz/corpus/$t" ] && seeds+=("tests/fuzz/corpus/$t")
  # The statement importers also start from the layouts corpus of the tests.
  [[ $t == fuzz_statement_* ]] && seeds+=(tests/policy/testdata/layouts)
  work="$BUILD/fuzz-corpus/$t"       # grows while fuzzing; seeds stay untouched
  artifacts="$BUILD/fuzz-artifacts/$t/"
  mkdir -p "$work" "$artifacts"
  echo "== $t: ${SECONDS_EACH}s"
  if ! "$BUILD/bin/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts" \
      "$work" "${seeds[@]}" >"$BUILD/fuzz-$t.log" 2>&1; then
    echo "!! $t failed; see $BUILD/fuzz-$t.log and $artifacts"
    tail -40 "$BUILD/fuzz-$t.log"
    failed+=("$t")
  else
    grep -E "stat::number_of_executed_units|cov:" "$BUILD/fuzz-$t.log" | tail -2 || true
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: all ${#TARGETS[@]} targets clean (${SECONDS_EACH}s each)"
