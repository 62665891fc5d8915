// Keyed digests of identifier values: raw values never leave the device.
#ifndef IDFLOW_COMMON_DIGEST_H_
#define IDFLOW_COMMON_DIGEST_H_

#include <string>
#include <string_view>

namespace idflow {

// HMAC-SHA256(key, value), lower-case hex, truncated to 32 hex digits (128 bits).
std::string KeyedDigest(std::string_view key, std::string_view value);

// Plain hash helpers used to build encoded identifier forms (lower-case hex).
std::string Md5Hex(std::string_view data);
std::string Sha1Hex(std::string_view data);
std::string Sha256Hex(std::string_view data);

// Cryptographically random bytes (OpenSSL RAND_bytes); empty on failure.
std::string RandomBytes(size_t n);

std::string HexEncode(std::string_view bytes);

}  // namespace idflow

#endif  // IDFLOW_COMMON_DIGEST_H_
