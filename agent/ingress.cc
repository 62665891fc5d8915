#include "agent/ingress.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <vector>

#include <mutex>
#include "absl/strings/str_cat.h"
#include "boost/asio/basic_seq_packet_socket.hpp"
#include "boost/asio/basic_socket_acceptor.hpp"
#include "boost/asio/local/basic_endpoint.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/strand.hpp"

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
        acceptor(asio::make_strand(ctx)) {}

  std::shared_ptr<const std::vector<std::string>> Chunks() {
    std::lock_guard l(mu);
    return chunks;
  }

  const Options options;
  const EventCallback on_event;
  const StatsCallback on_stats;
  const GoodbyeCallback on_goodbye;
  CookieCallback on_cookie;  // set before Start(), read-only afterwards
  asio::io_context& io;
  SeqPacket::acceptor acceptor;
  std::atomic<bool> stopped{false};

  std::mutex mu;
  std::shared_ptr<const std::vector<std::string>> chunks ABSL_GUARDED_BY(mu);
  uint32_t generation ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::weak_ptr<TapConnection>> connections ABSL_GUARDED_BY(mu);

  std::atomic<uint64_t> accepted{0}, rejected{0}, active{0}, hellos{0}, events{0}, stats{0},
      malformed{0}, chunks_sent{0}, cookies{0};
};

class TapConnection : public std::enable_shared_from_this<TapConnection> {
 public:
  TapConnection(SeqPacket::socket socket, std::shared_ptr<TapIngress::Shared> shared)
      : socket_(std::move(socket)),
        shared_(std::move(shared)),
        buf_(shared_->options.max_message_bytes + 1) {
    ++shared_->active;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      peer_.valid = true;
      peer_.pid = cred.pid;
      peer_.uid = cred.uid;
      peer_.gid = cred.gid;
    }
  }
  ~TapConnection() {
    --shared_->active;
    if (hello_ && shared_->on_goodbye) shared_->on_goodbye(*hello_);
  }

  void Start() { Read(); }

  void Close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

  SeqPacket::socket::executor_type executor() { return socket_.get_executor(); }

 private:
  void Read() {
    auto self = shared_from_this();
    socket_.async_receive(
        asio::buffer(buf_), 0, in_flags_,
        [self](const boost::system::error_code& ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const boost::system::error_code& ec, size_t n) {
    if (ec || n == 0 || shared_->stopped) return Close();  // peer gone (0 = EOF)
    if ((in_flags_ & MSG_TRUNC) != 0 || n > shared_->options.max_message_bytes) {
      return Malformed();
    }
    absl::StatusOr<TapMessage> msg = DecodeTapMessage(std::string_view(buf_.data(), n));
    if (!msg.ok()) return Malformed();
    if (auto* hello = std::get_if<TapHello>(&msg->body)) {
      if (hello_) return Malformed();  // exactly one Hello per connection
      hello_ = std::move(*hello);
      hello_->peer = peer_;
      ++shared_->hellos;
      if (hello_->want_patterns) SendPatterns();
    } else if (!hello_) {
      return Malformed();
    } else if (auto* event = std::get_if<TapEvent>(&msg->body)) {
      ++shared_->events;
      if (shared_->on_event) shared_->on_event(*hello_, *event);
    } else if (auto* cookie = std::get_if<TapCookie>(&msg->body)) {
      ++shared_->cookies;
      if (shared_->on_cookie) shared_->on_cookie(*hello_, *cookie);
    } else if (auto* stats = std::get_if<TapStats>(&msg->body)) {
      ++shared_->stats;
      if (shared_->on_stats) shared_->on_stats(*hello_, *stats);
    } else {
      return Malformed();  // Patterns flow agent -> tap only
    }
    Read();
  }

  void Malformed() {
    ++shared_->malformed;
    Close();
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
      if (ec) return self->Close();
      ++self->shared_->chunks_sent;
      ++self->next_chunk_;
      self->WriteNext();
    });
  }

  SeqPacket::socket socket_;
  std::shared_ptr<TapIngress::Shared> shared_;
  std::vector<char> buf_;
  SeqPacket::socket::message_flags in_flags_ = 0;
  PeerCredentials peer_;
  std::optional<TapHello> hello_;
  std::shared_ptr<const std::vector<std::string>> pending_chunks_;
  size_t next_chunk_ = 0;
};

namespace {

void Accept(std::shared_ptr<TapIngress::Shared> shared) {
  SeqPacket::acceptor& acceptor = shared->acceptor;
  acceptor.async_accept(
      asio::make_strand(shared->io), [shared](const boost::system::error_code& ec, auto socket) {
        if (shared->stopped || !shared->acceptor.is_open()) return;
        if (!ec) {
          if (shared->active.load() >= shared->options.max_connections) {
            ++shared->rejected;
            boost::system::error_code ignored;
            socket.close(ignored);
          } else {
            ++shared->accepted;
            auto conn = std::make_shared<TapConnection>(std::move(socket), shared);
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
  if (chmod(path.c_str(), options_.socket_mode) != 0) {
    int err = errno;
    acceptor.close(ec);
    unlink(path.c_str());
    return absl::PermissionDeniedError(
        absl::StrCat("chmod tap socket ", path, ": ", strerror(err)));
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
  shared_->chunks = std::make_shared<const std::vector<std::string>>(
      EncodePatterns(serialized, shared_->generation, count));
}

void TapIngress::SetCookieCallback(CookieCallback on_cookie) {
  shared_->on_cookie = std::move(on_cookie);
}

TapIngress::Counters TapIngress::counters() const {
  Counters c;
  c.accepted = shared_->accepted;
  c.rejected = shared_->rejected;
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
