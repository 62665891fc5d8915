#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the whole suite
# (unit, component, end-to-end) with ctest; then an aarch64 cross build
# whose tests run under qemu-aarch64; then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer and under ThreadSanitizer, and
# every fuzz target for a bounded time. IDFLOW_TEST_QUICK=1 runs stage 1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
start=$SECONDS
stage() { echo "== $1 ($((SECONDS - start)) s elapsed)"; }
SUMMARY=$(mktemp)
trap 'rm -f "$SUMMARY"' EXIT
# ctest, with its closing line kept for the final count.
run_ctest() { ctest "$@" | tee -a "$SUMMARY"; }

stage "stage 1: Release build, full suite"
bash scripts/build.sh
run_ctest --test-dir build --output-on-failure -j2 --timeout 300

if [ "${IDFLOW_TEST_QUICK:-0}" = 1 ]; then exit 0; fi

stage "stage 2: aarch64 cross build, tests under qemu-aarch64"
# The agent, the tap, idflowctl and the collector for arm64 (hubs, head
# units); the agent's and the tap's unit tests run under user-mode emulation,
# and one end-to-end test sends a MAC from an arm64 program under the arm64
# tap through the arm64 agent to the native collector built in stage 1.
bash scripts/install-cross-deps.sh arm64
cmake --preset aarch64 >/dev/null
ninja -C build-aarch64 -j"$(nproc)"
run_ctest --preset aarch64 -j2 --timeout 600

# Sanitizer builds skip benchmarks and use -O1: quicker to build, still fast.
SAN_FLAGS=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g"
           -DIDFLOW_BUILD_BENCH=OFF)

stage "stage 3: ASan + UBSan build, full suite"
BUILD_DIR=build-asan bash scripts/build.sh "${SAN_FLAGS[@]}" -DIDFLOW_ASAN=ON -DIDFLOW_UBSAN=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_ctest --test-dir build-asan --output-on-failure -j2 --timeout 600

stage "stage 4: TSan build, full suite"
BUILD_DIR=build-tsan bash scripts/build.sh "${SAN_FLAGS[@]}" -DIDFLOW_TSAN=ON
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
  run_ctest --test-dir build-tsan --output-on-failure -j2 --timeout 600

if [ -f scripts/fuzz.sh ]; then
  stage "stage 5: fuzz targets (${IDFLOW_FUZZ_SECONDS:-30} s each)"
  bash scripts/fuzz.sh "${IDFLOW_FUZZ_SECONDS:-30}"
fi
stage "all stages passed"
# ctest counts a skipped test as run; its "did not run" list names each one.
total=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' "$SUMMARY" |
        awk '{n += $1} END {print n + 0}')
skipped=$(grep -c '(Skipped)$' "$SUMMARY" || true)
if ((skipped)); then
  echo "skipped tests:"
  grep '(Skipped)$' "$SUMMARY" | sed 's/^ */  /'
fi
echo "tests: $((total - skipped)) passed, $skipped skipped, 0 failed"
