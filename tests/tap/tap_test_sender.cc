// Test program run under LD_PRELOAD=libidflow-tap.so by tap_component_test.
//   tap_test_sender MODE PORT PAYLOAD
// MODE: send | sendto | sendmsg | write | writev (TCP to 127.0.0.1:PORT),
//       udp (sendto on a UDP socket), fork (child and parent both send),
//       sendmmsg (two UDP datagrams), split (two sends cutting PAYLOAD in
//       half), http (send PAYLOAD, then read the response to EOF),
//       http-small-reads (the same, 37 bytes a read), resolve
//       (getaddrinfo("localhost") then send), sni (a TLS ClientHello naming
//       sni.example.test, then PAYLOAD on the same connection).
//   tap_test_sender unix PATH PAYLOAD      unix stream socket at PATH
//   tap_test_sender sysfs|fopen PATH -     read a file with open()/fopen()
//   tap_test_sender ioctl IFNAME -         SIOCGIFHWADDR
//   tap_test_sender getifaddrs - -
//   tap_test_sender dlopen PORT LIB|OAID    twice: dlopen LIB, its
//                                           mystery_sdk_track sends OAID, dlclose
//   tap_test_sender stdio PORT PAYLOAD      PAYLOAD four times through stdio
//                                           (fprintf, fwrite, fputs, putc)
//   tap_test_sender wait-send PORT PAYLOAD  print "ready", wait for a line on
//                                           stdin, then send (TCP)
//   tap_test_sender flows BASEPORT PAYLOAD COUNT FLOWS RATE [HOLD]
//       COUNT UDP datagrams from one socket to ports BASEPORT + i % FLOWS
//       (distinct flows), RATE per second (0: as fast as it can); prints
//       "sent N" every 10,000 and "done N MS" at the end; with "hold", waits
//       until the file HOLD exists before exiting (so its ring outlives an
//       agent restart).
// Exits 0 when the payload was sent, 1 otherwise.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "tests/tap/client_hello.h"

namespace {

using ::idflow::testing::ClientHello;

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

int ConnectTcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = Loopback(port);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return -1;
  return fd;
}

bool SendAll(int fd, const std::string& s) {
  return send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

int Special(const std::string& mode, const std::string& arg, const std::string& payload) {
  if (mode == "unix") {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", arg.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return 1;
    bool ok = SendAll(fd, payload);
    close(fd);
    return ok ? 0 : 1;
  }
  if (mode == "sysfs" || mode == "fopen") {
    char buf[64] = {};
    if (mode == "sysfs") {
      int fd = open(arg.c_str(), O_RDONLY);
      if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0) return 1;
      close(fd);
    } else {
      FILE* f = fopen(arg.c_str(), "r");
      if (f == nullptr || fgets(buf, sizeof(buf), f) == nullptr) return 1;
      fclose(f);
    }
    printf("%s", buf);
    return 0;
  }
  if (mode == "ioctl") {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", arg.c_str());
    int r = ioctl(fd, SIOCGIFHWADDR, &ifr);
    close(fd);
    return r == 0 ? 0 : 1;
  }
  if (mode == "getifaddrs") {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return 1;
    freeifaddrs(list);
    return 0;
  }
  int port = atoi(arg.c_str());
  if (mode == "sendmmsg") {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr = Loopback(port);
    iovec iov[2] = {{const_cast<char*>("x"), 1},
                    {const_cast<char*>(payload.data()), payload.size()}};
    mmsghdr msgs[2]{};
    for (auto& m : msgs) {
      m.msg_hdr.msg_name = &addr;
      m.msg_hdr.msg_namelen = sizeof(addr);
    }
    msgs[0].msg_hdr.msg_iov = &iov[0];
    msgs[0].msg_hdr.msg_iovlen = 1;
    msgs[1].msg_hdr.msg_iov = &iov[1];
    msgs[1].msg_hdr.msg_iovlen = 1;
    int n = sendmmsg(fd, msgs, 2, 0);
    close(fd);
    return n == 2 ? 0 : 1;
  }
  if (mode == "resolve") {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo("localhost", std::to_string(port).c_str(), &hints, &res) != 0) return 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = connect(fd, res->ai_addr, res->ai_addrlen) == 0 && SendAll(fd, payload);
    freeaddrinfo(res);
    close(fd);
    return ok ? 0 : 1;
  }
  int fd = ConnectTcp(port);
  if (fd < 0) return 1;
  bool ok = true;
  if (mode == "split") {
    size_t half = payload.size() / 2;
    ok = SendAll(fd, payload.substr(0, half)) && SendAll(fd, payload.substr(half));
  } else if (mode == "sni") {
    ok = SendAll(fd, ClientHello("sni.example.test")) && SendAll(fd, payload);
  } else if (mode == "http" || mode == "http-small-reads") {
    ok = SendAll(fd, payload);
    shutdown(fd, SHUT_WR);
    char buf[4096];
    // Small reads cut the response's header lines across reads.
    const size_t chunk = mode == "http" ? sizeof(buf) : 37;
    while (read(fd, buf, chunk) > 0) {
    }
  }
  close(fd);
  return ok ? 0 : 1;
}

bool SendUdp(int port, const std::string& payload) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr = Loopback(port);
  ssize_t n = sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr),
                     sizeof(addr));
  close(fd);
  return n == static_cast<ssize_t>(payload.size());
}

int Flows(int argc, char** argv) {
  if (argc < 7) return 2;
  const int base = atoi(argv[2]);
  const std::string payload = argv[3];
  const long count = atol(argv[4]), flows = std::max(1L, atol(argv[5]));
  const double rate = atof(argv[6]);
  const char* hold = argc > 7 ? argv[7] : nullptr;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return 1;
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  auto elapsed_s = [&] {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<double>(now.tv_sec - start.tv_sec) +
           static_cast<double>(now.tv_nsec - start.tv_nsec) / 1e9;
  };
  for (long i = 0; i < count; ++i) {
    if (rate > 0) {
      // Paced against the start, so a slow moment is caught up on.
      double due = static_cast<double>(i) / rate, now = elapsed_s();
      if (due > now) {
        timespec pause{static_cast<time_t>(due - now),
                       static_cast<long>((due - now - static_cast<long>(due - now)) * 1e9)};
        nanosleep(&pause, nullptr);
      }
    }
    sockaddr_in addr = Loopback(base + static_cast<int>(i % flows));
    if (sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr),
               sizeof(addr)) != static_cast<ssize_t>(payload.size())) {
      fprintf(stderr, "sendto %ld failed\n", i);
      return 1;
    }
    if ((i + 1) % 10000 == 0) {
      printf("sent %ld\n", i + 1);
      fflush(stdout);
    }
  }
  printf("done %ld %.0f\n", count, elapsed_s() * 1000);
  fflush(stdout);
  close(fd);
  while (hold != nullptr && access(hold, F_OK) != 0) {
    timespec pause{0, 10 * 1000 * 1000};
    nanosleep(&pause, nullptr);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "flows") return Flows(argc, argv);
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODE PORT PAYLOAD\n", argv[0]);
    return 2;
  }
  std::string mode = argv[1];
  for (const char* special : {"unix", "sysfs", "fopen", "ioctl", "getifaddrs", "sendmmsg",
                              "resolve", "split", "sni", "http", "http-small-reads"}) {
    if (mode == special) return Special(mode, argv[2], argv[3]);
  }
  int port = atoi(argv[2]);
  std::string payload = argv[3];
  if (mode == "udp") return SendUdp(port, payload) ? 0 : 1;
  if (mode == "dlopen") {
    // PAYLOAD is LIB|OAID: twice, dlopen LIB, mystery_sdk_track(PORT, OAID)
    // from it, dlclose it.
    const size_t bar = payload.find('|');
    if (bar == std::string::npos) return 2;
    const std::string lib = payload.substr(0, bar), oaid = payload.substr(bar + 1);
    for (int round = 0; round < 2; ++round) {
      void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
      auto track = h != nullptr
                       ? reinterpret_cast<int (*)(int, const char*)>(dlsym(h, "mystery_sdk_track"))
                       : nullptr;
      if (track == nullptr || track(port, oaid.c_str()) != 0 || dlclose(h) != 0) return 1;
    }
    return 0;
  }
  if (mode == "stdio") {
    // The payload through stdio on a socket FILE*: fprintf, fwrite, fputs,
    // then putc byte by byte.
    int fd = ConnectTcp(port);
    FILE* f = fd >= 0 ? fdopen(fd, "w") : nullptr;
    if (f == nullptr) return 1;
    fprintf(f, "p=%s|", payload.c_str());
    fwrite(payload.data(), 1, payload.size(), f);
    fputs("|", f);
    fputs(payload.c_str(), f);
    for (char c : "|" + payload) putc(c, f);
    return fclose(f) == 0 ? 0 : 1;
  }
  if (mode == "wait-send") {
    // Lets a test act between the tap's start-up and the send.
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof(line), stdin) == nullptr) return 1;
    return SendTcp("send", port, payload) ? 0 : 1;
  }
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
