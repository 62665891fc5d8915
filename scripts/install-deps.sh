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
  dpkg-dev file systemd adduser
  # The agent's TLS uprobes (libbpf) and the Go TLS fixture (tests/fixtures/tls).
  golang-go libbpf-dev
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

# The dashboard's browser tests (tests/web): playwright-core from the
# committed lock file (it drives Debian's chromium; no browser is downloaded).
# Reinstalled only when the lock file changed since the last install.
WEB_TESTS="$(cd "$(dirname "$0")/.." && pwd)/tests/web"
if ! cmp -s "$WEB_TESTS/package-lock.json" "$WEB_TESTS/node_modules/.idflow-installed-lock"; then
  echo "idflow: npm ci in tests/web" >&2
  (cd "$WEB_TESTS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$WEB_TESTS/package-lock.json" "$WEB_TESTS/node_modules/.idflow-installed-lock"
fi
