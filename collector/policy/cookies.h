// Cookie policies: the importer for published cookie tables, the YAML they
// are checked in as, and cookie verdicts. Rules: docs/POLICY.md §5.
#ifndef IDFLOW_COLLECTOR_POLICY_COOKIES_H_
#define IDFLOW_COLLECTOR_POLICY_COOKIES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/policy/policy.h"

namespace idflow::policy {

// A published lifetime in seconds: "Session" (and "until the browser
// closes") -> session; "30 minutes", "4 Hours", "7 days", "1 Month" (30 days),
// "1 Year" (365 days), "One year", "13 months EEA; 24 months elsewhere" (the
// longest one named). `ok` is false when the text names no lifetime.
struct Duration {
  bool ok = false;
  bool session = false;
  int64_t seconds = 0;  // 0 for session
};
Duration ParseDuration(const std::string& text);

struct CookieImportOptions {
  std::string id;       // default: slug of the source file name without extension
  std::string version;  // default: "unversioned"
  std::string title;    // default: the first line when it names a cookie policy
  std::vector<std::string> sites;
  // Whose cookies are first-party; default: the source of the first row.
  std::string owner;
};

// Reads every cookie table in `text`: pipe tables (Markdown or not, an empty
// source cell carries down, rows whose cells are shifted left re-anchored on
// the duration), whitespace tables "Cookie Purpose Duration Source" (purpose
// and source carry down) and HTML <table>s (source carries down). Errors are
// "SOURCE:LINE:COLUMN: msg"; `warnings` gets rows it could not fully read
// (e.g. no lifetime) and names listed again with another lifetime.
absl::StatusOr<CookiePolicy> ImportCookieText(const std::string& text,
                                              const std::string& source_name,
                                              const CookieImportOptions& options,
                                              std::vector<std::string>* warnings = nullptr);

// Findings about one loaded cookie policy for `policy lint` ("FILE:LINE:
// message", FILE and LINE of the YAML row): a cookie name listed again with a
// different lifetime, at the later row.
std::vector<std::string> LintCookiePolicy(const CookiePolicy& policy);

// The checked-in format of policies/cookies/*.yaml.
std::string CookiePolicyToYaml(const CookiePolicy& policy);

// ---- verdicts ---------------------------------------------------------------

// Cookie verdicts use the one category list (common/verdict_categories.h):
// kClear, kUndeclaredCookie, kLifetimeExceeded, kThirdPartyCookie and the
// observation kNoCookiePolicy.

enum class CookieDirection { kSetByServer, kSentByClient };

struct CookieObservation {
  std::string host;    // destination host of the connection, e.g. "account.xiaomi.com"
  std::string domain;  // Set-Cookie Domain attribute; "" = host-only cookie
  std::string name;
  bool session = false;
  int64_t max_age_seconds = -1;  // -1 unknown (e.g. a Cookie request header)
  CookieDirection direction = CookieDirection::kSetByServer;
};

struct CookieVerdict {
  Category category = Category::kNoCookiePolicy;
  Finding finding = Finding::kObservation;  // FindingOf(category)
  bool first_party = true;                  // decided from the policy's sites vs host and domain
  std::string policy;                       // cookie policy id, "" when none covers the site
  std::string version;
  std::string cookie;       // row name judged against, "" when undeclared
  int source_line = 0;      // that row's line in the published document
  std::string explanation;  // one sentence
};

// Pure function of the loaded cookie policies and one observation.
CookieVerdict JudgeCookie(const Policy& policy, const CookieObservation& cookie);

}  // namespace idflow::policy

#endif  // IDFLOW_COLLECTOR_POLICY_COOKIES_H_
