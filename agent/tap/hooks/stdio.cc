// stdio hooks: what an app writes with fwrite/fputs/fputc/putc/fprintf on a
// FILE* whose descriptor is a socket. glibc's stdio writes its buffer with
// an internal write the write() hook never sees, so the bytes are observed
// here, when the app hands them to stdio (not when the buffer is flushed:
// the event's time is the call's, and bytes a crash leaves in the buffer are
// reported though never sent). Streams on files and pipes pass straight
// through, after one cached look at the descriptor's kind.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent/tap/channel/agent_channel.h"
#include "agent/tap/fd/fd_table.h"
#include "agent/tap/hooks/hook.h"

using namespace idflow::tap;  // NOLINT: hooks are C symbols

namespace {

// Formatted output is observed up to this many bytes (the rest is counted
// as a cap hit): it is formatted a second time, on the hook's stack.
constexpr size_t kFormatMax = 4096;

// The socket under `stream`, or -1 when it is not one the tap observes.
int ObservedFd(FILE* stream) {
  if (stream == nullptr || !Active() || t_in_hook != 0) return -1;
  int fd = fileno_unlocked(stream);
  uint8_t kind = Classify(fd);
  return Scanned(kind) && !IsAgentFd(fd) ? fd : -1;
}

void Written(int fd, const void* buf, size_t n, void* caller) {
  if (fd >= 0 && n > 0) Observe([&] { ObserveSend(fd, buf, n, nullptr, 0, caller); });
}

// Formats what a printf-family call writes, for observing: the arguments
// are read from a copy of the list, before the real call consumes it.
void FormattedWritten(int fd, int r, const char* format, va_list copy, void* caller) {
  if (fd < 0 || r <= 0) return;
  Observe([&] {
    char text[kFormatMax];
    int n = vsnprintf(text, sizeof(text), format, copy);
    if (n <= 0) return;
    size_t len = static_cast<size_t>(n);
    if (len >= sizeof(text)) {
      len = sizeof(text) - 1;
      g_counters.cap_hits.fetch_add(1, std::memory_order_relaxed);
    }
    ObserveSend(fd, text, len, nullptr, 0, caller);
  });
}

}  // namespace

IDFLOW_EXPORT size_t fwrite(const void* ptr, size_t size, size_t nmemb, FILE* stream) {
  void* caller = IDFLOW_CALLER;
  size_t r = IDFLOW_REAL(fwrite)(ptr, size, nmemb, stream);
  int fd = ObservedFd(stream);
  if (fd >= 0) Written(fd, ptr, r * size, caller);
  return r;
}

IDFLOW_EXPORT int fputs(const char* s, FILE* stream) {
  void* caller = IDFLOW_CALLER;
  int r = IDFLOW_REAL(fputs)(s, stream);
  int fd = ObservedFd(stream);
  if (fd >= 0 && r >= 0) Written(fd, s, strlen(s), caller);
  return r;
}

IDFLOW_EXPORT int fputc(int c, FILE* stream) {
  void* caller = IDFLOW_CALLER;
  int r = IDFLOW_REAL(fputc)(c, stream);
  int fd = ObservedFd(stream);
  if (fd >= 0 && r != EOF) {
    char byte = static_cast<char>(r);
    Written(fd, &byte, 1, caller);
  }
  return r;
}

IDFLOW_EXPORT int putc(int c, FILE* stream) {
  void* caller = IDFLOW_CALLER;
  int r = IDFLOW_REAL(putc)(c, stream);
  int fd = ObservedFd(stream);
  if (fd >= 0 && r != EOF) {
    char byte = static_cast<char>(r);
    Written(fd, &byte, 1, caller);
  }
  return r;
}

IDFLOW_EXPORT int vfprintf(FILE* stream, const char* format, va_list ap) {
  void* caller = IDFLOW_CALLER;
  int fd = ObservedFd(stream);
  va_list copy;
  va_copy(copy, ap);
  int r = IDFLOW_REAL(vfprintf)(stream, format, ap);
  FormattedWritten(fd, r, format, copy, caller);
  va_end(copy);
  return r;
}

IDFLOW_EXPORT int __vfprintf_chk(FILE* stream, int flag, const char* format, va_list ap) {
  void* caller = IDFLOW_CALLER;
  int fd = ObservedFd(stream);
  va_list copy;
  va_copy(copy, ap);
  int r = IDFLOW_REAL(__vfprintf_chk)(stream, flag, format, ap);
  FormattedWritten(fd, r, format, copy, caller);
  va_end(copy);
  return r;
}

IDFLOW_EXPORT int fprintf(FILE* stream, const char* format, ...) {
  void* caller = IDFLOW_CALLER;
  int fd = ObservedFd(stream);
  va_list ap, copy;
  va_start(ap, format);
  va_copy(copy, ap);
  int r = IDFLOW_REAL(vfprintf)(stream, format, ap);
  FormattedWritten(fd, r, format, copy, caller);
  va_end(copy);
  va_end(ap);
  return r;
}

IDFLOW_EXPORT int __fprintf_chk(FILE* stream, int flag, const char* format, ...) {
  void* caller = IDFLOW_CALLER;
  int fd = ObservedFd(stream);
  va_list ap, copy;
  va_start(ap, format);
  va_copy(copy, ap);
  int r = IDFLOW_REAL(__vfprintf_chk)(stream, flag, format, ap);
  FormattedWritten(fd, r, format, copy, caller);
  va_end(copy);
  va_end(ap);
  return r;
}
