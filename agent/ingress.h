// The agent's tap ingress: a Unix SOCK_SEQPACKET listener that taps connect
// to. Per connection: the first message must be Hello (answered with the
// current pattern database, in chunks), then Events and Stats are decoded and
// handed to the callbacks. Malformed or oversized messages are counted and the
// connection is closed; the number of connections is bounded.
//
// The socket file is chmod'ed to Options::socket_mode (0666 by default) so
// that apps running as other users can connect: the tap is loaded into
// arbitrary processes. Peers are identified by SO_PEERCRED, recorded in
// TapHello::peer, not by what they claim in Hello.
//
// Threading: all work runs on the io_context passed in (any number of threads;
// each connection is serialized on its own strand). Callbacks run on those
// threads and must not block for long. Destroy TapIngress before the
// io_context.
#ifndef IDFLOW_AGENT_INGRESS_H_
#define IDFLOW_AGENT_INGRESS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "agent/pattern_db.h"
#include "agent/tap_protocol.h"
#include "boost/asio/io_context.hpp"

namespace idflow::agent {

class TapIngress {
 public:
  struct Options {
    std::string socket_path;
    size_t max_connections = 1024;
    size_t max_message_bytes = kTapMaxMessageBytes;
    mode_t socket_mode = 0666;
  };
  using EventCallback = std::function<void(const TapHello& who, const TapEvent& event)>;
  using StatsCallback = std::function<void(const TapHello& who, const TapStats& stats)>;
  // Called when a connection that sent Hello closes (optional).
  using GoodbyeCallback = std::function<void(const TapHello& who)>;
  // Cookie names and lifetimes the tap saw in HTTP headers (optional).
  using CookieCallback = std::function<void(const TapHello& who, const TapCookie& cookie)>;

  struct Counters {
    uint64_t accepted = 0;
    uint64_t rejected = 0;  // over max_connections
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
  // Stops accepting, closes all connections and removes the socket file.
  void Stop();

  // Database sent to taps that connect from now on (taps read patterns once,
  // at start-up). nullptr or an empty database means "nothing to scan".
  void UpdatePatterns(std::shared_ptr<const PatternDb> db);

  Counters counters() const;
  const std::string& socket_path() const { return options_.socket_path; }

  struct Shared;  // state shared with connections (outlives TapIngress if needed)

 private:
  Options options_;
  std::shared_ptr<Shared> shared_;
  bool started_ = false;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_INGRESS_H_
