// Who is responsible for a hooked call: module patterns compiled once per
// policy, then ResolveResponsible over each event's call chain. This runs for
// every event, so lookups allocate nothing: exact sonames live in a hash set
// (heterogeneous lookup by string_view), globs are bucketed by the first few
// characters of their literal prefix, and fnmatch only runs on candidates.
#include <fnmatch.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "collector/policy/policy.h"

namespace idflow::policy {
namespace {

// Globs are keyed by at most this many leading literal characters.
constexpr size_t kKeyLength = 4;

bool IsWildcard(char c) { return c == '*' || c == '?' || c == '[' || c == '\\'; }

absl::string_view LiteralPrefix(absl::string_view glob) {
  size_t i = 0;
  while (i < glob.size() && !IsWildcard(glob[i])) ++i;
  return glob.substr(0, i);
}

// Literal text after the last wildcard ("" when the glob ends in one or uses
// escapes): a cheap EndsWith filter before fnmatch.
absl::string_view LiteralSuffix(absl::string_view glob) {
  if (glob.find('\\') != absl::string_view::npos) return "";
  size_t i = glob.size();
  while (i > 0 && glob[i - 1] != '*' && glob[i - 1] != '?' && glob[i - 1] != ']') --i;
  return glob.substr(i);
}

// Offset of the file name in `path`.
size_t BaseOffset(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? 0 : slash + 1;
}

// The longest run of literal text ("/lib/jvm/" in "*/lib/jvm/*/lib/*.so"),
// which any match contains; "" when the glob uses classes or escapes.
absl::string_view LongestLiteral(absl::string_view glob) {
  if (glob.find_first_of("[\\") != absl::string_view::npos) return "";
  absl::string_view best;
  for (absl::string_view part : absl::StrSplit(glob, absl::ByAnyChar("*?"))) {
    if (part.size() > best.size()) best = part;
  }
  return best;
}

// A glob with its filters: fnmatch only runs when the literal prefix, suffix
// and longest literal run are all there.
struct Glob {
  std::string pattern;
  std::string prefix;
  std::string suffix;
  std::string infix;
  std::string sdk;  // binding globs only

  explicit Glob(std::string p, std::string s = "")
      : pattern(std::move(p)),
        prefix(LiteralPrefix(pattern)),
        suffix(LiteralSuffix(pattern)),
        infix(LongestLiteral(pattern)),
        sdk(std::move(s)) {}

  // `text` must be NUL-terminated at text.size() (a suffix of a std::string).
  bool Matches(absl::string_view text) const {
    if (!absl::StartsWith(text, prefix) || !absl::EndsWith(text, suffix) ||
        !absl::StrContains(text, infix)) {
      return false;
    }
    return fnmatch(pattern.c_str(), text.data(), 0) == 0;
  }
};

// One `runtime:` or `first_party:` list.
class PatternSet {
 public:
  void Add(const ModulePattern& m) {
    switch (m.kind) {
      case ModulePattern::Kind::kSoname:
        sonames_.insert(m.pattern);
        break;
      case ModulePattern::Kind::kGlob: {
        Glob g(m.pattern);
        std::string key = g.prefix.substr(0, kKeyLength);
        globs_[key].push_back(std::move(g));
        break;
      }
      case ModulePattern::Kind::kPath:
        paths_.emplace_back(m.pattern);
        break;
    }
  }

  bool Matches(const std::string& path, size_t base) const {
    const absl::string_view name = absl::string_view(path).substr(base);
    if (sonames_.contains(name)) return true;
    // A glob whose literal prefix is P can only match names starting with P,
    // so its key P[0, min(4, |P|)) is one of the name's first 0..4 prefixes.
    if (!globs_.empty()) {
      const size_t n = std::min(kKeyLength, name.size());
      for (size_t len = 0; len <= n; ++len) {
        auto it = globs_.find(name.substr(0, len));
        if (it == globs_.end()) continue;
        for (const Glob& g : it->second) {
          if (g.Matches(name)) return true;
        }
      }
    }
    for (const Glob& g : paths_) {
      if (g.Matches(path)) return true;
    }
    return false;
  }

 private:
  absl::flat_hash_set<std::string> sonames_;
  absl::flat_hash_map<std::string, std::vector<Glob>> globs_;
  std::vector<Glob> paths_;
};

const std::string* FirstMatch(const std::vector<Glob>& globs, const std::string& text) {
  if (text.empty()) return nullptr;
  for (const Glob& g : globs) {
    if (g.Matches(text)) return &g.sdk;
  }
  return nullptr;
}

}  // namespace

namespace {
std::atomic<uint64_t> g_index_generation{0};
}  // namespace

class ModuleIndex {
 public:
  explicit ModuleIndex(const Policy& p) : generation_(++g_index_generation) {
    for (const ModulePattern& m : p.runtime) runtime_.Add(m);
    for (const ModulePattern& m : p.first_party) first_party_.Add(m);
    // Binding order is kept: the first binding whose glob matches wins.
    for (const Binding& b : p.bindings) {
      for (const std::string& g : b.modules) modules_.emplace_back(g, b.sdk);
      for (const std::string& g : b.processes) processes_.emplace_back(g, b.sdk);
    }
  }
  const PatternSet& runtime() const { return runtime_; }
  const PatternSet& first_party() const { return first_party_; }
  // Binding globs are fnmatch'ed over the whole path, like SdkForModule always did.
  const std::string* SdkOfModule(const std::string& path) const {
    return FirstMatch(modules_, path);
  }
  const std::string* SdkOfProcess(const std::string& exe) const {
    return FirstMatch(processes_, exe);
  }
  // Unique per index ever built: tells a memo which index its answers are from.
  uint64_t generation() const { return generation_; }

 private:
  const uint64_t generation_;
  PatternSet runtime_;
  PatternSet first_party_;
  std::vector<Glob> modules_;
  std::vector<Glob> processes_;
};

namespace {

// The policy's index, or one compiled for this call (hand-built policies).
const ModuleIndex& IndexOf(const Policy& p, std::unique_ptr<ModuleIndex>* scratch) {
  if (p.module_index != nullptr) return *p.module_index;
  *scratch = std::make_unique<ModuleIndex>(p);
  return **scratch;
}

}  // namespace

void IndexModules(Policy* policy) { policy->module_index = std::make_shared<ModuleIndex>(*policy); }

bool Policy::IsRuntime(const std::string& module_path) const {
  std::unique_ptr<ModuleIndex> scratch;
  return IndexOf(*this, &scratch).runtime().Matches(module_path, BaseOffset(module_path));
}

bool Policy::IsFirstParty(const std::string& module_path) const {
  std::unique_ptr<ModuleIndex> scratch;
  return IndexOf(*this, &scratch).first_party().Matches(module_path, BaseOffset(module_path));
}

std::string Policy::SdkForModule(const std::string& module_path, const std::string& exe) const {
  std::unique_ptr<ModuleIndex> scratch;
  const ModuleIndex& idx = IndexOf(*this, &scratch);
  if (const std::string* sdk = idx.SdkOfModule(module_path)) return *sdk;
  if (const std::string* sdk = idx.SdkOfProcess(exe)) return *sdk;
  return "";
}

namespace {

// What the bindings say of one module path.
struct ModuleClass {
  bool runtime = false;
  bool first_party = false;
  const std::string* sdk = nullptr;  // owned by the index
};

ModuleClass Classify(const ModuleIndex& idx, const std::string& path) {
  ModuleClass c;
  const size_t base = BaseOffset(path);
  c.runtime = idx.runtime().Matches(path, base);
  if (!c.runtime) {
    c.sdk = idx.SdkOfModule(path);
    c.first_party = idx.first_party().Matches(path, base);
  }
  return c;
}

// Chains repeat almost entirely (the same few libraries on every stack), so
// each thread remembers its answers per path for the index it last used.
// Bounded: cleared when it grows past kMaxEntries.
const ModuleClass& ClassifyMemo(const ModuleIndex& idx, const std::string& path) {
  constexpr size_t kMaxEntries = 4096;
  struct Memo {
    uint64_t generation = 0;
    absl::flat_hash_map<std::string, ModuleClass> classes;
  };
  thread_local Memo memo;
  if (memo.generation != idx.generation() || memo.classes.size() >= kMaxEntries) {
    memo.classes.clear();
    memo.generation = idx.generation();
  }
  auto it = memo.classes.find(path);
  if (it == memo.classes.end()) it = memo.classes.emplace(path, Classify(idx, path)).first;
  return it->second;
}

}  // namespace

Responsible ResolveResponsible(const Policy& policy, const std::vector<std::string>& call_chain,
                               const std::string& exe) {
  std::unique_ptr<ModuleIndex> scratch;
  const ModuleIndex& idx = IndexOf(policy, &scratch);
  // A one-call index (a hand-built policy) is not worth remembering.
  const bool memo = scratch == nullptr;
  const std::string* candidate = nullptr;  // innermost module that is not runtime
  bool candidate_first_party = false;
  for (const std::string& m : call_chain) {
    if (m.empty()) continue;
    const ModuleClass c = memo ? ClassifyMemo(idx, m) : Classify(idx, m);
    if (c.runtime) continue;
    if (c.sdk != nullptr) return {Responsible::Role::kSdk, m, *c.sdk};
    if (candidate == nullptr) {
      candidate = &m;
      candidate_first_party = c.first_party;
    }
  }
  // A `processes` binding makes the whole process that SDK, except for code
  // the first_party list claims for the app.
  const std::string* process_sdk = idx.SdkOfProcess(exe);
  if (candidate != nullptr) {
    if (candidate_first_party) {
      return {Responsible::Role::kFirstParty, *candidate, ""};
    }
    if (process_sdk != nullptr) return {Responsible::Role::kSdk, *candidate, *process_sdk};
    return {Responsible::Role::kUnbound, *candidate, ""};
  }
  if (process_sdk != nullptr) return {Responsible::Role::kSdk, exe, *process_sdk};
  return {};
}

}  // namespace idflow::policy
