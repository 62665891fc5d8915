#!/usr/bin/env bash
# Installs what an aarch64 cross build needs on an x86-64 Debian 12 host
# (`cmake --preset aarch64`): the arm64 architecture, the cross compilers,
# qemu-user to run the tests, and the arm64 -dev packages beside the host's.
# libyaml-cpp-dev and libpq-dev cannot be installed for two architectures at
# once: only their arm64 runtime libraries are installed, and the build links
# them by soname (cmake/IdflowSonameFallback.cmake).
set -euo pipefail
ARCH=${1:-arm64}
case "$ARCH" in
  arm64) ;;
  *) echo "install-cross-deps: only arm64 is supported (got $ARCH)" >&2; exit 2 ;;
esac
PACKAGES=(
  crossbuild-essential-arm64 qemu-user file
  libgrpc++-dev:arm64 libprotobuf-dev:arm64 libabsl-dev:arm64 libboost-dev:arm64
  libsqlite3-dev:arm64 libvectorscan-dev:arm64 libssl-dev:arm64 zlib1g-dev:arm64
  libxml2-dev:arm64 libicu-dev:arm64 libgtest-dev:arm64 libgmock-dev:arm64
  libyaml-cpp0.7:arm64 libpq5:arm64 libbpf1:arm64
)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
updated=0
if ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
  echo "idflow: adding the $ARCH architecture" >&2
  $SUDO dpkg --add-architecture "$ARCH"
  $SUDO apt-get update -qq
  updated=1
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "idflow: installing ${missing[*]}" >&2
  ((updated)) || $SUDO apt-get update -qq
  # --no-remove: an arm64 package that would replace a host one (as the
  # -dev packages above that are not co-installable do) stops the install.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    --no-remove "${missing[@]}" >/dev/null
fi
