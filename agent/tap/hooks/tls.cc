// TLS hooks (OpenSSL, GnuTLS): plaintext before encryption and after
// decryption. The guard spans the real call: the library's own socket
// writes carry ciphertext and are not scanned twice.
#include "agent/tap/hooks/hook.h"

using namespace idflow::tap;  // NOLINT: hooks are C symbols
namespace agent = idflow::agent;

namespace {

int SslFd(void* ssl) {
  SslGetFdFn f = IDFLOW_REAL_TLS(SSL_get_fd);
  return TransportFd(f != nullptr ? f(ssl) : -1);
}

int GnutlsFd(void* session) {
  GnutlsGetIntFn f = IDFLOW_REAL_TLS(gnutls_transport_get_int);
  return TransportFd(f != nullptr ? f(session) : -1);
}

}  // namespace

IDFLOW_EXPORT int SSL_write(void* ssl, const void* buf, int num) {
  void* caller = IDFLOW_CALLER;
  SslWriteFn f = IDFLOW_REAL_TLS(SSL_write);
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num);
  if (r > 0 && guard.entered() && Active()) {
    int saved_errno = errno;
    ObserveTlsSend(SslFd(ssl), buf, static_cast<size_t>(r), agent::kTapChannelTlsOpenssl, caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int SSL_write_ex(void* ssl, const void* buf, size_t num, size_t* written) {
  void* caller = IDFLOW_CALLER;
  SslWriteExFn f = IDFLOW_REAL_TLS(SSL_write_ex);
  if (f == nullptr) return 0;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num, written);
  if (r == 1 && written != nullptr && *written > 0 && guard.entered() && Active()) {
    int saved_errno = errno;
    ObserveTlsSend(SslFd(ssl), buf, *written, agent::kTapChannelTlsOpenssl, caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int SSL_read(void* ssl, void* buf, int num) {
  void* caller = IDFLOW_CALLER;
  SslReadFn f = IDFLOW_REAL_TLS(SSL_read);
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num);
  if (r > 0 && guard.entered() && Ready()) {
    int saved_errno = errno;
    ObserveReceive(SslFd(ssl), buf, static_cast<size_t>(r), agent::kTapChannelTlsOpenssl, caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int SSL_read_ex(void* ssl, void* buf, size_t num, size_t* read_bytes) {
  void* caller = IDFLOW_CALLER;
  SslReadExFn f = IDFLOW_REAL_TLS(SSL_read_ex);
  if (f == nullptr) return 0;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num, read_bytes);
  if (r == 1 && read_bytes != nullptr && *read_bytes > 0 && guard.entered() && Ready()) {
    int saved_errno = errno;
    ObserveReceive(SslFd(ssl), buf, *read_bytes, agent::kTapChannelTlsOpenssl, caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT ssize_t gnutls_record_send(void* session, const void* buf, size_t n) {
  void* caller = IDFLOW_CALLER;
  GnutlsSendFn f = IDFLOW_REAL_TLS(gnutls_record_send);
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  ssize_t r = f(session, buf, n);
  if (r > 0 && guard.entered() && Active()) {
    int saved_errno = errno;
    ObserveTlsSend(GnutlsFd(session), buf, static_cast<size_t>(r), agent::kTapChannelTlsGnutls,
                   caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT ssize_t gnutls_record_recv(void* session, void* buf, size_t n) {
  void* caller = IDFLOW_CALLER;
  GnutlsRecvFn f = IDFLOW_REAL_TLS(gnutls_record_recv);
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  ssize_t r = f(session, buf, n);
  if (r > 0 && guard.entered() && Ready()) {
    int saved_errno = errno;
    ObserveReceive(GnutlsFd(session), buf, static_cast<size_t>(r), agent::kTapChannelTlsGnutls,
                   caller);
    errno = saved_errno;
  }
  return r;
}
