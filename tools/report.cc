#include "tools/report.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "common/utf8.h"
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

bool IsReportFormat(const std::string& format) {
  return format == "table" || format == "json" || format == "junit" || format == "sarif" ||
         format == "html";
}

namespace {

using idflow::v1::Verdict;

std::string FindingText(const Verdict& v) { return std::string(FindingName(FindingOfVerdict(v))); }

// What the group is about: the identifier kind, or "cookie NAME (direction)".
std::string DataText(const Verdict& v) {
  if (!v.cookie_name().empty()) return absl::StrCat("cookie ", v.cookie_name());
  return v.data_type();
}

std::string Or(const std::string& s, const char* fallback = "-") {
  return s.empty() ? fallback : s;
}

// Text for XML and HTML, inside elements and attribute values alike. Bytes
// that are not UTF-8 become "\xNN" and control characters XML 1.0 cannot
// carry (not even as references) become "\xNN" too.
std::string MarkupEscape(const std::string& raw) {
  const std::string s = ToValidUtf8(raw);
  std::string out;
  out.reserve(s.size());
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
        out += "&#39;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          absl::StrAppend(&out, absl::StrFormat("\\x%02x", static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string Q(const std::string& s) { return absl::StrCat("\"", JsonEscape(ToValidUtf8(s)), "\""); }

std::string Statement(const Verdict& v) {
  if (v.statement().empty()) return "-";
  return absl::StrCat(v.statement(), " ", v.statement_version());
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Encoding(const Verdict& v) {
  return v.cookie_direction().empty() ? v.encoding() : v.cookie_direction();
}

// "Lebo SDK transmit mac_address (raw) to cast.hpplay.com.cn".
std::string FlowText(const Verdict& v) {
  std::string who = !v.sdk().empty() ? v.sdk() : !v.module().empty() ? v.module() : v.exe();
  return absl::StrCat(Or(who), " ", Or(v.action()), " ", DataText(v), " (", Or(Encoding(v)),
                      ") to ", Or(v.destination()));
}

std::string Utc(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

struct Counts {
  size_t violations = 0, observations = 0, clear = 0;
};

Counts CountFindings(const std::vector<Verdict>& verdicts) {
  Counts c;
  for (const auto& v : verdicts) {
    switch (FindingOfVerdict(v)) {
      case Finding::kViolation:
        ++c.violations;
        break;
      case Finding::kObservation:
        ++c.observations;
        break;
      case Finding::kClear:
        ++c.clear;
        break;
    }
  }
  return c;
}

// One line about the run for people: command, how it ended, accounting.
std::string RunLine(const RunSummary& run) {
  if (run.later) {
    return run.run_id.empty() ? std::string("reported from the collector")
                              : absl::StrCat("run ", run.run_id, " (reported from the collector)");
  }
  return absl::StrCat("run ", Or(run.run_id), ": `", absl::StrJoin(run.command, " "), "` ",
                      run.exit_text, "; ", run.events_judged, " events judged, ", run.events_lost,
                      " lost before the collector",
                      run.tls_coverage.empty() ? "" : absl::StrCat("; ", run.tls_coverage));
}

std::string ContextText(const ContextChange& c) {
  std::vector<std::string> consents;
  for (const auto& [k, v] : c.consents)
    consents.push_back(absl::StrCat(k, "=", v ? "true" : "false"));
  return absl::StrCat("scenarios [", absl::StrJoin(c.scenarios, ", "), "], consents [",
                      absl::StrJoin(consents, ", "), "]");
}

// "context from TIME: ..." lines, one per change.
std::string TimelineLines(const RunSummary& run) {
  std::string out;
  for (const ContextChange& c : run.context) {
    absl::StrAppend(&out, "context from ", Utc(c.at_unix_ms), ": ", ContextText(c), "\n");
  }
  return out;
}

std::string TimelineJson(const RunSummary& run) {
  std::vector<std::string> items;
  for (const ContextChange& c : run.context) {
    std::vector<std::string> consents;
    for (const auto& [k, v] : c.consents) {
      consents.push_back(absl::StrCat(Q(k), ":", v ? "true" : "false"));
    }
    items.push_back(absl::StrCat(
        "{\"at_unix_ms\":", c.at_unix_ms, ",\"scenarios\":[",
        absl::StrJoin(c.scenarios, ",",
                      [](std::string* o, const std::string& x) { absl::StrAppend(o, Q(x)); }),
        "],\"consents\":{", absl::StrJoin(consents, ","), "}}"));
  }
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

std::string Table(const std::vector<Verdict>& verdicts, const RunSummary* run) {
  const std::vector<std::string> headers = {"FINDING",     "VERDICT", "DEVICE",    "SDK",
                                            "MODULE",      "ACTION",  "DATA",      "ENCODING",
                                            "DESTINATION", "COUNT",   "STATEMENT", "ENTRY"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : verdicts) {
    rows.push_back({FindingText(v), v.verdict(), v.device(), Or(v.sdk()), Or(Basename(v.module())),
                    Or(v.action()), DataText(v), Or(Encoding(v)), Or(v.destination()),
                    absl::StrCat(v.count()), Statement(v), Or(v.entry())});
  }
  rows.insert(rows.begin(), headers);
  std::vector<std::string> notes;
  for (const auto& v : verdicts) notes.push_back(v.explanation());
  std::string out = FormatTable(rows, notes);
  const Counts c = CountFindings(verdicts);
  absl::StrAppend(&out, "\n", verdicts.size(), " verdict groups: ", c.violations, " violations, ",
                  c.observations, " observations, ", c.clear, " clear\n");
  if (run != nullptr) absl::StrAppend(&out, RunLine(*run), "\n", TimelineLines(*run));
  return out;
}

std::string Json(const std::vector<Verdict>& verdicts, const RunSummary* run) {
  std::string out;
  for (const auto& v : verdicts) {
    absl::StrAppend(
        &out, "{\"device\":", Q(v.device()), ",\"sdk\":", Q(v.sdk()), ",\"module\":", Q(v.module()),
        ",\"data_type\":", Q(v.data_type()), ",\"encoding\":", Q(v.encoding()),
        ",\"destination\":", Q(v.destination()), ",\"verdict\":", Q(v.verdict()),
        ",\"statement\":", Q(v.statement()), ",\"statement_version\":", Q(v.statement_version()),
        ",\"entry\":", Q(v.entry()), ",\"explanation\":", Q(v.explanation()),
        ",\"count\":", v.count(), ",\"action\":", Q(v.action()), ",\"channel\":", Q(v.channel()),
        ",\"exe\":", Q(v.exe()), ",\"finding\":", Q(FindingText(v)), ",\"call_chain\":[",
        absl::StrJoin(v.call_chain(), ",",
                      [](std::string* o, const std::string& m) { absl::StrAppend(o, Q(m)); }),
        "]",
        v.cookie_name().empty() ? ""
                                : absl::StrCat(",\"cookie\":", Q(v.cookie_name()),
                                               ",\"cookie_direction\":", Q(v.cookie_direction())),
        v.sdk_hint().empty() ? "" : absl::StrCat(",\"sdk_hint\":", Q(v.sdk_hint())),
        v.snippet().empty() ? "" : absl::StrCat(",\"snippet\":", Q(v.snippet())),
        ",\"first_seen_unix_ms\":", v.first_seen_unix_ms(),
        ",\"last_seen_unix_ms\":", v.last_seen_unix_ms(), "}\n");
  }
  if (run != nullptr) {
    // The last line describes the run; it has "run_id" and no "verdict".
    absl::StrAppend(
        &out, "{\"run_id\":", Q(run->run_id), ",\"command\":[",
        absl::StrJoin(run->command, ",",
                      [](std::string* o, const std::string& a) { absl::StrAppend(o, Q(a)); }),
        "],\"exit_code\":", run->exit_code, ",\"exit\":", Q(run->exit_text),
        ",\"started_unix_ms\":", run->started_unix_ms,
        ",\"finished_unix_ms\":", run->finished_unix_ms, ",\"events_judged\":", run->events_judged,
        ",\"events_lost\":", run->events_lost, ",\"tls_coverage\":", Q(run->tls_coverage),
        ",\"context_changes\":", TimelineJson(*run),
        ",\"violations\":", CountFindings(verdicts).violations, "}\n");
  }
  return out;
}

// A JUnit test case: one statement entry exercised (or, for flows no entry
// covers, the module that made them), with every verdict group under it.
struct EntryCase {
  std::string classname;
  std::string name;
  std::vector<const Verdict*> verdicts;
};

std::vector<EntryCase> EntryCases(const std::vector<Verdict>& verdicts) {
  std::vector<EntryCase> cases;
  std::map<std::string, size_t> index;
  for (const auto& v : verdicts) {
    EntryCase c;
    if (!v.entry().empty()) {
      c.classname = absl::StrCat(Or(v.statement(), "idflow"), " ", v.statement_version());
      c.name = v.entry();
    } else {
      // No entry to cite (an undeclared party, the app's own code): the
      // module is what the test case is about.
      c.classname = "idflow.no-entry";
      c.name = Or(!v.module().empty() ? Basename(v.module()) : Basename(v.exe()));
    }
    auto [it, added] = index.emplace(absl::StrCat(c.classname, "\n", c.name), cases.size());
    if (added) cases.push_back(std::move(c));
    cases[it->second].verdicts.push_back(&v);
  }
  return cases;
}

std::string JUnit(const std::vector<Verdict>& verdicts, const RunSummary* run) {
  const std::vector<EntryCase> cases = EntryCases(verdicts);
  size_t failing = 0;
  std::string body;
  for (const EntryCase& c : cases) {
    std::vector<const Verdict*> bad;
    std::string out;  // clear flows and observations, shown, never failing
    for (const Verdict* v : c.verdicts) {
      if (IsViolation(*v)) {
        bad.push_back(v);
        continue;
      }
      absl::StrAppend(&out, FindingText(*v), " ", v->verdict(), ": ", FlowText(*v), " x",
                      v->count(), ": ", v->explanation(), "\n");
    }
    absl::StrAppend(&body, "    <testcase classname=\"", MarkupEscape(c.classname), "\" name=\"",
                    MarkupEscape(c.name), "\">\n");
    if (!bad.empty()) {
      ++failing;
      std::vector<std::string> kinds;
      std::string detail;
      for (const Verdict* v : bad) {
        if (std::find(kinds.begin(), kinds.end(), v->verdict()) == kinds.end()) {
          kinds.push_back(v->verdict());
        }
        absl::StrAppend(&detail, v->verdict(), ": ", FlowText(*v), " x", v->count(), ": ",
                        v->explanation(),
                        v->snippet().empty() ? "" : absl::StrCat(" [", v->snippet(), "]"), "\n");
      }
      absl::StrAppend(
          &body, "      <failure type=\"", MarkupEscape(absl::StrJoin(kinds, ",")), "\" message=\"",
          MarkupEscape(absl::StrCat(bad.size(), " violation", bad.size() == 1 ? "" : "s", " (",
                                    absl::StrJoin(kinds, ", "), "): ", bad.front()->explanation())),
          "\">", MarkupEscape(detail), "</failure>\n");
    }
    if (!out.empty())
      absl::StrAppend(&body, "      <system-out>", MarkupEscape(out), "</system-out>\n");
    absl::StrAppend(&body, "    </testcase>\n");
  }
  std::string suites = absl::StrFormat(
      "  <testsuite name=\"idflow.statement-entries\" tests=\"%d\" failures=\"%d\" "
      "errors=\"0\">\n%s  </testsuite>\n",
      cases.size(), failing, body);
  size_t tests = cases.size(), errors = 0;
  if (run != nullptr && !run->later) {
    // The command's own result, apart from the entries: a failing command
    // is an error of the run, never a violation, and hides none.
    const bool failed = run->exit_code != 0;
    ++tests;
    errors += failed;
    absl::StrAppend(
        &suites, "  <testsuite name=\"idflow.run\" tests=\"1\" failures=\"0\" errors=\"",
        failed ? 1 : 0, "\" timestamp=\"",
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixMillis(run->started_unix_ms),
                         absl::UTCTimeZone()),
        "\">\n    <properties>\n", "      <property name=\"run_id\" value=\"",
        MarkupEscape(run->run_id), "\"/>\n", "      <property name=\"command\" value=\"",
        MarkupEscape(absl::StrJoin(run->command, " ")), "\"/>\n",
        "      <property name=\"events_judged\" value=\"", run->events_judged, "\"/>\n",
        "      <property name=\"events_lost\" value=\"", run->events_lost, "\"/>\n",
        "      <property name=\"tls_coverage\" value=\"", MarkupEscape(run->tls_coverage), "\"/>\n",
        "    </properties>\n", "    <testcase classname=\"idflow.run\" name=\"test command\">\n",
        failed ? absl::StrCat("      <error type=\"command_failed\" message=\"",
                              MarkupEscape(absl::StrCat("the test command ", run->exit_text)),
                              "\"/>\n")
               : "",
        "      <system-out>", MarkupEscape(absl::StrCat(RunLine(*run), "\n", TimelineLines(*run))),
        "</system-out>\n", "    </testcase>\n  </testsuite>\n");
  }
  return absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"idflow\" tests=\"%d\" "
      "failures=\"%d\" errors=\"%d\">\n%s</testsuites>\n",
      tests, failing, errors, suites);
}

// A module path as a SARIF artifact URI: file:///abs/path, percent-encoded.
std::string ArtifactUri(const std::string& path) {
  std::string out = path.starts_with("/") ? "file://" : "";
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, absl::StrFormat("%%%02X", c));
    }
  }
  return out;
}

const char* SarifLevel(Finding f) {
  switch (f) {
    case Finding::kViolation:
      return "error";
    case Finding::kObservation:
      return "note";
    case Finding::kClear:
      return "none";
  }
  return "error";
}

std::string SarifResult(const Verdict& v) {
  const Finding finding = FindingOfVerdict(v);
  const auto category = CategoryFromName(v.verdict());
  std::string props = absl::StrCat(
      "\"finding\":", Q(FindingText(v)), ",\"device\":", Q(v.device()), ",\"sdk\":", Q(v.sdk()),
      ",\"module\":", Q(v.module()), ",\"exe\":", Q(v.exe()), ",\"action\":", Q(v.action()),
      ",\"channel\":", Q(v.channel()), ",\"data_type\":", Q(v.data_type()),
      ",\"encoding\":", Q(v.encoding()), ",\"destination\":", Q(v.destination()),
      ",\"statement\":", Q(v.statement()), ",\"statement_version\":", Q(v.statement_version()),
      ",\"entry\":", Q(v.entry()), ",\"count\":", v.count());
  if (!v.snippet().empty()) absl::StrAppend(&props, ",\"snippet\":", Q(v.snippet()));
  if (!v.cookie_name().empty()) {
    absl::StrAppend(&props, ",\"cookie\":", Q(v.cookie_name()),
                    ",\"cookie_direction\":", Q(v.cookie_direction()));
  }
  if (v.call_chain_size() > 0) {
    absl::StrAppend(
        &props, ",\"call_chain\":[",
        absl::StrJoin(v.call_chain(), ",",
                      [](std::string* o, const std::string& m) { absl::StrAppend(o, Q(m)); }),
        "]");
  }
  std::string location;
  if (!v.module().empty() || !v.sdk().empty()) {
    std::vector<std::string> parts;
    if (!v.module().empty()) {
      parts.push_back(absl::StrCat("\"physicalLocation\":{\"artifactLocation\":{\"uri\":",
                                   Q(ArtifactUri(v.module())), "}}"));
    }
    parts.push_back(absl::StrCat(
        "\"logicalLocations\":[{\"name\":", Q(!v.sdk().empty() ? v.sdk() : Basename(v.module())),
        ",\"kind\":\"module\"}]"));
    location = absl::StrCat(",\"locations\":[{", absl::StrJoin(parts, ","), "}]");
  }
  return absl::StrCat(
      "{\"ruleId\":", Q(absl::StrCat("idflow/", v.verdict())),
      category ? absl::StrCat(",\"ruleIndex\":", static_cast<int>(*category)) : "", ",\"kind\":\"",
      finding == Finding::kClear ? "pass" : "fail", "\",\"level\":\"", SarifLevel(finding),
      "\",\"message\":{\"text\":", Q(v.explanation().empty() ? FlowText(v) : v.explanation()), "}",
      location, ",\"properties\":{", props, "}}");
}

std::string Sarif(const std::vector<Verdict>& verdicts, const RunSummary* run) {
  // One rule per category, in the list's order, so ruleIndex = position.
  std::vector<std::string> rules;
  for (const CategoryInfo& c : kCategories) {
    rules.push_back(
        absl::StrCat("{\"id\":", Q(absl::StrCat("idflow/", c.name)), ",\"name\":", Q(c.name),
                     ",\"shortDescription\":{\"text\":", Q(c.meaning),
                     "},\"defaultConfiguration\":{\"level\":\"", SarifLevel(c.finding),
                     "\"},\"properties\":{\"finding\":\"", FindingName(c.finding), "\"}}"));
  }
  std::vector<std::string> results;
  for (const auto& v : verdicts) results.push_back(SarifResult(v));
  std::string extra;
  if (run != nullptr && run->later) {
    absl::StrAppend(&extra, ",\"properties\":{\"run_id\":", Q(run->run_id),
                    ",\"context_changes\":", TimelineJson(*run), "}");
  } else if (run != nullptr) {
    const bool failed = run->exit_code != 0;
    absl::StrAppend(
        &extra, ",\"invocations\":[{\"executionSuccessful\":true,\"startTimeUtc\":",
        Q(Utc(run->started_unix_ms)), ",\"endTimeUtc\":", Q(Utc(run->finished_unix_ms)),
        failed ? absl::StrCat(",\"toolExecutionNotifications\":[{\"level\":\"warning\","
                              "\"message\":{\"text\":",
                              Q(absl::StrCat("the test command ", run->exit_text)), "}}]")
               : "",
        "}],\"properties\":{\"run_id\":", Q(run->run_id), ",\"command\":[",
        absl::StrJoin(run->command, ",",
                      [](std::string* o, const std::string& a) { absl::StrAppend(o, Q(a)); }),
        "],\"command_exit_code\":", run->exit_code, ",\"tls_coverage\":", Q(run->tls_coverage),
        ",\"events_judged\":", run->events_judged, ",\"events_lost\":", run->events_lost,
        ",\"tls_coverage\":", Q(run->tls_coverage), ",\"context_changes\":", TimelineJson(*run),
        "}");
  }
  return absl::StrCat(
      "{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\","
      "\"runs\":[{\"tool\":{\"driver\":{\"name\":\"idflow\",\"rules\":[",
      absl::StrJoin(rules, ","), "]}},\"results\":[", absl::StrJoin(results, ","), "]", extra,
      "}]}\n");
}

constexpr char kHtmlStyle[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
    "h1{font-size:1.4em}table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}"
    "th{background:#f2f2f2}tr.violation td:first-child{background:#f8d7da;font-weight:bold}"
    "tr.observation td:first-child{background:#fff3cd}tr.clear td:first-child{background:#d4edda}"
    "td.why{color:#555;font-size:.9em}code{font-family:monospace;background:#f6f6f6}"
    ".summary{margin:1em 0;padding:.6em 1em;border:1px solid #ccc}"
    ".failed{color:#a00;font-weight:bold}";

std::string Html(const std::vector<Verdict>& verdicts, const RunSummary* run) {
  const Counts c = CountFindings(verdicts);
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>idflow report</title>\n<style>",
      kHtmlStyle, "</style>\n</head>\n<body>\n<h1>idflow report</h1>\n<div class=\"summary\">");
  absl::StrAppend(&out, "<p>", verdicts.size(), " verdict groups: <strong>", c.violations,
                  " violations</strong>, ", c.observations, " observations, ", c.clear,
                  " clear.</p>");
  if (run != nullptr && run->later) {
    absl::StrAppend(&out, "<p>Run <code>", MarkupEscape(run->run_id), "</code>.</p>");
  } else if (run != nullptr) {
    absl::StrAppend(&out, "<p>Run <code>", MarkupEscape(run->run_id), "</code>: <code>",
                    MarkupEscape(absl::StrJoin(run->command, " ")), "</code> <span",
                    run->exit_code != 0 ? " class=\"failed\"" : "", ">",
                    MarkupEscape(run->exit_text), "</span>.</p><p>", run->events_judged,
                    " events judged, ", run->events_lost, " lost before the collector. Started ",
                    Utc(run->started_unix_ms), ", finished ", Utc(run->finished_unix_ms), ".</p>");
    if (!run->tls_coverage.empty()) {
      absl::StrAppend(&out, "<p>TLS coverage: <code>", MarkupEscape(run->tls_coverage),
                      "</code></p>");
    }
  }
  if (run != nullptr && !run->context.empty()) {
    absl::StrAppend(&out, "<p>Usage context over the run:</p><ul>");
    for (const ContextChange& ch : run->context) {
      absl::StrAppend(&out, "<li>from ", Utc(ch.at_unix_ms), ": ", MarkupEscape(ContextText(ch)),
                      "</li>");
    }
    absl::StrAppend(&out, "</ul>");
  }
  absl::StrAppend(&out,
                  "</div>\n<table>\n<tr><th>finding</th><th>verdict</th><th>SDK</th>"
                  "<th>module</th><th>action</th><th>data</th><th>encoding</th>"
                  "<th>destination</th><th>count</th><th>statement</th><th>entry</th>"
                  "<th>snippet</th></tr>\n");
  for (const auto& v : verdicts) {
    const std::string finding = FindingText(v);
    absl::StrAppend(&out, "<tr class=\"", finding, "\">");
    for (const std::string& cell :
         {finding, v.verdict(), Or(v.sdk()), Or(Basename(v.module())), Or(v.action()), DataText(v),
          Or(Encoding(v)), Or(v.destination()), absl::StrCat(v.count()), Statement(v),
          Or(v.entry())}) {
      absl::StrAppend(&out, "<td>", MarkupEscape(cell), "</td>");
    }
    absl::StrAppend(&out, "<td><code>", MarkupEscape(v.snippet()), "</code></td></tr>\n",
                    "<tr class=\"", finding, "\"><td></td><td class=\"why\" colspan=\"11\">",
                    MarkupEscape(v.explanation()), "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n</body>\n</html>\n");
  return out;
}

}  // namespace

std::vector<ContextChange> ContextTimeline(std::vector<idflow::v1::StoredEvent> events) {
  std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
    return a.event().first_seen_unix_ms() < b.event().first_seen_unix_ms();
  });
  std::vector<ContextChange> out;
  for (const auto& e : events) {
    ContextChange c;
    c.at_unix_ms = e.event().first_seen_unix_ms();
    c.scenarios.assign(e.event().context().scenarios().begin(),
                       e.event().context().scenarios().end());
    c.consents.insert(e.event().context().consents().begin(), e.event().context().consents().end());
    if (!out.empty() && out.back().scenarios == c.scenarios && out.back().consents == c.consents) {
      continue;
    }
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<std::string> FormatReport(const std::vector<Verdict>& verdicts,
                                         const std::string& format, const RunSummary* run) {
  if (format == "table") return Table(verdicts, run);
  if (format == "json") return Json(verdicts, run);
  if (format == "junit") return JUnit(verdicts, run);
  if (format == "sarif") return Sarif(verdicts, run);
  if (format == "html") return Html(verdicts, run);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown format '", format, "' (", kReportFormats, ")"));
}

}  // namespace idflow::tools
