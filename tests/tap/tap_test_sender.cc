// Test program run under LD_PRELOAD=libidflow-tap.so by tap_component_test.
//   tap_test_sender MODE PORT PAYLOAD
// MODE: send | sendto | sendmsg | write | writev (TCP to 127.0.0.1:PORT),
//       udp (sendto on a UDP socket), fork (child and parent both send).
// Exits 0 when the payload was sent, 1 otherwise.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

bool SendTcp(const std::string& mode, int port, const std::string& payload) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = Loopback(port);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
  ssize_t n = -1;
  if (mode == "send" || mode == "fork") {
    n = send(fd, payload.data(), payload.size(), MSG_NOSIGNAL);
  } else if (mode == "sendto") {
    n = sendto(fd, payload.data(), payload.size(), MSG_NOSIGNAL, nullptr, 0);
  } else if (mode == "write") {
    n = write(fd, payload.data(), payload.size());
  } else if (mode == "writev" || mode == "sendmsg") {
    // Three pieces so that an identifier spans iovec boundaries.
    size_t a = payload.size() / 3, b = 2 * payload.size() / 3;
    iovec iov[3] = {{const_cast<char*>(payload.data()), a},
                    {const_cast<char*>(payload.data()) + a, b - a},
                    {const_cast<char*>(payload.data()) + b, payload.size() - b}};
    if (mode == "writev") {
      n = writev(fd, iov, 3);
    } else {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = 3;
      n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    }
  }
  close(fd);
  return n == static_cast<ssize_t>(payload.size());
}

bool SendUdp(int port, const std::string& payload) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr = Loopback(port);
  ssize_t n = sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr),
                     sizeof(addr));
  close(fd);
  return n == static_cast<ssize_t>(payload.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODE PORT PAYLOAD\n", argv[0]);
    return 2;
  }
  std::string mode = argv[1];
  int port = atoi(argv[2]);
  std::string payload = argv[3];
  if (mode == "udp") return SendUdp(port, payload) ? 0 : 1;
  if (mode == "fork") {
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) _exit(SendTcp(mode, port, payload) ? 0 : 1);
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return 1;
    }
  }
  return SendTcp(mode, port, payload) ? 0 : 1;
}
