#include "agent/context.h"

#include <algorithm>
#include <cstdint>

namespace idflow::agent {
namespace {

// `later` applied after `earlier`, as one patch.
void Fold(const ContextPatch& later, ContextPatch* earlier) {
  if (later.scenarios) earlier->scenarios = later.scenarios;
  if (later.run_id) earlier->run_id = later.run_id;
  for (const auto& [k, v] : later.consents) earlier->consents[k] = v;
}

}  // namespace

void ApplyPatch(const ContextPatch& patch, ActiveContext* context) {
  if (patch.scenarios) context->scenarios = *patch.scenarios;
  if (patch.run_id) context->run_id = *patch.run_id;
  for (const auto& [k, v] : patch.consents) context->consents[k] = v;
}

void ContextBoard::Add(Scope* scope, int64_t at_unix_ms, const ContextPatch& patch) {
  // After every change at the same or an earlier time: two changes in one
  // millisecond apply in the order they were made.
  auto pos = std::upper_bound(scope->changes.begin(), scope->changes.end(), at_unix_ms,
                              [](int64_t t, const Change& c) { return t < c.at_unix_ms; });
  scope->changes.insert(pos, Change{at_unix_ms, patch});
  if (scope->changes.size() > kMaxChangesPerScope) {
    Fold(scope->changes.front().patch, &scope->floor);
    scope->changes.erase(scope->changes.begin());
  }
}

bool ContextBoard::Set(uint32_t pid, int64_t at_unix_ms, const ContextPatch& patch) {
  std::lock_guard l(mu_);
  if (pid == 0) {
    Add(&device_, at_unix_ms, patch);
    return true;
  }
  auto it = processes_.find(pid);
  if (it == processes_.end()) {
    if (processes_.size() >= kMaxProcessScopes) return false;
    it = processes_.emplace(pid, Scope{}).first;
  }
  Add(&it->second, at_unix_ms, patch);
  return true;
}

void ContextBoard::ApplyUpTo(const Scope& scope, int64_t at_unix_ms, ActiveContext* context) {
  ApplyPatch(scope.floor, context);
  for (const Change& c : scope.changes) {
    if (c.at_unix_ms > at_unix_ms) break;
    ApplyPatch(c.patch, context);
  }
}

ActiveContext ContextBoard::Resolve(const ActiveContext& declared, uint32_t pid,
                                    int64_t at_unix_ms) const {
  ActiveContext out = declared;
  std::lock_guard l(mu_);
  ApplyUpTo(device_, at_unix_ms, &out);
  if (auto it = processes_.find(pid); it != processes_.end()) {
    ApplyUpTo(it->second, at_unix_ms, &out);
  }
  return out;
}

void ContextBoard::ForgetProcess(uint32_t pid) {
  std::lock_guard l(mu_);
  processes_.erase(pid);
}

size_t ContextBoard::process_scopes() const {
  std::lock_guard l(mu_);
  return processes_.size();
}

}  // namespace idflow::agent
