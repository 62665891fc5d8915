// Judge(): one verdict per flow. Precedence and edge cases: docs/POLICY.md.
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "collector/policy/policy.h"
#include "collector/policy/text_normalize.h"

namespace idflow::policy {

namespace {

// Lower rank wins when several entries apply.
int Rank(Category c) {
  switch (c) {
    case Category::kClear:
      return 0;
    case Category::kVague:
      return 1;
    case Category::kOutOfScenario:
    case Category::kNoConsent:
    case Category::kMethodMismatch:
      return 2;
    case Category::kWrongRecipient:
      return 3;
    case Category::kOmitted:
      return 4;
    default:
      return 5;
  }
}

bool IsIpLiteral(absl::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    host = host.substr(1, close == absl::string_view::npos ? absl::string_view::npos : close - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  // Hostnames start with a letter far more often than not: skip inet_pton.
  if (host.empty() || host.size() >= 64) return false;
  char text[64];
  std::memcpy(text, host.data(), host.size());
  text[host.size()] = '\0';
  unsigned char buf[16];
  return inet_pton(AF_INET, text, buf) == 1 || inet_pton(AF_INET6, text, buf) == 1;
}

std::string Verb(const Flow& f) {
  if (f.action == "transmit") return "sent";
  if (f.action == "acquire") return "read";
  return "handled";
}

std::string DataName(const Flow& f, const Ontology& o) {
  if (f.data_type.empty()) return "an unnamed data item";
  if (o.FindDataType(f.data_type) == nullptr) {
    return absl::StrCat(f.data_type, " (not a data type in the ontology)");
  }
  return f.data_type;
}

// An SDK name opening a sentence: "IDM SDK", or "The search services" when
// the name starts with a lowercase letter or a symbol.
std::string SdkSubject(const std::string& sdk) {
  if (sdk.empty()) return "An unnamed SDK";
  const auto first = static_cast<unsigned char>(sdk.front());
  if (absl::ascii_isupper(first) || absl::ascii_isdigit(first) || first >= 0x80) return sdk;
  return absl::StrCat("The ", sdk);
}

// "IDM SDK sent mac_address".
std::string Subject(const std::string& sdk, const Flow& f, const Ontology& o) {
  return absl::StrCat(SdkSubject(sdk), " ", Verb(f), " ", DataName(f, o));
}

std::string EntryRef(const Statement& s, const Entry& e) {
  return absl::StrCat("entry ", e.id, " of statement ", s.id, " ", s.version);
}

std::string Destination(const Flow& f) {
  if (!f.dest_host.empty()) return f.dest_host;
  return f.dest_ip;
}

// Whether the flow goes to a network peer a hostname could identify.
bool IsNetwork(const Flow& f) {
  if (f.action == "acquire") return false;
  return f.channel != "unix" && f.channel != "file";
}

// "network" (tcp, udp, tls-*), "local" (unix, pipe: another process on the
// device), or nullptr for channels that say neither (file, sysfs, unknown).
const char* ChannelClass(absl::string_view channel) {
  if (channel == "tcp" || channel == "udp" || absl::StartsWith(channel, "tls")) return "network";
  if (channel == "unix" || channel == "pipe") return "local";
  return nullptr;
}

struct Candidate {
  Category category;
  const Statement* statement;
  const Entry* entry;
  std::string explanation;
};

// With `explain` false only the category is computed: Judge explains the
// winning entry alone, since building sentences dominates the cost.
Candidate JudgeEntry(const Ontology& o, const Statement& s, const Entry& e, const std::string& sdk,
                     const Flow& f, bool explain) {
  const std::string subject = explain ? Subject(sdk, f, o) : std::string();
  const std::string ref = explain ? EntryRef(s, e) : std::string();
  auto done = [&](Category c, const auto& text) -> Candidate {
    return {c, &s, &e, explain ? text() : std::string()};
  };
  // Data type: exact, through a broader declared term, or not at all.
  std::string via;
  bool exact = false;
  for (const std::string& d : e.data_types) {
    if (d == f.data_type) exact = true;
  }
  if (!exact && !f.data_type.empty()) {
    for (const std::string& d : e.data_types) {
      if (d != f.data_type && o.Subsumes(d, f.data_type)) {
        via = d;
        break;
      }
    }
  }
  if (!exact && via.empty()) {
    if (!explain) return {Category::kOmitted, &s, &e, ""};
    const std::string declared = e.data_types.empty()
                                     ? "no data type"
                                     : absl::StrCat("only ", absl::StrJoin(e.data_types, ", "));
    return done(Category::kOmitted,
                [&] { return absl::StrCat(subject, ", but ", ref, " declares ", declared, "."); });
  }
  // Recipient: only a hostname can be attributed to an entity.
  const Entity* declared_party = o.FindEntity(e.entity);
  std::string recipient_note;
  if (IsNetwork(f)) {
    const std::string& host = f.dest_host;
    if (host.empty() || IsIpLiteral(host)) {
      const std::string dest = explain ? Destination(f) : std::string();
      if (explain) {
        recipient_note =
            dest.empty()
                ? " (no destination known, so the recipient is unverified)"
                : absl::StrCat(" to ", dest, " (an IP address, so the recipient is unverified)");
      }
    } else {
      const Entity* owner = o.FindEntityByHost(host);
      if (owner == nullptr || declared_party == nullptr || owner->id != declared_party->id) {
        return done(Category::kWrongRecipient, [&] {
          std::string whose = owner == nullptr ? "which belongs to no known entity"
                                               : absl::StrCat("which belongs to ", owner->name);
          return absl::StrCat(subject, " to ", host, ", ", whose, ", but ", ref, " declares ",
                              e.third_party, " as the recipient.");
        });
      }
      if (explain) recipient_note = absl::StrCat(" to ", host, " (", owner->name, ")");
    }
  }
  // Scenario: unknown (empty) context is not held against the flow.
  if (!f.scenarios.empty() && !e.scenarios.empty()) {
    bool overlap = false;
    for (const std::string& sc : f.scenarios) {
      for (const std::string& es : e.scenarios) overlap = overlap || sc == es;
    }
    if (!overlap) {
      return done(Category::kOutOfScenario, [&] {
        return absl::StrCat(subject, " during ", absl::StrJoin(f.scenarios, ", "), ", but ", ref,
                            " declares it only for ", absl::StrJoin(e.scenarios, ", "), ".");
      });
    }
  }
  for (const std::string& key : e.requires_consent) {
    auto it = f.consents.find(key);
    if (it != f.consents.end() && !it->second) {
      return done(Category::kNoConsent, [&] {
        return absl::StrCat(subject, " while consent ", key, " was false, but ", ref,
                            " shares it only with that consent.");
      });
    }
  }
  if (!f.action.empty() && !e.sharing_methods.empty()) {
    bool covered = false;
    for (const std::string& m : e.sharing_methods) {
      if (const SharingMethod* sm = o.FindSharingMethod(m)) {
        for (const std::string& a : sm->actions) covered = covered || a == f.action;
      }
    }
    if (!covered) {
      return done(Category::kMethodMismatch, [&] {
        return absl::StrCat(subject, " on the device (", f.action, "), but ", ref,
                            " declares only ", absl::StrJoin(e.sharing_methods, ", "), ".");
      });
    }
    // Channel: a transmit must take a path one declared method allows (a
    // backend API transfer reaches the third party over the network, never
    // through another process on the device). Unknown channels pass.
    const char* cls = f.action == "transmit" ? ChannelClass(f.channel) : nullptr;
    bool allowed = cls == nullptr;
    for (const std::string& m : e.sharing_methods) {
      const SharingMethod* sm = o.FindSharingMethod(m);
      allowed = allowed || sm == nullptr || sm->channels.empty() ||
                std::find(sm->channels.begin(), sm->channels.end(), cls) != sm->channels.end();
    }
    if (!allowed) {
      return done(Category::kMethodMismatch, [&] {
        std::vector<std::string> classes;
        for (const std::string& m : e.sharing_methods) {
          for (const std::string& c : o.FindSharingMethod(m)->channels) {
            if (std::find(classes.begin(), classes.end(), c) == classes.end()) classes.push_back(c);
          }
        }
        const std::string peer =
            f.peer_exe.empty() ? std::string() : absl::StrCat(" to ", f.peer_exe);
        return absl::StrCat(subject, " over a ", cls, " ", f.channel, " channel", peer, ", but ",
                            ref, " declares only ", absl::StrJoin(e.sharing_methods, ", "),
                            ", which takes only ", absl::StrJoin(classes, ", "), " channels.");
      });
    }
  }
  if (exact) {
    return done(Category::kClear, [&] {
      return absl::StrCat(subject, recipient_note, ", as declared by ", ref, ".");
    });
  }
  return done(Category::kVague, [&] {
    return absl::StrCat(subject, recipient_note, ", which ", ref,
                        " declares only through the broader term ", via, ".");
  });
}

// An app policy (e.g. the mini program) naming `sdk`, or nullptr.
const AppPolicy* AppFor(const Policy& p, const std::string& sdk) {
  for (const AppPolicy& a : p.app_policies) {
    for (const std::string& s : a.sdks) {
      if (SameFolded(s, sdk)) return &a;
    }
  }
  return nullptr;
}

// A consent-gated purpose of `app` that covers the flow's data type while the
// flow reports its consent as false.
const ConsentPurpose* WithheldPurpose(const Ontology& o, const AppPolicy& app, const Flow& f) {
  for (const ConsentPurpose& cp : app.consent_purposes) {
    auto it = f.consents.find(cp.consent);
    if (it == f.consents.end() || it->second) continue;
    bool covers = cp.data_types.empty();
    for (const std::string& d : cp.data_types) covers = covers || o.Subsumes(d, f.data_type);
    if (covers) return &cp;
  }
  return nullptr;
}

std::string KeeperName(const Ontology& o, const AppPolicy& app) {
  const Entity* e = o.FindEntity(app.entity);
  return e == nullptr ? app.entity : e->name;
}

// Judges a flow of an SDK that only an app policy names: the features play
// the part of entries (data type, recipient entity, consent).
Verdict JudgeApp(const Ontology& o, const AppPolicy& app, const std::string& sdk, const Flow& f) {
  Verdict v;
  v.statement = app.id;
  v.version = app.version;
  const std::string subject = Subject(sdk, f, o);
  const std::string ref = absl::StrCat("app policy ", app.id, " ", app.version);
  const AppFeature* exact = nullptr;
  const AppFeature* vague = nullptr;
  std::string via;
  for (const AppFeature& ft : app.features) {
    for (const std::string& d : ft.data_types) {
      if (d == f.data_type && exact == nullptr) exact = &ft;
      if (d != f.data_type && !f.data_type.empty() && vague == nullptr &&
          o.Subsumes(d, f.data_type)) {
        vague = &ft;
        via = d;
      }
    }
  }
  const AppFeature* ft = exact ? exact : vague;
  if (ft == nullptr) {
    v.category = Category::kOmitted;
    v.entry = app.features.empty() ? "" : app.features.front().id;
    v.explanation = absl::StrCat(subject, ", but no feature of ", ref, " collects it.");
    return v;
  }
  v.entry = ft->id;
  const std::string fref =
      absl::StrCat("feature ", ft->id, " (section ", ft->section, ") of ", ref);
  if (IsNetwork(f) && !f.dest_host.empty() && !IsIpLiteral(f.dest_host)) {
    const Entity* owner = o.FindEntityByHost(f.dest_host);
    if (owner == nullptr || owner->id != app.entity) {
      v.category = Category::kWrongRecipient;
      v.explanation =
          absl::StrCat(subject, " to ", f.dest_host, ", ",
                       owner == nullptr ? std::string("which belongs to no known entity")
                                        : absl::StrCat("which belongs to ", owner->name),
                       ", but ", fref, " keeps it with ", KeeperName(o, app), ".");
      return v;
    }
  }
  for (const std::string& key : ft->requires_consent) {
    auto it = f.consents.find(key);
    if (it != f.consents.end() && !it->second) {
      v.category = Category::kNoConsent;
      v.explanation = absl::StrCat(subject, " while consent ", key, " was false, but ", fref,
                                   " collects it only with that consent.");
      return v;
    }
  }
  if (const ConsentPurpose* cp = WithheldPurpose(o, app, f)) {
    v.entry = cp->id;
    v.category = Category::kNoConsent;
    v.explanation = absl::StrCat(subject, " while consent ", cp->consent, " was false, but ",
                                 "purpose ", cp->id, " (section ", cp->section, ") of ", ref,
                                 " allows it only with that consent.");
    return v;
  }
  v.category = exact ? Category::kClear : Category::kVague;
  v.explanation = exact ? absl::StrCat(subject, ", as declared by ", fref, ".")
                        : absl::StrCat(subject, ", which ", fref,
                                       " declares only through the broader term ", via, ".");
  return v;
}

// Same-executable IPC: a multi-process app (e.g. a browser) hands data to
// its own children over unix sockets or pipes; nothing leaves the app.
bool IsSameAppIpc(const Flow& f) {
  return (f.channel == "unix" || f.channel == "pipe") && !f.peer_exe.empty() && f.peer_exe == f.exe;
}

// Names the statements an undeclared party was judged against, and cites the
// first loaded one in `out`.
std::string JudgedAgainst(const Policy& policy, Verdict* out) {
  std::vector<std::string> names;
  for (const Statement& s : policy.statements) names.push_back(s.id + " " + s.version);
  if (!policy.statements.empty()) {
    out->statement = policy.statements.front().id;
    out->version = policy.statements.front().version;
  }
  return names.empty() ? std::string("any loaded statement") : absl::StrJoin(names, ", ");
}

// A flow whose responsible module no statement declares.
Verdict JudgeUndeclared(const Policy& policy, const Responsible& r, const Flow& flow) {
  Verdict v;
  const std::string data = DataName(flow, policy.ontology);
  // The app's own code or an unbound module reading without sending: nothing
  // was shared, so it is shown, not failed.
  if (flow.action == "acquire" && r.role != Responsible::Role::kSdk) {
    v.category = Category::kLocalAcquisition;
    const bool first_party = r.role == Responsible::Role::kFirstParty;
    v.explanation = absl::StrCat(
        r.module.empty()
            ? (first_party ? "An unnamed first-party module" : "An unnamed unbound module")
            : absl::StrCat(first_party ? "First-party module " : "Unbound module ", r.module),
        " read ", data, " without sending it, which no statement governs.");
    return v;
  }
  v.category = Category::kUndeclaredParty;
  const std::string names = JudgedAgainst(policy, &v);
  if (r.role == Responsible::Role::kSdk) {
    // "Mystery SDK (module …)", "SDK libmystery (module …)": the word SDK once.
    const std::string folded = FoldForMatch(r.sdk);
    const bool says_sdk = folded == "sdk" || absl::EndsWith(folded, " sdk");
    const std::string who = r.sdk.empty() ? std::string("An unnamed SDK")
                            : says_sdk    ? SdkSubject(r.sdk)
                                          : absl::StrCat("SDK ", r.sdk);
    v.explanation =
        absl::StrCat(who, r.module.empty() ? "" : absl::StrCat(" (module ", r.module, ")"),
                     " is named in none of ", names, ", so its ", data, " flow is undeclared.");
  } else {
    v.explanation = absl::StrCat(
        r.module.empty() ? std::string("An unnamed module") : absl::StrCat("Module ", r.module),
        r.role == Responsible::Role::kFirstParty ? " (the app's own code)" : "",
        " maps to no SDK declared in ", names, ", so its ", data, " flow is undeclared.");
  }
  return v;
}

Verdict JudgeSdk(const Policy& policy, const std::string& sdk, const Flow& flow) {
  Verdict v;
  // Best entry wins; ties keep file order (strict comparison). No container:
  // this loop runs once per event.
  std::optional<Candidate> best_candidate;
  size_t n_candidates = 0;
  for (const Statement& s : policy.statements) {
    for (const Entry& e : s.entries) {
      if (!SameFolded(e.sdk, sdk)) continue;
      ++n_candidates;
      Candidate c = JudgeEntry(policy.ontology, s, e, sdk, flow, false);
      if (!best_candidate || Rank(c.category) < Rank(best_candidate->category)) best_candidate = c;
    }
  }
  const AppPolicy* app = AppFor(policy, sdk);
  if (n_candidates == 0 && app != nullptr) return JudgeApp(policy.ontology, *app, sdk, flow);
  const Candidate* best = &*best_candidate;
  // An app policy naming the SDK can withhold what a statement allows.
  if (app != nullptr &&
      (best->category == Category::kClear || best->category == Category::kVague)) {
    if (const ConsentPurpose* cp = WithheldPurpose(policy.ontology, *app, flow)) {
      v.category = Category::kNoConsent;
      v.statement = app->id;
      v.version = app->version;
      v.entry = cp->id;
      v.explanation = absl::StrCat(Subject(sdk, flow, policy.ontology), " while consent ",
                                   cp->consent, " was false, but purpose ", cp->id, " (section ",
                                   cp->section, ") of app policy ", app->id, " ", app->version,
                                   " allows it only with that consent.");
      return v;
    }
  }
  v.category = best->category;
  v.statement = best->statement->id;
  v.version = best->statement->version;
  v.entry = best->entry->id;
  v.explanation =
      JudgeEntry(policy.ontology, *best->statement, *best->entry, sdk, flow, true).explanation;
  if (best->category == Category::kOmitted && n_candidates > 1) {
    std::vector<std::string> ids;
    for (const Statement& s : policy.statements) {
      for (const Entry& e : s.entries) {
        if (SameFolded(e.sdk, sdk)) ids.push_back(e.id);
      }
    }
    v.explanation =
        absl::StrCat(Subject(sdk, flow, policy.ontology), ", but none of its entries (",
                     absl::StrJoin(ids, ", "), ") in the declared statements declares it.");
  }
  return v;
}

// The SDK name as the statements (else an app policy) spell it, matched
// after FoldForMatch ("ｉｄｍ sdk" is "IDM SDK"); nullptr when none names it.
const std::string* DeclaredName(const Policy& policy, const std::string& sdk) {
  if (sdk.empty()) return nullptr;
  for (const Statement& s : policy.statements) {
    for (const Entry& e : s.entries) {
      if (SameFolded(e.sdk, sdk)) return &e.sdk;
    }
  }
  for (const AppPolicy& a : policy.app_policies) {
    for (const std::string& s : a.sdks) {
      if (SameFolded(s, sdk)) return &s;
    }
  }
  return nullptr;
}

}  // namespace

Verdict JudgeResolved(const Policy& policy, const Responsible& r, const Flow& flow) {
  Verdict v;
  if (IsSameAppIpc(flow)) {
    v.category = Category::kSameAppIpc;
    v.explanation = absl::StrCat(
        flow.data_type.empty() ? std::string("An unnamed data item")
                               : absl::StrCat("The ", DataName(flow, policy.ontology)),
        " passed over a ", flow.channel, " channel to another process of the same executable ",
        flow.exe, ", so it stayed within the app.");
  } else if (r.role == Responsible::Role::kNone) {
    v.category = Category::kUnattributable;
    v.explanation = absl::StrCat(
        "No module outside the runtime libraries is on the call chain (",
        flow.call_chain.empty() ? std::string("empty, e.g. during fork")
                                : absl::StrCat(flow.call_chain.size(), " runtime module(s)"),
        ") and ",
        flow.exe.empty() ? std::string("the process is unknown")
                         : absl::StrCat("process ", flow.exe, " maps to no SDK"),
        ", so the ", DataName(flow, policy.ontology), " flow is unattributable.");
  } else if (const std::string* declared =
                 r.role == Responsible::Role::kSdk ? DeclaredName(policy, r.sdk) : nullptr) {
    // Judged, and named, as the declarations spell the SDK.
    v = JudgeSdk(policy, *declared, flow);
    v.sdk = *declared;
  } else {
    v = JudgeUndeclared(policy, r, flow);
  }
  v.explanation = AsSentence(v.explanation);
  v.finding = FindingOf(v.category);
  v.module = r.module;
  if (v.sdk.empty()) v.sdk = r.sdk;
  return v;
}

Verdict Judge(const Policy& policy, const Flow& flow) {
  return JudgeResolved(policy, ResolveResponsible(policy, flow.call_chain, flow.exe), flow);
}

}  // namespace idflow::policy
