#include "collector/limits.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace idflow::collector {

bool TruncateUtf8(std::string* s, size_t max) {
  if (s->size() <= max) return false;
  size_t cut = max;
  // Step back over continuation bytes (10xxxxxx) to a sequence start.
  while (cut > 0 && (static_cast<unsigned char>((*s)[cut]) & 0xC0) == 0x80) --cut;
  s->resize(cut);
  return true;
}

size_t BoundEvent(idflow::v1::Event* ev) {
  size_t cut = 0;
  auto bound = [&cut](std::string* s, size_t max) { cut += TruncateUtf8(s, max) ? 1 : 0; };
  bound(ev->mutable_device()->mutable_id(), kMaxAgentIdBytes);
  bound(ev->mutable_device()->mutable_class_(), kMaxShortBytes);
  bound(ev->mutable_device()->mutable_firmware(), kMaxShortBytes);
  auto* o = ev->mutable_origin();
  bound(o->mutable_exe(), kMaxPathBytes);
  bound(o->mutable_module(), kMaxPathBytes);
  bound(o->mutable_module_build_id(), kMaxDigestBytes);
  bound(o->mutable_sdk(), kMaxShortBytes);
  if (o->call_chain_size() > static_cast<int>(kMaxCallChain)) {
    o->mutable_call_chain()->DeleteSubrange(kMaxCallChain, o->call_chain_size() - kMaxCallChain);
    ++cut;
  }
  for (auto& m : *o->mutable_call_chain()) {
    bound(m.mutable_path(), kMaxPathBytes);
    bound(m.mutable_build_id(), kMaxDigestBytes);
  }
  bound(ev->mutable_channel(), kMaxShortBytes);
  bound(ev->mutable_run_id(), kMaxShortBytes);
  auto* d = ev->mutable_destination();
  bound(d->mutable_ip(), kMaxShortBytes);
  bound(d->mutable_hostname(), kMaxHostnameBytes);
  bound(d->mutable_peer_exe(), kMaxPathBytes);
  auto* id = ev->mutable_identifier();
  bound(id->mutable_kind(), kMaxShortBytes);
  bound(id->mutable_instance(), kMaxShortBytes);
  bound(id->mutable_encoding(), kMaxShortBytes);
  bound(id->mutable_digest(), kMaxDigestBytes);
  bound(id->mutable_snippet(), kMaxSnippetBytes);
  if (ev->has_cookie()) {
    bound(ev->mutable_cookie()->mutable_name(), kMaxCookieNameBytes);
    bound(ev->mutable_cookie()->mutable_domain(), kMaxHostnameBytes);
  }
  auto* ctx = ev->mutable_context();
  if (ctx->scenarios_size() > static_cast<int>(kMaxScenarios)) {
    ctx->mutable_scenarios()->DeleteSubrange(kMaxScenarios, ctx->scenarios_size() - kMaxScenarios);
    ++cut;
  }
  for (auto& s : *ctx->mutable_scenarios()) bound(&s, kMaxShortBytes);
  if (ctx->consents_size() > static_cast<int>(kMaxConsents)) {
    // A map has no order to cut by: keep the first kMaxConsents keys in order.
    std::map<std::string, bool> keep(ctx->consents().begin(), ctx->consents().end());
    ctx->clear_consents();
    size_t n = 0;
    for (const auto& [k, v] : keep) {
      if (n++ == kMaxConsents) break;
      (*ctx->mutable_consents())[k] = v;
    }
    ++cut;
  }
  // Long consent keys: re-insert under the cut key.
  std::vector<std::pair<std::string, bool>> long_keys;
  for (const auto& [k, v] : ctx->consents()) {
    if (k.size() > kMaxShortBytes) long_keys.emplace_back(k, v);
  }
  for (auto& [k, v] : long_keys) {
    ctx->mutable_consents()->erase(k);
    std::string shortened = k;
    TruncateUtf8(&shortened, kMaxShortBytes);
    (*ctx->mutable_consents())[shortened] = v;
    ++cut;
  }
  return cut;
}

absl::Status ValidateAgentId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("agent id is empty");
  if (id.size() > kMaxAgentIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("agent id of ", id.size(), " bytes (at most ", kMaxAgentIdBytes, ")"));
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return absl::InvalidArgumentError("agent id has characters outside [A-Za-z0-9._:-]");
  }
  return absl::OkStatus();
}

absl::Status ValidateEvent(const idflow::v1::Event& ev) {
  if (ev.seq() == 0 || ev.seq() > kMaxSeq) {
    return absl::InvalidArgumentError(absl::StrCat("seq ", ev.seq(), " out of range 1..2^63-1"));
  }
  if (!ev.has_cookie() && ev.identifier().kind().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("event ", ev.seq(), " carries neither an identifier nor a cookie"));
  }
  if (ev.has_cookie() && ev.cookie().name().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("cookie event ", ev.seq(), " has no name"));
  }
  if (ev.count() > (uint64_t{1} << 40)) {
    return absl::InvalidArgumentError(absl::StrCat("event ", ev.seq(), ": count out of range"));
  }
  return absl::OkStatus();
}

}  // namespace idflow::collector
