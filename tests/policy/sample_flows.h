// Flows and cookie observations the policy tests judge.
#ifndef IDFLOW_TESTS_POLICY_SAMPLE_FLOWS_H_
#define IDFLOW_TESTS_POLICY_SAMPLE_FLOWS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "collector/policy/cookies.h"
#include "collector/policy/policy.h"

namespace idflow::policy {

inline constexpr char kSampleModule[] = "/opt/demo/lib/libsdk.so";

// A flow from kSampleModule in the demo host: over tcp when it transmits.
inline Flow SampleFlow(std::string data_type, std::string action = "transmit",
                       std::string host = "", std::vector<std::string> scenarios = {},
                       std::map<std::string, bool> consents = {}) {
  Flow f;
  f.call_chain = {kSampleModule};
  f.exe = "/opt/demo/bin/host";
  f.data_type = std::move(data_type);
  f.action = std::move(action);
  f.channel = f.action == "transmit" ? "tcp" : "";
  f.dest_host = std::move(host);
  f.scenarios = std::move(scenarios);
  f.consents = std::move(consents);
  return f;
}

// A Set-Cookie from `host` (max_age 0 = session); `domain` is its Domain
// attribute ("" = host-only).
inline CookieObservation SetCookie(std::string host, std::string name, int64_t max_age,
                                   std::string domain = "") {
  CookieObservation o;
  o.host = std::move(host);
  o.domain = std::move(domain);
  o.name = std::move(name);
  o.session = max_age == 0;
  o.max_age_seconds = max_age;
  return o;
}

}  // namespace idflow::policy

#endif  // IDFLOW_TESTS_POLICY_SAMPLE_FLOWS_H_
