#include "tests/testing/tls_server.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/subprocess.h"

namespace idflow::testing {
namespace {

// True when something accepts a TCP connection on 127.0.0.1:port.
bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

absl::Status TlsServer::Start() {
  if (!dir_.empty()) return absl::FailedPreconditionError("TlsServer::Start called twice");
  const char* env = getenv("IDFLOW_OPENSSL");
  const bool from_env = env != nullptr && *env != '\0';
  const std::string openssl = FindProgram(from_env ? env : "openssl");
  if (openssl.empty()) {
    return absl::FailedPreconditionError(
        from_env ? absl::StrCat("IDFLOW_OPENSSL=", env, " is no executable")
                 : "openssl not installed (the openssl package: scripts/install-deps.sh lists it)");
  }
  auto dir = MakeTempDir("idflow_tls_");
  if (!dir.ok()) return dir.status();
  dir_ = *dir;
  const std::string cert = dir_ + "/cert.pem";
  const std::string key = dir_ + "/key.pem";
  // A self-signed P-256 certificate for CN=localhost, valid for two days.
  auto req = RunAndWait(
      {openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-subj", "/CN=localhost", "-days", "2", "-keyout", key, "-out", cert},
      SpawnOptions{.log = dir_ + "/req.log"}, std::chrono::seconds(60));
  if (!req.ok()) return req.status();
  if (*req != 0) {
    return absl::InternalError(
        absl::StrCat("openssl req failed (status ", *req, "): ", FileTail(dir_ + "/req.log")));
  }
  const std::string log = dir_ + "/s_server.log";
  auto started = StartServerOnFreePort(ServerSpec{
      .name = "openssl s_server",
      .spawn =
          [&](int port) {
            // A fresh log per attempt: readiness looks for its ACCEPT line.
            std::error_code ec;
            std::filesystem::remove(log, ec);
            return Spawn({openssl, "s_server", "-www", "-accept", absl::StrCat("127.0.0.1:", port),
                          "-cert", cert, "-key", key},
                         SpawnOptions{.log = log});
          },
      // s_server prints ACCEPT once it listens; until then the port may be
      // someone else's.
      .ready =
          [&](int port) { return absl::StrContains(FileTail(log), "ACCEPT") && Accepts(port); },
      .log_tail = [&] { return FileTail(log); },
      .deadline = std::chrono::seconds(30),
      .attempts = 5,
  });
  if (!started.ok()) return started.status();
  pid_ = started->pid;
  port_ = started->port;
  return absl::OkStatus();
}

TlsServer::~TlsServer() {
  StopProcess(pid_, SIGTERM, std::chrono::seconds(10));
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

}  // namespace idflow::testing
