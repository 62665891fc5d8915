#include "collector/collector.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "collector/convert.h"
#include "collector/dashboard.h"
#include "collector/grpc_status.h"
#include "collector/http/http_server.h"
#include "collector/limits.h"
#include "common/file_util.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "idflow/v1/ingest.grpc.pb.h"
#include "idflow/v1/query.grpc.pb.h"

namespace idflow::collector {

using idflow::v1::AgentMessage;
using idflow::v1::CollectorMessage;

namespace {

std::string Metadata(grpc::CallbackServerContext* ctx, const char* key) {
  auto it = ctx->client_metadata().find(key);
  if (it == ctx->client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// Verified identities of the client certificate (CN and SANs); empty over
// plaintext or without a client certificate.
std::vector<std::string> PeerIdentities(grpc::CallbackServerContext* ctx) {
  std::vector<std::string> out;
  auto auth = ctx->auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return out;
  for (const char* prop : {"x509_common_name", "x509_subject_alternative_name"}) {
    for (const auto& v : auth->FindPropertyValues(prop)) out.emplace_back(v.data(), v.size());
  }
  return out;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

store::DropCounts FromProto(const idflow::v1::DropCounters& d) {
  return {d.tap_dropped(), d.ingress_rejected(), d.spool_dropped(), d.disk_dropped(),
          d.dead_lettered()};
}

const char* DropCauseName(idflow::v1::DropCause c) {
  switch (c) {
    case idflow::v1::DROP_CAUSE_TAP:
      return "tap";
    case idflow::v1::DROP_CAUSE_INGRESS:
      return "ingress";
    case idflow::v1::DROP_CAUSE_SPOOL:
      return "spool";
    case idflow::v1::DROP_CAUSE_DISK:
      return "disk";
    case idflow::v1::DROP_CAUSE_DEAD_LETTER:
      return "dead_letter";
    default:
      return "unspecified";
  }
}

}  // namespace

// One reactor per agent stream. Each message is handled (and each batch
// committed) before the next read starts: the store's commit latency is the
// back-pressure, and an ack is only written after the commit (DESIGN §5).
// Every refusal goes through Fail(), which maps the status in one place.
class IngestReactor : public grpc::ServerBidiReactor<AgentMessage, CollectorMessage> {
 public:
  IngestReactor(Collector* c, grpc::CallbackServerContext* ctx) : c_(c), ctx_(ctx) {
    c_->counters().streams++;
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      End(grpc::Status::OK);
      return;
    }
    absl::Status st = Handle();
    if (!st.ok()) {
      Fail(st);
      return;
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
  absl::Status Handle() {
    switch (in_.msg_case()) {
      case AgentMessage::kHello:
        return OnHello(in_.hello());
      case AgentMessage::kBatch:
        RETURN_IF_ERROR(RequireCurrent());
        return Commit(in_.batch());
      case AgentMessage::kGap:
        RETURN_IF_ERROR(RequireCurrent());
        return OnGap(in_.gap());
      case AgentMessage::kDrops:
        RETURN_IF_ERROR(RequireCurrent());
        return c_->store().UpdateDrops(agent_id_, FromProto(in_.drops()), NowMs());
      default:
        return absl::InvalidArgumentError("empty agent message");
    }
  }

  absl::Status OnHello(const idflow::v1::AgentHello& hello) {
    if (!agent_id_.empty()) return absl::FailedPreconditionError("second hello on a stream");
    RETURN_IF_ERROR(ValidateAgentId(hello.agent_id()));
    absl::Status auth = AuthorizeAgent(c_->auth(), BearerToken(Metadata(ctx_, "authorization")),
                                       PeerIdentities(ctx_), hello.agent_id());
    if (!auth.ok()) {
      c_->counters().unauthenticated++;
      return auth;
    }
    agent_id_ = hello.agent_id();
    generation_ = c_->streams().Claim(agent_id_);
    store::AgentRecord a;
    a.agent_id = agent_id_;
    idflow::v1::Event bounded;  // reuse the event bounds for the device fields
    *bounded.mutable_device() = hello.device();
    BoundEvent(&bounded);
    a.device_id = bounded.device().id();
    a.device_class = bounded.device().class_();
    a.firmware = bounded.device().firmware();
    a.agent_version = hello.agent_version().substr(0, kMaxShortBytes);
    TruncateUtf8(&a.agent_version, kMaxShortBytes);
    a.last_seen_unix_ms = NowMs();
    a.drops = FromProto(hello.drops());
    RETURN_IF_ERROR(c_->store().UpsertAgent(a));
    ASSIGN_OR_RETURN(uint64_t last, c_->store().LastSeq(agent_id_));
    LogInfo(
        "agent ", agent_id_, " (device ", a.device_id, ") connected; stored up to ", last,
        a.drops.Total() ? absl::StrCat("; it reports ", a.drops.Total(), " dropped events") : "");
    CollectorMessage reply;
    reply.mutable_hello_ack()->set_stored_up_to(last);
    reply.mutable_hello_ack()->set_collector_id(c_->options().collector_id);
    Send(std::move(reply));
    return absl::OkStatus();
  }

  absl::Status RequireCurrent() {
    if (agent_id_.empty()) return absl::FailedPreconditionError("message before hello");
    if (!c_->streams().IsCurrent(agent_id_, generation_)) {
      c_->counters().superseded_streams++;
      return absl::AbortedError("superseded by a newer stream of the same agent");
    }
    return absl::OkStatus();
  }

  absl::Status Commit(const idflow::v1::EventBatch& batch) {
    if (batch.events_size() == 0) return absl::OkStatus();
    uint64_t first = batch.events(0).seq();
    uint64_t last = first + static_cast<uint64_t>(batch.events_size()) - 1;
    std::vector<store::EventRecord> records;
    records.reserve(batch.events_size());
    std::vector<Category> categories;
    categories.reserve(batch.events_size());
    size_t truncated = 0;
    for (int i = 0; i < batch.events_size(); ++i) {
      const idflow::v1::Event& in = batch.events(i);
      if (in.seq() != first + static_cast<uint64_t>(i) || first == 0 || last > kMaxSeq) {
        // Out of order or out of range: no part of the batch can be stored.
        return absl::InvalidArgumentError(
            absl::StrCat("batch seqs must run contiguously within 1..2^63-1; got ", in.seq(),
                         " at index ", i, " after ", first));
      }
      absl::Status valid = ValidateEvent(in);
      if (valid.ok() && !in.agent_id().empty() && in.agent_id() != agent_id_) {
        valid = absl::InvalidArgumentError("event of another agent on this stream");
      }
      if (!valid.ok()) return Reject(first, last, valid);
      idflow::v1::Event ev = in;
      truncated += BoundEvent(&ev);
      store::EventRecord rec = ToRecord(ev);
      rec.agent_id = agent_id_;
      categories.push_back(JudgeEvent(c_->policy(), &rec));
      records.push_back(std::move(rec));
    }
    RETURN_IF_ERROR(c_->store().AppendContiguous(agent_id_, records));
    // Counted once, after the commit.
    c_->counters().batches++;
    c_->counters().events += records.size();
    c_->counters().fields_truncated += truncated;
    for (size_t i = 0; i < records.size(); ++i) {
      c_->counters().verdicts_by_category[static_cast<size_t>(categories[i])]++;
      if (records[i].has_cookie) c_->counters().cookie_verdicts++;
    }
    CollectorMessage ack;
    ack.mutable_ack()->set_up_to(last);
    Send(std::move(ack));
    return absl::OkStatus();
  }

  absl::Status OnGap(const idflow::v1::SeqGap& gap) {
    if (gap.from_seq() == 0 || gap.to_seq() < gap.from_seq() || gap.to_seq() > kMaxSeq) {
      return absl::InvalidArgumentError(
          absl::StrCat("gap ", gap.from_seq(), "..", gap.to_seq(), " out of range"));
    }
    RETURN_IF_ERROR(
        c_->store().RecordGap(agent_id_, gap.from_seq(), gap.to_seq(), DropCauseName(gap.cause())));
    uint64_t n = gap.to_seq() - gap.from_seq() + 1;
    c_->counters().gap_events += n;
    LogWarning("agent ", agent_id_, " declared ", n, " events lost (", DropCauseName(gap.cause()),
               ", seq ", gap.from_seq(), "..", gap.to_seq(), ")");
    CollectorMessage ack;
    ack.mutable_ack()->set_up_to(gap.to_seq());
    Send(std::move(ack));
    return absl::OkStatus();
  }

  // A batch that can never be stored as sent: tell the agent which range to
  // set aside, then end the stream with the reason.
  absl::Status Reject(uint64_t first, uint64_t last, const absl::Status& why) {
    CollectorMessage msg;
    msg.mutable_reject()->set_from_seq(first);
    msg.mutable_reject()->set_to_seq(last);
    msg.mutable_reject()->set_reason(std::string(why.message()));
    Send(std::move(msg));
    return why;
  }

  void Fail(const absl::Status& st) {
    if (absl::IsUnavailable(st) || absl::IsResourceExhausted(st) || absl::IsInternal(st) ||
        absl::IsDataLoss(st)) {
      c_->counters().store_errors++;
      LogError("agent ", agent_id_.empty() ? "(no hello)" : agent_id_, ": ", st.ToString());
    } else if (!absl::IsAborted(st) && !absl::IsUnauthenticated(st)) {
      c_->counters().rejected_streams++;
      LogWarning("agent ", agent_id_.empty() ? "(no hello)" : agent_id_,
                 ": stream refused: ", st.ToString());
    }
    End(ToGrpcStatus(st));
  }

  // One write outstanding; a newer cumulative ack replaces one not yet sent.
  void Send(CollectorMessage msg) {
    std::unique_lock lock(mu_);
    if (msg.has_hello_ack()) {
      hello_ = std::move(msg);
      has_hello_ = true;
    } else if (msg.has_reject()) {
      reject_ = std::move(msg);
      has_reject_ = true;
    } else {
      pending_ack_ = std::max(pending_ack_, msg.ack().up_to());
    }
    if (writing_) return;
    bool start = PrepareNextLocked();
    lock.unlock();
    if (start) StartWrite(&out_);
  }

  // Moves the next message into out_; true when a write should start. Acks
  // go before a reject: they name what was stored before the refused batch.
  bool PrepareNextLocked() {
    if (has_hello_) {
      out_ = std::move(hello_);
      has_hello_ = false;
    } else if (pending_ack_ != 0) {
      out_.Clear();
      out_.mutable_ack()->set_up_to(pending_ack_);
      pending_ack_ = 0;
    } else if (has_reject_) {
      out_ = std::move(reject_);
      has_reject_ = false;
    } else {
      return false;
    }
    writing_ = true;
    return true;
  }

  // Finish waits for outstanding writes (the reject included) to complete.
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
  grpc::CallbackServerContext* const ctx_;
  std::string agent_id_;
  uint64_t generation_ = 0;
  AgentMessage in_;
  std::mutex mu_;         // std::mutex: visible to ThreadSanitizer
  CollectorMessage out_;  // owned by the write in flight (writing_)
  CollectorMessage hello_;
  bool has_hello_ = false;
  CollectorMessage reject_;
  bool has_reject_ = false;
  uint64_t pending_ack_ = 0;
  bool writing_ = false;
  bool finish_pending_ = false;
  grpc::Status finish_status_;
};

class Collector::IngestService : public idflow::v1::Ingest::CallbackService {
 public:
  explicit IngestService(Collector* c) : c_(c) {}
  grpc::ServerBidiReactor<AgentMessage, CollectorMessage>* Stream(
      grpc::CallbackServerContext* ctx) override {
    return new IngestReactor(c_, ctx);
  }

 private:
  Collector* const c_;
};

namespace {

// Page tokens are opaque to clients; here they are "o<offset>".
constexpr size_t kDefaultPageSize = 500;
constexpr size_t kMaxPageSize = 1000;
// Stop filling a page well under the 4 MiB default message limit.
constexpr size_t kMaxResponseBytes = 3u << 20;

absl::StatusOr<size_t> DecodePageToken(const std::string& token) {
  if (token.empty()) return 0;
  size_t offset = 0;
  if (token[0] != 'o' || !absl::SimpleAtoi(absl::string_view(token).substr(1), &offset)) {
    return absl::InvalidArgumentError("bad page_token");
  }
  return offset;
}

size_t PageSize(uint32_t requested, uint32_t filter_limit) {
  size_t n = requested ? requested : (filter_limit ? filter_limit : kDefaultPageSize);
  return std::min(n, kMaxPageSize);
}

}  // namespace

class Collector::QueryService : public idflow::v1::Query::CallbackService {
 public:
  QueryService(Collector* c, std::string token) : c_(c), token_(std::move(token)) {}

  grpc::ServerUnaryReactor* ListVerdicts(grpc::CallbackServerContext* ctx,
                                         const idflow::v1::ListVerdictsRequest* req,
                                         idflow::v1::ListVerdictsResponse* resp) override {
    return Answer(ctx, [&] {
      return ListPage(
          *req, [&](const store::VerdictFilter& f) { return c_->store().QueryVerdicts(f); },
          resp->mutable_verdicts(), resp->mutable_next_page_token());
    });
  }

  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* ctx,
                                       const idflow::v1::ListEventsRequest* req,
                                       idflow::v1::ListEventsResponse* resp) override {
    return Answer(ctx, [&] {
      return ListPage(
          *req, [&](const store::VerdictFilter& f) { return c_->store().QueryEvents(f); },
          resp->mutable_events(), resp->mutable_next_page_token());
    });
  }

  grpc::ServerUnaryReactor* Count(grpc::CallbackServerContext* ctx,
                                  const idflow::v1::CountRequest* req,
                                  idflow::v1::CountResponse* resp) override {
    return Answer(ctx, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(uint64_t n, c_->store().CountEvents(collector::FromProto(req->filter())));
      resp->set_events(n);
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* ctx,
                                       const idflow::v1::ListAgentsRequest* req,
                                       idflow::v1::ListAgentsResponse* resp) override {
    return Answer(ctx, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(size_t offset, DecodePageToken(req->page_token()));
      size_t page = PageSize(req->page_size(), 0);
      ASSIGN_OR_RETURN(auto agents, c_->store().ListAgents(req->device(), page + 1, offset));
      Paginate(agents, page, offset, resp->mutable_agents(), resp->mutable_next_page_token());
      return absl::OkStatus();
    });
  }

 private:
  // Every Query call: authorize, run, and map the status in one place.
  template <typename Body>
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx, Body body) {
    auto* reactor = ctx->DefaultReactor();
    absl::Status st = Authorize(ctx);
    if (st.ok()) st = body();
    reactor->Finish(ToGrpcStatus(st));
    return reactor;
  }

  // One page of a filtered listing (verdict groups or events).
  template <typename Request, typename Query, typename Repeated>
  static absl::Status ListPage(const Request& req, Query query, Repeated* out,
                               std::string* next_token) {
    store::VerdictFilter f = collector::FromProto(req.filter());
    ASSIGN_OR_RETURN(f.offset, DecodePageToken(req.page_token()));
    size_t page = PageSize(req.page_size(), req.filter().limit());
    f.limit = page + 1;
    ASSIGN_OR_RETURN(auto items, query(f));
    Paginate(items, page, f.offset, out, next_token);
    return absl::OkStatus();
  }

  absl::Status Authorize(grpc::CallbackServerContext* ctx) {
    if (token_.empty()) return absl::OkStatus();
    std::string bearer = BearerToken(Metadata(ctx, "authorization"));
    if (!bearer.empty() && TokensMatch(bearer, token_)) return absl::OkStatus();
    c_->counters().unauthenticated++;
    return absl::UnauthenticatedError("bad or missing token");
  }

  // Adds items while the response stays under kMaxResponseBytes; the next
  // page starts at the first item left out.
  template <typename Item, typename Repeated>
  static void Paginate(const std::vector<Item>& items, size_t page, size_t offset, Repeated* out,
                       std::string* next_token) {
    size_t bytes = 0, taken = 0;
    for (; taken < items.size() && taken < page; ++taken) {
      auto msg = ToProto(items[taken]);
      size_t size = msg.ByteSizeLong() + 8;  // field tag and length
      if (taken > 0 && bytes + size > kMaxResponseBytes) break;
      bytes += size;
      *out->Add() = std::move(msg);
    }
    if (taken < items.size()) *next_token = absl::StrCat("o", offset + taken);
  }

  Collector* const c_;
  const std::string token_;
};

absl::StatusOr<std::unique_ptr<Collector>> Collector::Start(const CollectorOptions& options) {
  std::unique_ptr<Collector> c(new Collector());
  c->options_ = options;
  if (options.policies_dir.empty()) return absl::InvalidArgumentError("--policies is required");
  if (options.store_url.empty()) return absl::InvalidArgumentError("--store is required");
  ASSIGN_OR_RETURN(c->policy_, policy::LoadPolicyDir(options.policies_dir));

  c->auth_.shared_token = options.auth_token;
  if (!options.agent_tokens_file.empty()) {
    ASSIGN_OR_RETURN(c->auth_.agent_token_sha256, LoadAgentTokens(options.agent_tokens_file));
  }
  c->auth_.mtls = !options.tls_client_ca.empty();
  if (!IsLoopbackListen(options.listen) && !c->auth_.Any() &&
      !options.allow_unauthenticated_ingest) {
    return absl::InvalidArgumentError(
        absl::StrCat("refusing to accept agents on ", options.listen,
                     " without credentials: give --tls-client-ca (mutual TLS), --agent-tokens or "
                     "--auth-token-file, or --allow-unauthenticated-ingest to accept anyone"));
  }
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
#define IDFLOW_COUNTER_TEXT_(member, name, help)                                        \
  absl::StrAppend(&out, "# HELP " name " " help "\n# TYPE " name " counter\n" name " ", \
                  counters_.member.load(), "\n");
  IDFLOW_COLLECTOR_COUNTERS(IDFLOW_COUNTER_TEXT_)
#undef IDFLOW_COUNTER_TEXT_
  absl::StrAppend(&out,
                  "# HELP idflow_collector_verdicts_total Verdicts committed, by category and "
                  "finding.\n",
                  "# TYPE idflow_collector_verdicts_total counter\n");
  for (const CategoryInfo& info : kCategories) {
    absl::StrAppend(&out, "idflow_collector_verdicts_total{verdict=\"", info.name, "\",finding=\"",
                    FindingName(info.finding), "\"} ",
                    counters_.verdicts_by_category[static_cast<size_t>(info.category)].load(),
                    "\n");
  }
  // Per-agent loss, as the agents report it: "no violations" must never mean
  // "no data". Bounded by the number of agents one collector serves.
  auto agents = store_->ListAgents("", 10000, 0);
  if (agents.ok()) {
    absl::StrAppend(&out,
                    "# HELP idflow_agent_dropped_events Events an agent reports lost, by cause "
                    "(cumulative).\n# TYPE idflow_agent_dropped_events gauge\n");
    for (const auto& a : *agents) {
      const std::pair<const char*, uint64_t> causes[] = {{"tap", a.drops.tap},
                                                         {"ingress", a.drops.ingress},
                                                         {"spool", a.drops.spool},
                                                         {"disk", a.drops.disk},
                                                         {"dead_letter", a.drops.dead_letter}};
      for (const auto& [cause, n] : causes) {
        absl::StrAppend(&out, "idflow_agent_dropped_events{agent=\"", a.agent_id, "\",device=\"",
                        JsonEscape(a.device_id), "\",cause=\"", cause, "\"} ", n, "\n");
      }
    }
    absl::StrAppend(&out,
                    "# HELP idflow_agent_stored_up_to Highest sequence number accounted for "
                    "(stored or declared lost).\n# TYPE idflow_agent_stored_up_to gauge\n");
    for (const auto& a : *agents) {
      absl::StrAppend(&out, "idflow_agent_stored_up_to{agent=\"", a.agent_id, "\"} ",
                      a.stored_up_to, "\n");
    }
  }
  return out;
}

}  // namespace idflow::collector
