// A small bounded HTTP/1.1 server (Boost.Beast) for the collector's health,
// metrics and dashboard endpoints. Not a general web server: handlers run on
// the server's single I/O thread and must be quick (store queries are).
#ifndef IDFLOW_COLLECTOR_HTTP_HTTP_SERVER_H_
#define IDFLOW_COLLECTOR_HTTP_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace idflow::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path plus query
  std::string path;    // target before '?', not percent-decoded
  std::string query;   // target after '?', raw
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string body;
  std::string remote;  // peer "ip:port"

  // First header with this name (case-insensitive); "" when absent.
  std::string Header(const std::string& name) const;
  // Query parameters, percent- and '+'-decoded; the last of repeated keys wins.
  std::map<std::string, std::string> QueryParams() const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers

  static Response Text(int status, std::string body);
  static Response Json(int status, std::string body);
  static Response Html(int status, std::string body);
};

using Handler = std::function<Response(const Request&)>;

// Percent- and '+'-decoding as for query parameters (path segments too).
std::string PercentDecode(std::string_view s);

// kProtected routes require "Authorization: Bearer <token>" when the server
// has a token; without a configured token every route is open.
enum class Access { kPublic, kProtected };

struct HttpServerOptions {
  std::string listen = "127.0.0.1:0";   // HOST:PORT, [V6]:PORT; port 0 = ephemeral
  std::string bearer_token;             // "" = no auth
  size_t max_header_bytes = 16 * 1024;  // request line + headers -> 431
  size_t max_body_bytes = 1024 * 1024;  // -> 413
  size_t max_connections = 64;          // beyond: 503 and close, counted
  // Whole-request read deadline (also bounds keep-alive idle time and each
  // response write): slow or silent clients are disconnected.
  std::chrono::milliseconds io_timeout{10000};
};

struct HttpServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // over max_connections
  uint64_t connections_active = 0;
  uint64_t requests = 0;        // handled (any status)
  uint64_t unauthorized = 0;    // 401s
  uint64_t bad_requests = 0;    // 400 / 413 / 431
  uint64_t timeouts = 0;        // connections closed by io_timeout
  uint64_t handler_errors = 0;  // handlers that threw (answered 500)
};

class HttpServer {
 public:
  // Binds and listens (so port() is known and bind errors surface here) but
  // serves nothing until Start().
  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(const HttpServerOptions& options);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes by method ("" = any) and the longest matching path prefix. A
  // prefix matches the path itself and anything below it: "/api" matches
  // "/api" and "/api/x" but not "/apix"; "/" matches everything. A path that
  // matches only routes of other methods gets 405. HEAD falls back to GET
  // routes with the body omitted. Safe to call at any time.
  void Handle(std::string method, std::string path_prefix, Handler handler,
              Access access = Access::kPublic);

  // Starts the I/O thread. Once only.
  absl::Status Start();
  // Closes the listener and every connection and joins the thread. Idempotent.
  void Stop();

  uint16_t port() const;
  std::string host() const;
  HttpServerStats stats() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace idflow::http

#endif  // IDFLOW_COLLECTOR_HTTP_HTTP_SERVER_H_
