#include "collector/convert.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace idflow::collector {

const char* ActionName(idflow::v1::Action action) {
  switch (action) {
    case idflow::v1::ACTION_TRANSMIT:
      return "transmit";
    case idflow::v1::ACTION_ACQUIRE:
      return "acquire";
    default:
      return "unspecified";
  }
}

store::EventRecord ToRecord(const idflow::v1::Event& ev) {
  store::EventRecord r;
  r.agent_id = ev.agent_id();
  r.seq = ev.seq();
  r.device_id = ev.device().id();
  r.device_class = ev.device().class_();
  r.firmware = ev.device().firmware();
  r.pid = ev.origin().pid();
  r.exe = ev.origin().exe();
  r.module = ev.origin().module();
  r.module_build_id = ev.origin().module_build_id();
  r.sdk = ev.origin().sdk();
  r.action = ActionName(ev.action());
  r.channel = ev.channel();
  r.dest_ip = ev.destination().ip();
  r.dest_port = ev.destination().port();
  r.dest_host = ev.destination().hostname();
  r.dest_peer_exe = ev.destination().peer_exe();
  r.data_type = ev.identifier().kind();
  r.instance = ev.identifier().instance();
  r.encoding = ev.identifier().encoding();
  if (ev.has_cookie()) {
    // One verdict group per cookie name; the direction stands in the encoding.
    r.data_type = "cookie:" + ev.cookie().name();
    r.instance = ev.cookie().name();
    r.encoding = ev.cookie().direction();
  }
  r.digest = ev.identifier().digest();
  r.offset = ev.identifier().offset();
  r.snippet = ev.identifier().snippet();
  r.scenarios.assign(ev.context().scenarios().begin(), ev.context().scenarios().end());
  // Sorted so that equal contexts store equally.
  std::map<std::string, bool> consents(ev.context().consents().begin(),
                                       ev.context().consents().end());
  for (const auto& [k, v] : consents) r.consents.push_back(k + (v ? "=true" : "=false"));
  r.count = ev.count() == 0 ? 1 : ev.count();
  r.first_seen_unix_ms = ev.first_seen_unix_ms();
  r.last_seen_unix_ms = ev.last_seen_unix_ms() ? ev.last_seen_unix_ms() : ev.first_seen_unix_ms();
  return r;
}

policy::Flow ToFlow(const store::EventRecord& rec) {
  policy::Flow f;
  f.sdk = rec.sdk;
  f.module = rec.module;
  f.data_type = rec.data_type;
  f.action = rec.action;
  f.channel = rec.channel;
  f.dest_host = rec.dest_host;
  f.dest_ip = rec.dest_ip;
  f.scenarios = rec.scenarios;
  for (const auto& c : rec.consents) {
    std::pair<std::string, std::string> kv = absl::StrSplit(c, absl::MaxSplits('=', 1));
    f.consents[kv.first] = kv.second == "true";
  }
  return f;
}

void ApplyVerdict(const policy::Verdict& v, store::EventRecord* rec) {
  rec->verdict = policy::CategoryName(v.category);
  rec->statement = v.statement;
  rec->statement_version = v.version;
  rec->entry = v.entry;
  rec->explanation = v.explanation;
}

policy::CookieObservation ToCookieObservation(const idflow::v1::Event& ev) {
  policy::CookieObservation o;
  o.site = ev.destination().hostname();
  o.name = ev.cookie().name();
  o.session = ev.cookie().session();
  o.max_age_seconds = ev.cookie().session() ? -1 : ev.cookie().max_age_seconds();
  o.first_party = true;
  o.direction = ev.cookie().direction() == "out" ? "sent" : "set";
  if (o.direction == "sent") o.max_age_seconds = -1;  // a Cookie header carries no lifetime
  return o;
}

void ApplyCookieVerdict(const policy::CookieVerdict& v, store::EventRecord* rec) {
  rec->verdict = policy::CookieCategoryName(v.category);
  rec->statement = v.policy;
  rec->statement_version = v.version;
  rec->entry = v.cookie;
  rec->explanation = v.explanation;
}

store::VerdictFilter FromProto(const idflow::v1::VerdictFilter& f) {
  store::VerdictFilter out;
  out.device_id = f.device();
  out.sdk = f.sdk();
  out.verdict = f.verdict();
  out.violations_only = f.violations_only();
  if (f.limit() > 0) out.limit = f.limit();
  return out;
}

idflow::v1::Verdict ToProto(const store::VerdictGroup& g) {
  const store::EventRecord& s = g.sample;
  idflow::v1::Verdict v;
  v.set_device(s.device_id);
  v.set_sdk(s.sdk);
  v.set_module(s.module);
  v.set_data_type(s.data_type);
  v.set_encoding(s.encoding);
  v.set_destination(s.Destination());
  v.set_verdict(s.verdict);
  v.set_statement(s.statement);
  v.set_statement_version(s.statement_version);
  v.set_entry(s.entry);
  v.set_explanation(s.explanation);
  v.set_count(g.count);
  v.set_first_seen_unix_ms(g.first_seen_unix_ms);
  v.set_last_seen_unix_ms(g.last_seen_unix_ms);
  v.set_action(s.action);
  v.set_channel(s.channel);
  v.set_exe(s.exe);
  return v;
}

idflow::v1::StoredEvent ToProto(const store::EventRecord& r) {
  idflow::v1::StoredEvent out;
  idflow::v1::Event& ev = *out.mutable_event();
  ev.set_agent_id(r.agent_id);
  ev.set_seq(r.seq);
  ev.mutable_device()->set_id(r.device_id);
  ev.mutable_device()->set_class_(r.device_class);
  ev.mutable_device()->set_firmware(r.firmware);
  ev.mutable_origin()->set_pid(r.pid);
  ev.mutable_origin()->set_exe(r.exe);
  ev.mutable_origin()->set_module(r.module);
  ev.mutable_origin()->set_module_build_id(r.module_build_id);
  ev.mutable_origin()->set_sdk(r.sdk);
  ev.set_action(r.action == "transmit"  ? idflow::v1::ACTION_TRANSMIT
                : r.action == "acquire" ? idflow::v1::ACTION_ACQUIRE
                                        : idflow::v1::ACTION_UNSPECIFIED);
  ev.set_channel(r.channel);
  ev.mutable_destination()->set_ip(r.dest_ip);
  ev.mutable_destination()->set_port(r.dest_port);
  ev.mutable_destination()->set_hostname(r.dest_host);
  ev.mutable_destination()->set_peer_exe(r.dest_peer_exe);
  ev.mutable_identifier()->set_kind(r.data_type);
  ev.mutable_identifier()->set_instance(r.instance);
  ev.mutable_identifier()->set_encoding(r.encoding);
  ev.mutable_identifier()->set_digest(r.digest);
  ev.mutable_identifier()->set_offset(r.offset);
  ev.mutable_identifier()->set_snippet(r.snippet);
  for (const auto& s : r.scenarios) ev.mutable_context()->add_scenarios(s);
  for (const auto& c : r.consents) {
    std::pair<std::string, std::string> kv = absl::StrSplit(c, absl::MaxSplits('=', 1));
    (*ev.mutable_context()->mutable_consents())[kv.first] = kv.second == "true";
  }
  if (absl::StartsWith(r.data_type, "cookie:")) {
    ev.mutable_cookie()->set_name(r.instance);
    ev.mutable_cookie()->set_direction(r.encoding);
  }
  ev.set_count(r.count);
  ev.set_first_seen_unix_ms(r.first_seen_unix_ms);
  ev.set_last_seen_unix_ms(r.last_seen_unix_ms);
  out.set_verdict(r.verdict);
  out.set_statement(r.statement);
  out.set_statement_version(r.statement_version);
  out.set_entry(r.entry);
  out.set_explanation(r.explanation);
  return out;
}

}  // namespace idflow::collector
