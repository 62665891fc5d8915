#!/usr/bin/env bash
# The Debian packages, built by cpack from a configured and built tree, then
# checked: contents (layout, modes, stripped binaries), control fields, the
# systemd units (systemd-analyze verify and security), and dpkg's install,
# upgrade and purge into a throwaway root with its own dpkg database: its
# /usr and /lib are overlays over the system's (writes land in the scratch
# folder), its /etc a copy, all mounted in a private mount namespace, so the
# machine's own /etc, /usr and /var are never written (the test asserts its
# user database did not change).
#
# usage: packaging_test.sh BUILD_DIR SOURCE_DIR
# env:   IDFLOW_EMULATOR   runs target binaries of a cross build (e.g. "qemu-aarch64 -L /")
#        AGENT_MAX_EXPOSURE, COLLECTOR_MAX_EXPOSURE   systemd-analyze security bounds
# Needs root (chroot, mounts). Exit 0 pass, 1 fail, 77 skip (no mount namespace).
set -euo pipefail

if [ $# -ne 2 ] || [ ! -f "$1/CPackConfig.cmake" ] || [ ! -d "$2/packaging" ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR (BUILD_DIR configured, with CPackConfig.cmake)" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
# Measured with systemd 252 (Debian 12): agent 1.6, collector 1.1 ("OK").
AGENT_MAX_EXPOSURE=${AGENT_MAX_EXPOSURE:-1.6}
COLLECTOR_MAX_EXPOSURE=${COLLECTOR_MAX_EXPOSURE:-1.1}

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
mark=0
begin() { mark=$failures; }
ok_if_clean() { [ "$failures" -ne "$mark" ] || ok "$*"; }
for tool in cpack dpkg dpkg-deb dpkg-query file systemd-analyze unshare chroot mount sha256sum; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "FAIL: needs root (chroot, mount namespace)" >&2; exit 1; }

T=$(mktemp -d /tmp/idflow-packaging.XXXXXX)
trap 'rm -rf "$T"' EXIT

# What this tree packages: architecture, multiarch triplet, version.
cpack_var() { sed -n "s/^set($1 \"\\(.*\\)\")$/\\1/p" "$BUILD/CPackConfig.cmake" | head -1; }
ARCH=$(cpack_var CPACK_DEBIAN_PACKAGE_ARCHITECTURE)
VERSION=$(cpack_var CPACK_PACKAGE_VERSION)
MA=$(sed -n 's/^set(ENV{DEB_HOST_MULTIARCH} "\(.*\)")$/\1/p' "$BUILD/packaging/CPackProjectConfig.cmake")
case "$ARCH" in
  amd64) ELF_MACHINE="x86-64" ;;
  arm64) ELF_MACHINE="ARM aarch64" ;;
  *) ELF_MACHINE="" ;;
esac
[ -n "$ARCH" ] && [ -n "$VERSION" ] && [ -n "$MA" ] || { echo "FAIL: no arch/version in $BUILD" >&2; exit 1; }
echo "packages: $ARCH ($MA), version $VERSION"

# --- build: one cpack per package, in parallel (dpkg-shlibdeps takes most of
# the time); gzip, as the checks do not depend on the compression.
pids=()
for c in agent collector ctl; do
  cpack -G DEB -B "$T/cpack-$c" -D CPACK_DEBIAN_COMPRESSION_TYPE=gzip -D CPACK_COMPONENTS_ALL=$c \
    --config "$BUILD/CPackConfig.cmake" >"$T/cpack-$c.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do
  wait "${pids[$i]}" || { cat "$T"/cpack-*.log >&2; echo "FAIL: cpack" >&2; exit 1; }
done
mkdir -p "$T/out"
mv "$T"/cpack-*/*.deb "$T/out/"
debs=("$T"/out/*.deb)
[ "${#debs[@]}" -eq 3 ] || fail "expected 3 .deb files, got: ${debs[*]##*/}"
deb() { echo "$T/out/$1_${VERSION}_${ARCH}.deb"; }
for p in idflow-agent idflow-collector idflowctl; do
  [ -f "$(deb $p)" ] || { echo "FAIL: missing $(basename "$(deb $p)")" >&2; exit 1; }
done

# --- contents: every file and link, with its mode; nothing else.
# Lines "MODE PATH" of what a package holds (directories left out).
contents() {
  dpkg-deb -c "$1" | awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print $1, $2, $6 }'
}
policies_expected=$(cd "$SRC/policies" && find . -name '*.yaml' | sed 's|^\./|usr/share/idflow/policies/|' | sort)
{
  echo "-rw-r--r-- root/root etc/idflow/agent.yaml"
  echo "-rw-r--r-- root/root lib/systemd/system/idflow-agent.service"
  echo "-rwxr-xr-x root/root usr/bin/idflow-agent"
  echo "lrwxrwxrwx root/root usr/lib/libidflow-tap.so"
  echo "-rw-r--r-- root/root usr/lib/$MA/idflow/libidflow-tap.so"
  echo "-rw-r--r-- root/root usr/share/doc/idflow-agent/README.md"
  if [ -d "$SRC/agent/examples" ]; then
    (cd "$SRC/agent/examples" && find . -name '*.yaml' | sort |
       sed 's|^\./|-rw-r--r-- root/root usr/share/doc/idflow-agent/examples/|')
  fi
} | sort >"$T/expect-idflow-agent"
{
  echo "-rw-r--r-- root/root etc/idflow/collector.env"
  echo "-rw-r--r-- root/root lib/systemd/system/idflow-collector.service"
  echo "-rwxr-xr-x root/root usr/bin/idflow-collector"
  echo "-rw-r--r-- root/root usr/share/doc/idflow-collector/README.md"
  echo "$policies_expected" | sed 's|^|-rw-r--r-- root/root |'
} | sort >"$T/expect-idflow-collector"
echo "-rwxr-xr-x root/root usr/bin/idflowctl" >"$T/expect-idflowctl"
for p in idflow-agent idflow-collector idflowctl; do
  contents "$(deb $p)" | sort >"$T/got-$p"
  if diff -u "$T/expect-$p" "$T/got-$p" >"$T/diff-$p"; then
    ok "$p contents ($(wc -l <"$T/got-$p") files and links)"
  else
    fail "$p contents differ from the layout:"; cat "$T/diff-$p" >&2
  fi
  # Directories too must stay inside the layout.
  bad_dirs=$(dpkg-deb -c "$(deb $p)" | awk '$1 ~ /^d/ { sub(/^\.\//, "", $6); sub(/\/$/, "", $6); print $6 }' |
    grep -vxE "|etc|etc/idflow|lib|lib/systemd|lib/systemd/system|usr|usr/bin|usr/lib|usr/lib/$MA|usr/lib/$MA/idflow|usr/share|usr/share/doc|usr/share/doc/$p|usr/share/doc/$p/examples|usr/share/idflow|usr/share/idflow/policies|usr/share/idflow/policies/[a-z]+" || true)
  [ -z "$bad_dirs" ] || fail "$p has directories outside the layout: $bad_dirs"
  dpkg-deb -x "$(deb $p)" "$T/x-$p"
done
link=$(readlink "$T/x-idflow-agent/usr/lib/libidflow-tap.so")
[ "$link" = "$MA/idflow/libidflow-tap.so" ] || fail "usr/lib/libidflow-tap.so -> $link"

# Stripped, and built for the package's architecture.
begin
for f in x-idflow-agent/usr/bin/idflow-agent x-idflow-agent/usr/lib/$MA/idflow/libidflow-tap.so \
         x-idflow-collector/usr/bin/idflow-collector x-idflowctl/usr/bin/idflowctl; do
  desc=$(file -b "$T/$f")
  case "$desc" in
    *"not stripped"* | *"with debug_info"*) fail "$f is not stripped: $desc" ;;
    *", stripped"*) ;;
    *) fail "$f: unexpected file type: $desc" ;;
  esac
  [[ "$desc" == *"$ELF_MACHINE"* ]] || fail "$f is not $ELF_MACHINE: $desc"
done
ok_if_clean "binaries stripped, $ELF_MACHINE"
du -b "${debs[@]}" | sed "s|$T/out/|package size (gzip): |"

# --- control fields and maintainer scripts
begin
field() { dpkg-deb -f "$(deb "$1")" "$2"; }
for p in idflow-agent idflow-collector idflowctl; do
  [ "$(field $p Package)" = "$p" ] || fail "$p: Package is $(field $p Package)"
  [ "$(field $p Architecture)" = "$ARCH" ] || fail "$p: Architecture is $(field $p Architecture)"
  [ "$(field $p Version)" = "$VERSION" ] || fail "$p: Version is $(field $p Version)"
  depends=$(field $p Depends)
  # dpkg-shlibdeps found the libraries' packages (libc6 is NEEDED by all).
  [[ ", $depends," == *", libc6 (>= "* ]] || fail "$p: Depends lacks libc6: $depends"
  [[ ", $depends," == *", libstdc++6"* ]] || fail "$p: Depends lacks libstdc++6: $depends"
  echo "$p Depends: $depends"
done
has_dep() { [[ ", $(field "$1" Depends)," == *", $2"[\ ,]* ]] || fail "$1: Depends lacks $2"; }
has_dep idflow-agent adduser
has_dep idflow-agent libvectorscan5     # pattern database, and the tap's runtime
has_dep idflow-agent libgrpc++1.51
has_dep idflow-collector adduser
has_dep idflow-collector libsqlite3-0
has_dep idflow-collector libpq5
[ "$(field idflowctl Recommends)" = "idflow-agent" ] || fail "idflowctl: Recommends is not idflow-agent"
for p in idflow-agent idflow-collector; do
  dpkg-deb -e "$(deb $p)" "$T/ctl-$p"
  for s in postinst prerm postrm; do
    [ "$(stat -c %a "$T/ctl-$p/$s")" = 755 ] || fail "$p $s mode $(stat -c %a "$T/ctl-$p/$s")"
    sh -n "$T/ctl-$p/$s" || fail "$p $s: shell syntax"
  done
  while read -r conf; do
    [ -f "$T/x-$p$conf" ] || fail "$p: conffile $conf not in the package"
  done <"$T/ctl-$p/conffiles"
done
grep -qx /etc/idflow/agent.yaml "$T/ctl-idflow-agent/conffiles" || fail "agent.yaml not a conffile"
grep -qx /etc/idflow/collector.env "$T/ctl-idflow-collector/conffiles" || fail "collector.env not a conffile"
ok_if_clean "control fields, maintainer scripts, conffiles"

# --- throwaway root: dpkg installs into it with its own, empty database.
# Its /usr and /lib are overlays over the system's, whose writes land in
# $T/up; /etc is a copy. Maintainer scripts run chrooted into it (dpkg
# --root), so the users they add go to the copy's passwd.
R=$T/root
mkdir -p "$R"/{usr,lib,etc,var/lib/dpkg/info,var/lib/dpkg/updates,var/log,run,tmp,dev,proc} \
  "$T"/up/{usr,lib} "$T"/work/{usr,lib}
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available" "$R/dev/null" "$R/dev/urandom"
for l in bin sbin lib64; do [ -L "/$l" ] && ln -s "$(readlink "/$l")" "$R/$l"; done
cp -a /etc/. "$R/etc/"
host_sums=$(sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow)

if ! unshare --mount --propagation private true 2>/dev/null; then
  echo "SKIP: no private mount namespace here; the throwaway-root install was not run" >&2
  [ "$failures" -eq 0 ] || exit 1
  exit 77
fi
# in_ns CMD: CMD (bash) with the root's mounts, in a private mount namespace
# (they vanish when it exits). in_root CMD: the same, chrooted into the root.
cat >"$T/in-ns.sh" <<'EOS'
set -euo pipefail
R=$1; T=$2
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$T/up/usr,workdir=$T/work/usr" "$R/usr"
mount -t overlay overlay -o "lowerdir=$(readlink -f /lib),upperdir=$T/up/lib,workdir=$T/work/lib" "$R/lib"
mount --bind /dev/null "$R/dev/null"
mount --bind /dev/urandom "$R/dev/urandom"
mount -t proc proc "$R/proc"
bash -c "$3"
EOS
in_ns() { unshare --mount --propagation private bash "$T/in-ns.sh" "$R" "$T" "$1"; }
in_root() { in_ns "chroot '$R' /bin/sh -c '$1'"; }
# Only the packages' own dependencies are missing from the empty database.
dpkg_root() {
  in_ns "dpkg --root='$R' --force-depends $*" >"$T/dpkg.log" 2>&1 ||
    { cat "$T/dpkg.log" >&2; fail "dpkg $*"; }
}
begin
# A cross build's packages go into a root that takes their architecture too.
[ "$ARCH" = "$(dpkg --print-architecture)" ] || dpkg --root="$R" --add-architecture "$ARCH"
dpkg_root -i "$(deb idflow-agent)" "$(deb idflow-collector)" "$(deb idflowctl)"
status=$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Package} ${db:Status-Abbrev}\n' 2>/dev/null | sort)
[ "$status" = "$(printf 'idflow-agent ii \nidflow-collector ii \nidflowctl ii ')" ] ||
  fail "dpkg did not install all three: $status"
conffiles=$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Conffiles}' idflow-agent idflow-collector 2>/dev/null)
for c in /etc/idflow/agent.yaml /etc/idflow/collector.env; do
  [[ "$conffiles" == *" $c "* ]] || fail "dpkg did not register the conffile $c"
done
id_of() { awk -F: -v n="$2" '$1 == n { print $3 }' "$R/etc/$1"; }
for u in idflow idflow-collector; do
  line=$(grep "^$u:" "$R/etc/passwd" || true)
  [ -n "$line" ] || { fail "postinst created no user $u"; continue; }
  [ "$(id_of passwd "$u")" -lt 1000 ] || fail "$u is not a system user: $line"
  [[ "$line" == *":/usr/sbin/nologin" ]] || fail "$u can log in: $line"
  [ -n "$(id_of group "$u")" ] || fail "postinst created no group $u"
done
[ -n "$(id_of group idflow-tap)" ] || fail "postinst created no group idflow-tap"
state_of() { stat -c '%u:%g %a' "$R/var/lib/$1" 2>/dev/null || echo missing; }
[ "$(state_of idflow)" = "$(id_of passwd idflow):$(id_of group idflow) 700" ] ||
  fail "/var/lib/idflow: $(state_of idflow)"
[ "$(state_of idflow-collector)" = "$(id_of passwd idflow-collector):$(id_of group idflow-collector) 700" ] ||
  fail "/var/lib/idflow-collector: $(state_of idflow-collector)"
for f in usr/bin/idflow-agent usr/lib/$MA/idflow/libidflow-tap.so lib/systemd/system/idflow-agent.service \
         lib/systemd/system/idflow-collector.service etc/idflow/agent.yaml etc/idflow/collector.env \
         usr/share/idflow/policies/ontology.yaml; do
  [ -f "$T/up/$f" ] || [ -f "$R/$f" ] || fail "not installed: /$f"
done
identity=$R/etc/idflow/identity.yaml
if [ -f "$identity" ]; then
  [ "$(stat -c '%u:%g %a' "$identity")" = "0:$(id_of group idflow) 640" ] ||
    fail "identity.yaml: $(stat -c '%u:%g %a' "$identity")"
  grep -qE '^digest_key: "[0-9a-f]{64}"$' "$identity" || fail "identity.yaml has no random digest key"
  grep -qE '^  id: ".+"$' "$identity" || fail "identity.yaml has no device id"
  before=$(sha256sum <"$identity")
  dpkg_root -i "$(deb idflow-agent)"   # an upgrade (same version): nothing regenerated
  [ "$(sha256sum <"$identity")" = "$before" ] || fail "postinst rewrote identity.yaml on upgrade"
else
  fail "postinst wrote no /etc/idflow/identity.yaml"
fi
ok_if_clean "postinst: users, groups, state directories, identity"

# The installed binaries run from the throwaway root with the system's libraries.
emu=${IDFLOW_EMULATOR:-}
begin
for b in idflow-agent idflow-collector idflowctl; do
  if in_root "$emu /usr/bin/$b --help" 2>&1 | grep -q -- '--version'; then
    out=$(in_root "$emu /usr/bin/$b --version" 2>&1) || fail "$b --version: $out"
    [[ "$out" == *"$VERSION"* ]] || fail "$b --version does not name $VERSION: $out"
    echo "$b --version: $out" | head -1
  else  # a binary without --version yet: it must at least load and print its usage
    in_root "$emu /usr/bin/$b --help" 2>&1 | grep -q usage || fail "$b does not run in the throwaway root"
    echo "$b: no --version yet, --help runs"
  fi
done
ok_if_clean "binaries run from the throwaway root"

# --- units: verified against the installed tree, then scored.
# verify warns about unknown or misplaced settings and still exits 0: any
# output fails too.
for u in idflow-agent idflow-collector; do
  if in_root "systemd-analyze verify /lib/systemd/system/$u.service" >"$T/verify.log" 2>&1 &&
     [ ! -s "$T/verify.log" ]; then
    ok "$u.service verifies"
  else
    cat "$T/verify.log" >&2; fail "systemd-analyze verify $u.service"
  fi
done
exposure() {
  in_root "systemd-analyze security --offline=true /lib/systemd/system/$1.service" 2>&1 |
    sed -n "s/.*Overall exposure level for $1.service: \([0-9.]*\).*/\1/p"
}
check_exposure() {
  local got
  got=$(exposure "$1")
  if [ -z "$got" ]; then
    fail "no exposure level for $1.service"
  elif awk -v g="$got" -v m="$2" 'BEGIN { exit !(g <= m) }'; then
    ok "$1.service exposure $got (at most $2)"
  else
    fail "$1.service exposure $got above $2"
  fi
}
check_exposure idflow-agent "$AGENT_MAX_EXPOSURE"
check_exposure idflow-collector "$COLLECTOR_MAX_EXPOSURE"

# --- purge: users, groups, state, conffiles and the generated identity go.
begin
dpkg_root --purge idflow-agent idflow-collector idflowctl
[ -z "$(dpkg-query --admindir="$R/var/lib/dpkg" -W 2>/dev/null)" ] || fail "packages left after purge"
[ ! -e "$R/etc/idflow" ] || fail "purge left /etc/idflow: $(ls -A "$R/etc/idflow")"
for u in idflow idflow-collector; do
  ! grep -q "^$u:" "$R/etc/passwd" || fail "postrm purge left user $u"
  ! grep -q "^$u:" "$R/etc/group" || fail "postrm purge left group $u"
done
! grep -q "^idflow-tap:" "$R/etc/group" || fail "postrm purge left group idflow-tap"
[ ! -e "$R/var/lib/idflow" ] && [ ! -e "$R/var/lib/idflow-collector" ] || fail "purge left state"
[ ! -e "$identity" ] || fail "purge left identity.yaml"
ok_if_clean "postrm purge"

[ "$(sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow)" = "$host_sums" ] ||
  fail "the machine's own user database changed"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "packaging: all checks passed"
