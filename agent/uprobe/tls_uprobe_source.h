// The agent's second source of TLS plaintext: eBPF uprobes on the TLS write
// functions of processes it watches, for stacks the LD_PRELOAD tap cannot
// interpose (OpenSSL linked statically or into the program, as in Node.js;
// Go's crypto/tls). Each probed write is matched, attributed and counted like
// a call the tap hands over (tls_write.h builds the same Payload record).
//
// Privilege: loading needs root or CAP_BPF + CAP_PERFMON. Without it, or
// without libbpf at build time, the source is unavailable and says why once;
// every coverage line carries it, so a blind spot is never silent.
//
// Probes are attached per process (perf's task filter): they fire in the
// watched processes only, and no other process pays for them. Writes whose
// record found no room in the ring buffer are counted (lost()).
//
// Threading: everything runs on the io_context passed to Create().
#ifndef IDFLOW_AGENT_UPROBE_TLS_UPROBE_SOURCE_H_
#define IDFLOW_AGENT_UPROBE_TLS_UPROBE_SOURCE_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/uprobe/tls_write.h"
#include "boost/asio/io_context.hpp"

namespace idflow::agent {

struct TlsUprobeOptions {
  bool enabled = true;             // false: unavailable ("turned off")
  uint32_t ring_bytes = 1u << 20;  // BPF ring buffer (a power of two, >= 64 KiB)
};

// What the probes cover in one watched process.
struct TlsCoverage {
  bool available = false;
  std::string program;             // what was watched ("" for a configured executable's process)
  bool program_stripped = false;   // no symbol table: TLS inside it could not be found
  std::string unavailable_reason;  // when !available
  // "openssl SSL_write in /usr/bin/node", "go crypto/tls.(*Conn).Write in /x"
  std::vector<std::string> probes;
  // Objects left to the tap (libssl/libgnutls loaded under the preload tap).
  std::vector<std::string> left_to_tap;
};

// The one-line form run/qa print and reports carry:
//   "tls: preload libssl, libgnutls; uprobe: openssl SSL_write in /usr/bin/node"
//   "tls: preload libssl, libgnutls; uprobe: unavailable (no CAP_BPF ...)"
// `under_tap`: the program runs with the preload tap.
std::string TlsCoverageLine(const TlsCoverage& coverage, bool under_tap);

class TlsUprobeSource {
 public:
  using WriteCallback = std::function<void(const TlsWrite& write)>;
  // A watched process exited; its last records were read before this.
  using ExitCallback = std::function<void(pid_t pid)>;
  struct Counters {
    uint64_t writes = 0;           // probe hits (in watched processes)
    uint64_t records = 0;          // records read
    uint64_t lost = 0;             // records the ring buffer had no room for
    uint64_t truncated_bytes = 0;  // bytes past a record's 16 KiB, not scanned
    uint64_t read_faults = 0;      // buffers the probe could not read
    uint64_t malformed = 0;        // records that did not parse
    uint64_t watched = 0;          // processes watched now
  };

  // Never null: an unavailable source answers every Watch with the reason.
  static std::unique_ptr<TlsUprobeSource> Create(boost::asio::io_context& io,
                                                 const TlsUprobeOptions& options,
                                                 WriteCallback on_write,
                                                 ExitCallback on_exit = nullptr);
  virtual ~TlsUprobeSource() = default;

  virtual bool available() const = 0;
  virtual const std::string& unavailable_reason() const = 0;

  // Attaches the probes for `pid`: to `exe` (which the process may not have
  // executed yet: `idflowctl run` asks before its exec, pid unchanged), and
  // to the objects it has mapped when `scan_maps`. `under_tap`: libssl and
  // libgnutls are left to the preload tap (one source per write). Also
  // for later calls with more objects (after a dlopen); each object once.
  virtual TlsCoverage Watch(pid_t pid, const std::string& exe, bool scan_maps, bool under_tap) = 0;
  // Every process running `exe` (a configured executable), now and later.
  virtual TlsCoverage WatchExecutable(const std::string& exe) = 0;
  // The object `write`'s probe sat in, placed where the process loaded it
  // (its attachment and where it fired say which and where): for a
  // process whose /proc/PID/maps is gone or does not cover the caller.
  // False when the attachment is unknown.
  virtual bool ProbedObject(const TlsWrite& write, TapRingModule* module) const = 0;
  // Reads every record buffered now (before a run is flushed).
  virtual void Drain() = 0;
  // Losses counted since the last call (records without room, not read).
  virtual uint64_t TakeLost() = 0;
  virtual Counters counters() = 0;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_UPROBE_TLS_UPROBE_SOURCE_H_
