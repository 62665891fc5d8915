#!/usr/bin/env bash
# Builds the Debian packages (idflow-agent, idflow-collector, idflowctl) and
# prints their paths. Native: build/ -> build/packages/. --arch arm64: a cross
# build with cmake/toolchains/aarch64-linux-gnu.cmake (the `aarch64` preset's)
# in build-aarch64/ -> build-aarch64/packages/. BUILD_DIR and JOBS override.
# Layout and units: packaging/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: bash scripts/package.sh [--arch amd64|arm64]" >&2; }
HOST_ARCH=$(dpkg --print-architecture)
ARCH=$HOST_ARCH
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) [ $# -ge 2 ] || { usage; exit 2; }; ARCH=$2; shift 2 ;;
    --arch=*) ARCH=${1#--arch=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "package.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
  esac
done

cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release)
if [ "$ARCH" = "$HOST_ARCH" ]; then
  BUILD_DIR=${BUILD_DIR:-build}
  bash scripts/install-deps.sh
elif [ "$ARCH" = arm64 ]; then
  TOOLCHAIN=cmake/toolchains/aarch64-linux-gnu.cmake
  for f in "$TOOLCHAIN" scripts/install-cross-deps.sh; do
    [ -f "$f" ] || { echo "package.sh: $f is missing (needed for --arch arm64)" >&2; exit 2; }
  done
  bash scripts/install-deps.sh
  bash scripts/install-cross-deps.sh arm64
  BUILD_DIR=${BUILD_DIR:-build-aarch64}
  # As the aarch64 preset (CMakePresets.json) configures it.
  cmake_args+=(-DCMAKE_TOOLCHAIN_FILE="$PWD/$TOOLCHAIN" -DIDFLOW_BUILD_BENCH=OFF)
else
  echo "package.sh: cannot build for '$ARCH' on $HOST_ARCH (amd64 natively, or arm64)" >&2
  exit 2
fi

cmake -S . -B "$BUILD_DIR" "${cmake_args[@]}" >/dev/null
ninja -C "$BUILD_DIR" -j"${JOBS:-$(nproc)}" idflow-agent idflow-tap idflow-collector idflowctl >/dev/null
OUT=$BUILD_DIR/packages
rm -rf "$OUT"
mkdir -p "$OUT"
if ! cpack -G DEB -B "$PWD/$OUT" --config "$BUILD_DIR/CPackConfig.cmake" >"$OUT/cpack.log" 2>&1; then
  cat "$OUT/cpack.log" >&2
  echo "package.sh: cpack failed" >&2
  exit 1
fi
rm -rf "$OUT/_CPack_Packages"  # the staging trees
for deb in "$OUT"/*.deb; do realpath "$deb"; done
