// A private TLS server for tests: `openssl s_server -www` on 127.0.0.1 (a
// free port) with a fresh self-signed EC certificate for CN=localhost, made
// in a temporary folder. It answers each GET with its status page and closes
// the connection (close_notify), one client at a time. Stopped (SIGTERM) and
// its folder removed when destroyed.
#ifndef IDFLOW_TESTS_TESTING_TLS_SERVER_H_
#define IDFLOW_TESTS_TESTING_TLS_SERVER_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"

namespace idflow::testing {

class TlsServer {
 public:
  TlsServer() = default;
  ~TlsServer();
  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;

  // Finds openssl on $PATH (or $IDFLOW_OPENSSL), makes the certificate and
  // starts the server, waiting (with a deadline) until it accepts
  // connections; a port taken in the meantime is retried on another.
  // FAILED_PRECONDITION when openssl is not installed. Call once.
  absl::Status Start();

  // The loopback port it listens on (0 before Start succeeded).
  int port() const { return port_; }
  // The server's certificate (PEM), for clients that want to verify it.
  std::string cert_path() const { return dir_.empty() ? "" : dir_ + "/cert.pem"; }

 private:
  std::string dir_;  // temporary folder: the key, the certificate, logs
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace idflow::testing

#endif  // IDFLOW_TESTS_TESTING_TLS_SERVER_H_
