#include "tools/report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/json.h"

namespace idflow::tools {
namespace {

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
  const std::vector<std::string> headers = {"VERDICT",   "DEVICE",   "SDK",         "MODULE",
                                            "DATA",      "ENCODING", "DESTINATION", "COUNT",
                                            "STATEMENT", "ENTRY"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : verdicts) {
    std::string module = v.module();
    if (auto slash = module.rfind('/'); slash != std::string::npos)
      module = module.substr(slash + 1);
    rows.push_back({v.verdict(), v.device(), v.sdk().empty() ? "-" : v.sdk(), module, v.data_type(),
                    v.encoding(), v.destination(), absl::StrCat(v.count()), Statement(v),
                    v.entry().empty() ? "-" : v.entry()});
  }
  std::vector<size_t> width(headers.size());
  for (size_t i = 0; i < headers.size(); ++i) width[i] = headers[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size(); ++i) {
      absl::StrAppend(&out, cells[i], std::string(width[i] - cells[i].size() + 2, ' '));
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(headers);
  for (size_t i = 0; i < rows.size(); ++i) {
    out += line(rows[i]);
    absl::StrAppend(&out, "    ", verdicts[i].explanation(), "\n");
  }
  size_t violations = std::count_if(verdicts.begin(), verdicts.end(),
                                    [](const auto& v) { return v.verdict() != "clear"; });
  absl::StrAppend(&out, "\n", verdicts.size(), " verdict groups, ", violations, " violations\n");
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
        ",\"exe\":", q(v.exe()), ",\"first_seen_unix_ms\":", v.first_seen_unix_ms(),
        ",\"last_seen_unix_ms\":", v.last_seen_unix_ms(), "}\n");
  }
  return out;
}

std::string CaseName(const idflow::v1::Verdict& v) {
  return absl::StrCat(v.sdk().empty() ? v.module() : v.sdk(), " ", v.action(), " ", v.data_type(),
                      " (", v.encoding(), ") to ", v.destination());
}

std::string JUnit(const std::vector<idflow::v1::Verdict>& verdicts) {
  size_t failures = std::count_if(verdicts.begin(), verdicts.end(),
                                  [](const auto& v) { return v.verdict() != "clear"; });
  std::string out = absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"idflow\" tests=\"%d\" "
      "failures=\"%d\">\n  <testsuite name=\"idflow.verdicts\" tests=\"%d\" failures=\"%d\">\n",
      verdicts.size(), failures, verdicts.size(), failures);
  for (const auto& v : verdicts) {
    absl::StrAppend(&out, "    <testcase classname=\"", XmlEscape(v.device()), "\" name=\"",
                    XmlEscape(CaseName(v)), "\">");
    if (v.verdict() != "clear") {
      absl::StrAppend(&out, "\n      <failure type=\"", XmlEscape(v.verdict()), "\" message=\"",
                      XmlEscape(v.explanation()), "\">", XmlEscape(Statement(v)), " entry ",
                      XmlEscape(v.entry()), "; count ", v.count(), "</failure>\n    ");
    }
    absl::StrAppend(&out, "</testcase>\n");
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

std::string Sarif(const std::vector<idflow::v1::Verdict>& verdicts) {
  std::vector<std::string> results;
  for (const auto& v : verdicts) {
    if (v.verdict() == "clear") continue;
    results.push_back(absl::StrCat(
        "{\"ruleId\":\"idflow/", JsonEscape(v.verdict()), "\",\"level\":\"error\",",
        "\"message\":{\"text\":\"", JsonEscape(v.explanation()), "\"},",
        "\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":\"",
        JsonEscape(v.module()), "\"}}}],", "\"properties\":{\"device\":\"", JsonEscape(v.device()),
        "\",\"sdk\":\"", JsonEscape(v.sdk()), "\",\"data_type\":\"", JsonEscape(v.data_type()),
        "\",\"encoding\":\"", JsonEscape(v.encoding()), "\",\"destination\":\"",
        JsonEscape(v.destination()), "\",\"statement\":\"", JsonEscape(v.statement()),
        "\",\"statement_version\":\"", JsonEscape(v.statement_version()), "\",\"entry\":\"",
        JsonEscape(v.entry()), "\",\"count\":", v.count(), "}}"));
  }
  const char* kRules[] = {"vague",           "omitted",    "undeclared_party", "wrong_recipient",
                          "out_of_scenario", "no_consent", "method_mismatch"};
  std::vector<std::string> rules;
  for (const char* r : kRules) {
    rules.push_back(absl::StrCat("{\"id\":\"idflow/", r, "\",\"name\":\"", r, "\"}"));
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
