#include "tools/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace idflow::tools {

absl::StatusOr<agent::ControlReply> SendControl(const std::string& socket, const std::string& frame,
                                                std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  if (socket.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", socket));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket.data(), socket.size());
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  auto fail = [&](absl::Status st) {
    ::close(fd);
    return st;
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail(absl::UnavailableError(
        absl::StrCat("no agent listens on ", socket, " (", std::strerror(errno), ")")));
  }
  if (::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size())) {
    return fail(absl::UnavailableError(
        absl::StrCat("cannot send to the agent on ", socket, ": ", std::strerror(errno))));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[agent::kControlReplyMaxBytes + 1];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return fail(absl::DeadlineExceededError(absl::StrCat(
          "the agent on ", socket, " did not answer within ", timeout.count(), " ms")));
    }
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return fail(absl::InternalError(absl::StrCat("poll: ", std::strerror(errno))));
    if (rc == 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return fail(absl::UnavailableError(
          absl::StrCat("the agent on ", socket, " closed the connection without an answer",
                       n < 0 ? absl::StrCat(" (", std::strerror(errno), ")") : std::string())));
    }
    ::close(fd);
    absl::StatusOr<agent::ControlReply> reply =
        agent::DecodeControlReply(std::string_view(buf, static_cast<size_t>(n)));
    if (!reply.ok()) {
      return absl::InternalError(
          absl::StrCat("the agent on ", socket, " answered: ", reply.status().message()));
    }
    return reply;
  }
}

absl::Status ReplyStatus(const agent::ControlReply& reply) {
  return reply.code == absl::StatusCode::kOk ? absl::OkStatus()
                                             : absl::Status(reply.code, reply.text);
}

}  // namespace idflow::tools
