#include "tools/query_client.h"

#include <grpcpp/grpcpp.h>

#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"

namespace idflow::tools {

void AddQueryFlags(FlagSet* flags) {
  flags->Add("collector", "127.0.0.1:7443", "collector gRPC HOST:PORT");
  flags->Add("auth-token-file", "", "bearer token for the Query API");
  flags->Add("timeout", "10", "seconds to wait for the collector, per page");
  flags->Add("tls-ca", "", "CA certificate (PEM) to verify the collector; enables TLS");
  flags->Add("tls-cert", "", "client certificate (PEM) for mutual TLS");
  flags->Add("tls-key", "", "client private key (PEM) for mutual TLS");
}

absl::StatusOr<QueryClient> QueryClient::FromFlags(const FlagSet& flags) {
  QueryClient c;
  c.address_ = flags.Get("collector");
  if (!absl::SimpleAtoi(flags.Get("timeout"), &c.timeout_seconds_) || c.timeout_seconds_ <= 0) {
    return absl::InvalidArgumentError("--timeout takes a positive integer");
  }
  if (!flags.Get("auth-token-file").empty()) {
    auto t = ReadFile(flags.Get("auth-token-file"));
    if (!t.ok()) return t.status();
    c.token_ = std::string(absl::StripAsciiWhitespace(*t));
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!flags.Get("tls-ca").empty()) {
    grpc::SslCredentialsOptions ssl;
    for (auto [flag, field] :
         {std::pair{"tls-ca", &ssl.pem_root_certs}, std::pair{"tls-cert", &ssl.pem_cert_chain},
          std::pair{"tls-key", &ssl.pem_private_key}}) {
      if (flags.Get(flag).empty()) continue;
      auto pem = ReadFile(flags.Get(flag));
      if (!pem.ok()) return pem.status();
      *field = *pem;
    }
    creds = grpc::SslCredentials(ssl);
  }
  c.stub_ = idflow::v1::Query::NewStub(grpc::CreateChannel(c.address_, creds));
  return c;
}

template <typename Request, typename Response, typename Call>
absl::Status QueryClient::EachPage(Request req, Call call,
                                   const std::function<bool(const Response&)>& on_page) const {
  // A page token that repeats would loop forever on a broken server.
  for (int pages = 0; pages < 100000; ++pages) {
    Response resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_seconds_));
    if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
    grpc::Status st = call(&ctx, req, &resp);
    if (!st.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                          absl::StrCat("collector ", address_, ": ", st.error_message()));
    }
    if (!on_page(resp) || resp.next_page_token().empty() ||
        resp.next_page_token() == req.page_token()) {
      return absl::OkStatus();
    }
    req.set_page_token(resp.next_page_token());
  }
  return absl::InternalError(absl::StrCat("collector ", address_, ": too many pages"));
}

absl::StatusOr<std::vector<idflow::v1::Verdict>> QueryClient::ListVerdicts(
    const idflow::v1::VerdictFilter& filter, size_t max_items) const {
  idflow::v1::ListVerdictsRequest req;
  *req.mutable_filter() = filter;
  req.mutable_filter()->set_limit(0);
  std::vector<idflow::v1::Verdict> out;
  absl::Status st = EachPage<idflow::v1::ListVerdictsRequest, idflow::v1::ListVerdictsResponse>(
      req,
      [&](grpc::ClientContext* ctx, const idflow::v1::ListVerdictsRequest& r,
          idflow::v1::ListVerdictsResponse* resp) { return stub_->ListVerdicts(ctx, r, resp); },
      [&](const idflow::v1::ListVerdictsResponse& resp) {
        for (const auto& v : resp.verdicts()) {
          if (out.size() == max_items) return false;
          out.push_back(v);
        }
        return out.size() < max_items;
      });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::vector<idflow::v1::StoredEvent>> QueryClient::ListEvents(
    const idflow::v1::VerdictFilter& filter, size_t max_items) const {
  idflow::v1::ListEventsRequest req;
  *req.mutable_filter() = filter;
  req.mutable_filter()->set_limit(0);
  std::vector<idflow::v1::StoredEvent> out;
  absl::Status st = EachPage<idflow::v1::ListEventsRequest, idflow::v1::ListEventsResponse>(
      req,
      [&](grpc::ClientContext* ctx, const idflow::v1::ListEventsRequest& r,
          idflow::v1::ListEventsResponse* resp) { return stub_->ListEvents(ctx, r, resp); },
      [&](const idflow::v1::ListEventsResponse& resp) {
        for (const auto& e : resp.events()) {
          if (out.size() == max_items) return false;
          out.push_back(e);
        }
        return out.size() < max_items;
      });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::vector<idflow::v1::AgentStatus>> QueryClient::ListAgents(
    const std::string& device) const {
  idflow::v1::ListAgentsRequest req;
  req.set_device(device);
  std::vector<idflow::v1::AgentStatus> out;
  absl::Status st = EachPage<idflow::v1::ListAgentsRequest, idflow::v1::ListAgentsResponse>(
      req,
      [&](grpc::ClientContext* ctx, const idflow::v1::ListAgentsRequest& r,
          idflow::v1::ListAgentsResponse* resp) { return stub_->ListAgents(ctx, r, resp); },
      [&](const idflow::v1::ListAgentsResponse& resp) {
        out.insert(out.end(), resp.agents().begin(), resp.agents().end());
        return true;
      });
  if (!st.ok()) return st;
  return out;
}

}  // namespace idflow::tools
