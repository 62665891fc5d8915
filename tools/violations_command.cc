#include <grpcpp/grpcpp.h>

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "idflow/v1/query.grpc.pb.h"
#include "tools/commands.h"
#include "tools/report.h"

namespace idflow::tools {

int ViolationsCommand(int argc, char** argv) {
  FlagSet flags;
  flags.Add("collector", "127.0.0.1:7443", "collector gRPC HOST:PORT");
  flags.Add("device", "", "only this device");
  flags.Add("sdk", "", "only this SDK");
  flags.Add("verdict", "", "only this verdict (clear, omitted, ...)");
  flags.Add("format", "table", "table | json | junit | sarif");
  flags.Add("limit", "1000", "at most this many verdict groups");
  flags.Add("auth-token-file", "", "bearer token for the Query API");
  flags.Add("timeout", "10", "seconds to wait for the collector");
  flags.Add("tls-ca", "", "CA certificate (PEM) to verify the collector; enables TLS");
  flags.Add("tls-cert", "", "client certificate (PEM) for mutual TLS");
  flags.Add("tls-key", "", "client private key (PEM) for mutual TLS");
  flags.AddBool("all", "include observations and clear verdicts, not only violations");
  if (auto st = flags.Parse(argc, argv, 2); !st.ok()) {
    std::cerr << "idflowctl violations: " << st.message() << "\nusage: idflowctl violations "
              << "--collector HOST:PORT [--device ID] [--sdk NAME] [--all] "
                 "[--format table|json|junit|sarif]\n";
    return 2;
  }
  const std::string format = flags.Get("format");
  if (format != "table" && format != "json" && format != "junit" && format != "sarif") {
    std::cerr << "idflowctl violations: unknown --format '" << format
              << "' (table, json, junit, sarif)\n";
    return 2;
  }
  int limit = 0, timeout = 0;
  if (!absl::SimpleAtoi(flags.Get("limit"), &limit) || limit <= 0 ||
      !absl::SimpleAtoi(flags.Get("timeout"), &timeout) || timeout <= 0) {
    std::cerr << "idflowctl violations: --limit and --timeout take positive integers\n";
    return 2;
  }
  std::string token;
  if (!flags.Get("auth-token-file").empty()) {
    auto t = ReadFile(flags.Get("auth-token-file"));
    if (!t.ok()) {
      std::cerr << "idflowctl violations: " << t.status().message() << "\n";
      return 2;
    }
    token = std::string(absl::StripAsciiWhitespace(*t));
  }

  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!flags.Get("tls-ca").empty()) {
    grpc::SslCredentialsOptions ssl;
    for (auto [flag, field] :
         {std::pair{"tls-ca", &ssl.pem_root_certs}, std::pair{"tls-cert", &ssl.pem_cert_chain},
          std::pair{"tls-key", &ssl.pem_private_key}}) {
      if (flags.Get(flag).empty()) continue;
      auto pem = ReadFile(flags.Get(flag));
      if (!pem.ok()) {
        std::cerr << "idflowctl violations: " << pem.status().message() << "\n";
        return 2;
      }
      *field = *pem;
    }
    creds = grpc::SslCredentials(ssl);
  }
  auto channel = grpc::CreateChannel(flags.Get("collector"), creds);
  auto stub = idflow::v1::Query::NewStub(channel);
  idflow::v1::ListVerdictsRequest req;
  req.mutable_filter()->set_device(flags.Get("device"));
  req.mutable_filter()->set_sdk(flags.Get("sdk"));
  req.mutable_filter()->set_verdict(flags.Get("verdict"));
  req.mutable_filter()->set_violations_only(!flags.GetBool("all"));
  req.mutable_filter()->set_limit(static_cast<uint32_t>(limit));
  idflow::v1::ListVerdictsResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  grpc::Status st = stub->ListVerdicts(&ctx, req, &resp);
  if (!st.ok()) {
    std::cerr << "idflowctl violations: collector " << flags.Get("collector") << ": "
              << st.error_message() << "\n";
    return 2;
  }
  std::vector<idflow::v1::Verdict> verdicts(resp.verdicts().begin(), resp.verdicts().end());
  auto text = FormatVerdicts(verdicts, format);
  if (!text.ok()) {
    std::cerr << "idflowctl violations: " << text.status().message() << "\n";
    return 2;
  }
  std::cout << *text;
  // Observations are shown with --all but never fail a run.
  for (const auto& v : verdicts) {
    if (IsViolation(v)) return 1;
  }
  return 0;
}

}  // namespace idflow::tools
