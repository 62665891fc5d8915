#include "tools/report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/json.h"
#include "tools/table.h"

namespace idflow::tools {

Finding FindingOfVerdict(const idflow::v1::Verdict& v) {
  switch (v.finding()) {
    case idflow::v1::FINDING_CLEAR:
      return Finding::kClear;
    case idflow::v1::FINDING_OBSERVATION:
      return Finding::kObservation;
    case idflow::v1::FINDING_VIOLATION:
      return Finding::kViolation;
    default:
      return FindingOfName(v.verdict());
  }
}

bool IsViolation(const idflow::v1::Verdict& v) {
  return FindingOfVerdict(v) == Finding::kViolation;
}

namespace {

std::string FindingText(const idflow::v1::Verdict& v) {
  return std::string(FindingName(FindingOfVerdict(v)));
}

// What the group is about: the identifier kind, or "cookie NAME (direction)".
std::string DataText(const idflow::v1::Verdict& v) {
  if (!v.cookie_name().empty()) return absl::StrCat("cookie ", v.cookie_name());
  return v.data_type();
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Statement(const idflow::v1::Verdict& v) {
  if (v.statement().empty()) return "-";
  return absl::StrCat(v.statement(), " ", v.statement_version());
}

std::string Table(const std::vector<idflow::v1::Verdict>& verdicts) {
  const std::vector<std::string> headers = {"FINDING",     "VERDICT", "DEVICE",    "SDK",
                                            "MODULE",      "ACTION",  "DATA",      "ENCODING",
                                            "DESTINATION", "COUNT",   "STATEMENT", "ENTRY"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : verdicts) {
    // GCC 12 warns (-Wrestrict, a known false positive) on assigning a
    // literal after substr here; build the cell in one expression instead.
    size_t slash = v.module().rfind('/');
    std::string module = v.module().empty()           ? std::string("-")
                         : slash == std::string::npos ? v.module()
                                                      : v.module().substr(slash + 1);
    std::string encoding = v.cookie_direction().empty() ? v.encoding() : v.cookie_direction();
    rows.push_back({FindingText(v), v.verdict(), v.device(), v.sdk().empty() ? "-" : v.sdk(),
                    module, v.action().empty() ? "-" : v.action(), DataText(v),
                    encoding.empty() ? "-" : encoding,
                    v.destination().empty() ? "-" : v.destination(), absl::StrCat(v.count()),
                    Statement(v), v.entry().empty() ? "-" : v.entry()});
  }
  rows.insert(rows.begin(), headers);
  std::vector<std::string> notes;
  for (const auto& v : verdicts) notes.push_back(v.explanation());
  std::string out = FormatTable(rows, notes);
  size_t by_finding[4] = {};
  for (const auto& v : verdicts) by_finding[static_cast<int>(FindingOfVerdict(v))]++;
  absl::StrAppend(&out, "\n", verdicts.size(),
                  " verdict groups: ", by_finding[static_cast<int>(Finding::kViolation)],
                  " violations, ", by_finding[static_cast<int>(Finding::kObservation)],
                  " observations, ", by_finding[static_cast<int>(Finding::kClear)], " clear\n");
  return out;
}

std::string Json(const std::vector<idflow::v1::Verdict>& verdicts) {
  std::string out;
  for (const auto& v : verdicts) {
    auto q = [](const std::string& s) { return absl::StrCat("\"", JsonEscape(s), "\""); };
    absl::StrAppend(
        &out, "{\"device\":", q(v.device()), ",\"sdk\":", q(v.sdk()), ",\"module\":", q(v.module()),
        ",\"data_type\":", q(v.data_type()), ",\"encoding\":", q(v.encoding()),
        ",\"destination\":", q(v.destination()), ",\"verdict\":", q(v.verdict()),
        ",\"statement\":", q(v.statement()), ",\"statement_version\":", q(v.statement_version()),
        ",\"entry\":", q(v.entry()), ",\"explanation\":", q(v.explanation()),
        ",\"count\":", v.count(), ",\"action\":", q(v.action()), ",\"channel\":", q(v.channel()),
        ",\"exe\":", q(v.exe()), ",\"finding\":", q(FindingText(v)), ",\"call_chain\":[",
        absl::StrJoin(v.call_chain(), ",",
                      [&](std::string* o, const std::string& m) { absl::StrAppend(o, q(m)); }),
        "]",
        v.cookie_name().empty() ? ""
                                : absl::StrCat(",\"cookie\":", q(v.cookie_name()),
                                               ",\"cookie_direction\":", q(v.cookie_direction())),
        v.sdk_hint().empty() ? "" : absl::StrCat(",\"sdk_hint\":", q(v.sdk_hint())),
        ",\"first_seen_unix_ms\":", v.first_seen_unix_ms(),
        ",\"last_seen_unix_ms\":", v.last_seen_unix_ms(), "}\n");
  }
  return out;
}

std::string CaseName(const idflow::v1::Verdict& v) {
  std::string who = !v.sdk().empty() ? v.sdk() : !v.module().empty() ? v.module() : v.exe();
  std::string how = v.cookie_direction().empty() ? v.encoding() : v.cookie_direction();
  return absl::StrCat(who, " ", v.action(), " ", DataText(v), " (", how, ") to ",
                      v.destination().empty() ? "-" : v.destination());
}

std::string JUnit(const std::vector<idflow::v1::Verdict>& verdicts) {
  size_t failures =
      std::count_if(verdicts.begin(), verdicts.end(), [](const auto& v) { return IsViolation(v); });
  std::string out = absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"idflow\" tests=\"%d\" "
      "failures=\"%d\">\n  <testsuite name=\"idflow.verdicts\" tests=\"%d\" failures=\"%d\">\n",
      verdicts.size(), failures, verdicts.size(), failures);
  for (const auto& v : verdicts) {
    absl::StrAppend(&out, "    <testcase classname=\"", XmlEscape(v.device()), "\" name=\"",
                    XmlEscape(CaseName(v)), "\">");
    if (IsViolation(v)) {
      absl::StrAppend(&out, "\n      <failure type=\"", XmlEscape(v.verdict()), "\" message=\"",
                      XmlEscape(v.explanation()), "\">", XmlEscape(Statement(v)), " entry ",
                      XmlEscape(v.entry()), "; count ", v.count(), "</failure>\n    ");
    } else if (FindingOfVerdict(v) == Finding::kObservation) {
      // Shown, never failing the run.
      absl::StrAppend(&out, "\n      <system-out>observation ", XmlEscape(v.verdict()), ": ",
                      XmlEscape(v.explanation()), "; count ", v.count(), "</system-out>\n    ");
    }
    absl::StrAppend(&out, "</testcase>\n");
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

std::string Sarif(const std::vector<idflow::v1::Verdict>& verdicts) {
  std::vector<std::string> results;
  for (const auto& v : verdicts) {
    Finding finding = FindingOfVerdict(v);
    if (finding == Finding::kClear) continue;
    results.push_back(absl::StrCat(
        "{\"ruleId\":\"idflow/", JsonEscape(v.verdict()), "\",\"level\":\"",
        finding == Finding::kViolation ? "error" : "note", "\",", "\"message\":{\"text\":\"",
        JsonEscape(v.explanation()), "\"},",
        "\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":\"",
        JsonEscape(v.module()), "\"}}}],", "\"properties\":{\"device\":\"", JsonEscape(v.device()),
        "\",\"sdk\":\"", JsonEscape(v.sdk()), "\",\"data_type\":\"", JsonEscape(v.data_type()),
        "\",\"encoding\":\"", JsonEscape(v.encoding()), "\",\"destination\":\"",
        JsonEscape(v.destination()), "\",\"statement\":\"", JsonEscape(v.statement()),
        "\",\"statement_version\":\"", JsonEscape(v.statement_version()), "\",\"entry\":\"",
        JsonEscape(v.entry()), "\",\"count\":", v.count(), "}}"));
  }
  std::vector<std::string> rules;
  for (const CategoryInfo& c : kCategories) {
    if (c.finding == Finding::kClear) continue;
    rules.push_back(absl::StrCat("{\"id\":\"idflow/", c.name, "\",\"name\":\"", c.name,
                                 "\",\"shortDescription\":{\"text\":\"", JsonEscape(c.meaning),
                                 "\"},\"defaultConfiguration\":{\"level\":\"",
                                 c.finding == Finding::kViolation ? "error" : "note", "\"}}"));
  }
  return absl::StrCat(
      "{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\","
      "\"runs\":[{\"tool\":{\"driver\":{\"name\":\"idflow\",\"rules\":[",
      absl::StrJoin(rules, ","), "]}},\"results\":[", absl::StrJoin(results, ","), "]}]}\n");
}

}  // namespace

absl::StatusOr<std::string> FormatVerdicts(const std::vector<idflow::v1::Verdict>& verdicts,
                                           const std::string& format) {
  if (format == "table") return Table(verdicts);
  if (format == "json") return Json(verdicts);
  if (format == "junit") return JUnit(verdicts);
  if (format == "sarif") return Sarif(verdicts);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown format '", format, "' (table, json, junit, sarif)"));
}

}  // namespace idflow::tools
