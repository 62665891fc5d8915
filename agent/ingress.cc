#include "agent/ingress.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "agent/tap_matcher.h"
#include "agent/tap_ring.h"
#include "boost/asio/basic_seq_packet_socket.hpp"
#include "boost/asio/basic_socket_acceptor.hpp"
#include "boost/asio/local/basic_endpoint.hpp"
#include "boost/asio/posix/stream_descriptor.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "common/log.h"

namespace idflow::agent {

namespace asio = boost::asio;

// Boost 1.74 has no local::seq_packet_protocol (added in 1.86): a minimal
// Protocol for AF_UNIX/SOCK_SEQPACKET.
class SeqPacket {
 public:
  int type() const noexcept { return SOCK_SEQPACKET; }
  int protocol() const noexcept { return 0; }
  int family() const noexcept { return AF_UNIX; }
  using endpoint = asio::local::basic_endpoint<SeqPacket>;
  using socket = asio::basic_seq_packet_socket<SeqPacket>;
  using acceptor = asio::basic_socket_acceptor<SeqPacket>;
};

class TapConnection;

struct TapIngress::Shared {
  Shared(asio::io_context& ctx, Options opts, EventCallback ev, StatsCallback st,
         GoodbyeCallback bye)
      : options(std::move(opts)),
        on_event(std::move(ev)),
        on_stats(std::move(st)),
        on_goodbye(std::move(bye)),
        io(ctx),
        acceptor(asio::make_strand(ctx)) {
    wake_delay_ms = options.wake_delay.count();
    if (options.allow_uids.empty() && options.allow_gids.empty()) {
      options.allow_uids.push_back(::geteuid());
      options.allow_uids.push_back(0);
    }
  }

  std::shared_ptr<const std::vector<std::string>> Chunks() {
    std::lock_guard l(mu);
    return chunks;
  }

  void Lose(Loss loss, uint64_t n) {
    if (n == 0) return;
    if (loss == Loss::kTap) tap_lost += n;
    if (options.on_loss) options.on_loss(loss, n);
  }

  Options options;  // const after construction
  const EventCallback on_event;
  const StatsCallback on_stats;
  const GoodbyeCallback on_goodbye;
  CookieCallback on_cookie;                // set before Start(), read-only afterwards
  TapIngress::HelloCallback on_hello;      // likewise
  TapIngress::ControlCallback on_control;  // likewise
  TapIngress::StatusCallback on_status;    // likewise
  // Options::wake_delay, changeable while running (SetWakeDelay).
  std::atomic<int64_t> wake_delay_ms{0};
  asio::io_context& io;
  SeqPacket::acceptor acceptor;
  std::atomic<bool> stopped{false};

  std::mutex mu;
  std::shared_ptr<const std::vector<std::string>> chunks ABSL_GUARDED_BY(mu);
  // What handed-over calls (ring Payload records) are matched against.
  std::shared_ptr<const PatternDb> db ABSL_GUARDED_BY(mu);
  uint32_t generation ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::weak_ptr<TapConnection>> connections ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<uid_t, size_t> per_uid ABSL_GUARDED_BY(mu);
  absl::flat_hash_set<uint64_t> rings ABSL_GUARDED_BY(mu);  // attached ring ids
  absl::flat_hash_set<uid_t> refused_logged ABSL_GUARDED_BY(mu);

  std::atomic<uint64_t> accepted{0}, rejected{0}, refused{0}, active{0}, hellos{0}, events{0},
      stats{0}, malformed{0}, chunks_sent{0}, cookies{0}, rate_limited{0}, rings_attached{0},
      ring_records{0}, tap_lost{0}, control_requests{0};
  // Accepted connections whose first message (Hello or a control request)
  // was not read yet (TapIngress::Quiescent).
  std::atomic<int64_t> awaiting_first{0};
};

namespace {

std::string ProcExe(pid_t pid) {
  char buf[4096];
  std::string link = absl::StrCat("/proc/", pid, "/exe");
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// True when `pid` has exited (gone or a zombie): its producers can no longer
// commit what they reserved.
bool ProcessGone(pid_t pid) {
  char buf[512];
  std::string path = absl::StrCat("/proc/", pid, "/stat");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return true;
  buf[n] = '\0';
  const char* paren = strrchr(buf, ')');  // the comm may hold spaces and ')'
  if (paren == nullptr || paren[1] == '\0' || paren[2] == '\0') return true;
  return paren[2] == 'Z' || paren[2] == 'X';
}

bool Allowed(const TapIngress::Options& o, int fd, const ucred& cred) {
  auto has = [](const auto& v, auto x) { return std::find(v.begin(), v.end(), x) != v.end(); };
  if (has(o.allow_uids, cred.uid) || has(o.allow_gids, cred.gid)) return true;
  if (o.allow_gids.empty()) return false;
  gid_t groups[256];
  socklen_t len = sizeof(groups);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0) return false;
  for (size_t i = 0; i < len / sizeof(gid_t); ++i) {
    if (has(o.allow_gids, groups[i])) return true;
  }
  return false;
}

}  // namespace

class TapConnection : public std::enable_shared_from_this<TapConnection> {
 public:
  TapConnection(SeqPacket::socket socket, std::shared_ptr<TapIngress::Shared> shared,
                const ucred& cred)
      : socket_(std::move(socket)),
        shared_(std::move(shared)),
        buf_(shared_->options.max_message_bytes + 1),
        doorbell_(socket_.get_executor()),
        wake_timer_(socket_.get_executor()),
        tokens_(shared_->options.rate_burst),
        refilled_(std::chrono::steady_clock::now()) {
    ++shared_->active;
    peer_.valid = true;
    peer_.pid = cred.pid;
    peer_.uid = cred.uid;
    peer_.gid = cred.gid;
    peer_.exe = ProcExe(cred.pid);
    ++shared_->awaiting_first;
  }
  ~TapConnection() {
    --shared_->active;
    FirstMessageSeen();
    {
      std::lock_guard l(shared_->mu);
      if (--shared_->per_uid[peer_.uid] == 0) shared_->per_uid.erase(peer_.uid);
      if (ring_) shared_->rings.erase(ring_->ring_id());
    }
    if (hello_ && shared_->on_goodbye) shared_->on_goodbye(*hello_);
  }

  void Start() { WaitReadable(); }

  // Ends the connection. A ring is drained first (what the tap committed is
  // consumed), and its counters are reported.
  void Close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    socket_.close(ec);
    if (ring_ && hello_ && !shared_->stopped) {
      DrainRing(/*budget=*/SIZE_MAX);
      ReportRingDrops();
      // Reserved but never committed: the process died mid-write.
      if (ProcessGone(peer_.pid)) shared_->Lose(TapIngress::Loss::kTap, ring_->Uncommitted());
    }
    doorbell_.close(ec);
    wake_timer_.cancel();
  }

  SeqPacket::socket::executor_type executor() { return socket_.get_executor(); }

 private:
  void WaitReadable() {
    auto self = shared_from_this();
    socket_.async_wait(SeqPacket::socket::wait_read,
                       [self](const boost::system::error_code& ec) { self->OnReadable(ec); });
  }

  void OnReadable(const boost::system::error_code& ec) {
    if (ec || closed_ || shared_->stopped) return Close();
    // A bounded number of messages per turn: one busy peer cannot hold the
    // thread.
    for (int i = 0; i < 64; ++i) {
      int fds[2] = {-1, -1};
      size_t nfds = 0;
      bool truncated = false;
      ssize_t n = ReceiveOne(fds, &nfds, &truncated);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return WaitReadable();
        return Close();
      }
      if (n == 0) return Close();  // peer gone
      if (truncated || static_cast<size_t>(n) > shared_->options.max_message_bytes) {
        CloseFds(fds, nfds);
        Malformed();
        return;
      }
      if (!Handle(std::string_view(buf_.data(), static_cast<size_t>(n)), fds, nfds)) return;
      if (closed_) return;
    }
    auto self = shared_from_this();
    asio::post(socket_.get_executor(), [self] { self->OnReadable({}); });
  }

  ssize_t ReceiveOne(int* fds, size_t* nfds, bool* truncated) {
    iovec iov{buf_.data(), buf_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 2)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t k = 0; k < count; ++k) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
        if (*nfds < 2) {
          fds[(*nfds)++] = fd;
        } else {
          ::close(fd);
          *truncated = true;
        }
      }
    }
    if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) *truncated = true;
    return n;
  }

  static void CloseFds(int* fds, size_t nfds) {
    for (size_t i = 0; i < nfds; ++i) ::close(fds[i]);
  }

  // False when the connection was closed.
  void FirstMessageSeen() {
    if (awaiting_first_) {
      awaiting_first_ = false;
      --shared_->awaiting_first;
    }
  }

  bool Handle(std::string_view bytes, int* fds, size_t nfds) {
    FirstMessageSeen();
    if (IsControlRequest(bytes)) {
      CloseFds(fds, nfds);
      return HandleControl(bytes);
    }
    if (IsStatusRequest(bytes)) {
      CloseFds(fds, nfds);
      return HandleStatus(bytes);
    }
    absl::StatusOr<TapMessage> msg = DecodeTapMessage(bytes);
    if (!msg.ok()) {
      CloseFds(fds, nfds);
      return Malformed();
    }
    auto* hello = std::get_if<TapHello>(&msg->body);
    if (hello == nullptr && nfds > 0) {
      CloseFds(fds, nfds);  // descriptors come with Hello only
      return Malformed();
    }
    if (hello != nullptr) {
      if (hello_ || (hello->has_ring != (nfds == 2)) || (!hello->has_ring && nfds != 0)) {
        CloseFds(fds, nfds);
        return Malformed();  // exactly one Hello per connection, fds as announced
      }
      hello_ = std::move(*hello);
      if (hello_->pid != static_cast<uint32_t>(peer_.pid) ||
          (!peer_.exe.empty() && hello_->exe != peer_.exe)) {
        // The kernel's view wins; the claim is only worth a note.
        LogDebug("tap claims pid ", hello_->pid, " exe ", hello_->exe, "; kernel says pid ",
                 peer_.pid, " exe ", peer_.exe);
      }
      hello_->peer = peer_;
      ++shared_->hellos;
      if (shared_->on_hello) shared_->on_hello(*hello_);
      if (hello_->has_ring && !AttachRing(fds[0], fds[1])) return Malformed();
      if (hello_->want_patterns) SendPatterns();
      if (ring_) DrainRing(shared_->options.drain_budget);
      return true;
    }
    if (!hello_) return Malformed();
    return Dispatch(*msg, /*ring=*/false);
  }

  // A control request: decoded strictly (a malformed one closes the
  // connection like any malformed message), answered once.
  bool HandleControl(std::string_view bytes) {
    absl::StatusOr<ControlRequest> req = DecodeControlRequest(bytes);
    if (!req.ok()) return RefuseControl(req.status());
    ++shared_->control_requests;
    TapIngress::Respond respond = MakeRespond();
    if (!shared_->on_control) return Unimplemented(respond);
    shared_->on_control(peer_, *req, std::move(respond));
    return true;
  }

  // A status request: read-only, so any peer the allow-list let in may ask.
  bool HandleStatus(std::string_view bytes) {
    if (absl::Status st = DecodeStatusRequest(bytes); !st.ok()) return RefuseControl(st);
    ++shared_->control_requests;
    TapIngress::Respond respond = MakeRespond();
    if (!shared_->on_status) return Unimplemented(respond);
    shared_->on_status(peer_, std::move(respond));
    return true;
  }

  // Says why before closing (best effort: a small frame on an idle socket).
  bool RefuseControl(const absl::Status& st) {
    ControlReply r;
    r.code = st.code();
    r.text = std::string(st.message());
    std::string frame = EncodeControlReply(r);
    (void)::send(socket_.native_handle(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    return Malformed();
  }

  static bool Unimplemented(const TapIngress::Respond& respond) {
    ControlReply r;
    r.code = absl::StatusCode::kUnimplemented;
    r.text = "this agent takes no such request";
    respond(r);
    return true;
  }

  // The one reply to a control or status request, sent on this connection's
  // strand from any thread.
  TapIngress::Respond MakeRespond() {
    std::weak_ptr<TapConnection> weak = weak_from_this();
    return [weak](const ControlReply& reply) {
      auto self = weak.lock();
      if (!self) return;
      auto frame = std::make_shared<std::string>(EncodeControlReply(reply));
      asio::post(self->socket_.get_executor(), [self, frame] {
        if (self->closed_) return;
        self->socket_.async_send(asio::buffer(*frame), 0,
                                 [self, frame](const boost::system::error_code&, size_t) {});
      });
    };
  }

  // Events, cookies and stats, from a message or a ring record.
  bool Dispatch(TapMessage& msg, bool from_ring) {
    if (auto* event = std::get_if<TapEvent>(&msg.body)) {
      ++shared_->events;
      if (!TakeToken()) return true;
      if (from_ring) {
        event->ring_id = ring_->ring_id();
        event->ring_next = ring_->next_position();
      }
      if (shared_->on_event) shared_->on_event(*hello_, *event);
    } else if (auto* cookie = std::get_if<TapCookie>(&msg.body)) {
      ++shared_->cookies;
      if (!TakeToken()) return true;
      if (from_ring) {
        cookie->ring_id = ring_->ring_id();
        cookie->ring_next = ring_->next_position();
      }
      if (shared_->on_cookie) shared_->on_cookie(*hello_, *cookie);
    } else if (auto* stats = std::get_if<TapStats>(&msg.body); stats && !from_ring) {
      ++shared_->stats;
      // With a ring, its shared counter is the one that counts drops (it
      // survives a process that dies without Stats); the Stats field would
      // count them twice.
      if (ring_) stats->events_dropped = 0;
      if (shared_->on_stats) shared_->on_stats(*hello_, *stats);
    } else {
      // Patterns flow agent -> tap only; Hello only once.
      if (from_ring) return false;
      return Malformed();
    }
    return true;
  }

  bool TakeToken() {
    const auto& o = shared_->options;
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - refilled_).count();
    refilled_ = now;
    tokens_ = std::min(o.rate_burst, tokens_ + elapsed * o.rate_per_second);
    if (tokens_ >= 1) {
      tokens_ -= 1;
      return true;
    }
    ++shared_->rate_limited;
    shared_->Lose(TapIngress::Loss::kIngress, 1);
    if (!rate_logged_) {
      LogWarning("tap pid ", peer_.pid, " (uid ", peer_.uid, ") over ", o.rate_per_second,
                 " events/s: excess counted as ingress drops");
      rate_logged_ = true;
    }
    return false;
  }

  bool AttachRing(int memfd, int doorbell_fd) {
    auto reader = TapRingReader::Attach(memfd, doorbell_fd);
    if (!reader.ok()) {
      LogWarning("tap pid ", peer_.pid, ": ", reader.status().message());
      return false;
    }
    {
      std::lock_guard l(shared_->mu);
      // Two connections must never consume one ring.
      if (!shared_->rings.insert((*reader)->ring_id()).second) return false;
    }
    ring_ = std::move(*reader);
    ++shared_->rings_attached;
    uint64_t journaled =
        shared_->options.ring_resume ? shared_->options.ring_resume(ring_->ring_id()) : 0;
    ring_->Resume(journaled);
    if (shared_->options.ring_drops_counted) {
      ring_->ResumeDrops(shared_->options.ring_drops_counted(ring_->ring_id()));
      if (shared_->options.ring_drops_marked) shared_->options.ring_drops_marked(ring_->ring_id());
    }
    int dup_fd = ::fcntl(ring_->doorbell_fd(), F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return false;
    boost::system::error_code ec;
    doorbell_.assign(dup_fd, ec);
    return !ec;
  }

  // Consumes up to `budget` records, then yields (re-posting itself) or,
  // when the ring is empty, sleeps on the doorbell.
  void DrainRing(size_t budget) {
    if (!ring_) return;
    ring_->ClearWaiting();
    std::string record;
    for (size_t done = 0;; ++done) {
      if (done >= budget) {
        SettleRing();
        auto self = shared_from_this();
        asio::post(socket_.get_executor(), [self] {
          if (!self->closed_) self->DrainRing(self->shared_->options.drain_budget);
        });
        ReportRingDrops();
        return;
      }
      TapRingReader::Read r = ring_->Next(&record);
      if (r == TapRingReader::Read::kEmpty) {
        SettleRing();
        ReportRingDrops();
        if (closed_) return;
        if (!ring_->PrepareSleep()) continue;
        WaitDoorbell();
        return;
      }
      ++shared_->ring_records;
      bool ok = false;
      if (r == TapRingReader::Read::kRecord && IsPayload(record)) {
        ok = MatchPayload(record);
      } else if (r == TapRingReader::Read::kRecord) {
        absl::StatusOr<TapMessage> msg = DecodeTapMessage(record);
        ok = msg.ok() && Dispatch(*msg, /*from_ring=*/true);
      }
      if (!ok) {
        ++shared_->malformed;
        shared_->Lose(TapIngress::Loss::kIngress, 1);
      }
      ring_->Advance();
    }
  }

  static bool IsPayload(std::string_view record) {
    if (record.size() < sizeof(TapWireHeader)) return false;
    uint16_t type = 0;
    memcpy(&type, record.data() + offsetof(TapWireHeader, type), sizeof(type));
    return type == kTapMsgPayload;
  }

  // A transmit call the tap handed over: matched here, each match becomes
  // the event message the tap would have sent. False: malformed.
  bool MatchPayload(std::string_view record) {
    std::shared_ptr<const PatternDb> db;
    {
      std::lock_guard l(shared_->mu);
      db = shared_->db;
    }
    payload_events_.clear();
    if (!matcher_.Match(record, db, ring_->modules(), ring_->module_count(), &payload_events_)
             .ok()) {
      return false;
    }
    for (const std::string& wire : payload_events_) {
      absl::StatusOr<TapMessage> msg = DecodeTapMessage(wire);
      if (!msg.ok() || !Dispatch(*msg, /*from_ring=*/true)) return false;
    }
    return true;
  }

  // What this pass read is handed over (journaled): free its slots.
  void SettleRing() {
    if (shared_->options.before_release) shared_->options.before_release();
    ring_->ReleaseRead();
  }

  void WaitDoorbell() {
    if (doorbell_wait_ || closed_) return;
    doorbell_wait_ = true;
    auto self = shared_from_this();
    doorbell_.async_wait(
        asio::posix::stream_descriptor::wait_read, [self](const boost::system::error_code& ec) {
          self->doorbell_wait_ = false;
          if (ec || self->closed_ || self->shared_->stopped) return;
          self->ring_->DrainDoorbell();
          const auto delay = std::chrono::milliseconds(self->shared_->wake_delay_ms.load());
          if (delay.count() <= 0) {
            self->DrainRing(self->shared_->options.drain_budget);
            return;
          }
          // Awake now: the tap stops ringing; records gather.
          self->ring_->ClearWaiting();
          self->wake_timer_.expires_after(delay);
          self->wake_timer_.async_wait([self](const boost::system::error_code& e) {
            if (e || self->closed_ || self->shared_->stopped) return;
            self->DrainRing(self->shared_->options.drain_budget);
          });
        });
  }

  void ReportRingDrops() {
    uint64_t upto = 0;
    uint64_t n = ring_->PendingDrops(&upto);
    if (n == 0) return;
    const auto& o = shared_->options;
    if (!o.on_ring_drops) {
      shared_->Lose(TapIngress::Loss::kTap, n);  // durable when it returns
      ring_->MarkDropsReported(upto);
      return;
    }
    shared_->tap_lost += n;
    o.on_ring_drops(ring_->ring_id(), n, upto);  // durable, with `upto`
    ring_->MarkDropsReported(upto);
    if (o.ring_drops_marked) o.ring_drops_marked(ring_->ring_id());
  }

  bool Malformed() {
    ++shared_->malformed;
    Close();
    return false;
  }

  void SendPatterns() {
    std::shared_ptr<const std::vector<std::string>> chunks = shared_->Chunks();
    if (!chunks)
      chunks = std::make_shared<const std::vector<std::string>>(EncodePatterns("", 0, 0));
    pending_chunks_ = chunks;
    next_chunk_ = 0;
    WriteNext();
  }

  void WriteNext() {
    if (!pending_chunks_ || next_chunk_ >= pending_chunks_->size()) {
      pending_chunks_.reset();
      return;
    }
    auto self = shared_from_this();
    const std::string& chunk = (*pending_chunks_)[next_chunk_];
    socket_.async_send(asio::buffer(chunk), 0, [self](const boost::system::error_code& ec, size_t) {
      // The tap went away, or gave up on the database (it waits a few ms at
      // most) and never reads it: stop sending, and let the read side close
      // the connection once it has read what the tap sent (its exit Stats).
      if (ec) {
        self->pending_chunks_.reset();
        return;
      }
      ++self->shared_->chunks_sent;
      ++self->next_chunk_;
      self->WriteNext();
    });
  }

  SeqPacket::socket socket_;
  std::shared_ptr<TapIngress::Shared> shared_;
  std::vector<char> buf_;
  asio::posix::stream_descriptor doorbell_;
  asio::steady_timer wake_timer_;
  bool doorbell_wait_ = false;
  bool closed_ = false;
  bool awaiting_first_ = true;  // counted in shared_->awaiting_first
  bool rate_logged_ = false;
  double tokens_;
  std::chrono::steady_clock::time_point refilled_;
  PeerCredentials peer_;
  std::optional<TapHello> hello_;
  std::unique_ptr<TapRingReader> ring_;
  TapPayloadMatcher matcher_;
  std::vector<std::string> payload_events_;  // reused per Payload record
  std::shared_ptr<const std::vector<std::string>> pending_chunks_;
  size_t next_chunk_ = 0;
};

namespace {

// Checks the peer before anything is read or sent; false: closed, counted.
bool Admit(TapIngress::Shared& shared, int fd, const ucred& cred) {
  if (!Allowed(shared.options, fd, cred)) {
    ++shared.refused;
    std::lock_guard l(shared.mu);
    if (shared.refused_logged.size() < 64 && shared.refused_logged.insert(cred.uid).second) {
      LogWarning("tap socket: refused pid ", cred.pid, " (uid ", cred.uid, ", gid ", cred.gid,
                 "): not on the allow-list");
    }
    return false;
  }
  std::lock_guard l(shared.mu);
  size_t& mine = shared.per_uid[cred.uid];
  if (shared.active.load() >= shared.options.max_connections ||
      mine >= shared.options.max_connections_per_uid) {
    if (mine == 0) shared.per_uid.erase(cred.uid);
    ++shared.rejected;
    return false;
  }
  ++mine;  // released by ~TapConnection
  return true;
}

void Accept(std::shared_ptr<TapIngress::Shared> shared) {
  SeqPacket::acceptor& acceptor = shared->acceptor;
  acceptor.async_accept(
      asio::make_strand(shared->io), [shared](const boost::system::error_code& ec, auto socket) {
        if (shared->stopped || !shared->acceptor.is_open()) return;
        if (!ec) {
          ucred cred{};
          socklen_t len = sizeof(cred);
          boost::system::error_code ignored;
          if (getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
              !Admit(*shared, socket.native_handle(), cred)) {
            socket.close(ignored);
          } else {
            socket.non_blocking(true, ignored);
            ++shared->accepted;
            auto conn = std::make_shared<TapConnection>(std::move(socket), shared, cred);
            {
              std::lock_guard l(shared->mu);
              auto& conns = shared->connections;
              conns.erase(std::remove_if(conns.begin(), conns.end(),
                                         [](const auto& w) { return w.expired(); }),
                          conns.end());
              conns.push_back(conn);
            }
            conn->Start();
          }
        } else if (ec == asio::error::operation_aborted) {
          return;
        }
        // Other accept errors (EMFILE...) are transient: keep accepting.
        Accept(shared);
      });
}

}  // namespace

TapIngress::TapIngress(asio::io_context& io, Options options, EventCallback on_event,
                       StatsCallback on_stats, GoodbyeCallback on_goodbye)
    : options_(options),
      shared_(std::make_shared<Shared>(io, std::move(options), std::move(on_event),
                                       std::move(on_stats), std::move(on_goodbye))) {}

TapIngress::~TapIngress() { Stop(); }

absl::Status TapIngress::Start() {
  const std::string& path = options_.socket_path;
  if (path.empty()) return absl::InvalidArgumentError("tap socket path is empty");
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("tap socket path too long (", path.size(),
                                                   " bytes, max ",
                                                   sizeof(sockaddr_un::sun_path) - 1, "): ", path));
  }
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("tap socket path exists and is not a socket: ", path));
    }
    unlink(path.c_str());  // stale socket of a previous agent
  }
  boost::system::error_code ec;
  SeqPacket::acceptor& acceptor = shared_->acceptor;
  acceptor.open(SeqPacket(), ec);
  if (!ec) acceptor.bind(SeqPacket::endpoint(path), ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor.close(ec);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on tap socket ", path, ": ", ec.message()));
  }
  // The allow-list is checked on accept regardless, so a connection that
  // slips in between bind and chmod gains nothing.
  if (chmod(path.c_str(), options_.socket_mode) != 0 ||
      (options_.socket_gid != static_cast<gid_t>(-1) &&
       chown(path.c_str(), static_cast<uid_t>(-1), options_.socket_gid) != 0)) {
    int err = errno;
    acceptor.close(ec);
    unlink(path.c_str());
    return absl::PermissionDeniedError(
        absl::StrCat("chmod/chown tap socket ", path, ": ", strerror(err)));
  }
  started_ = true;
  Accept(shared_);
  return absl::OkStatus();
}

void TapIngress::Stop() {
  if (!started_ || shared_->stopped.exchange(true)) return;
  std::shared_ptr<Shared> shared = shared_;
  asio::post(shared->acceptor.get_executor(), [shared] {
    boost::system::error_code ec;
    shared->acceptor.close(ec);
  });
  std::vector<std::weak_ptr<TapConnection>> conns;
  {
    std::lock_guard l(shared->mu);
    conns.swap(shared->connections);
  }
  for (auto& weak : conns) {
    if (auto conn = weak.lock()) asio::post(conn->executor(), [conn] { conn->Close(); });
  }
  unlink(options_.socket_path.c_str());
}

void TapIngress::UpdatePatterns(std::shared_ptr<const PatternDb> db) {
  std::lock_guard l(shared_->mu);
  ++shared_->generation;
  std::string_view serialized = db ? std::string_view(db->serialized()) : std::string_view();
  uint32_t count = db ? static_cast<uint32_t>(db->size()) : 0;
  shared_->db = db;
  shared_->chunks = std::make_shared<const std::vector<std::string>>(
      EncodePatterns(serialized, shared_->generation, count));
}

bool TapIngress::Quiescent() const {
  if (shared_->awaiting_first.load() > 0) return false;
  // A readable listening socket has connections in its backlog.
  pollfd p{shared_->acceptor.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

void TapIngress::SetHelloCallback(HelloCallback on_hello) {
  shared_->on_hello = std::move(on_hello);
}

void TapIngress::SetControlCallback(ControlCallback on_control) {
  shared_->on_control = std::move(on_control);
}

void TapIngress::SetStatusCallback(StatusCallback on_status) {
  shared_->on_status = std::move(on_status);
}

void TapIngress::SetWakeDelay(std::chrono::milliseconds delay) {
  shared_->wake_delay_ms = delay.count();
}

void TapIngress::SetCookieCallback(CookieCallback on_cookie) {
  shared_->on_cookie = std::move(on_cookie);
}

TapIngress::Counters TapIngress::counters() const {
  Counters c;
  c.accepted = shared_->accepted;
  c.rejected = shared_->rejected;
  c.refused = shared_->refused;
  c.rate_limited = shared_->rate_limited;
  c.rings = shared_->rings_attached;
  c.ring_records = shared_->ring_records;
  c.tap_lost = shared_->tap_lost;
  c.active = shared_->active;
  c.hellos = shared_->hellos;
  c.events = shared_->events;
  c.stats = shared_->stats;
  c.cookies = shared_->cookies;
  c.malformed = shared_->malformed;
  c.pattern_chunks_sent = shared_->chunks_sent;
  return c;
}

}  // namespace idflow::agent
