// Judge(): one verdict per flow. Precedence and edge cases: docs/POLICY.md.
#include <arpa/inet.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/policy/policy.h"

namespace idflow::policy {

const char* CategoryName(Category c) {
  switch (c) {
    case Category::kClear:
      return "clear";
    case Category::kVague:
      return "vague";
    case Category::kOmitted:
      return "omitted";
    case Category::kUndeclaredParty:
      return "undeclared_party";
    case Category::kWrongRecipient:
      return "wrong_recipient";
    case Category::kOutOfScenario:
      return "out_of_scenario";
    case Category::kNoConsent:
      return "no_consent";
    case Category::kMethodMismatch:
      return "method_mismatch";
  }
  return "unknown";
}

bool IsViolation(Category c) { return c != Category::kClear; }

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
    case Category::kUndeclaredParty:
      return 5;
  }
  return 6;
}

bool IsIpLiteral(std::string host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    host = host.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
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

struct Candidate {
  Category category;
  const Statement* statement;
  const Entry* entry;
  std::string explanation;
};

Candidate JudgeEntry(const Ontology& o, const Statement& s, const Entry& e, const Flow& f) {
  const std::string subject = absl::StrCat(f.sdk, " ", Verb(f), " ", DataName(f, o));
  const std::string ref = EntryRef(s, e);
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
    std::string declared = e.data_types.empty()
                               ? "no data type"
                               : absl::StrCat("only ", absl::StrJoin(e.data_types, ", "));
    return {Category::kOmitted, &s, &e,
            absl::StrCat(subject, ", but ", ref, " declares ", declared, ".")};
  }
  // Recipient: only a hostname can be attributed to an entity.
  const Entity* declared_party = o.FindEntity(e.entity);
  std::string recipient_note;
  if (IsNetwork(f)) {
    const std::string& host = f.dest_host;
    if (host.empty() || IsIpLiteral(host)) {
      const std::string dest = Destination(f);
      recipient_note =
          dest.empty()
              ? " (no destination known, so the recipient is unverified)"
              : absl::StrCat(" to ", dest, " (an IP address, so the recipient is unverified)");
    } else {
      const Entity* owner = o.FindEntityByHost(host);
      if (owner == nullptr || declared_party == nullptr || owner->id != declared_party->id) {
        std::string whose = owner == nullptr ? "which belongs to no known entity"
                                             : absl::StrCat("which belongs to ", owner->name);
        return {Category::kWrongRecipient, &s, &e,
                absl::StrCat(subject, " to ", host, ", ", whose, ", but ", ref, " declares ",
                             e.third_party, " as the recipient.")};
      }
      recipient_note = absl::StrCat(" to ", host, " (", owner->name, ")");
    }
  }
  // Scenario: unknown (empty) context is not held against the flow.
  if (!f.scenarios.empty() && !e.scenarios.empty()) {
    bool overlap = false;
    for (const std::string& sc : f.scenarios) {
      for (const std::string& es : e.scenarios) overlap = overlap || sc == es;
    }
    if (!overlap) {
      return {Category::kOutOfScenario, &s, &e,
              absl::StrCat(subject, " during ", absl::StrJoin(f.scenarios, ", "), ", but ", ref,
                           " declares it only for ", absl::StrJoin(e.scenarios, ", "), ".")};
    }
  }
  for (const std::string& key : e.requires_consent) {
    auto it = f.consents.find(key);
    if (it != f.consents.end() && !it->second) {
      return {Category::kNoConsent, &s, &e,
              absl::StrCat(subject, " while consent ", key, " was false, but ", ref,
                           " shares it only with that consent.")};
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
      return {Category::kMethodMismatch, &s, &e,
              absl::StrCat(subject, " on the device (", f.action, "), but ", ref, " declares only ",
                           absl::StrJoin(e.sharing_methods, ", "), ".")};
    }
  }
  if (exact) {
    return {Category::kClear, &s, &e,
            absl::StrCat(subject, recipient_note, ", as declared by ", ref, ".")};
  }
  return {Category::kVague, &s, &e,
          absl::StrCat(subject, recipient_note, ", which ", ref,
                       " declares only through the broader term ", via, ".")};
}

}  // namespace

Verdict Judge(const Policy& policy, const Flow& flow) {
  Verdict v;
  const std::string module = flow.module.empty() ? "an unknown module" : flow.module;
  // An undeclared party is judged against every loaded statement: name them.
  auto judged_against = [&](Verdict* out) {
    std::vector<std::string> names;
    for (const Statement& s : policy.statements) names.push_back(s.id + " " + s.version);
    if (!policy.statements.empty()) {
      out->statement = policy.statements.front().id;
      out->version = policy.statements.front().version;
    }
    return names.empty() ? std::string("any loaded statement") : absl::StrJoin(names, ", ");
  };
  if (flow.sdk.empty()) {
    v.category = Category::kUndeclaredParty;
    const std::string names = judged_against(&v);
    v.explanation = absl::StrCat("Module ", module, " maps to no SDK declared in ", names,
                                 ", so its ", DataName(flow, policy.ontology),
                                 " flow is undeclared.");
    return v;
  }
  std::vector<Candidate> candidates;
  for (const Statement& s : policy.statements) {
    for (const Entry& e : s.entries) {
      if (e.sdk == flow.sdk) candidates.push_back(JudgeEntry(policy.ontology, s, e, flow));
    }
  }
  if (candidates.empty()) {
    v.category = Category::kUndeclaredParty;
    const std::string names = judged_against(&v);
    v.explanation = absl::StrCat("SDK ", flow.sdk, " (module ", module, ") is named in none of ",
                                 names, ", so its ", DataName(flow, policy.ontology),
                                 " flow is undeclared.");
    return v;
  }
  // Best entry wins; ties keep file order (stable scan, strict comparison).
  const Candidate* best = &candidates.front();
  for (const Candidate& c : candidates) {
    if (Rank(c.category) < Rank(best->category)) best = &c;
  }
  v.category = best->category;
  v.statement = best->statement->id;
  v.version = best->statement->version;
  v.entry = best->entry->id;
  v.explanation = best->explanation;
  if (best->category == Category::kOmitted && candidates.size() > 1) {
    std::vector<std::string> ids;
    for (const Candidate& c : candidates) ids.push_back(c.entry->id);
    v.explanation = absl::StrCat(flow.sdk, " ", Verb(flow), " ", DataName(flow, policy.ontology),
                                 ", but none of its entries (", absl::StrJoin(ids, ", "),
                                 ") in the declared statements declares it.");
  }
  return v;
}

}  // namespace idflow::policy
