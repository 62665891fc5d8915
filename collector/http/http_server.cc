#include "collector/http/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace idflow::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

namespace {

// Constant-time so the token cannot be guessed byte by byte from timings.
bool TokenEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool PrefixMatches(const std::string& prefix, const std::string& path) {
  if (!absl::StartsWith(path, prefix)) return false;
  if (path.size() == prefix.size() || prefix.empty() || prefix.back() == '/') return true;
  return path[prefix.size()] == '/';
}

absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& listen) {
  std::string host;
  std::string port;
  if (absl::StartsWith(listen, "[")) {
    size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("bad listen address \"", listen, "\""));
    }
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad listen address \"", listen, "\": expected HOST:PORT"));
    }
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  uint32_t p = 0;
  if (host.empty() || !absl::SimpleAtoi(port, &p) || p > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad listen address \"", listen, "\": expected HOST:PORT"));
  }
  return std::make_pair(host, static_cast<uint16_t>(p));
}

}  // namespace

std::string Request::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

std::map<std::string, std::string> Request::QueryParams() const {
  std::map<std::string, std::string> out;
  if (query.empty()) return out;
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    out[PercentDecode({kv.first.data(), kv.first.size()})] =
        PercentDecode({kv.second.data(), kv.second.size()});
  }
  return out;
}

Response Response::Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::Json(int status, std::string body) {
  Response r = Text(status, std::move(body));
  r.content_type = "application/json";
  return r;
}

Response Response::Html(int status, std::string body) {
  Response r = Text(status, std::move(body));
  r.content_type = "text/html; charset=utf-8";
  return r;
}

namespace {
class Session;
}  // namespace

struct Route {
  std::string method;
  std::string prefix;
  std::shared_ptr<const Handler> handler;
  Access access;
};

// Counters and routes shared with sessions, which may outlive Impl's members
// while the io_context tears down.
struct Shared {
  HttpServerOptions options;
  std::atomic<uint64_t> accepted{0}, refused{0}, active{0}, requests{0}, unauthorized{0},
      bad_requests{0}, timeouts{0}, handler_errors{0};
  std::mutex routes_mu;
  std::vector<Route> routes;
  // Live sessions, touched only on the I/O thread (or after it has ended), so
  // Stop() can close them.
  std::set<Session*> sessions;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {
    shared_->active++;
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      remote_ = ep.address().is_v6() ? absl::StrCat("[", ep.address().to_string(), "]:", ep.port())
                                     : absl::StrCat(ep.address().to_string(), ":", ep.port());
    }
  }
  ~Session() {
    shared_->sessions.erase(this);
    shared_->active--;
  }

  void Run() {
    shared_->sessions.insert(this);
    Read();
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(shared_->options.max_header_bytes));
    parser_->body_limit(shared_->options.max_body_bytes);
    stream_.expires_after(shared_->options.io_timeout);
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      return Close();
    }
    if (ec == beast::error::timeout) {
      shared_->timeouts++;
      return Close();
    }
    if (ec) {
      shared_->bad_requests++;
      int status = 400;
      if (ec == bhttp::error::header_limit) status = 431;
      if (ec == bhttp::error::body_limit) status = 413;
      Response r = Response::Text(
          status, std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(status))) + "\n");
      linger_ = true;
      return Write(r, /*keep_alive=*/false, /*head=*/false);
    }
    const auto& msg = parser_->get();
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    for (const auto& field : msg) {
      req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    req.body = msg.body();
    req.remote = remote_;
    bool keep_alive = msg.keep_alive();
    bool head = req.method == "HEAD";
    Response r = Dispatch(req);
    shared_->requests++;
    Write(r, keep_alive, head);
  }

  Response Dispatch(const Request& req) {
    const Route* best = nullptr;
    const Route* head_fallback = nullptr;
    std::set<std::string> allowed;
    Route chosen;
    {
      std::lock_guard<std::mutex> lock(shared_->routes_mu);
      for (const Route& r : shared_->routes) {
        if (!PrefixMatches(r.prefix, req.path)) continue;
        bool any = r.method.empty();
        if (any || r.method == req.method) {
          if (best == nullptr || r.prefix.size() > best->prefix.size()) best = &r;
        } else if (req.method == "HEAD" && r.method == "GET") {
          if (head_fallback == nullptr || r.prefix.size() > head_fallback->prefix.size()) {
            head_fallback = &r;
          }
        } else {
          allowed.insert(r.method);
        }
      }
      if (best == nullptr) best = head_fallback;
      if (best != nullptr) chosen = *best;
    }
    if (best == nullptr) {
      if (!allowed.empty()) {
        Response r = Response::Text(405, "Method Not Allowed\n");
        std::string allow;
        for (const auto& m : allowed) absl::StrAppend(&allow, allow.empty() ? "" : ", ", m);
        r.headers.emplace_back("Allow", allow);
        return r;
      }
      return Response::Text(404, "Not Found\n");
    }
    if (chosen.access == Access::kProtected && !shared_->options.bearer_token.empty()) {
      std::string auth = req.Header("Authorization");
      constexpr absl::string_view kBearer = "Bearer ";
      bool ok = auth.size() > kBearer.size() &&
                absl::EqualsIgnoreCase(auth.substr(0, kBearer.size()), kBearer) &&
                TokenEquals(absl::StripAsciiWhitespace(auth.substr(kBearer.size())),
                            shared_->options.bearer_token);
      if (!ok) {
        shared_->unauthorized++;
        Response r = Response::Text(401, "Unauthorized\n");
        r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"idflow\"");
        return r;
      }
    }
    try {
      return (*chosen.handler)(req);
    } catch (const std::exception&) {
      shared_->handler_errors++;
      return Response::Text(500, "Internal Server Error\n");
    } catch (...) {
      shared_->handler_errors++;
      return Response::Text(500, "Internal Server Error\n");
    }
  }

  void Write(const Response& r, bool keep_alive, bool head) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->version(11);
    res->result(static_cast<unsigned>(r.status));
    res->set(bhttp::field::server, "idflow-collector");
    res->set(bhttp::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res->insert(k, v);
    res->keep_alive(keep_alive);
    if (head) {
      res->content_length(r.body.size());
    } else {
      res->body() = r.body;
      res->prepare_payload();
    }
    stream_.expires_after(shared_->options.io_timeout);
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
                         if (ec == beast::error::timeout) self->shared_->timeouts++;
                         if (ec) return self->Close();
                         if (self->linger_) return self->LingeringClose();
                         if (!keep_alive) return self->Close();
                         self->Read();
                       });
  }

  // After an error response the client may still be sending: closing with
  // unread data makes the kernel send RST, which can destroy the response
  // before the client reads it. So stop sending, drain briefly, then close.
  void LingeringClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(
        std::min<std::chrono::milliseconds>(shared_->options.io_timeout, std::chrono::seconds(2)));
    Drain();
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(drain_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->Drain();
                            });
  }

  beast::tcp_stream stream_;
  char drain_[4096];
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<Shared> shared_;
  std::string remote_;
  bool linger_ = false;
};

void DrainAndClose(std::shared_ptr<beast::tcp_stream> stream) {
  static char sink[4096];  // contents never read
  stream->async_read_some(asio::buffer(sink), [stream](beast::error_code ec, size_t) {
    if (ec) {
      stream->socket().close(ec);
      return;
    }
    DrainAndClose(stream);
  });
}

// Answers 503 to a connection over the limit, then closes it.
void Refuse(tcp::socket socket, std::chrono::milliseconds timeout) {
  auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
  static const std::string kBusy =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
      "Content-Length: 24\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
      "Too many connections...\n";
  // One deadline for the 503 and the drain: refused clients get little time.
  stream->expires_after(std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(2)));
  asio::async_write(*stream, asio::buffer(kBusy), [stream](beast::error_code ec, size_t) {
    if (ec) {
      stream->socket().close(ec);
      return;
    }
    // Drain what the client already sent (see Session::LingeringClose).
    stream->socket().shutdown(tcp::socket::shutdown_send, ec);
    DrainAndClose(stream);
  });
}

}  // namespace

struct HttpServer::Impl {
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer retry{io};
  std::thread thread;
  std::mutex state_mu;
  bool started = false;
  bool stopped = false;
  std::string host;
  uint16_t port = 0;

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        // Transient accept errors (e.g. EMFILE) must neither stop the server
        // nor spin: retry shortly.
        retry.expires_after(std::chrono::milliseconds(100));
        retry.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec && acceptor.is_open()) Accept();
        });
        return;
      }
      {
        if (shared->active.load() >= shared->options.max_connections) {
          shared->refused++;
          Refuse(std::move(socket), shared->options.io_timeout);
        } else {
          shared->accepted++;
          std::make_shared<Session>(std::move(socket), shared)->Run();
        }
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(const HttpServerOptions& options) {
  auto hp = SplitHostPort(options.listen);
  if (!hp.ok()) return hp.status();
  if (options.max_connections == 0) {
    return absl::InvalidArgumentError("http: max_connections must be positive");
  }
  auto impl = std::make_unique<Impl>();
  impl->shared->options = options;
  beast::error_code ec;
  tcp::resolver resolver(impl->io);
  auto results = resolver.resolve(hp->first, std::to_string(hp->second),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("http: cannot resolve \"", hp->first,
                                                   "\": ", ec ? ec.message() : "no address"));
  }
  tcp::endpoint ep = results.begin()->endpoint();
  auto fail = [&](const char* what) {
    return absl::UnavailableError(
        absl::StrCat("http: cannot ", what, " ", options.listen, ": ", ec.message()));
  };
  impl->acceptor.open(ep.protocol(), ec);
  if (ec) return fail("open socket for");
  impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  impl->acceptor.bind(ep, ec);
  if (ec) return fail("bind");
  impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  auto local = impl->acceptor.local_endpoint(ec);
  if (ec) return fail("read bound address of");
  impl->host = local.address().to_string();
  impl->port = local.port();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Handle(std::string method, std::string path_prefix, Handler handler,
                        Access access) {
  if (method == "*") method.clear();
  Route r{std::move(method), std::move(path_prefix),
          std::make_shared<const Handler>(std::move(handler)), access};
  std::lock_guard<std::mutex> lock(impl_->shared->routes_mu);
  impl_->shared->routes.push_back(std::move(r));
}

absl::Status HttpServer::Start() {
  std::lock_guard<std::mutex> lock(impl_->state_mu);
  if (impl_->started) return absl::FailedPreconditionError("http: server already started");
  if (impl_->stopped) return absl::FailedPreconditionError("http: server stopped");
  impl_->started = true;
  impl_->Accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  std::lock_guard<std::mutex> lock(impl_->state_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->thread.joinable()) {
    // On the I/O thread: sessions are only touched there. Their objects live
    // on in pending handlers until io_context is destroyed, but their sockets
    // are closed now.
    asio::post(impl_->io, [impl = impl_.get()] {
      beast::error_code ec;
      impl->acceptor.close(ec);
      impl->retry.cancel();
      std::vector<Session*> live(impl->shared->sessions.begin(), impl->shared->sessions.end());
      for (Session* s : live) s->Close();
      impl->io.stop();
    });
    impl_->thread.join();
  } else {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  }
}

uint16_t HttpServer::port() const { return impl_->port; }
std::string HttpServer::host() const { return impl_->host; }

HttpServerStats HttpServer::stats() const {
  const Shared& s = *impl_->shared;
  HttpServerStats out;
  out.connections_accepted = s.accepted.load();
  out.connections_refused = s.refused.load();
  out.connections_active = s.active.load();
  out.requests = s.requests.load();
  out.unauthorized = s.unauthorized.load();
  out.bad_requests = s.bad_requests.load();
  out.timeouts = s.timeouts.load();
  out.handler_errors = s.handler_errors.load();
  return out;
}

}  // namespace idflow::http
