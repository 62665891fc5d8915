// TLS ClientHello SNI (agent/tap/sniff/tls_client_hello.h).
#include "agent/tap/sniff/tls_client_hello.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/tap/client_hello.h"

namespace idflow::tap {
namespace {

using ::idflow::testing::ClientHello;

TEST(TlsClientHelloTest, SniFromClientHello) {
  std::string hello = ClientHello("sni.example.test");
  char out[128];
  size_t n = ParseSni(hello.data(), hello.size(), out, sizeof(out));
  EXPECT_EQ(std::string(out, n), "sni.example.test");
  EXPECT_EQ(ParseSni(hello.data(), hello.size(), out, 3), 3u);
  // Cut before the name, or not a handshake: nothing.
  EXPECT_EQ(ParseSni(hello.data(), hello.size() - 20, out, sizeof(out)), 0u);
  std::string not_tls = "GET / HTTP/1.1\r\n" + std::string(64, 'x');
  EXPECT_EQ(ParseSni(not_tls.data(), not_tls.size(), out, sizeof(out)), 0u);
}

}  // namespace
}  // namespace idflow::tap
