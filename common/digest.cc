#include "common/digest.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace idflow {
namespace {

std::string Digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) return "";
  return HexEncode(std::string_view(reinterpret_cast<const char*>(out), len));
}

}  // namespace

std::string HexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

std::string KeyedDigest(std::string_view key, std::string_view value) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(value.data()), value.size(), out,
           &len) == nullptr) {
    return "";
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(out), 16));
}

std::string Md5Hex(std::string_view data) { return Digest(EVP_md5(), data); }
std::string Sha1Hex(std::string_view data) { return Digest(EVP_sha1(), data); }
std::string Sha256Hex(std::string_view data) { return Digest(EVP_sha256(), data); }

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return "";
  }
  return out;
}

}  // namespace idflow
