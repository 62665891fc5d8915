// A minimal TLS 1.2 ClientHello record naming `host` (server_name), for the
// tap's SNI tests: tap_test_sender writes it, http_parse_test parses it.
#ifndef IDFLOW_TESTS_TAP_CLIENT_HELLO_H_
#define IDFLOW_TESTS_TAP_CLIENT_HELLO_H_

#include <string>

namespace idflow::testing {

inline std::string ClientHello(const std::string& host) {
  auto be16 = [](size_t v) { return std::string{static_cast<char>(v >> 8), static_cast<char>(v)}; };
  std::string sni_list = std::string(1, '\0') + be16(host.size()) + host;
  std::string ext = be16(0) + be16(sni_list.size() + 2) + be16(sni_list.size()) + sni_list;
  std::string body = std::string("\x03\x03", 2) + std::string(32, 'r') + std::string(1, '\0') +
                     be16(2) + std::string("\x13\x01", 2) + std::string("\x01\x00", 2) +
                     be16(ext.size()) + ext;
  std::string hs = std::string(1, '\x01') + std::string(1, '\0') + be16(body.size()) + body;
  return std::string("\x16\x03\x01", 3) + be16(hs.size()) + hs;
}

}  // namespace idflow::testing

#endif  // IDFLOW_TESTS_TAP_CLIENT_HELLO_H_
