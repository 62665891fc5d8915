#include "agent/tap/real/real_functions.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace idflow::tap {

constinit RealFunctions g_real;

#define IDFLOW_TAP_REAL_NAME(name, Fn) #name,
const char* const kHookNames[] = {IDFLOW_TAP_LIBC_FUNCTIONS(IDFLOW_TAP_REAL_NAME)
                                      IDFLOW_TAP_TLS_HOOKS(IDFLOW_TAP_REAL_NAME)};
#undef IDFLOW_TAP_REAL_NAME
const size_t kHookCount = sizeof(kHookNames) / sizeof(kHookNames[0]);

namespace {

void* g_tap_base = nullptr;

constexpr int kMaxObjects = 256;
struct ObjectList {
  const char* names[kMaxObjects];
  int count;
};

int CollectObject(dl_phdr_info* info, size_t, void* arg) {
  auto* list = static_cast<ObjectList*>(arg);
  if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;
  if (reinterpret_cast<void*>(info->dlpi_addr) == g_tap_base) return 0;
  if (list->count < kMaxObjects) list->names[list->count++] = info->dlpi_name;
  return 0;
}

// The definition of `symbol` in the dependency tree of some loaded object
// other than the tap. dlopen(RTLD_NOLOAD) only takes a reference.
void* FindOutsideTap(const char* symbol) {
  TapBase();
  ObjectList list;
  list.count = 0;
  dl_iterate_phdr(CollectObject, &list);
  for (int i = 0; i < list.count; ++i) {
    void* h = dlopen(list.names[i], RTLD_LAZY | RTLD_NOLOAD);
    if (h == nullptr) continue;
    void* sym = dlsym(h, symbol);
    Dl_info di;
    bool ok = sym != nullptr && dladdr(sym, &di) != 0 && di.dli_fbase != g_tap_base;
    dlclose(h);
    if (ok) return sym;
  }
  return nullptr;
}

}  // namespace

void* TapBase() {
  if (g_tap_base == nullptr) {
    Dl_info self;
    if (dladdr(reinterpret_cast<void*>(&TapBase), &self) != 0) g_tap_base = self.dli_fbase;
  }
  return g_tap_base;
}

void* ResolveNext(const char* name) { return dlsym(RTLD_NEXT, name); }

void* ResolveTls(const char* name) {
  void* sym = dlsym(RTLD_NEXT, name);
  return sym != nullptr ? sym : FindOutsideTap(name);
}

void ResolveAll() {
#define IDFLOW_TAP_RESOLVE(name, Fn) Real(g_real.name, #name);
  IDFLOW_TAP_LIBC_FUNCTIONS(IDFLOW_TAP_RESOLVE)
#undef IDFLOW_TAP_RESOLVE
}

int RealConnect(int fd, const sockaddr* a, socklen_t l) {
  ConnectFn f = IDFLOW_REAL(connect);
  return f ? f(fd, a, l) : static_cast<int>(syscall(SYS_connect, fd, a, l));
}
ssize_t RealSend(int fd, const void* b, size_t n, int flags) {
  SendFn f = IDFLOW_REAL(send);
  return f ? f(fd, b, n, flags) : syscall(SYS_sendto, fd, b, n, flags, nullptr, 0);
}
ssize_t RealSendto(int fd, const void* b, size_t n, int flags, const sockaddr* a, socklen_t l) {
  SendtoFn f = IDFLOW_REAL(sendto);
  return f ? f(fd, b, n, flags, a, l) : syscall(SYS_sendto, fd, b, n, flags, a, l);
}
ssize_t RealSendmsg(int fd, const msghdr* m, int flags) {
  SendmsgFn f = IDFLOW_REAL(sendmsg);
  return f ? f(fd, m, flags) : syscall(SYS_sendmsg, fd, m, flags);
}
int RealSendmmsg(int fd, mmsghdr* v, unsigned int n, int flags) {
  SendmmsgFn f = IDFLOW_REAL(sendmmsg);
  return f ? f(fd, v, n, flags) : static_cast<int>(syscall(SYS_sendmmsg, fd, v, n, flags));
}
ssize_t RealWrite(int fd, const void* b, size_t n) {
  WriteFn f = IDFLOW_REAL(write);
  return f ? f(fd, b, n) : syscall(SYS_write, fd, b, n);
}
ssize_t RealWritev(int fd, const iovec* iov, int cnt) {
  WritevFn f = IDFLOW_REAL(writev);
  return f ? f(fd, iov, cnt) : syscall(SYS_writev, fd, iov, cnt);
}
int RealClose(int fd) {
  CloseFn f = IDFLOW_REAL(close);
  return f ? f(fd) : static_cast<int>(syscall(SYS_close, fd));
}
int RealDup2(int a, int b) {
  Dup2Fn f = IDFLOW_REAL(dup2);
  return f ? f(a, b) : static_cast<int>(syscall(SYS_dup3, a, b, 0));
}
int RealDup3(int a, int b, int flags) {
  Dup3Fn f = IDFLOW_REAL(dup3);
  return f ? f(a, b, flags) : static_cast<int>(syscall(SYS_dup3, a, b, flags));
}
int RealSocket(int d, int t, int p) {
  SocketFn f = IDFLOW_REAL(socket);
  return f ? f(d, t, p) : static_cast<int>(syscall(SYS_socket, d, t, p));
}
int RealAccept(int fd, sockaddr* a, socklen_t* l) {
  AcceptFn f = IDFLOW_REAL(accept);
  return f ? f(fd, a, l) : static_cast<int>(syscall(SYS_accept, fd, a, l));
}
int RealAccept4(int fd, sockaddr* a, socklen_t* l, int flags) {
  Accept4Fn f = IDFLOW_REAL(accept4);
  return f ? f(fd, a, l, flags) : static_cast<int>(syscall(SYS_accept4, fd, a, l, flags));
}
ssize_t RealRecv(int fd, void* b, size_t n, int flags) {
  RecvFn f = IDFLOW_REAL(recv);
  return f ? f(fd, b, n, flags) : syscall(SYS_recvfrom, fd, b, n, flags, nullptr, nullptr);
}
ssize_t RealRecvfrom(int fd, void* b, size_t n, int flags, sockaddr* a, socklen_t* l) {
  RecvfromFn f = IDFLOW_REAL(recvfrom);
  return f ? f(fd, b, n, flags, a, l) : syscall(SYS_recvfrom, fd, b, n, flags, a, l);
}
ssize_t RealRecvmsg(int fd, msghdr* m, int flags) {
  RecvmsgFn f = IDFLOW_REAL(recvmsg);
  return f ? f(fd, m, flags) : syscall(SYS_recvmsg, fd, m, flags);
}
ssize_t RealRead(int fd, void* b, size_t n) {
  ReadFn f = IDFLOW_REAL(read);
  return f ? f(fd, b, n) : syscall(SYS_read, fd, b, n);
}
int RealOpenMode(std::atomic<OpenFn>& slot, const char* name, const char* path, int flags,
                 mode_t mode) {
  OpenFn f = Real(slot, name);
  return f ? f(path, flags, mode)
           : static_cast<int>(syscall(SYS_openat, AT_FDCWD, path, flags, mode));
}
int RealOpenatMode(std::atomic<OpenatFn>& slot, const char* name, int dirfd, const char* path,
                   int flags, mode_t mode) {
  OpenatFn f = Real(slot, name);
  return f ? f(dirfd, path, flags, mode)
           : static_cast<int>(syscall(SYS_openat, dirfd, path, flags, mode));
}

}  // namespace idflow::tap
