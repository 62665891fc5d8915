#include "agent/control_protocol.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace idflow::agent {
namespace {

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("control message: ", what));
}

template <typename T>
std::string AsBytes(const T& pod) {
  return std::string(reinterpret_cast<const char*>(&pod), sizeof(pod));
}

// The header of a frame of type `type` and exactly sizeof(T) bytes.
template <typename T>
absl::StatusOr<T> Frame(std::string_view bytes, uint16_t type, absl::string_view name) {
  if (bytes.size() != sizeof(T)) return Bad(absl::StrCat(name, " has wrong size"));
  T w;
  memcpy(&w, bytes.data(), sizeof(w));
  if (w.header.magic != kTapMagic || w.header.version != kTapVersion || w.header.type != type ||
      w.header.length != sizeof(T) || w.header.reserved != 0) {
    return Bad(absl::StrCat(name, " has a bad header (magic, version, type or length)"));
  }
  return w;
}

// Strict forms of the Hello parsers: a change someone asked for is applied
// whole or refused, never half.
absl::StatusOr<std::vector<std::string>> StrictScenarios(std::string_view raw) {
  for (char c : raw) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Bad("scenario names hold control characters");
    }
  }
  return ParseScenarios(raw);
}

absl::StatusOr<std::map<std::string, bool>> StrictConsents(std::string_view raw) {
  std::map<std::string, bool> out;
  if (raw.empty()) return out;
  for (absl::string_view part : absl::StrSplit(absl::string_view(raw.data(), raw.size()), ',')) {
    std::map<std::string, bool> one = ParseConsents(std::string_view(part.data(), part.size()));
    if (one.size() != 1 || absl::StrContains(part, '\n')) {
      return Bad(absl::StrCat("consent '", part, "' is not KEY=true|false"));
    }
    out.insert(one.begin(), one.end());
  }
  return out;
}

// The context part shared by context set and watch frames: whole or refused.
template <typename W>
absl::StatusOr<ContextPatch> DecodePatch(const W& w, absl::string_view name) {
  std::string scenarios, consents, run_id;
  if (!WireString(w.scenarios, w.scenarios_len, &scenarios) ||
      !WireString(w.consents, w.consents_len, &consents) ||
      !WireString(w.run_id, w.run_id_len, &run_id)) {
    return Bad(absl::StrCat(name, " string length out of range"));
  }
  ContextPatch patch;
  if ((w.flags & kContextHasScenarios) != 0) {
    absl::StatusOr<std::vector<std::string>> list = StrictScenarios(scenarios);
    if (!list.ok()) return list.status();
    patch.scenarios = *std::move(list);
  } else if (!scenarios.empty()) {
    return Bad(absl::StrCat(name, " carries scenarios without the flag"));
  }
  absl::StatusOr<std::map<std::string, bool>> c = StrictConsents(consents);
  if (!c.ok()) return c.status();
  patch.consents = *std::move(c);
  if ((w.flags & kContextHasRunId) != 0) {
    // "" clears the run id; anything else must be a valid one.
    if (!run_id.empty() && !IsValidRunId(run_id)) return Bad("run id is not [A-Za-z0-9._:-]{1,64}");
    patch.run_id = std::move(run_id);
  } else if (!run_id.empty()) {
    return Bad(absl::StrCat(name, " carries a run id without the flag"));
  }
  return patch;
}

// The context part of a frame; InvalidArgument when a string is too long.
template <typename W>
absl::Status EncodePatch(const ContextPatch& p, W* w) {
  std::string scenarios = p.scenarios ? absl::StrJoin(*p.scenarios, ",") : "";
  std::vector<std::string> parts;
  for (const auto& [k, v] : p.consents) parts.push_back(absl::StrCat(k, "=", v ? "true" : "false"));
  std::string consents = absl::StrJoin(parts, ",");
  std::string run_id = p.run_id.value_or("");
  if (scenarios.size() > kTapScenarioMax || consents.size() > kTapConsentMax ||
      run_id.size() > kTapRunIdMax) {
    return absl::InvalidArgumentError(absl::StrCat("context change too long: scenarios at most ",
                                                   kTapScenarioMax, " bytes, consents ",
                                                   kTapConsentMax, ", run id ", kTapRunIdMax));
  }
  w->flags |= (p.scenarios ? kContextHasScenarios : 0) | (p.run_id ? kContextHasRunId : 0);
  w->scenarios_len = PutWireString(w->scenarios, scenarios);
  w->consents_len = PutWireString(w->consents, consents);
  w->run_id_len = PutWireString(w->run_id, run_id);
  return absl::OkStatus();
}

}  // namespace

bool IsControlRequest(std::string_view bytes) {
  if (bytes.size() < sizeof(TapWireHeader)) return false;
  TapWireHeader h;
  memcpy(&h, bytes.data(), sizeof(h));
  return h.magic == kTapMagic &&
         (h.type == kTapMsgContextSet || h.type == kTapMsgFlushRun || h.type == kTapMsgWatchTls);
}

absl::StatusOr<ControlRequest> DecodeControlRequest(std::string_view bytes) {
  if (bytes.size() < sizeof(TapWireHeader)) return Bad("shorter than a header");
  TapWireHeader h;
  memcpy(&h, bytes.data(), sizeof(h));
  if (h.type == kTapMsgContextSet) {
    absl::StatusOr<TapWireContextSet> w =
        Frame<TapWireContextSet>(bytes, kTapMsgContextSet, "context set");
    if (!w.ok()) return w.status();
    if ((w->flags & ~(kContextHasScenarios | kContextHasRunId)) != 0 || w->reserved != 0) {
      return Bad("context set has unknown flags");
    }
    absl::StatusOr<ContextPatch> patch = DecodePatch(*w, "context set");
    if (!patch.ok()) return patch.status();
    ContextSetRequest req;
    req.pid = w->pid;
    req.patch = *std::move(patch);
    return ControlRequest{std::move(req)};
  }
  if (h.type == kTapMsgFlushRun) {
    absl::StatusOr<TapWireFlushRun> w = Frame<TapWireFlushRun>(bytes, kTapMsgFlushRun, "flush");
    if (!w.ok()) return w.status();
    FlushRunRequest req;
    if (w->reserved != 0 || !WireString(w->run_id, w->run_id_len, &req.run_id) ||
        !IsValidRunId(req.run_id)) {
      return Bad("flush needs a valid run id");
    }
    req.timeout_ms = w->timeout_ms;
    return ControlRequest{std::move(req)};
  }
  if (h.type == kTapMsgWatchTls) {
    absl::StatusOr<TapWireWatchTls> w = Frame<TapWireWatchTls>(bytes, kTapMsgWatchTls, "watch");
    if (!w.ok()) return w.status();
    if ((w->flags &
         ~(kContextHasScenarios | kContextHasRunId | kWatchTlsUnderTap | kWatchTlsScanMaps)) != 0) {
      return Bad("watch has unknown flags");
    }
    // Built in place (GCC 12 misreads a moved-in request as uninitialized).
    ControlRequest out(std::in_place_type<WatchTlsRequest>);
    WatchTlsRequest& req = std::get<WatchTlsRequest>(out);
    if (w->pid == 0 || w->pid > static_cast<uint32_t>(INT32_MAX)) return Bad("watch needs a pid");
    req.pid = w->pid;
    if (!WireString(w->exe, w->exe_len, &req.exe) || req.exe.empty() || req.exe.front() != '/' ||
        req.exe.find('\0') != std::string::npos) {
      return Bad("watch needs an absolute program path");
    }
    req.under_tap = (w->flags & kWatchTlsUnderTap) != 0;
    req.scan_maps = (w->flags & kWatchTlsScanMaps) != 0;
    absl::StatusOr<ContextPatch> patch = DecodePatch(*w, "watch");
    if (!patch.ok()) return patch.status();
    req.context = *std::move(patch);
    return out;
  }
  return Bad(absl::StrCat("unknown request type ", h.type));
}

namespace {

absl::StatusOr<ControlReply> DecodeStatusReply(std::string_view bytes) {
  absl::StatusOr<TapWireStatusReply> w =
      Frame<TapWireStatusReply>(bytes, kTapMsgStatusReply, "status reply");
  if (!w.ok()) return w.status();
  if (w->code > static_cast<uint32_t>(absl::StatusCode::kUnauthenticated)) {
    return Bad("status reply has an unknown status code");
  }
  if ((w->flags & ~kStatusConnected) != 0 || w->reserved != 0 || w->reserved2 != 0 ||
      w->reserved3 != 0) {
    return Bad("status reply has unknown flags");
  }
  ControlReply r;
  r.code = static_cast<absl::StatusCode>(w->code);
  AgentStatus& s = r.status.emplace();
  if (!WireString(w->agent_id, w->agent_id_len, &s.agent_id) ||
      !WireString(w->version, w->version_len, &s.version) ||
      !WireString(w->collector, w->collector_len, &s.collector)) {
    return Bad("status reply string length out of range");
  }
  r.agent_id = s.agent_id;
  s.connected = (w->flags & kStatusConnected) != 0;
  s.now_unix_ms = w->now_unix_ms;
  s.spool_events = w->spool_events;
  s.spool_bytes = w->spool_bytes;
  s.pending_events = w->pending_events;
  s.last_seq = w->last_seq;
  s.oldest_unsent_unix_ms = w->oldest_unsent_unix_ms;
  s.last_ack_seq = w->last_ack_seq;
  s.last_ack_unix_ms = w->last_ack_unix_ms;
  memcpy(s.drops, w->drops, sizeof(s.drops));
  s.rss_bytes = w->rss_bytes;
  s.cpu_permille = w->cpu_permille;
  s.memory_level = w->memory_level;
  s.cpu_level = w->cpu_level;
  s.max_rss_bytes = w->max_rss_bytes;
  s.max_cpu_permille = w->max_cpu_permille;
  s.watchdog_steps = w->watchdog_steps;
  s.watchdog_shed = w->watchdog_shed;
  return r;
}

std::string EncodeStatusReply(absl::StatusCode code, const AgentStatus& s) {
  TapWireStatusReply w;
  memset(&w, 0, sizeof(w));
  FillTapHeader(&w.header, kTapMsgStatusReply, sizeof(w));
  w.code = static_cast<uint32_t>(code);
  w.flags = s.connected ? kStatusConnected : 0;
  w.now_unix_ms = s.now_unix_ms;
  w.spool_events = s.spool_events;
  w.spool_bytes = s.spool_bytes;
  w.pending_events = s.pending_events;
  w.last_seq = s.last_seq;
  w.oldest_unsent_unix_ms = s.oldest_unsent_unix_ms;
  w.last_ack_seq = s.last_ack_seq;
  w.last_ack_unix_ms = s.last_ack_unix_ms;
  memcpy(w.drops, s.drops, sizeof(w.drops));
  w.rss_bytes = s.rss_bytes;
  w.cpu_permille = s.cpu_permille;
  w.memory_level = s.memory_level;
  w.cpu_level = s.cpu_level;
  w.max_rss_bytes = s.max_rss_bytes;
  w.max_cpu_permille = s.max_cpu_permille;
  w.watchdog_steps = s.watchdog_steps;
  w.watchdog_shed = s.watchdog_shed;
  // Longer strings are cut: a status is informative, never refused.
  w.agent_id_len = PutWireString(w.agent_id, s.agent_id);
  w.version_len = PutWireString(w.version, s.version);
  w.collector_len = PutWireString(w.collector, s.collector);
  return AsBytes(w);
}

}  // namespace

bool IsStatusRequest(std::string_view bytes) {
  if (bytes.size() < sizeof(TapWireHeader)) return false;
  TapWireHeader h;
  memcpy(&h, bytes.data(), sizeof(h));
  return h.magic == kTapMagic && h.type == kTapMsgStatusRequest;
}

absl::Status DecodeStatusRequest(std::string_view bytes) {
  absl::StatusOr<TapWireStatusRequest> w =
      Frame<TapWireStatusRequest>(bytes, kTapMsgStatusRequest, "status request");
  if (!w.ok()) return w.status();
  if (w->flags != 0 || w->reserved != 0) return Bad("status request has unknown flags");
  return absl::OkStatus();
}

std::string EncodeStatusRequest() {
  TapWireStatusRequest w;
  memset(&w, 0, sizeof(w));
  FillTapHeader(&w.header, kTapMsgStatusRequest, sizeof(w));
  return AsBytes(w);
}

absl::StatusOr<ControlReply> DecodeControlReply(std::string_view bytes) {
  if (bytes.size() >= sizeof(TapWireHeader)) {
    TapWireHeader h;
    memcpy(&h, bytes.data(), sizeof(h));
    if (h.type == kTapMsgStatusReply) return DecodeStatusReply(bytes);
  }
  absl::StatusOr<TapWireControlReply> w =
      Frame<TapWireControlReply>(bytes, kTapMsgControlReply, "reply");
  if (!w.ok()) return w.status();
  ControlReply r;
  if (w->code > static_cast<uint32_t>(absl::StatusCode::kUnauthenticated)) {
    return Bad("reply has an unknown status code");
  }
  r.code = static_cast<absl::StatusCode>(w->code);
  if (!WireString(w->text, w->text_len, &r.text) ||
      !WireString(w->agent_id, w->agent_id_len, &r.agent_id)) {
    return Bad("reply string length out of range");
  }
  r.open_processes = w->open_processes;
  r.seq = w->seq;
  r.applied_unix_ms = w->applied_unix_ms;
  return r;
}

absl::StatusOr<std::string> EncodeContextSet(const ContextSetRequest& req) {
  TapWireContextSet w;
  memset(&w, 0, sizeof(w));
  FillTapHeader(&w.header, kTapMsgContextSet, sizeof(w));
  w.pid = req.pid;
  if (absl::Status st = EncodePatch(req.patch, &w); !st.ok()) return st;
  return AsBytes(w);
}

absl::StatusOr<std::string> EncodeWatchTls(const WatchTlsRequest& req) {
  if (req.exe.empty() || req.exe.front() != '/' || req.exe.size() > kTapModuleMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("program path must be absolute and at most ", kTapModuleMax, " bytes"));
  }
  TapWireWatchTls w;
  memset(&w, 0, sizeof(w));
  FillTapHeader(&w.header, kTapMsgWatchTls, sizeof(w));
  w.pid = req.pid;
  w.flags = (req.under_tap ? kWatchTlsUnderTap : 0) | (req.scan_maps ? kWatchTlsScanMaps : 0);
  w.exe_len = PutWireString(w.exe, req.exe);
  if (absl::Status st = EncodePatch(req.context, &w); !st.ok()) return st;
  return AsBytes(w);
}

absl::StatusOr<std::string> EncodeFlushRun(const FlushRunRequest& req) {
  if (!IsValidRunId(req.run_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("run id '", req.run_id, "' is not [A-Za-z0-9._:-]{1,64}"));
  }
  TapWireFlushRun w;
  memset(&w, 0, sizeof(w));
  FillTapHeader(&w.header, kTapMsgFlushRun, sizeof(w));
  w.timeout_ms = req.timeout_ms;
  w.run_id_len = PutWireString(w.run_id, req.run_id);
  return AsBytes(w);
}

std::string EncodeControlReply(const ControlReply& reply) {
  if (reply.status) return EncodeStatusReply(reply.code, *reply.status);
  TapWireControlReply w;
  memset(&w, 0, sizeof(w));
  FillTapHeader(&w.header, kTapMsgControlReply, sizeof(w));
  w.code = static_cast<uint32_t>(reply.code);
  w.open_processes = reply.open_processes;
  w.seq = reply.seq;
  w.applied_unix_ms = reply.applied_unix_ms;
  w.text_len = PutWireString(w.text, reply.text);  // a longer message is cut
  w.agent_id_len = PutWireString(w.agent_id, reply.agent_id);
  return AsBytes(w);
}

absl::StatusOr<ContextPatch> ParseContextAssignments(const std::vector<std::string>& args) {
  ContextPatch patch;
  if (args.empty()) {
    return absl::InvalidArgumentError(
        "nothing to set: give scenario=A,B, consent.KEY=true|false or run_id=ID");
  }
  for (const std::string& arg : args) {
    size_t eq = arg.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", arg, "' is not KEY=VALUE"));
    }
    absl::string_view key(arg.data(), eq), value(arg.data() + eq + 1, arg.size() - eq - 1);
    if (key == "scenario" || key == "scenarios") {
      absl::StatusOr<std::vector<std::string>> list =
          StrictScenarios(std::string_view(value.data(), value.size()));
      if (!list.ok()) return list.status();
      patch.scenarios = *std::move(list);
    } else if (key == "run_id") {
      if (!value.empty() && !IsValidRunId(std::string_view(value.data(), value.size()))) {
        return absl::InvalidArgumentError(
            absl::StrCat("run_id '", value, "' is not [A-Za-z0-9._:-]{1,64}"));
      }
      patch.run_id = std::string(value);
    } else if (absl::StartsWith(key, "consent.") && key.size() > 8) {
      std::string v = absl::AsciiStrToLower(value);
      std::string k(key.substr(8));
      if (k.find_first_of(",=") != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("consent key '", k, "' holds ',' or '='"));
      }
      if (v == "true" || v == "yes" || v == "1") {
        patch.consents[k] = true;
      } else if (v == "false" || v == "no" || v == "0") {
        patch.consents[k] = false;
      } else {
        return absl::InvalidArgumentError(absl::StrCat("'", arg, "': a consent is true or false"));
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown context key '", key, "' (scenario, consent.KEY or run_id)"));
    }
  }
  return patch;
}

}  // namespace idflow::agent
