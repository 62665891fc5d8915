#include "collector/collector.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "collector/convert.h"
#include "collector/dashboard.h"
#include "collector/http/http_server.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "idflow/v1/ingest.grpc.pb.h"
#include "idflow/v1/query.grpc.pb.h"

namespace idflow::collector {

using idflow::v1::AgentMessage;
using idflow::v1::CollectorMessage;

namespace {

bool Authorized(grpc::CallbackServerContext* ctx, const std::string& token) {
  if (token.empty()) return true;
  auto it = ctx->client_metadata().find("authorization");
  if (it == ctx->client_metadata().end()) return false;
  return std::string(it->second.data(), it->second.size()) == "Bearer " + token;
}

}  // namespace

// One reactor per agent stream. Each batch is judged and committed before the
// next read starts: the store's commit latency is the back-pressure, and the
// ack is only written after the commit (DESIGN §5).
class IngestReactor : public grpc::ServerBidiReactor<AgentMessage, CollectorMessage> {
 public:
  explicit IngestReactor(Collector* c) : c_(c) {
    c_->counters().streams++;
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      End(grpc::Status::OK);
      return;
    }
    if (in_.has_hello()) {
      agent_id_ = in_.hello().agent_id();
      if (agent_id_.empty()) {
        End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello without agent_id"));
        return;
      }
      auto last = c_->store().LastSeq(agent_id_);
      if (!last.ok()) {
        c_->counters().store_errors++;
        End(grpc::Status(grpc::StatusCode::UNAVAILABLE, last.status().ToString()));
        return;
      }
      LogInfo("agent ", agent_id_, " (device ", in_.hello().device().id(),
              ") connected; stored up to ", *last);
      CollectorMessage reply;
      reply.mutable_hello_ack()->set_stored_up_to(*last);
      reply.mutable_hello_ack()->set_collector_id("idflow-collector");
      Send(std::move(reply));
    } else if (in_.has_batch()) {
      if (agent_id_.empty()) {
        End(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "batch before hello"));
        return;
      }
      absl::Status st = Commit(in_.batch());
      if (!st.ok()) {
        c_->counters().store_errors++;
        LogError("store commit failed: ", st.ToString());
        End(grpc::Status(grpc::StatusCode::UNAVAILABLE, st.ToString()));
        return;
      }
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mu_);
    writing_ = false;
    bool start = ok && PrepareNextLocked();
    if (!writing_ && finish_pending_) {
      finish_pending_ = false;
      grpc::Status status = finish_status_;
      lock.unlock();
      Finish(status);
      return;
    }
    lock.unlock();
    // No gRPC call under mu_: a reaction could be run inline on this thread.
    if (start) StartWrite(&out_);
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Commit(const idflow::v1::EventBatch& batch) {
    std::vector<store::EventRecord> records;
    records.reserve(batch.events_size());
    uint64_t up_to = 0;
    for (const auto& ev : batch.events()) {
      if (ev.agent_id() != agent_id_) {
        return absl::InvalidArgumentError("event of another agent on this stream");
      }
      store::EventRecord rec = ToRecord(ev);
      Category category = JudgeEvent(c_->policy(), &rec);
      c_->counters().verdicts_by_category[static_cast<size_t>(category)]++;
      if (rec.has_cookie) c_->counters().cookie_verdicts++;
      up_to = std::max<uint64_t>(up_to, rec.seq);
      records.push_back(std::move(rec));
    }
    RETURN_IF_ERROR(c_->store().Append(records));
    c_->counters().batches++;
    c_->counters().events += records.size();
    CollectorMessage ack;
    ack.mutable_ack()->set_up_to(up_to);
    Send(std::move(ack));
    return absl::OkStatus();
  }

  // One write outstanding; a newer cumulative ack replaces one not yet sent.
  void Send(CollectorMessage msg) {
    std::unique_lock lock(mu_);
    if (msg.has_hello_ack()) {
      hello_ = std::move(msg);
      has_hello_ = true;
    } else {
      pending_ack_ = std::max(pending_ack_, msg.ack().up_to());
    }
    if (writing_) return;
    bool start = PrepareNextLocked();
    lock.unlock();
    if (start) StartWrite(&out_);
  }

  // Moves the next message into out_; true when a write should start.
  bool PrepareNextLocked() {
    if (has_hello_) {
      out_ = std::move(hello_);
      has_hello_ = false;
    } else if (pending_ack_ != 0) {
      out_.Clear();
      out_.mutable_ack()->set_up_to(pending_ack_);
      pending_ack_ = 0;
    } else {
      return false;
    }
    writing_ = true;
    return true;
  }

  // Finish waits for an outstanding write to complete.
  void End(grpc::Status status) {
    {
      std::lock_guard lock(mu_);
      if (writing_) {
        finish_pending_ = true;
        finish_status_ = std::move(status);
        return;
      }
    }
    Finish(std::move(status));
  }

  Collector* const c_;
  std::string agent_id_;
  AgentMessage in_;
  std::mutex mu_;         // std::mutex: visible to ThreadSanitizer
  CollectorMessage out_;  // owned by the write in flight (writing_)
  CollectorMessage hello_;
  bool has_hello_ = false;
  uint64_t pending_ack_ = 0;
  bool writing_ = false;
  bool finish_pending_ = false;
  grpc::Status finish_status_;
};

class Collector::IngestService : public idflow::v1::Ingest::CallbackService {
 public:
  explicit IngestService(Collector* c) : c_(c) {}
  grpc::ServerBidiReactor<AgentMessage, CollectorMessage>* Stream(
      grpc::CallbackServerContext*) override {
    return new IngestReactor(c_);
  }

 private:
  Collector* const c_;
};

class Collector::QueryService : public idflow::v1::Query::CallbackService {
 public:
  QueryService(Collector* c, std::string token) : c_(c), token_(std::move(token)) {}

  grpc::ServerUnaryReactor* ListVerdicts(grpc::CallbackServerContext* ctx,
                                         const idflow::v1::ListVerdictsRequest* req,
                                         idflow::v1::ListVerdictsResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    if (!Authorized(ctx, token_)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad or missing token"));
      return reactor;
    }
    auto groups = c_->store().QueryVerdicts(FromProto(req->filter()));
    if (!groups.ok()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, groups.status().ToString()));
      return reactor;
    }
    for (const auto& g : *groups) *resp->add_verdicts() = ToProto(g);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* ctx,
                                       const idflow::v1::ListEventsRequest* req,
                                       idflow::v1::ListEventsResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    if (!Authorized(ctx, token_)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad or missing token"));
      return reactor;
    }
    auto events = c_->store().QueryEvents(FromProto(req->filter()));
    if (!events.ok()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, events.status().ToString()));
      return reactor;
    }
    for (const auto& e : *events) *resp->add_events() = ToProto(e);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Count(grpc::CallbackServerContext* ctx,
                                  const idflow::v1::CountRequest* req,
                                  idflow::v1::CountResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    if (!Authorized(ctx, token_)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad or missing token"));
      return reactor;
    }
    auto n = c_->store().CountEvents(FromProto(req->filter()));
    if (!n.ok()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, n.status().ToString()));
      return reactor;
    }
    resp->set_events(*n);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  Collector* const c_;
  const std::string token_;
};

absl::StatusOr<std::unique_ptr<Collector>> Collector::Start(const CollectorOptions& options) {
  std::unique_ptr<Collector> c(new Collector());
  c->options_ = options;
  if (options.policies_dir.empty()) return absl::InvalidArgumentError("--policies is required");
  if (options.store_url.empty()) return absl::InvalidArgumentError("--store is required");
  ASSIGN_OR_RETURN(c->policy_, policy::LoadPolicyDir(options.policies_dir));
  ASSIGN_OR_RETURN(c->store_, store::OpenStore(options.store_url));

  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!options.tls_cert.empty() || !options.tls_key.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ASSIGN_OR_RETURN(std::string cert, ReadFile(options.tls_cert));
    ASSIGN_OR_RETURN(std::string key, ReadFile(options.tls_key));
    ssl.pem_key_cert_pairs.push_back({key, cert});
    if (!options.tls_client_ca.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(options.tls_client_ca));
      ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    creds = grpc::SslServerCredentials(ssl);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  c->ingest_ = std::make_unique<IngestService>(c.get());
  c->query_ = std::make_unique<QueryService>(c.get(), options.auth_token);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, creds, &c->grpc_port_);
  builder.RegisterService(c->ingest_.get());
  builder.RegisterService(c->query_.get());
  builder.SetMaxReceiveMessageSize(8 << 20);
  c->server_ = builder.BuildAndStart();
  if (!c->server_ || c->grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  if (!options.http.empty()) {
    http::HttpServerOptions ho;
    ho.listen = options.http;
    ho.bearer_token = options.auth_token;
    ASSIGN_OR_RETURN(c->http_, http::HttpServer::Create(ho));
    RegisterHttpRoutes(c->http_.get(), c.get());
    RETURN_IF_ERROR(c->http_->Start());
    c->http_port_ = c->http_->port();
  }
  return c;
}

Collector::~Collector() { Shutdown(); }

void Collector::Shutdown() {
  if (http_) http_->Stop();
  // Agents hold streams open indefinitely: cancel them after a short grace.
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void Collector::Wait() {
  if (server_) server_->Wait();
}

std::string Collector::MetricsText() {
  std::string out;
  absl::StrAppend(&out, "# HELP idflow_collector_events_total Events committed to the store.\n",
                  "# TYPE idflow_collector_events_total counter\n",
                  "idflow_collector_events_total ", counters_.events.load(), "\n");
  absl::StrAppend(&out, "# TYPE idflow_collector_batches_total counter\n",
                  "idflow_collector_batches_total ", counters_.batches.load(), "\n");
  absl::StrAppend(&out, "# TYPE idflow_collector_streams_total counter\n",
                  "idflow_collector_streams_total ", counters_.streams.load(), "\n");
  absl::StrAppend(&out, "# TYPE idflow_collector_store_errors_total counter\n",
                  "idflow_collector_store_errors_total ", counters_.store_errors.load(), "\n");
  absl::StrAppend(&out, "# TYPE idflow_collector_cookie_verdicts_total counter\n",
                  "idflow_collector_cookie_verdicts_total ", counters_.cookie_verdicts.load(),
                  "\n");
  absl::StrAppend(&out,
                  "# HELP idflow_collector_verdicts_total Verdicts by category and finding.\n",
                  "# TYPE idflow_collector_verdicts_total counter\n");
  for (const CategoryInfo& info : kCategories) {
    absl::StrAppend(&out, "idflow_collector_verdicts_total{verdict=\"", info.name, "\",finding=\"",
                    FindingName(info.finding), "\"} ",
                    counters_.verdicts_by_category[static_cast<size_t>(info.category)].load(),
                    "\n");
  }
  return out;
}

}  // namespace idflow::collector
