# Cross-compiles idflow for 64-bit ARM Linux (hubs, head units) on an x86-64
# Debian 12 host with multiarch: the arm64 -dev packages live beside the
# host's (scripts/install-cross-deps.sh), the compilers come from
# crossbuild-essential-arm64, and protoc / grpc_cpp_plugin run on the host.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Libraries and headers come from the target's multiarch folders (and the
# shared /usr/include); programs (protoc, grpc_cpp_plugin) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")

# Tests run under user-mode emulation (qemu-user) with the multiarch arm64
# libraries (/lib/ld-linux-aarch64.so.1 and /usr/lib/aarch64-linux-gnu), the
# ones the build linked. Not `-L /usr/aarch64-linux-gnu`: mixing that libc
# (the cross compiler's) with the multiarch libstdc++ makes the first
# pthread_create spin forever under qemu 7.2.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
