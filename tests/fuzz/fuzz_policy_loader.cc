// YAML policy loader (LoadPolicyFromStrings) on arbitrary files. The first
// byte picks which file the rest replaces; the others are the real policies.
// What loads is then linted and judged, so verdicts see odd policies too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "collector/policy/cookies.h"
#include "collector/policy/policy.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
std::string Real(const char* rel) {
  return idflow::fuzz::Slurp(std::string(IDFLOW_SOURCE_DIR "/policies/") + rel);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const std::string kOntology = Real("ontology.yaml");
  static const std::string kStatement = Real("statements/interconnectivity-v20250508.yaml");
  static const std::string kBindings = Real("bindings/demo.yaml");
  static const std::string kCookies = Real("cookies/xiaomi-account.yaml");
  static const std::string kApp = Real("apps/mijia-mini-program.yaml");
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  idflow::policy::PolicyFiles files;
  files.ontology = {"ontology.yaml", kOntology};
  files.statements = {{"statement.yaml", kStatement}};
  files.bindings = {{"bindings.yaml", kBindings}};
  files.cookies = {{"cookies.yaml", kCookies}};
  files.apps = {{"app.yaml", kApp}};
  switch (data[0] % 5) {
    case 0:
      files.ontology.text = text;
      break;
    case 1:
      files.statements[0].text = text;
      break;
    case 2:
      files.bindings[0].text = text;
      break;
    case 3:
      files.cookies[0].text = text;
      break;
    default:
      files.apps[0].text = text;
      break;
  }
  auto p = idflow::policy::LoadPolicyFromStrings(files);
  if (!p.ok()) {
    if (p.status().message().empty()) idflow::fuzz::Die("error without a message");
    return 0;
  }
  (void)idflow::policy::LintPolicy(*p);
  // Through resolution (chains of runtime frames, first-party and unbound
  // code, same-app IPC) and as resolved to each SDK (explain --sdk).
  const std::vector<std::vector<std::string>> chains = {
      {},
      {"/usr/lib/libc.so.6", "/usr/lib/libstdc++.so.6", "/opt/lib/liblebo_sdk.so"},
      {"/usr/lib/libc.so.6", "/opt/bin/idflow-demo-host"},
      {"/opt/lib/libmystery_sdk.so"},
  };
  for (const auto& chain : chains) {
    for (const char* action : {"transmit", "acquire"}) {
      idflow::policy::Flow f;
      f.call_chain = chain;
      f.exe = "/opt/bin/idflow-demo-host";
      f.data_type = "mac_address";
      f.action = action;
      f.channel = chain.empty() ? "unix" : "tcp";
      f.peer_exe = f.exe;
      f.dest_host = "api.hpplay.com.cn";
      f.consents["user_experience_program"] = false;
      (void)idflow::policy::Judge(*p, f);
      (void)idflow::policy::ResolveResponsible(*p, chain, f.exe);
    }
  }
  for (const char* sdk : {"Lebo SDK", "Tianqin SDK", "Mijia Mini Program", ""}) {
    idflow::policy::Flow f;
    f.data_type = "mac_address";
    f.action = "transmit";
    f.channel = "tcp";
    f.dest_host = "api.hpplay.com.cn";
    f.consents["user_experience_program"] = false;
    (void)idflow::policy::JudgeResolved(
        *p, {idflow::policy::Responsible::Role::kSdk, "/opt/lib/libsdk.so", sdk}, f);
  }
  for (const char* domain : {"", ".xiaomi.com", "tracker.example"}) {
    idflow::policy::CookieObservation c;
    c.host = "account.xiaomi.com";
    c.domain = domain;
    c.name = "passToken";
    c.max_age_seconds = 100;
    (void)idflow::policy::JudgeCookie(*p, c);
  }
  return 0;
}
