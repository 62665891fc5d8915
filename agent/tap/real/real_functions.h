// The table of real functions behind the tap's hooks, generated from
// hook_list.h. Hooks and the core call the real libc/TLS functions only
// through it, so a unit test can replace any entry (store a fake before the
// code under test runs; the tap's resolution never overwrites a non-null
// entry). Entries are atomics: resolved in the constructor while the process
// is single-threaded (libc) or on first use (TLS).
#ifndef IDFLOW_AGENT_TAP_REAL_REAL_FUNCTIONS_H_
#define IDFLOW_AGENT_TAP_REAL_REAL_FUNCTIONS_H_

#include <ifaddrs.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>

#include "agent/tap/real/hook_list.h"

namespace idflow::tap {

using ConnectFn = int (*)(int, const sockaddr*, socklen_t);
using SendFn = ssize_t (*)(int, const void*, size_t, int);
using SendtoFn = ssize_t (*)(int, const void*, size_t, int, const sockaddr*, socklen_t);
using SendmsgFn = ssize_t (*)(int, const msghdr*, int);
using SendmmsgFn = int (*)(int, mmsghdr*, unsigned int, int);
using WriteFn = ssize_t (*)(int, const void*, size_t);
using WritevFn = ssize_t (*)(int, const iovec*, int);
using CloseFn = int (*)(int);
using Dup2Fn = int (*)(int, int);
using Dup3Fn = int (*)(int, int, int);
using SocketFn = int (*)(int, int, int);
using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
using Accept4Fn = int (*)(int, sockaddr*, socklen_t*, int);
using RecvFn = ssize_t (*)(int, void*, size_t, int);
using RecvfromFn = ssize_t (*)(int, void*, size_t, int, sockaddr*, socklen_t*);
using RecvmsgFn = ssize_t (*)(int, msghdr*, int);
using ReadFn = ssize_t (*)(int, void*, size_t);
using ReadChkFn = ssize_t (*)(int, void*, size_t, size_t);
using RecvChkFn = ssize_t (*)(int, void*, size_t, size_t, int);
using RecvfromChkFn = ssize_t (*)(int, void*, size_t, size_t, int, sockaddr*, socklen_t*);
using OpenFn = int (*)(const char*, int, ...);
using OpenatFn = int (*)(int, const char*, int, ...);
using Open2Fn = int (*)(const char*, int);
using Openat2Fn = int (*)(int, const char*, int);
using FopenFn = FILE* (*)(const char*, const char*);
using IoctlFn = int (*)(int, unsigned long, ...);
using GetifaddrsFn = int (*)(ifaddrs**);
using GetaddrinfoFn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
using DlcloseFn = int (*)(void*);
using FwriteFn = size_t (*)(const void*, size_t, size_t, FILE*);
using FputsFn = int (*)(const char*, FILE*);
using FputcFn = int (*)(int, FILE*);
using FprintfFn = int (*)(FILE*, const char*, ...);
using VfprintfFn = int (*)(FILE*, const char*, va_list);
using FprintfChkFn = int (*)(FILE*, int, const char*, ...);
using VfprintfChkFn = int (*)(FILE*, int, const char*, va_list);
// TLS libraries: opaque handles, so no libssl/gnutls headers are needed.
using SslWriteFn = int (*)(void*, const void*, int);
using SslWriteExFn = int (*)(void*, const void*, size_t, size_t*);
using SslReadFn = int (*)(void*, void*, int);
using SslReadExFn = int (*)(void*, void*, size_t, size_t*);
using SslGetFdFn = int (*)(const void*);
using GnutlsSendFn = ssize_t (*)(void*, const void*, size_t);
using GnutlsRecvFn = ssize_t (*)(void*, void*, size_t);
using GnutlsGetIntFn = int (*)(void*);

struct RealFunctions {
#define IDFLOW_TAP_REAL_SLOT(name, Fn) std::atomic<Fn> name{nullptr};
  IDFLOW_TAP_LIBC_FUNCTIONS(IDFLOW_TAP_REAL_SLOT)
  IDFLOW_TAP_TLS_HOOKS(IDFLOW_TAP_REAL_SLOT)
  IDFLOW_TAP_TLS_HELPERS(IDFLOW_TAP_REAL_SLOT)
#undef IDFLOW_TAP_REAL_SLOT
};

// The process's table (constinit: valid before any constructor runs).
extern RealFunctions g_real;

// Names of every interposed function (libc and TLS hooks), in list order;
// what tap.map must export.
extern const char* const kHookNames[];
extern const size_t kHookCount;

// Base address of the module the tap is linked into: frames and definitions
// inside it are the tap's own.
void* TapBase();

void* ResolveNext(const char* name);  // dlsym(RTLD_NEXT)
void* ResolveTls(const char* name);   // RTLD_NEXT, else any loaded object's tree

// The real function in `slot`, resolved on first use.
template <typename Fn>
Fn Real(std::atomic<Fn>& slot, const char* name) {
  Fn fn = slot.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<Fn>(ResolveNext(name));
    slot.store(fn, std::memory_order_release);
  }
  return fn;
}

// TLS entry points: RTLD_NEXT only sees the global scope, but Python (and
// other plugin hosts) load libssl RTLD_LOCAL as a dependency of a dlopen'ed
// module, whose calls still land in our global definition. Then every loaded
// object's own dependency tree is searched. Not found: retried next time.
template <typename Fn>
Fn RealTls(std::atomic<Fn>& slot, const char* name) {
  Fn fn = slot.load(std::memory_order_acquire);
  if (fn != nullptr) return fn;
  fn = reinterpret_cast<Fn>(ResolveTls(name));
  if (fn != nullptr) slot.store(fn, std::memory_order_release);
  return fn;
}

#define IDFLOW_REAL(name) ::idflow::tap::Real(::idflow::tap::g_real.name, #name)
#define IDFLOW_REAL_TLS(name) ::idflow::tap::RealTls(::idflow::tap::g_real.name, #name)

// Resolves every libc entry while the process is still single-threaded
// (constructor): a lazy dlsym in a hook could hold the loader lock across
// another thread's fork(). TLS libraries loaded later resolve on first use.
void ResolveAll();

// The real functions, with a raw syscall when dlsym found nothing, so a hook
// never jumps to null.
int RealConnect(int fd, const sockaddr* a, socklen_t l);
ssize_t RealSend(int fd, const void* b, size_t n, int flags);
ssize_t RealSendto(int fd, const void* b, size_t n, int flags, const sockaddr* a, socklen_t l);
ssize_t RealSendmsg(int fd, const msghdr* m, int flags);
int RealSendmmsg(int fd, mmsghdr* v, unsigned int n, int flags);
ssize_t RealWrite(int fd, const void* b, size_t n);
ssize_t RealWritev(int fd, const iovec* iov, int cnt);
int RealClose(int fd);
int RealDup2(int a, int b);
int RealDup3(int a, int b, int flags);
int RealSocket(int d, int t, int p);
int RealAccept(int fd, sockaddr* a, socklen_t* l);
int RealAccept4(int fd, sockaddr* a, socklen_t* l, int flags);
ssize_t RealRecv(int fd, void* b, size_t n, int flags);
ssize_t RealRecvfrom(int fd, void* b, size_t n, int flags, sockaddr* a, socklen_t* l);
ssize_t RealRecvmsg(int fd, msghdr* m, int flags);
ssize_t RealRead(int fd, void* b, size_t n);
int RealOpenMode(std::atomic<OpenFn>& slot, const char* name, const char* path, int flags,
                 mode_t mode);
int RealOpenatMode(std::atomic<OpenatFn>& slot, const char* name, int dirfd, const char* path,
                   int flags, mode_t mode);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_REAL_REAL_FUNCTIONS_H_
