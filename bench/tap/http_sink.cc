// idflow-bench-http-sink: a minimal loopback HTTP/1.1 upload sink for the
// curl benchmark. Accepts one connection at a time on 127.0.0.1, answers
// "Expect: 100-continue", drains Content-Length bytes (or a chunked body),
// replies 200 and closes. Exits after --requests uploads, or when no client
// has connected for --idle-s seconds, so it always stops by itself.
//
//   idflow-bench-http-sink --port-file FILE [--requests N] [--idle-s S]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t r = write(fd, s.data() + off, s.size() - off);
    if (r <= 0) return false;
    off += static_cast<size_t>(r);
  }
  return true;
}

// Case-insensitive header lookup in the raw header block.
std::string Header(const std::string& head, const char* name) {
  size_t n = strlen(name);
  size_t p = 0;
  while ((p = head.find("\r\n", p)) != std::string::npos) {
    p += 2;
    if (head.size() - p > n && strncasecmp(head.c_str() + p, name, n) == 0 && head[p + n] == ':') {
      size_t v = p + n + 1;
      while (v < head.size() && head[v] == ' ') ++v;
      return head.substr(v, head.find("\r\n", v) - v);
    }
  }
  return "";
}

// Returns bytes of body drained, or -1 on a protocol error.
long long Serve(int fd) {
  std::vector<char> buf(256 * 1024);
  std::string head;
  size_t end;
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    ssize_t r = read(fd, buf.data(), buf.size());
    if (r <= 0 || head.size() > 64 * 1024) return -1;
    head.append(buf.data(), static_cast<size_t>(r));
  }
  std::string rest = head.substr(end + 4);
  head.resize(end + 2);
  if (strcasecmp(Header(head, "Expect").c_str(), "100-continue") == 0 &&
      !WriteAll(fd, "HTTP/1.1 100 Continue\r\n\r\n")) {
    return -1;
  }
  long long drained = static_cast<long long>(rest.size());
  std::string cl = Header(head, "Content-Length");
  if (!cl.empty()) {
    long long want = strtoll(cl.c_str(), nullptr, 10);
    while (drained < want) {
      ssize_t r = read(fd, buf.data(), buf.size());
      if (r <= 0) return -1;
      drained += r;
    }
  } else if (strcasecmp(Header(head, "Transfer-Encoding").c_str(), "chunked") == 0) {
    // Benchmark sink: read until the terminating zero-size chunk is seen.
    std::string tail = rest.size() > 8 ? rest.substr(rest.size() - 8) : rest;
    while (tail.find("0\r\n\r\n") == std::string::npos) {
      ssize_t r = read(fd, buf.data(), buf.size());
      if (r <= 0) return -1;
      drained += r;
      tail.append(buf.data(), static_cast<size_t>(r));
      if (tail.size() > 8) tail.erase(0, tail.size() - 8);
    }
  }
  WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  return drained;
}

}  // namespace

int main(int argc, char** argv) {
  std::string port_file;
  long requests = 1000000;
  int idle_s = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--port-file")
      port_file = argv[i + 1];
    else if (k == "--requests")
      requests = strtol(argv[i + 1], nullptr, 10);
    else if (k == "--idle-s")
      idle_s = atoi(argv[i + 1]);
    else
      port_file.clear(), i = argc;
  }
  if (port_file.empty() || argc % 2 == 0) {
    fprintf(stderr, "usage: %s --port-file FILE [--requests N] [--idle-s S]\n", argv[0]);
    return 2;
  }
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(ls, 16) != 0 ||
      getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    perror("listen");
    return 1;
  }
  std::string tmp = port_file + ".tmp";
  FILE* f = fopen(tmp.c_str(), "w");
  if (f == nullptr || fprintf(f, "%d\n", ntohs(addr.sin_port)) < 0 || fclose(f) != 0 ||
      rename(tmp.c_str(), port_file.c_str()) != 0) {
    perror("port file");
    return 1;
  }
  for (long served = 0; served < requests;) {
    pollfd p{ls, POLLIN, 0};
    int r = poll(&p, 1, idle_s * 1000);
    if (r == 0) break;  // idle: stop by ourselves
    if (r < 0) continue;
    int fd = accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    long long n = Serve(fd);
    close(fd);
    if (n >= 0) ++served;
  }
  close(ls);
  return 0;
}
