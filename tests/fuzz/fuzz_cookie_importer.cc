// Cookie importer on arbitrary text: never crashes; accepted input emits
// YAML that reads back to the same rows.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "collector/policy/cookies.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> warnings;
  auto p = idflow::policy::ImportCookieText(text, "fuzz.txt", {}, &warnings);
  if (!p.ok() || !idflow::fuzz::IsValidUtf8(text)) return 0;
  const std::string yaml = idflow::policy::CookiePolicyToYaml(*p);
  auto back = idflow::policy::ParseCookiePolicyYaml(yaml, "fuzz.yaml");
  if (!back.ok()) idflow::fuzz::Die(std::string(back.status().message()) + "\n" + yaml);
  if (back->cookies.size() != p->cookies.size()) idflow::fuzz::Die("row count changed");
  for (size_t i = 0; i < p->cookies.size(); ++i) {
    if (back->cookies[i].name != p->cookies[i].name ||
        back->cookies[i].purpose != p->cookies[i].purpose ||
        back->cookies[i].max_age_seconds != p->cookies[i].max_age_seconds) {
      idflow::fuzz::Die("row changed: " + p->cookies[i].name);
    }
  }
  return 0;
}
