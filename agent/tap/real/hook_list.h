// The one list of the functions the tap interposes (and the few it only
// calls), from which the table of real functions (real_functions.h) is
// generated. Adding a hook: a line here, its exported definition under
// agent/tap/hooks/, its name in agent/tap/tap.map.
//
// X(name, type): `name` is the C symbol, `type` the pointer type of the real
// function (declared in real_functions.h).
#ifndef IDFLOW_AGENT_TAP_REAL_HOOK_LIST_H_
#define IDFLOW_AGENT_TAP_REAL_HOOK_LIST_H_

// libc: resolved with dlsym(RTLD_NEXT) in the constructor.
#define IDFLOW_TAP_LIBC_FUNCTIONS(X) \
  X(connect, ConnectFn)              \
  X(send, SendFn)                    \
  X(sendto, SendtoFn)                \
  X(sendmsg, SendmsgFn)              \
  X(sendmmsg, SendmmsgFn)            \
  X(write, WriteFn)                  \
  X(writev, WritevFn)                \
  X(close, CloseFn)                  \
  X(dup2, Dup2Fn)                    \
  X(dup3, Dup3Fn)                    \
  X(socket, SocketFn)                \
  X(accept, AcceptFn)                \
  X(accept4, Accept4Fn)              \
  X(recv, RecvFn)                    \
  X(recvfrom, RecvfromFn)            \
  X(recvmsg, RecvmsgFn)              \
  X(read, ReadFn)                    \
  X(__read_chk, ReadChkFn)           \
  X(__recv_chk, RecvChkFn)           \
  X(__recvfrom_chk, RecvfromChkFn)   \
  X(open, OpenFn)                    \
  X(open64, OpenFn)                  \
  X(openat, OpenatFn)                \
  X(openat64, OpenatFn)              \
  X(__open_2, Open2Fn)               \
  X(__open64_2, Open2Fn)             \
  X(__openat_2, Openat2Fn)           \
  X(__openat64_2, Openat2Fn)         \
  X(fopen, FopenFn)                  \
  X(fopen64, FopenFn)                \
  X(ioctl, IoctlFn)                  \
  X(getifaddrs, GetifaddrsFn)        \
  X(getaddrinfo, GetaddrinfoFn)      \
  X(dlclose, DlcloseFn)              \
  X(fwrite, FwriteFn)                \
  X(fputs, FputsFn)                  \
  X(fputc, FputcFn)                  \
  X(putc, FputcFn)                   \
  X(fprintf, FprintfFn)              \
  X(vfprintf, VfprintfFn)            \
  X(__fprintf_chk, FprintfChkFn)     \
  X(__vfprintf_chk, VfprintfChkFn)

// TLS libraries: resolved on first use (they may be loaded later, or
// RTLD_LOCAL), never linked.
#define IDFLOW_TAP_TLS_HOOKS(X)       \
  X(SSL_write, SslWriteFn)            \
  X(SSL_write_ex, SslWriteExFn)       \
  X(SSL_read, SslReadFn)              \
  X(SSL_read_ex, SslReadExFn)         \
  X(gnutls_record_send, GnutlsSendFn) \
  X(gnutls_record_recv, GnutlsRecvFn)

// Called by the TLS hooks, not interposed.
#define IDFLOW_TAP_TLS_HELPERS(X) \
  X(SSL_get_fd, SslGetFdFn)       \
  X(gnutls_transport_get_int, GnutlsGetIntFn)

#endif  // IDFLOW_AGENT_TAP_REAL_HOOK_LIST_H_
