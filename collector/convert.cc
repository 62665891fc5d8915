#include "collector/convert.h"

#include "common/verdict_categories.h"

namespace idflow::collector {

namespace {

idflow::v1::Finding FindingToProto(const std::string& name) {
  if (name == "clear") return idflow::v1::FINDING_CLEAR;
  if (name == "observation") return idflow::v1::FINDING_OBSERVATION;
  if (name == "violation") return idflow::v1::FINDING_VIOLATION;
  return idflow::v1::FINDING_UNSPECIFIED;
}

// idflow.v1.Category value = position in IDFLOW_VERDICT_CATEGORIES + 1.
idflow::v1::Category CategoryToProto(const std::string& name) {
  auto c = CategoryFromName(name);
  if (!c) return idflow::v1::CATEGORY_UNSPECIFIED;
  return static_cast<idflow::v1::Category>(static_cast<int>(*c) + 1);
}

}  // namespace

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

const char* CookieDirectionName(idflow::v1::CookieDirection d) {
  switch (d) {
    case idflow::v1::COOKIE_SET_BY_SERVER:
      return "set_by_server";
    case idflow::v1::COOKIE_SENT_BY_CLIENT:
      return "sent_by_client";
    default:
      return "";
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
  r.call_chain.reserve(ev.origin().call_chain_size());
  for (const auto& m : ev.origin().call_chain()) r.call_chain.push_back({m.path(), m.build_id()});
  r.sdk_hint = ev.origin().sdk();
  r.run_id = ev.run_id();
  r.action = ActionName(ev.action());
  r.channel = ev.channel();
  r.dest_ip = ev.destination().ip();
  r.dest_port = ev.destination().port();
  r.dest_host = ev.destination().hostname();
  r.dest_peer_exe = ev.destination().peer_exe();
  if (ev.has_cookie()) {
    r.has_cookie = true;
    r.data_type = "cookie";
    r.cookie.name = ev.cookie().name();
    r.cookie.direction = CookieDirectionName(ev.cookie().direction());
    if (r.cookie.direction.empty()) r.cookie.direction = "set_by_server";
    r.cookie.domain = ev.cookie().domain();
    r.cookie.session = ev.cookie().session();
    r.cookie.max_age_seconds = ev.cookie().has_max_age() ? ev.cookie().max_age_seconds() : -1;
  } else {
    r.data_type = ev.identifier().kind();
    r.instance = ev.identifier().instance();
    r.encoding = ev.identifier().encoding();
    r.digest = ev.identifier().digest();
    r.offset = ev.identifier().offset();
    r.snippet = ev.identifier().snippet();
  }
  r.scenarios.assign(ev.context().scenarios().begin(), ev.context().scenarios().end());
  r.consents.insert(ev.context().consents().begin(), ev.context().consents().end());
  r.count = ev.count() == 0 ? 1 : ev.count();
  r.first_seen_unix_ms = ev.first_seen_unix_ms();
  r.last_seen_unix_ms = ev.last_seen_unix_ms() ? ev.last_seen_unix_ms() : ev.first_seen_unix_ms();
  return r;
}

policy::Flow ToFlow(const store::EventRecord& rec) {
  policy::Flow f;
  f.call_chain.reserve(rec.call_chain.size());
  for (const auto& m : rec.call_chain) f.call_chain.push_back(m.path);
  f.exe = rec.exe;
  f.peer_exe = rec.dest_peer_exe;
  f.data_type = rec.data_type;
  f.action = rec.action;
  f.channel = rec.channel;
  f.dest_host = rec.dest_host;
  f.dest_ip = rec.dest_ip;
  f.scenarios = rec.scenarios;
  f.consents = rec.consents;
  return f;
}

policy::CookieObservation ToCookieObservation(const store::EventRecord& rec) {
  policy::CookieObservation o;
  o.host = rec.dest_host.empty() ? rec.dest_ip : rec.dest_host;
  o.domain = rec.cookie.domain;
  o.name = rec.cookie.name;
  o.session = rec.cookie.session;
  o.direction = rec.cookie.direction == "sent_by_client" ? policy::CookieDirection::kSentByClient
                                                         : policy::CookieDirection::kSetByServer;
  // A Cookie request header carries no lifetime.
  o.max_age_seconds = o.direction == policy::CookieDirection::kSetByServer && !o.session
                          ? rec.cookie.max_age_seconds
                          : -1;
  return o;
}

Category JudgeEvent(const policy::Policy& policy, store::EventRecord* rec) {
  Category category;
  if (rec->has_cookie) {
    // Who set or sent the cookie is told like any event, from the call chain
    // and the collector's own bindings.
    std::vector<std::string> chain;
    chain.reserve(rec->call_chain.size());
    for (const auto& m : rec->call_chain) chain.push_back(m.path);
    policy::Responsible who = policy::ResolveResponsible(policy, chain, rec->exe);
    rec->module = who.module;
    rec->sdk = who.sdk;
    policy::CookieVerdict v = policy::JudgeCookie(policy, ToCookieObservation(*rec));
    category = v.category;
    rec->cookie.first_party = v.first_party;
    rec->statement = v.policy;
    rec->statement_version = v.version;
    rec->entry = v.cookie;
    rec->explanation = v.explanation;
  } else {
    policy::Verdict v = policy::Judge(policy, ToFlow(*rec));
    category = v.category;
    rec->module = v.module;
    rec->sdk = v.sdk;
    rec->statement = v.statement;
    rec->statement_version = v.version;
    rec->entry = v.entry;
    rec->explanation = v.explanation;
  }
  rec->module_build_id.clear();
  for (const auto& m : rec->call_chain) {
    if (m.path == rec->module) {
      rec->module_build_id = m.build_id;
      break;
    }
  }
  rec->verdict = CategoryName(category);
  rec->finding = FindingName(FindingOf(category));
  return category;
}

store::VerdictFilter FromProto(const idflow::v1::VerdictFilter& f) {
  store::VerdictFilter out;
  out.device_id = f.device();
  out.sdk = f.sdk();
  out.verdict = f.verdict();
  out.violations_only = f.violations_only();
  switch (f.finding()) {
    case idflow::v1::FINDING_CLEAR:
      out.finding = "clear";
      break;
    case idflow::v1::FINDING_OBSERVATION:
      out.finding = "observation";
      break;
    case idflow::v1::FINDING_VIOLATION:
      out.finding = "violation";
      break;
    default:
      break;
  }
  out.run_id = f.run_id();
  out.since_unix_ms = f.since_unix_ms();
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
  v.set_snippet(s.snippet);
  v.set_finding(FindingToProto(s.finding));
  v.set_category(CategoryToProto(s.verdict));
  for (const auto& m : s.call_chain) v.add_call_chain(m.path);
  if (s.sdk_hint != s.sdk) v.set_sdk_hint(s.sdk_hint);
  if (s.has_cookie) {
    v.set_cookie_name(s.cookie.name);
    v.set_cookie_direction(s.cookie.direction);
  }
  return v;
}

idflow::v1::StoredEvent ToProto(const store::EventRecord& r) {
  idflow::v1::StoredEvent out;
  idflow::v1::Event& ev = *out.mutable_event();
  ev.set_agent_id(r.agent_id);
  ev.set_seq(r.seq);
  ev.set_run_id(r.run_id);
  ev.mutable_device()->set_id(r.device_id);
  ev.mutable_device()->set_class_(r.device_class);
  ev.mutable_device()->set_firmware(r.firmware);
  ev.mutable_origin()->set_pid(r.pid);
  ev.mutable_origin()->set_exe(r.exe);
  ev.mutable_origin()->set_module(r.module);
  ev.mutable_origin()->set_module_build_id(r.module_build_id);
  ev.mutable_origin()->set_sdk(r.sdk);
  for (const auto& m : r.call_chain) {
    auto* pm = ev.mutable_origin()->add_call_chain();
    pm->set_path(m.path);
    pm->set_build_id(m.build_id);
  }
  ev.set_action(r.action == "transmit"  ? idflow::v1::ACTION_TRANSMIT
                : r.action == "acquire" ? idflow::v1::ACTION_ACQUIRE
                                        : idflow::v1::ACTION_UNSPECIFIED);
  ev.set_channel(r.channel);
  ev.mutable_destination()->set_ip(r.dest_ip);
  ev.mutable_destination()->set_port(r.dest_port);
  ev.mutable_destination()->set_hostname(r.dest_host);
  ev.mutable_destination()->set_peer_exe(r.dest_peer_exe);
  if (r.has_cookie) {
    auto* c = ev.mutable_cookie();
    c->set_name(r.cookie.name);
    c->set_direction(r.cookie.direction == "sent_by_client" ? idflow::v1::COOKIE_SENT_BY_CLIENT
                                                            : idflow::v1::COOKIE_SET_BY_SERVER);
    c->set_domain(r.cookie.domain);
    c->set_session(r.cookie.session);
    c->set_has_max_age(r.cookie.max_age_seconds >= 0);
    if (r.cookie.max_age_seconds >= 0) c->set_max_age_seconds(r.cookie.max_age_seconds);
  } else {
    ev.mutable_identifier()->set_kind(r.data_type);
    ev.mutable_identifier()->set_instance(r.instance);
    ev.mutable_identifier()->set_encoding(r.encoding);
    ev.mutable_identifier()->set_digest(r.digest);
    ev.mutable_identifier()->set_offset(r.offset);
    ev.mutable_identifier()->set_snippet(r.snippet);
  }
  for (const auto& s : r.scenarios) ev.mutable_context()->add_scenarios(s);
  for (const auto& [k, v] : r.consents) (*ev.mutable_context()->mutable_consents())[k] = v;
  ev.set_count(r.count);
  ev.set_first_seen_unix_ms(r.first_seen_unix_ms);
  ev.set_last_seen_unix_ms(r.last_seen_unix_ms);
  out.set_verdict(r.verdict);
  out.set_statement(r.statement);
  out.set_statement_version(r.statement_version);
  out.set_entry(r.entry);
  out.set_explanation(r.explanation);
  out.set_finding(FindingToProto(r.finding));
  return out;
}

idflow::v1::AgentStatus ToProto(const store::AgentRecord& a) {
  idflow::v1::AgentStatus out;
  out.set_agent_id(a.agent_id);
  out.mutable_device()->set_id(a.device_id);
  out.mutable_device()->set_class_(a.device_class);
  out.mutable_device()->set_firmware(a.firmware);
  out.set_agent_version(a.agent_version);
  out.set_last_seen_unix_ms(a.last_seen_unix_ms);
  out.set_stored_up_to(a.stored_up_to);
  out.set_events_stored(a.events_stored);
  out.set_gap_events(a.gap_events);
  auto* d = out.mutable_drops();
  d->set_tap_dropped(a.drops.tap);
  d->set_ingress_rejected(a.drops.ingress);
  d->set_spool_dropped(a.drops.spool);
  d->set_disk_dropped(a.drops.disk);
  d->set_dead_lettered(a.drops.dead_letter);
  return out;
}

}  // namespace idflow::collector
