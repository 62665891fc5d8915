// Back-end independent parts of store.h: Destination() and OpenStore().
#include "collector/store/store.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "collector/store/postgres_store.h"
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

absl::StatusOr<std::vector<absl::Status>> Store::Write(const std::vector<WriteOp>& ops) {
  std::vector<absl::Status> out;
  out.reserve(ops.size());
  for (const WriteOp& op : ops) {
    if (!op.events.empty()) {
      out.push_back(AppendContiguous(op.agent_id, op.events));
    } else if (op.gap_from != 0 && op.gap_to >= op.gap_from) {
      out.push_back(RecordGap(op.agent_id, op.gap_from, op.gap_to, op.gap_cause));
    } else {
      out.push_back(absl::InvalidArgumentError("write op with neither events nor a gap"));
    }
  }
  return out;
}

absl::StatusOr<uint64_t> Store::ClaimStream(const std::string&, const std::string&) { return 0; }
absl::StatusOr<uint64_t> Store::StreamGeneration(const std::string&) { return 0; }

absl::StatusOr<std::vector<MatrixRow>> Store::QueryMatrix(const VerdictFilter&) {
  return absl::UnimplementedError("this store keeps no matrix aggregates");
}
absl::StatusOr<std::vector<HistogramRow>> Store::QueryHistogram(const VerdictFilter&, int64_t) {
  return absl::UnimplementedError("this store keeps no histogram aggregates");
}
absl::StatusOr<uint64_t> Store::PruneBefore(int64_t) {
  return absl::UnimplementedError("this store has no retention");
}

std::string RedactStoreUrl(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t start = scheme + 3;
  size_t query = url.find('?', start);
  size_t end = std::min(url.find('/', start), query);
  if (end == std::string::npos) end = url.size();
  std::string out = url.substr(0, start);
  std::string authority = url.substr(start, end - start);
  size_t at = authority.rfind('@');
  if (at != std::string::npos) {
    size_t colon = authority.find(':');
    if (colon < at) authority = authority.substr(0, colon) + ":***" + authority.substr(at);
  }
  out += authority;
  std::string path = url.substr(end, query == std::string::npos ? std::string::npos : query - end);
  out += path;
  if (query != std::string::npos) {
    std::string q = url.substr(query);
    out += absl::StrContains(absl::AsciiStrToLower(q), "password") ? "?***" : q;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& url) {
  if (url.empty()) return absl::InvalidArgumentError("store URL is empty");
  if (absl::StartsWith(url, "postgresql://") || absl::StartsWith(url, "postgres://")) {
    // Errors name host, port and database only (the URL may hold a password).
    auto s = PostgresStore::Open(url);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Store>(std::move(*s));
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
