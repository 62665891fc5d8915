#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the whole suite
# (unit, component, end-to-end) with ctest; then the same suite under
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

# Sanitizer builds skip benchmarks and use -O1: quicker to build, still fast.
SAN_FLAGS=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g"
           -DIDFLOW_BUILD_BENCH=OFF)

stage "stage 2: ASan + UBSan build, full suite"
BUILD_DIR=build-asan bash scripts/build.sh "${SAN_FLAGS[@]}" -DIDFLOW_ASAN=ON -DIDFLOW_UBSAN=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_ctest --test-dir build-asan --output-on-failure -j2 --timeout 600

stage "stage 3: TSan build, full suite"
BUILD_DIR=build-tsan bash scripts/build.sh "${SAN_FLAGS[@]}" -DIDFLOW_TSAN=ON
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
  run_ctest --test-dir build-tsan --output-on-failure -j2 --timeout 600

if [ -f scripts/fuzz.sh ]; then
  stage "stage 4: fuzz targets (${IDFLOW_FUZZ_SECONDS:-40} s each)"
  bash scripts/fuzz.sh "${IDFLOW_FUZZ_SECONDS:-40}"
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
