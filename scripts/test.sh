#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the whole suite
# (unit, component, end-to-end) with ctest; then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, and every fuzz target for a
# bounded time. IDFLOW_TEST_QUICK=1 runs the first stage only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
start=$SECONDS

echo "== stage 1: Release build, full suite"
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j2 --timeout 300

if [ "${IDFLOW_TEST_QUICK:-0}" = 1 ]; then exit 0; fi

echo "== stage 2: ASan + UBSan build, full suite"
BUILD_DIR=build-asan bash scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DIDFLOW_ASAN=ON -DIDFLOW_UBSAN=ON -DIDFLOW_BUILD_BENCH=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 600

if [ -x scripts/fuzz.sh ] || [ -f scripts/fuzz.sh ]; then
  echo "== stage 3: fuzz targets (${IDFLOW_FUZZ_SECONDS:-60} s each)"
  bash scripts/fuzz.sh "${IDFLOW_FUZZ_SECONDS:-60}"
fi
echo "== all stages passed in $((SECONDS - start)) s"
