#include "collector/auth.h"

#include <openssl/crypto.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/digest.h"
#include "common/file_util.h"

namespace idflow::collector {

absl::StatusOr<std::map<std::string, std::string>> LoadAgentTokens(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  std::map<std::string, std::string> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": ", why));
    };
    if (parts.size() != 2) return bad("expected \"AGENT_ID sha256:HEX\"");
    absl::string_view hash = parts[1];
    if (!absl::ConsumePrefix(&hash, "sha256:") || hash.size() != 64) {
      return bad("token hash must be sha256: followed by 64 hex digits");
    }
    for (char c : hash) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return bad("hash is not hex");
    }
    std::string id(parts[0]);
    if (!out.emplace(id, absl::AsciiStrToLower(hash)).second) {
      return bad(absl::StrCat("agent ", id, " listed twice"));
    }
  }
  return out;
}

bool TokensMatch(const std::string& presented, const std::string& expected) {
  std::string a = Sha256Hex(presented), b = Sha256Hex(expected);
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string BearerToken(const std::string& header_value) {
  absl::string_view v = header_value;
  if (!absl::ConsumePrefix(&v, "Bearer ")) return "";
  return std::string(absl::StripAsciiWhitespace(v));
}

absl::Status AuthorizeAgent(const IngestAuth& auth, const std::string& bearer,
                            const std::vector<std::string>& peer_identities,
                            const std::string& agent_id) {
  if (!auth.agent_token_sha256.empty()) {
    auto it = auth.agent_token_sha256.find(agent_id);
    // Compare against a dummy when the agent is unknown, so that timing does
    // not tell which agent ids exist.
    std::string expected = it == auth.agent_token_sha256.end() ? std::string(64, '0') : it->second;
    std::string presented = Sha256Hex(bearer);
    bool ok = CRYPTO_memcmp(presented.data(), expected.data(), 64) == 0;
    if (bearer.empty() || it == auth.agent_token_sha256.end() || !ok) {
      return absl::UnauthenticatedError(
          absl::StrCat("agent ", agent_id, ": missing or wrong agent token"));
    }
  } else if (!auth.shared_token.empty()) {
    if (bearer.empty() || !TokensMatch(bearer, auth.shared_token)) {
      return absl::UnauthenticatedError("missing or wrong bearer token");
    }
  }
  if (auth.mtls) {
    for (const auto& id : peer_identities) {
      if (id == agent_id || absl::EndsWith(id, absl::StrCat("/agents/", agent_id))) {
        return absl::OkStatus();
      }
    }
    return absl::PermissionDeniedError(absl::StrCat("client certificate does not name agent ",
                                                    agent_id, " (CN or SAN must be the agent id)"));
  }
  return absl::OkStatus();
}

bool IsLoopbackListen(const std::string& host_port) {
  absl::string_view hp = host_port;
  absl::string_view host;
  if (absl::StartsWith(hp, "[")) {
    size_t close = hp.find(']');
    host = hp.substr(1, close == absl::string_view::npos ? absl::string_view::npos : close - 1);
  } else {
    size_t colon = hp.rfind(':');
    host = colon == absl::string_view::npos ? hp : hp.substr(0, colon);
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

}  // namespace idflow::collector
