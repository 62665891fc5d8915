#!/usr/bin/env bash
# Installs the Debian 12 packages idflow needs. Runs `apt-get update` once,
# and only when something is missing.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libboost-dev libyaml-cpp-dev libsqlite3-dev sqlite3 libvectorscan-dev
  libssl-dev zlib1g-dev nlohmann-json3-dev libxml2-dev libicu-dev libgtest-dev libgmock-dev libbenchmark-dev
  curl wget python3 openssl strace clang libclang-rt-14-dev chromium
  libxml2-utils nodejs npm postgresql libpq-dev
)
missing=()
for p in "${PACKAGES[@]}"; do
  # A nodejs that bundles npm (e.g. a nodesource build) conflicts with
  # Debian's npm package: any working npm will do.
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "idflow: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
