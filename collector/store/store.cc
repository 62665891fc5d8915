// Back-end independent parts of store.h: Destination() and OpenStore().
#include "collector/store/store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "collector/store/sqlite_store.h"

namespace idflow::store {

std::string EventRecord::Destination() const {
  if (!dest_host.empty()) return dest_host;
  if (!dest_ip.empty()) {
    // IPv6 literals are bracketed so the port stays unambiguous.
    if (absl::StrContains(dest_ip, ':')) return absl::StrCat("[", dest_ip, "]:", dest_port);
    return absl::StrCat(dest_ip, ":", dest_port);
  }
  return dest_peer_exe;
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& url) {
  if (url.empty()) return absl::InvalidArgumentError("store URL is empty");
  if (absl::StartsWith(url, "postgresql://") || absl::StartsWith(url, "postgres://")) {
    return absl::UnimplementedError(absl::StrCat("PostgreSQL store is not implemented yet (",
                                                 url.substr(0, url.find(':')),
                                                 "://…); use --store sqlite:PATH"));
  }
  std::string path;
  if (absl::StartsWith(url, "sqlite:")) {
    path = url.substr(7);
    // Accept sqlite://PATH too (sqlite:///abs/path -> /abs/path).
    if (absl::StartsWith(path, "//")) path = path.substr(2);
  } else if (url.find("://") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported store URL \"", url,
                     "\": expected sqlite:PATH, a file path, or postgresql://…"));
  } else {
    path = url;
  }
  if (path.empty())
    return absl::InvalidArgumentError(absl::StrCat("store URL \"", url, "\" has no path"));
  auto s = SqliteStore::Open(path);
  if (!s.ok()) return s.status();
  return std::unique_ptr<Store>(std::move(*s));
}

}  // namespace idflow::store
