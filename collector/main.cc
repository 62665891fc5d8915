// idflow-collector: thin main over the collector library.
#include <cstdio>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "collector/collector.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/version.h"

int main(int argc, char** argv) {
  idflow::SetLogPrefix("idflow-collector");
  idflow::FlagSet flags;
  flags.Add("listen", "127.0.0.1:7443", "gRPC HOST:PORT (port 0 picks a free port)");
  flags.Add("http", "", "HTTP HOST:PORT for /healthz and /metrics (off when empty)");
  flags.Add("store", "", "sqlite:PATH or postgresql://...");
  flags.Add("policies", "",
            "directory of declared policies (ontology.yaml, statements/, bindings/)");
  flags.Add("collector-id", "",
            "this collector's name in stream claims, unique among collectors sharing a store "
            "(default HOSTNAME:PORT)");
  flags.Add("port-file", "", "write 'grpc=PORT' and 'http=PORT' lines here once listening");
  flags.Add("tls-cert", "", "server certificate (PEM)");
  flags.Add("tls-key", "", "server private key (PEM)");
  flags.Add("tls-client-ca", "", "CA for client certificates (PEM): requires mutual TLS");
  flags.Add("auth-token-file", "",
            "bearer token required by the Query API, the dashboard and (unless --agent-tokens) "
            "Ingest");
  flags.Add("agent-tokens", "",
            "per-agent Ingest tokens: lines 'AGENT_ID sha256:HEX' (hashes, never the tokens)");
  flags.AddBool("allow-unauthenticated-ingest",
                "accept agents without credentials on a non-loopback address (not for fleets)");
  flags.Add("retention-days", "0",
            "delete stored events last seen more than this many days ago, hourly "
            "(verdict groups, the matrix and the accounting stay); 0 keeps them");
  flags.AddBool("help", "show this help");
  flags.AddBool("version", "print the version and exit");
  if (absl::Status st = flags.Parse(argc, argv); !st.ok()) {
    std::cerr << "idflow-collector: " << st.message() << "\nusage: idflow-collector [flags]\n"
              << flags.Usage();
    return 2;
  }
  if (flags.GetBool("help")) {
    std::cout << "usage: idflow-collector [flags]\n" << flags.Usage();
    return 0;
  }
  if (flags.GetBool("version")) {
    std::cout << idflow::VersionLine("idflow-collector") << "\n";
    return 0;
  }
  idflow::collector::CollectorOptions options;
  options.listen = flags.Get("listen");
  options.http = flags.Get("http");
  options.store_url = flags.Get("store");
  options.policies_dir = flags.Get("policies");
  options.collector_id = flags.Get("collector-id");
  options.tls_cert = flags.Get("tls-cert");
  options.tls_key = flags.Get("tls-key");
  options.tls_client_ca = flags.Get("tls-client-ca");
  options.agent_tokens_file = flags.Get("agent-tokens");
  options.allow_unauthenticated_ingest = flags.GetBool("allow-unauthenticated-ingest");
  int retention_days = 0;
  if (!absl::SimpleAtoi(flags.Get("retention-days"), &retention_days) || retention_days < 0 ||
      retention_days > 36500) {
    std::cerr << "idflow-collector: --retention-days must be a whole number of days, 0..36500\n";
    return 2;
  }
  options.retention = std::chrono::hours(24 * retention_days);
  if (!flags.Get("auth-token-file").empty()) {
    auto token = idflow::ReadFile(flags.Get("auth-token-file"));
    if (!token.ok()) {
      std::cerr << "idflow-collector: " << token.status().message() << "\n";
      return 2;
    }
    options.auth_token = std::string(absl::StripAsciiWhitespace(*token));
  }

  idflow::BlockTerminationSignals();
  auto collector = idflow::collector::Collector::Start(options);
  if (!collector.ok()) {
    std::cerr << "idflow-collector: " << collector.status().message() << "\n";
    return absl::IsInvalidArgument(collector.status()) || absl::IsNotFound(collector.status()) ? 2
                                                                                               : 1;
  }
  idflow::LogInfo("listening: grpc=", (*collector)->grpc_port(),
                  " http=", (*collector)->http_port(),
                  " store=", idflow::store::RedactStoreUrl(options.store_url),
                  " policies=", options.policies_dir);
  if (!flags.Get("port-file").empty()) {
    std::string content = absl::StrCat("grpc=", (*collector)->grpc_port(),
                                       "\nhttp=", (*collector)->http_port(), "\n");
    if (auto st = idflow::WriteFileAtomic(flags.Get("port-file"), content); !st.ok()) {
      std::cerr << "idflow-collector: " << st.message() << "\n";
      return 1;
    }
  }
  int sig = idflow::WaitForTerminationSignal();
  idflow::LogInfo("signal ", sig, ": shutting down");
  (*collector)->Shutdown();
  (*collector)->Wait();
  return 0;
}
