// The agent's tap ingress: a Unix SOCK_SEQPACKET listener that taps connect
// to. It is the trust boundary between the apps on the device and the agent:
//
// - The socket file is 0660, group Options::socket_gid. Each connection's
//   peer (SO_PEERCRED uid, gid, and SO_PEERGROUPS) must be on the allow-list
//   (default: the agent's own uid and root); a refused peer is closed before
//   anything is read or sent (it never gets the pattern database) and counted.
// - Connections are bounded in total and per peer uid (the per-uid cap is
//   well below the total, so one user cannot take every slot); messages are
//   rate-limited per connection (token bucket); what is over is counted.
// - The pid and executable of a connection come from the kernel (SO_PEERCRED,
//   /proc/PID/exe), recorded in TapHello::peer; the tap's claims are kept for
//   comparison only.
//
// Per connection: the first message must be Hello (answered with the
// pattern database, in chunks, when asked). A Hello with kTapHelloRing
// carries the tap's event ring and doorbell (SCM_RIGHTS): events are then
// read from the ring (tap_ring.h), woken by the doorbell, and the ring's drop
// counter is reported through on_loss, also when the process dies without
// its exit Stats. Events, Cookies and Stats may also come as messages.
// Malformed or oversized messages are counted and close the connection.
//
// Threading: all work runs on the io_context passed in (any number of threads;
// each connection is serialized on its own strand). Callbacks run on those
// threads and must not block for long. Destroy TapIngress before the
// io_context.
#ifndef IDFLOW_AGENT_INGRESS_H_
#define IDFLOW_AGENT_INGRESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/control_protocol.h"
#include "agent/pattern_db.h"
#include "agent/tap_protocol.h"
#include "boost/asio/io_context.hpp"

namespace idflow::agent {

class TapIngress {
 public:
  // Where tap events were lost: the tap could not hand them over (ring
  // full, process gone mid-write), or the ingress refused them.
  enum class Loss { kTap, kIngress };
  struct Options {
    std::string socket_path;
    size_t max_connections = 1024;
    size_t max_message_bytes = kTapMaxMessageBytes;
    mode_t socket_mode = 0660;
    gid_t socket_gid = static_cast<gid_t>(-1);  // -1: leave the group as created
    // Peers allowed to connect: uid in allow_uids, or primary or
    // supplementary gid in allow_gids. Both empty: the agent's uid and root.
    std::vector<uid_t> allow_uids;
    std::vector<gid_t> allow_gids;
    size_t max_connections_per_uid = 64;
    // Events and cookies per connection: sustained rate and burst.
    double rate_per_second = 20000;
    double rate_burst = 40000;
    // Ring records consumed per turn before other connections get theirs.
    size_t drain_budget = 256;
    // Ring position the agent journaled for a ring id (0: none); consulted
    // when a ring attaches, so records a killed agent had already journaled
    // are not read twice.
    std::function<uint64_t(uint64_t ring_id)> ring_resume;
    // Called before the ring records read in one drain pass are freed (the
    // events were handed to on_event/on_cookie): e.g. to write their journal
    // records in one go. The tap may reuse the slots once it returns.
    std::function<void()> before_release;
    // After a doorbell, wait this long before draining, so that the records
    // of a few ms are read in one wake-up instead of one each (the tap does
    // not ring while the agent is not asleep). 0: drain at once.
    std::chrono::milliseconds wake_delay{0};
    // Counted losses, in tap events. Called on the connection's strand; the
    // count must be durable when it returns (the ring is then told).
    std::function<void(Loss loss, uint64_t events)> on_loss;
    // Drops read from a ring's shared counter: `n` more, the tap's total
    // now `upto`. Must be durable with `upto` when it returns (the ring is
    // then marked, and ring_drops_marked called); a previous agent's durable
    // `upto` for a ring is asked when it attaches (0: none), so a kill
    // between the two steps does not count them twice. Without
    // on_ring_drops they go to on_loss(kTap, n).
    std::function<void(uint64_t ring_id, uint64_t n, uint64_t upto)> on_ring_drops;
    std::function<void(uint64_t ring_id)> ring_drops_marked;
    std::function<uint64_t(uint64_t ring_id)> ring_drops_counted;
  };
  using EventCallback = std::function<void(const TapHello& who, const TapEvent& event)>;
  using StatsCallback = std::function<void(const TapHello& who, const TapStats& stats)>;
  // Called when a connection that sent Hello closes (optional).
  using GoodbyeCallback = std::function<void(const TapHello& who)>;
  // Cookie names and lifetimes the tap saw in HTTP headers (optional).
  using CookieCallback = std::function<void(const TapHello& who, const TapCookie& cookie)>;
  // Called when a connection's Hello was accepted (optional).
  using HelloCallback = std::function<void(const TapHello& who)>;
  // A control request (control_protocol.h) from `peer`, on the io thread;
  // `respond` sends the one reply, now or later, on any thread. Without a
  // callback every request is answered UNIMPLEMENTED.
  using Respond = std::function<void(const ControlReply& reply)>;
  using ControlCallback = std::function<void(const PeerCredentials& peer,
                                             const ControlRequest& request, Respond respond)>;
  // A status request (control_protocol.h) from any peer the allow-list let
  // in (read-only), on the io thread. Without a callback: UNIMPLEMENTED.
  using StatusCallback = std::function<void(const PeerCredentials& peer, Respond respond)>;

  struct Counters {
    uint64_t accepted = 0;
    uint64_t rejected = 0;  // over max_connections or max_connections_per_uid
    uint64_t refused = 0;   // peer not on the allow-list
    uint64_t rate_limited = 0;
    uint64_t rings = 0;         // rings attached
    uint64_t ring_records = 0;  // records read from rings
    uint64_t tap_lost = 0;      // reported through Loss::kTap
    uint64_t active = 0;
    uint64_t hellos = 0;
    uint64_t events = 0;
    uint64_t stats = 0;
    uint64_t cookies = 0;
    uint64_t malformed = 0;  // each one closed its connection
    uint64_t pattern_chunks_sent = 0;
  };

  TapIngress(boost::asio::io_context& io, Options options, EventCallback on_event,
             StatsCallback on_stats = nullptr, GoodbyeCallback on_goodbye = nullptr);
  ~TapIngress();
  TapIngress(const TapIngress&) = delete;
  TapIngress& operator=(const TapIngress&) = delete;

  // Binds and listens (unlinking a stale socket file first; refuses to remove
  // anything that is not a socket). Errors: path too long, bind/listen, chmod.
  absl::Status Start();
  // Call before Start(); without it cookie messages are counted and dropped.
  void SetCookieCallback(CookieCallback on_cookie);
  // Call before Start().
  void SetHelloCallback(HelloCallback on_hello);
  void SetControlCallback(ControlCallback on_control);
  void SetStatusCallback(StatusCallback on_status);
  // Ring wake-ups coalesce over this from now on (Options::wake_delay): the
  // watchdog lengthens it while the agent is over its CPU limit.
  void SetWakeDelay(std::chrono::milliseconds delay);
  // Stops accepting, closes all connections and removes the socket file.
  void Stop();

  // Database sent to taps that connect from now on (taps read patterns once,
  // at start-up). nullptr or an empty database means "nothing to scan".
  void UpdatePatterns(std::shared_ptr<const PatternDb> db);

  Counters counters() const;
  // True when every connection that reached the socket has been accepted and
  // has had its Hello (or control request) read: nothing a tap already sent
  // is still unseen in a queue. Call on the io thread.
  bool Quiescent() const;
  const std::string& socket_path() const { return options_.socket_path; }

  struct Shared;  // state shared with connections (outlives TapIngress if needed)

 private:
  Options options_;
  std::shared_ptr<Shared> shared_;
  bool started_ = false;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_INGRESS_H_
