// tls_write_bench [--seconds S] [--sizes 64,1024,16384] [--rounds R]
//                 [--with-identifier STR] [--cert PEM --key PEM]
//
// The cost of one SSL_write (issue 14). TLS runs over a socketpair: a server
// thread does SSL_accept, then SSL_read (read-ahead on) in a loop and
// discards the data; the main thread does SSL_connect, then per size a
// warm-up and R timed rounds of N SSL_write calls of that size (N from the
// warm-up's rate, so that the R rounds of one size take about S seconds
// together). One line per size:
//
//   size=64 writes=N rounds=5 ns_per_write=X min=A max=B cpu_ns_per_write=C warmup=W
//
// writes: SSL_write calls per round; ns_per_write: the median round's wall
// time per write, min and max over the rounds; cpu_ns_per_write: the writing
// thread's CPU time (user + system, so a uprobe's trap counts) per write,
// median round; warmup: the untimed writes before (all the program's
// SSL_write calls for that size: W + R * N). The payload is ASCII telemetry-like text with no
// identifier in it; --with-identifier STR puts STR once in every write (in the middle). The
// certificate is a self-signed P-256 one made in memory unless --cert and
// --key name PEM files. Built twice (CMakeLists.txt): statically linked with
// libssl.a/libcrypto.a, and dynamically against libssl.so. Exit 0 done,
// 1 failed (a message on stderr), 2 usage.
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kMaxSizes = 16, kMaxRounds = 101, kMaxWrite = 1 << 20 };

struct Options {
  double seconds;
  size_t sizes[kMaxSizes];
  int n_sizes;
  int rounds;
  const char* identifier;
  const char* cert_file;
  const char* key_file;
};

static int Fail(const char* what) {
  fprintf(stderr, "tls_write_bench: %s\n", what);
  ERR_print_errors_fp(stderr);
  return 1;
}

static int Usage(const char* why) {
  fprintf(stderr,
          "tls_write_bench: %s\n"
          "usage: tls_write_bench [--seconds S] [--sizes 64,1024,16384] [--rounds R]\n"
          "                       [--with-identifier STR] [--cert PEM --key PEM]\n",
          why);
  return 2;
}

static double Now(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int ParseSizes(const char* list, struct Options* o) {
  o->n_sizes = 0;
  const char* p = list;
  while (*p != '\0') {
    char* end = NULL;
    errno = 0;
    unsigned long v = strtoul(p, &end, 10);
    if (end == p || errno != 0 || v == 0 || v > kMaxWrite || o->n_sizes == kMaxSizes) return -1;
    o->sizes[o->n_sizes++] = (size_t)v;
    if (*end == ',') {
      ++end;
    } else if (*end != '\0') {
      return -1;
    }
    p = end;
  }
  return o->n_sizes > 0 ? 0 : -1;
}

// 0 on success, 2 on a usage error (printed).
static int ParseArgs(int argc, char** argv, struct Options* o) {
  memset(o, 0, sizeof(*o));
  o->seconds = 1.0;
  o->rounds = 5;
  ParseSizes("64,1024,16384", o);
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) return Usage("a flag without its value");
    char* end = NULL;
    if (strcmp(a, "--seconds") == 0) {
      o->seconds = strtod(v, &end);
      if (*end != '\0' || !(o->seconds > 0) || o->seconds > 3600) return Usage("bad --seconds");
    } else if (strcmp(a, "--sizes") == 0) {
      if (ParseSizes(v, o) != 0) return Usage("bad --sizes (1..1048576, comma-separated)");
    } else if (strcmp(a, "--rounds") == 0) {
      long r = strtol(v, &end, 10);
      if (*end != '\0' || r < 1 || r > kMaxRounds) return Usage("bad --rounds (1..101)");
      o->rounds = (int)r;
    } else if (strcmp(a, "--with-identifier") == 0) {
      if (*v == '\0') return Usage("empty --with-identifier");
      o->identifier = v;
    } else if (strcmp(a, "--cert") == 0) {
      o->cert_file = v;
    } else if (strcmp(a, "--key") == 0) {
      o->key_file = v;
    } else {
      return Usage("unknown flag");
    }
    ++i;
  }
  if ((o->cert_file == NULL) != (o->key_file == NULL)) return Usage("--cert needs --key");
  for (int i = 0; o->identifier != NULL && i < o->n_sizes; ++i) {
    if (strlen(o->identifier) > o->sizes[i]) return Usage("--with-identifier longer than a size");
  }
  return 0;
}

// A self-signed P-256 certificate for CN=localhost, valid for a day.
static int MakeCertificate(EVP_PKEY** key, X509** cert) {
  *key = EVP_EC_gen("P-256");
  *cert = X509_new();
  if (*key == NULL || *cert == NULL) return -1;
  X509_NAME* name = X509_get_subject_name(*cert);
  if (X509_set_version(*cert, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(*cert), 1) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(*cert), -60) == NULL ||
      X509_gmtime_adj(X509_getm_notAfter(*cert), 86400) == NULL ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char*)"localhost", -1,
                                 -1, 0) != 1 ||
      X509_set_issuer_name(*cert, name) != 1 || X509_set_pubkey(*cert, *key) != 1 ||
      X509_sign(*cert, *key, EVP_sha256()) == 0) {
    return -1;
  }
  return 0;
}

static SSL_CTX* ServerContext(const struct Options* o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL) return NULL;
  // No post-handshake tickets: the client never reads, nothing waits for it.
  SSL_CTX_set_num_tickets(ctx, 0);
  if (o->cert_file != NULL) {
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
      SSL_CTX_free(ctx);
      return NULL;
    }
    return ctx;
  }
  EVP_PKEY* key = NULL;
  X509* cert = NULL;
  int ok = MakeCertificate(&key, &cert) == 0 && SSL_CTX_use_certificate(ctx, cert) == 1 &&
           SSL_CTX_use_PrivateKey(ctx, key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

struct Server {
  SSL* ssl;
  int accepted;  // 1 handshake done, -1 failed
  unsigned long long bytes;
};

// SSL_accept, then read and discard until the client closes.
static void* ServeThread(void* arg) {
  struct Server* s = arg;
  if (SSL_accept(s->ssl) != 1) {
    s->accepted = -1;
    ERR_print_errors_fp(stderr);
    return NULL;
  }
  s->accepted = 1;
  static char buf[1 << 16];
  for (;;) {
    int n = SSL_read(s->ssl, buf, sizeof(buf));
    if (n <= 0) break;
    s->bytes += (unsigned long long)n;
  }
  return NULL;
}

// ASCII telemetry-like text, no identifier in it (no hex runs, no
// address-like digit groups); `identifier`, when given, once in the middle.
static void FillPayload(char* buf, size_t size, const char* identifier) {
  static const char kText[] =
      "event=screen_view page=settings theme=dark lang=en region=north retries=3 "
      "status=ok battery=high network=wifi session=warm build=release channel=stable ";
  size_t text_len = sizeof(kText) - 1;
  for (size_t i = 0; i < size; ++i) buf[i] = kText[i % text_len];
  if (identifier != NULL) {
    size_t len = strlen(identifier);
    memcpy(buf + (size - len) / 2, identifier, len);
  }
}

static int WriteAll(SSL* ssl, const char* buf, size_t size, long count) {
  for (long i = 0; i < count; ++i) {
    if (SSL_write(ssl, buf, (int)size) != (int)size) return -1;
  }
  return 0;
}

static int CompareDouble(const void* a, const void* b) {
  double x = *(const double*)a;
  double y = *(const double*)b;
  return x < y ? -1 : x > y;
}

// Warm-up, then o->rounds timed rounds; prints the line for `size`.
static int MeasureSize(SSL* ssl, const struct Options* o, size_t size, char* buf) {
  FillPayload(buf, size, o->identifier);
  double round_s = o->seconds / o->rounds;
  // Warm-up: at least 8 writes and a fifth of a round's time; its rate
  // sizes the rounds.
  double warm_s = round_s / 5;
  long warm = 0;
  double t0 = Now(CLOCK_MONOTONIC);
  double elapsed = 0;
  while (warm < 8 || elapsed < warm_s) {
    if (WriteAll(ssl, buf, size, 8) != 0) return Fail("SSL_write failed (warm-up)");
    warm += 8;
    elapsed = Now(CLOCK_MONOTONIC) - t0;
  }
  long n = (long)(round_s / (elapsed / (double)warm));
  if (n < 1) n = 1;
  double wall[kMaxRounds];
  double cpu[kMaxRounds];
  for (int r = 0; r < o->rounds; ++r) {
    double c0 = Now(CLOCK_THREAD_CPUTIME_ID);
    double w0 = Now(CLOCK_MONOTONIC);
    if (WriteAll(ssl, buf, size, n) != 0) return Fail("SSL_write failed");
    wall[r] = (Now(CLOCK_MONOTONIC) - w0) * 1e9 / (double)n;
    cpu[r] = (Now(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e9 / (double)n;
  }
  qsort(wall, (size_t)o->rounds, sizeof(double), CompareDouble);
  qsort(cpu, (size_t)o->rounds, sizeof(double), CompareDouble);
  printf(
      "size=%zu writes=%ld rounds=%d ns_per_write=%.0f min=%.0f max=%.0f cpu_ns_per_write=%.0f "
      "warmup=%ld\n",
      size, n, o->rounds, wall[o->rounds / 2], wall[0], wall[o->rounds - 1], cpu[o->rounds / 2],
      warm);
  fflush(stdout);
  return 0;
}

int main(int argc, char** argv) {
  struct Options o;
  int rc = ParseArgs(argc, argv, &o);
  if (rc != 0) return rc;
  signal(SIGPIPE, SIG_IGN);

  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    perror("tls_write_bench: socketpair");
    return 1;
  }
  SSL_CTX* server_ctx = ServerContext(&o);
  if (server_ctx == NULL) return Fail("server context (certificate or key) failed");
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  if (client_ctx == NULL) return Fail("SSL_CTX_new failed");
  SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);

  // The reader must keep ahead of the writer, or the wall time measures
  // SSL_read: 1 MiB socket buffers, and read-ahead (many records per read()
  // instead of two read() calls per record).
  int buf_bytes = 1 << 20;
  for (int i = 0; i < 2; ++i) {
    setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &buf_bytes, sizeof(buf_bytes));
    setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &buf_bytes, sizeof(buf_bytes));
  }
  struct Server server = {SSL_new(server_ctx), 0, 0};
  if (server.ssl != NULL) SSL_set_read_ahead(server.ssl, 1);
  SSL* client = SSL_new(client_ctx);
  if (server.ssl == NULL || client == NULL || SSL_set_fd(server.ssl, fds[1]) != 1 ||
      SSL_set_fd(client, fds[0]) != 1) {
    return Fail("SSL_new failed");
  }
  pthread_t thread;
  if (pthread_create(&thread, NULL, ServeThread, &server) != 0) return Fail("pthread_create");
  if (SSL_connect(client) != 1) return Fail("TLS handshake failed");

  size_t max_size = 0;
  for (int i = 0; i < o.n_sizes; ++i) max_size = o.sizes[i] > max_size ? o.sizes[i] : max_size;
  char* buf = malloc(max_size);
  if (buf == NULL) return Fail("out of memory");
  printf("tls_write_bench: %s, %s, %s\n", OpenSSL_version(OPENSSL_VERSION), SSL_get_version(client),
         SSL_get_cipher_name(client));
  for (int i = 0; i < o.n_sizes && rc == 0; ++i) rc = MeasureSize(client, &o, o.sizes[i], buf);

  // Close the write side: the server's SSL_read ends.
  shutdown(fds[0], SHUT_WR);
  pthread_join(thread, NULL);
  if (rc == 0 && server.accepted != 1) rc = Fail("server handshake failed");
  SSL_free(client);
  SSL_free(server.ssl);
  SSL_CTX_free(client_ctx);
  SSL_CTX_free(server_ctx);
  close(fds[0]);
  close(fds[1]);
  free(buf);
  return rc;
}
