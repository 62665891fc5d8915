#include "agent/uprobe/tls_uprobe_source.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "boost/asio/posix/stream_descriptor.hpp"
#include "boost/asio/post.hpp"
#include "common/file_util.h"
#include "common/log.h"

#ifdef IDFLOW_HAVE_LIBBPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/uprobe/elf_image.h"
#include "agent/uprobe/tls_event.h"

// The compiled tls_probes.bpf.c (generated at build time).
extern const unsigned char kIdflowTlsProbesBpf[];
extern const size_t kIdflowTlsProbesBpfSize;
#endif

namespace idflow::agent {

std::string TlsCoverageLine(const TlsCoverage& c, bool under_tap) {
  std::string line = under_tap ? "tls: preload libssl, libgnutls; uprobe: " : "tls: uprobe: ";
  if (!c.available) return absl::StrCat(line, "unavailable (", c.unavailable_reason, ")");
  if (c.probes.empty()) {
    // Under the tap, a program without TLS of its own is covered already;
    // what it starts later is probed only when configured (a blind spot
    // for a script that starts, say, node: said here, not left silent).
    return absl::StrCat(line, "none in ", c.program.empty() ? "the program" : c.program,
                        c.program_stripped ? " (stripped: a TLS library inside it cannot be found)"
                                           : " (no TLS write function in its symbols)",
                        "; programs it starts are probed only when listed by --tls-uprobe-exe");
  }
  return absl::StrCat(line, absl::StrJoin(c.probes, ", "));
}

namespace {

class UnavailableSource final : public TlsUprobeSource {
 public:
  explicit UnavailableSource(std::string why) : why_(std::move(why)) {}
  bool available() const override { return false; }
  const std::string& unavailable_reason() const override { return why_; }
  TlsCoverage Watch(pid_t, const std::string&, bool, bool) override { return Coverage(); }
  TlsCoverage WatchExecutable(const std::string&) override { return Coverage(); }
  bool ProbedObject(const TlsWrite&, TapRingModule*) const override { return false; }
  void Drain() override {}
  uint64_t TakeLost() override { return 0; }
  Counters counters() override { return {}; }

 private:
  TlsCoverage Coverage() const {
    TlsCoverage c;
    c.unavailable_reason = why_;
    return c;
  }
  std::string why_;
};

#ifdef IDFLOW_HAVE_LIBBPF

// libbpf's own messages: kept at debug level (a failed symbol lookup in an
// object without TLS is the normal case, not an error).
int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level != LIBBPF_DEBUG && std::getenv("IDFLOW_LIBBPF_VERBOSE") != nullptr) {
    vfprintf(stderr, format, args);
  }
  return 0;
}

struct ProbeSpec {
  const char* program;  // in tls_probes.bpf.c
  const char* symbol;
  const char* label;  // coverage text
};
constexpr ProbeSpec kProbes[] = {
    {"ssl_write", "SSL_write", "openssl SSL_write"},
    {"ssl_write_ex", "SSL_write_ex", "openssl SSL_write_ex"},
    {"go_tls_write", "crypto/tls.(*Conn).Write", "go crypto/tls.(*Conn).Write"},
};

std::string BaseName(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// Objects the preload tap hooks through the dynamic linker.
bool TapCovers(const std::string& path) {
  const std::string base = BaseName(path);
  return absl::StartsWith(base, "libssl.so") || absl::StartsWith(base, "libgnutls.so");
}

class BpfSource final : public TlsUprobeSource, public std::enable_shared_from_this<BpfSource> {
 public:
  BpfSource(boost::asio::io_context& io, WriteCallback on_write)
      : io_(io), on_write_(std::move(on_write)), ring_wait_(io) {}

  ~BpfSource() override {
    boost::system::error_code ignored;  // never assigned when Load() failed
    ring_wait_.cancel(ignored);
    for (auto& [pid, w] : watched_) {
      if (w.exit_wait) w.exit_wait->cancel(ignored);
      Detach(&w);
    }
    for (bpf_link* l : exe_links_) bpf_link__destroy(l);
    if (ring_ != nullptr) ring_buffer__free(ring_);
    if (obj_ != nullptr) bpf_object__close(obj_);
  }

  // "" on success, else why the source is unavailable.
  std::string Load(const TlsUprobeOptions& options) {
    libbpf_set_print(LibbpfPrint);
    LIBBPF_OPTS(bpf_object_open_opts, open_opts, .object_name = "idflow_tls");
    obj_ = bpf_object__open_mem(kIdflowTlsProbesBpf, kIdflowTlsProbesBpfSize, &open_opts);
    if (obj_ == nullptr) return absl::StrCat("BPF object: ", std::strerror(errno));
    bpf_map* events = bpf_object__find_map_by_name(obj_, "events");
    if (events == nullptr) return "BPF object: no events map";
    if (bpf_map__set_max_entries(events, options.ring_bytes) != 0) {
      return absl::StrCat("ring buffer size ", options.ring_bytes, ": ", std::strerror(errno));
    }
    if (bpf_object__load(obj_) != 0) {
      const int err = errno;
      if (err == EPERM || err == EACCES) {
        return absl::StrCat("no CAP_BPF and CAP_PERFMON: loading the probes was refused (",
                            std::strerror(err), ")");
      }
      if (err == ENOSYS) {
        return "the kernel (or an emulator) has no bpf() system call: Function not implemented";
      }
      return absl::StrCat("the kernel refused the probes: ", std::strerror(err));
    }
    for (const ProbeSpec& p : kProbes) {
      programs_.push_back(bpf_object__find_program_by_name(obj_, p.program));
      if (programs_.back() == nullptr) return absl::StrCat("BPF object: no program ", p.program);
    }
    stats_fd_ = bpf_object__find_map_fd_by_name(obj_, "stats");
    events_fd_ = bpf_map__fd(events);
    return "";
  }

  // The ring buffer is mapped on the first watch: its pages (twice its size)
  // count in the agent's RSS from the mmap on, and an agent nobody asks to
  // probe needs none of them.
  void StartReading() {
    if (ring_ != nullptr || events_fd_ < 0) return;
    ring_ = ring_buffer__new(events_fd_, &BpfSource::OnRecord, this, nullptr);
    if (ring_ == nullptr) {
      LogError("tls uprobes: ring buffer: ", std::strerror(errno), " (probed writes are lost)");
      return;
    }
    const int fd = ::fcntl(ring_buffer__epoll_fd(ring_), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      LogError("tls uprobes: ring buffer: ", std::strerror(errno), " (probed writes are lost)");
      return;
    }
    ring_wait_.assign(fd);
    WaitRing();
  }

  bool available() const override { return true; }
  const std::string& unavailable_reason() const override { return none_; }

  TlsCoverage Watch(pid_t pid, const std::string& exe, bool scan_maps, bool under_tap) override {
    StartReading();
    Watched& w = watched_[pid];
    if (w.pidfd < 0) {
      w.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
      if (w.pidfd >= 0) {
        WaitExit(pid, w.pidfd);
      } else {
        // Gone already (a short-lived process of a configured executable):
        // its end is handled as soon as this returns, or its run would stay
        // open and its entry would never be freed.
        boost::asio::post(io_, [this, pid] { Exited(pid); });
      }
    }
    std::vector<std::string> objects;
    if (!exe.empty()) objects.push_back(exe);
    if (scan_maps) {
      auto maps = ReadFile(absl::StrCat("/proc/", pid, "/maps"));
      if (maps.ok()) {
        for (const TapRingModule& m : ModulesFromMaps(*maps)) {
          if ((m.flags & kTapModuleIsTap) != 0) continue;
          objects.emplace_back(m.path, m.path_len);
        }
      }
    }
    for (const std::string& path : objects) {
      if (under_tap && TapCovers(path)) {
        if (std::find(w.left_to_tap.begin(), w.left_to_tap.end(), path) == w.left_to_tap.end()) {
          w.left_to_tap.push_back(path);
        }
        continue;
      }
      if (!w.objects.insert(path).second) continue;
      // Probed for every process already (WatchExecutable): once is enough.
      if (auto it = exe_probes_.find(path); it != exe_probes_.end()) {
        w.probes.insert(w.probes.end(), it->second.begin(), it->second.end());
        continue;
      }
      Attach(pid, path, "", &w.links, &w.probes);
    }
    TlsCoverage c;
    c.available = true;
    c.program = exe;
    if (auto it = images_.find(exe); it != images_.end())
      c.program_stripped = !it->second.has_symtab;
    c.probes = w.probes;
    c.left_to_tap = w.left_to_tap;
    return c;
  }

  TlsCoverage WatchExecutable(const std::string& exe_path) override {
    StartReading();
    TlsCoverage c;
    c.available = true;
    // Watch() compares the paths of mapped objects: the real path.
    char real[PATH_MAX];
    const std::string exe = ::realpath(exe_path.c_str(), real) != nullptr ? real : exe_path;
    if (auto it = exe_probes_.find(exe); it != exe_probes_.end()) {
      c.probes = it->second;
      return c;
    }
    std::vector<std::string>& probes = exe_probes_[exe];
    Attach(-1, exe, " (every process)", &exe_links_, &probes);
    c.probes = probes;
    return c;
  }

  bool ProbedObject(const TlsWrite& w, TapRingModule* module) const override {
    if (w.cookie == 0 || w.cookie > sites_.size() || w.ip == 0) return false;
    const ProbeSite& site = sites_[w.cookie - 1];
    *module = ProbedModule(site.path, site.lo_vaddr, site.hi_vaddr, site.symbol_vaddr, w.ip);
    return module->path_len != 0;
  }

  void Drain() override {
    if (ring_ != nullptr) ring_buffer__consume(ring_);
  }

  uint64_t TakeLost() override {
    const uint64_t lost = Stat(IDFLOW_TLS_STAT_LOST);
    const uint64_t n = lost - lost_reported_;
    lost_reported_ = lost;
    return n;
  }

  Counters counters() override {
    Counters c = counters_;
    c.writes = Stat(IDFLOW_TLS_STAT_WRITES);
    c.lost = Stat(IDFLOW_TLS_STAT_LOST);
    c.truncated_bytes = Stat(IDFLOW_TLS_STAT_TRUNCATED_BYTES);
    c.read_faults = Stat(IDFLOW_TLS_STAT_READ_FAULTS);
    c.watched = watched_.size();
    return c;
  }

  // Called when a watched process exits, after its records were read.
  std::function<void(pid_t)> on_exit;

 private:
  struct Watched {
    int pidfd = -1;
    std::shared_ptr<boost::asio::posix::stream_descriptor> exit_wait;
    std::set<std::string> objects;  // tried already
    std::vector<bpf_link*> links;
    std::vector<std::string> probes;
    std::vector<std::string> left_to_tap;
  };

  // One probe on one object: what ProbedObject() needs, named by the
  // attachment's cookie (its index + 1).
  struct ProbeSite {
    std::string path;
    uint64_t lo_vaddr, hi_vaddr, symbol_vaddr;
  };

  // Attaches every probe whose symbol `path` defines, for `pid` (-1: every
  // process); appends the links and the coverage entries.
  void Attach(pid_t pid, const std::string& path, const char* suffix, std::vector<bpf_link*>* links,
              std::vector<std::string>* probes) {
    auto image = images_.find(path);
    if (image == images_.end()) {
      std::vector<std::string> names;
      for (const ProbeSpec& p : kProbes) names.emplace_back(p.symbol);
      absl::StatusOr<ElfImage> read = ReadElfImage(path, names);
      image = images_.emplace(path, read.ok() ? *read : ElfImage{}).first;
    }
    for (size_t i = 0; i < programs_.size(); ++i) {
      auto sym = image->second.symbols.find(kProbes[i].symbol);
      if (sym == image->second.symbols.end()) continue;  // nothing to attach to
      sites_.push_back({path, image->second.lo_vaddr, image->second.hi_vaddr, sym->second});
      LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = sites_.size(),
                  .func_name = kProbes[i].symbol);
      bpf_link* link = bpf_program__attach_uprobe_opts(programs_[i], pid, path.c_str(), 0, &opts);
      if (link == nullptr) {
        sites_.pop_back();
        continue;
      }
      links->push_back(link);
      probes->push_back(absl::StrCat(kProbes[i].label, " in ", path, suffix));
    }
  }

  static int OnRecord(void* ctx, void* data, size_t size) {
    auto* self = static_cast<BpfSource*>(ctx);
    self->counters_.records++;
    absl::StatusOr<TlsWrite> w =
        ParseTlsRecord(std::string_view(static_cast<const char*>(data), size));
    if (!w.ok()) {
      self->counters_.malformed++;
      return 0;
    }
    self->on_write_(*w);
    return 0;
  }

  uint64_t Stat(uint32_t key) {
    if (stats_fd_ < 0) return 0;
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return 0;
    std::vector<uint64_t> values(static_cast<size_t>(cpus));
    if (bpf_map_lookup_elem(stats_fd_, &key, values.data()) != 0) return 0;
    uint64_t sum = 0;
    for (uint64_t v : values) sum += v;
    return sum;
  }

  void WaitRing() {
    ring_wait_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                          [this](const boost::system::error_code& ec) {
                            if (ec) return;
                            ring_buffer__consume(ring_);
                            WaitRing();
                          });
  }

  void WaitExit(pid_t pid, int pidfd) {
    auto d = std::make_shared<boost::asio::posix::stream_descriptor>(io_, pidfd);
    watched_[pid].exit_wait = d;  // cancelled if the source goes first
    d->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                  [this, pid, d](const boost::system::error_code& ec) {
                    if (ec) return;  // the source is going away
                    Exited(pid);     // d (the pidfd) closes with the last handler
                  });
  }

  void Exited(pid_t pid) {
    // Its last writes are in the ring buffer already.
    Drain();
    auto it = watched_.find(pid);
    if (it != watched_.end()) {
      Detach(&it->second);
      watched_.erase(it);
    }
    if (on_exit) on_exit(pid);
  }

  static void Detach(Watched* w) {
    for (bpf_link* l : w->links) bpf_link__destroy(l);
    w->links.clear();
  }

  boost::asio::io_context& io_;
  WriteCallback on_write_;
  bpf_object* obj_ = nullptr;
  std::vector<bpf_program*> programs_;
  int stats_fd_ = -1;
  int events_fd_ = -1;
  ring_buffer* ring_ = nullptr;
  boost::asio::posix::stream_descriptor ring_wait_;
  std::map<pid_t, Watched> watched_;
  std::vector<bpf_link*> exe_links_;
  std::map<std::string, std::vector<std::string>> exe_probes_;  // real path -> coverage
  std::map<std::string, ElfImage> images_;  // objects read (empty: not ELF or unreadable)
  std::vector<ProbeSite> sites_;            // never shrinks: cookies stay valid
  Counters counters_;
  uint64_t lost_reported_ = 0;
  std::string none_;
};

#endif  // IDFLOW_HAVE_LIBBPF

}  // namespace

std::unique_ptr<TlsUprobeSource> TlsUprobeSource::Create(boost::asio::io_context& io,
                                                         const TlsUprobeOptions& options,
                                                         WriteCallback on_write,
                                                         ExitCallback on_exit) {
  if (!options.enabled)
    return std::make_unique<UnavailableSource>("turned off (--tls-uprobes off)");
#ifdef IDFLOW_HAVE_LIBBPF
  auto source = std::make_unique<BpfSource>(io, std::move(on_write));
  std::string why = source->Load(options);
  if (!why.empty()) return std::make_unique<UnavailableSource>(std::move(why));
  source->on_exit = std::move(on_exit);
  return source;
#else
  (void)io;
  (void)on_write;
  (void)on_exit;
  return std::make_unique<UnavailableSource>("not built: libbpf was not found at build time");
#endif
}

}  // namespace idflow::agent
