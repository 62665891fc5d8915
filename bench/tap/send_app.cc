// idflow-bench-send: the "app" of the tap benchmarks. Plain libc + threads
// (no idflow code), so that under LD_PRELOAD it is any program calling send().
//
//   overhead --size S --iters N --reps R [--inject FILE --every K]
//     send() of S bytes on an AF_UNIX socketpair, a reader thread draining.
//     Prints per repetition the app thread's wall and CPU time per call.
//     With --inject, every K-th call carries one identifier form from FILE.
//   latency --rate HZ --count N --inject FILE
//     Every call carries an identifier followed by "|ts=<16 hex digits>", the
//     CLOCK_MONOTONIC time (ns) just before send(). The agent side subtracts
//     that from its own CLOCK_MONOTONIC at receipt: the clock is system-wide,
//     so no cross-process clock offset is involved.
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

int64_t NowNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Same shape as bench_db.cc's MakePayload, kept independent of idflow code.
std::string Payload(size_t size, uint64_t seed) {
  static const char* kWords[] = {
      "\"event\":", "\"page_view\",",      "\"ts\":",      "\"session\":", "\"props\":{",
      "},",         "\"lang\":\"en-US\",", "\"ok\":true,", "\"count\":",   " ",
      "\n"};
  static const char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  std::string s;
  while (s.size() < size) {
    uint64_t r = next();
    if (r % 3 == 0) {
      s.push_back('"');
      for (size_t k = 0, len = 4 + (r >> 8) % 12; k < len; ++k) s.push_back(kAlnum[next() % 64]);
      s += "\",";
    } else if (r % 3 == 1) {
      s += std::to_string((r >> 8) % 100000) + ",";
    } else {
      s += kWords[(r >> 8) % (sizeof(kWords) / sizeof(kWords[0]))];
    }
  }
  s.resize(size);
  return s;
}

std::vector<std::string> ReadLines(const std::string& path, size_t max_len) {
  std::vector<std::string> out;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.size() <= max_len) out.push_back(line);
  }
  return out;
}

struct Args {
  std::string mode;
  size_t size = 1024;
  long iters = 100000;
  int reps = 5;
  std::string inject;
  long every = 0;
  long rate = 1000;
  long count = 5000;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  if (argc < 2) return false;
  a->mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--size")
      a->size = strtoul(v.c_str(), nullptr, 10);
    else if (k == "--iters")
      a->iters = strtol(v.c_str(), nullptr, 10);
    else if (k == "--reps")
      a->reps = atoi(v.c_str());
    else if (k == "--inject")
      a->inject = v;
    else if (k == "--every")
      a->every = strtol(v.c_str(), nullptr, 10);
    else if (k == "--rate")
      a->rate = strtol(v.c_str(), nullptr, 10);
    else if (k == "--count")
      a->count = strtol(v.c_str(), nullptr, 10);
    else
      return false;
  }
  if ((argc - 2) % 2 != 0) return false;
  return (a->mode == "overhead" || a->mode == "latency") && a->size > 0 && a->iters > 0 &&
         a->reps > 0 && a->rate > 0 && a->count > 0;
}

// Sends all of buf (a stream socket may take a 64 KiB send in pieces only if
// interrupted; count each send() call).
long SendAll(int fd, const char* buf, size_t n) {
  long calls = 0;
  size_t off = 0;
  while (off < n) {
    ssize_t r = send(fd, buf + off, n - off, 0);
    ++calls;
    if (r < 0) {
      if (errno == EINTR) continue;
      perror("send");
      exit(1);
    }
    off += static_cast<size_t>(r);
  }
  return calls;
}

int RunOverhead(const Args& a, int fd) {
  // 100 distinct buffers; with --every K, buffer 0 carries an identifier and
  // is used on every K-th call (K=100: exactly 1 %).
  constexpr size_t kBuffers = 100;
  std::vector<std::string> bufs;
  for (size_t i = 0; i < kBuffers; ++i) bufs.push_back(Payload(a.size, i + 1));
  std::string injected = bufs[0];
  if (a.every > 0) {
    std::vector<std::string> forms = ReadLines(a.inject, std::max<size_t>(6, a.size / 2));
    if (forms.empty()) {
      fprintf(stderr, "no identifier form short enough in %s\n", a.inject.c_str());
      return 2;
    }
    const std::string& f = forms[forms.size() / 2];
    memcpy(injected.data() + (a.size - f.size()) / 2, f.data(), f.size());
  }
  auto buffer = [&](long i) -> const std::string& {
    if (a.every > 0 && i % a.every == 0) return injected;
    return bufs[static_cast<size_t>(i) % kBuffers];
  };
  for (long i = 0; i < std::min<long>(a.iters, 2000); ++i) {
    SendAll(fd, buffer(i).data(), a.size);  // warm-up: page faults, tap thread init
  }
  std::vector<double> wall, cpu;
  long calls_total = 0;
  for (int r = 0; r < a.reps; ++r) {
    long calls = 0;
    int64_t w0 = NowNs(CLOCK_MONOTONIC), c0 = NowNs(CLOCK_THREAD_CPUTIME_ID);
    for (long i = 0; i < a.iters; ++i) calls += SendAll(fd, buffer(i).data(), a.size);
    int64_t w1 = NowNs(CLOCK_MONOTONIC), c1 = NowNs(CLOCK_THREAD_CPUTIME_ID);
    wall.push_back(static_cast<double>(w1 - w0) / static_cast<double>(a.iters));
    cpu.push_back(static_cast<double>(c1 - c0) / static_cast<double>(a.iters));
    calls_total += calls;
    printf("rep=%d size=%zu iters=%ld calls=%ld wall_ns_per_send=%.1f cpu_ns_per_send=%.1f\n", r,
           a.size, a.iters, calls, wall.back(), cpu.back());
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  printf(
      "result: size=%zu every=%ld sends=%ld wall_min=%.1f wall_median=%.1f cpu_min=%.1f "
      "cpu_median=%.1f\n",
      a.size, a.every, std::min<long>(a.iters, 2000) + a.iters * a.reps,
      *std::min_element(wall.begin(), wall.end()), median(wall),
      *std::min_element(cpu.begin(), cpu.end()), median(cpu));
  return 0;
}

int RunLatency(const Args& a, int fd) {
  std::vector<std::string> forms = ReadLines(a.inject, 24);  // keep ts inside the 64 B context
  if (forms.empty()) {
    fprintf(stderr, "no identifier form of <= 24 bytes in %s\n", a.inject.c_str());
    return 2;
  }
  const int64_t period = 1000000000 / a.rate;
  timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  long late = 0;
  for (long i = 0; i < a.count; ++i) {
    next.tv_nsec += period;
    while (next.tv_nsec >= 1000000000) {
      next.tv_nsec -= 1000000000;
      ++next.tv_sec;
    }
    // Pacing only: correctness does not depend on how exactly we wake up.
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr) == EINTR) {
    }
    std::string p = Payload(200, static_cast<uint64_t>(i) + 1);
    const std::string& f = forms[static_cast<size_t>(i) % forms.size()];
    int64_t now = NowNs(CLOCK_MONOTONIC);
    if (now - (static_cast<int64_t>(next.tv_sec) * 1000000000 + next.tv_nsec) > period) ++late;
    char mark[32];
    snprintf(mark, sizeof(mark), "|ts=%016llx", static_cast<unsigned long long>(now));
    std::string msg = p.substr(0, 80) + f + mark + p.substr(80);
    SendAll(fd, msg.data(), msg.size());
  }
  printf("result: latency_sent=%ld rate=%ld late_wakeups=%ld\n", a.count, a.rate, late);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!ParseArgs(argc, argv, &a)) {
    fprintf(stderr,
            "usage: %s overhead --size S --iters N --reps R [--inject FILE --every K]\n"
            "       %s latency --rate HZ --count N --inject FILE\n",
            argv[0], argv[0]);
    return 2;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    perror("socketpair");
    return 1;
  }
  std::thread reader([fd = sv[1]] {
    std::vector<char> buf(256 * 1024);
    while (read(fd, buf.data(), buf.size()) > 0) {
    }
  });
  int rc = a.mode == "overhead" ? RunOverhead(a, sv[0]) : RunLatency(a, sv[0]);
  shutdown(sv[0], SHUT_WR);
  reader.join();
  close(sv[0]);
  close(sv[1]);
  return rc;
}
