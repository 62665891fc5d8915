#include "agent/agent.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <map>
#include <optional>

#include <grpcpp/security/credentials.h>

#include <boost/asio/post.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "common/version.h"

namespace idflow::agent {

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentOptions& options) {
  if (options.collectors.empty()) return absl::InvalidArgumentError("--collector is required");
  if (options.socket_path.empty()) return absl::InvalidArgumentError("--socket is required");
  if (options.spool_dir.empty()) return absl::InvalidArgumentError("--spool is required");
  if (options.identity_file.empty()) return absl::InvalidArgumentError("--identity is required");
  std::unique_ptr<Agent> a(new Agent());
  a->options_ = options;
  a->pending_limit_ = options.max_pending;
  a->flush_interval_ = options.flush_interval;
  ASSIGN_OR_RETURN(a->identity_, LoadIdentityFile(options.identity_file));
  if (!options.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(options.tls_ca));
    if (!options.tls_cert.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadFile(options.tls_cert));
      ASSIGN_OR_RETURN(ssl.pem_private_key, ReadFile(options.tls_key));
    }
    a->credentials_ = grpc::SslCredentials(ssl);
  }
  std::vector<Identifier> discovered;
  if (absl::Status st = DiscoverSysfs(options.sysfs_root, &discovered); !st.ok()) {
    LogWarning("sysfs discovery failed: ", st.message(), "; using the identity file only");
  }
  ASSIGN_OR_RETURN(PatternDb db, PatternDb::Build(a->identity_, discovered));
  LogInfo("inventory: ", a->identity_.identifiers.size(), " declared and ", discovered.size(),
          " discovered identifiers, ", db.size(), " patterns");
  a->patterns_ = std::make_shared<const PatternDb>(std::move(db));
  ASSIGN_OR_RETURN(a->drops_, DropCounterStore::Open(options.spool_dir + "/drops"));
  SpoolOptions spool;
  spool.dir = options.spool_dir;
  spool.max_bytes = options.spool_max_bytes;
  spool.drops = a->drops_.get();
  spool.sync_interval = options.spool_sync_interval;
  // A full disk is retried at most every second: one failed write a second
  // costs nothing, and events are not dropped long after space came back.
  spool.max_backoff = std::chrono::milliseconds(1000);
  ASSIGN_OR_RETURN(a->spool_, Spool::Open(spool));
  // What a killed agent had received but not spooled yet.
  ASSIGN_OR_RETURN(a->journal_,
                   Journal::Open(options.spool_dir + "/ingress.journal", /*buffered=*/true));
  ASSIGN_OR_RETURN(JournalReplay replay, a->journal_->ReplayAll(a->spool_->last_seq()));
  if (replay.torn_from != 0) {
    // A kill cut the last spool append short: its prefix goes, the journal
    // spools the whole flush again.
    const uint64_t was = a->spool_->last_seq();
    if (absl::Status st = a->spool_->DiscardTail(replay.torn_from); st.ok()) {
      LogWarning("spool: seqs ", replay.torn_from, "..", was,
                 " were a cut-short append; spooling that flush again from the journal");
    } else {
      LogError("spool: cannot drop the cut-short append (", st.ToString(),
               "); its events may be stored twice");
    }
  }
  std::vector<idflow::v1::Event>& replayed = replay.events;
  for (const auto& [id, next] : replay.cursors) a->ring_cursors_[id] = next;
  if (!replayed.empty()) {
    const size_t n = replayed.size();
    // On failure the spool counts them as disk drops: nothing is lost silently.
    absl::Status st = a->spool_->Append(&replayed);
    if (st.ok()) {
      LogInfo("journal: recovered ", n, " events received before the last stop");
    } else {
      LogError("journal: ", n, " recovered events could not be spooled: ", st.ToString());
    }
  }
  RETURN_IF_ERROR(a->journal_->Reset());
  a->RejournalCursors();
  return a;
}

Agent::~Agent() { Stop(); }

absl::Status Agent::Start() {
  TapIngress::Options ing;
  ing.socket_path = options_.socket_path;
  ing.socket_gid = options_.socket_gid;
  ing.allow_uids = options_.allow_uids;
  ing.allow_gids = options_.allow_gids;
  ing.max_connections = options_.max_connections;
  ing.max_connections_per_uid = options_.max_connections_per_uid;
  ing.rate_per_second = options_.tap_rate_per_second;
  ing.rate_burst = options_.tap_rate_burst;
  ing.ring_resume = [this](uint64_t ring_id) { return TakeRingCursor(ring_id); };
  // One journal write per drain pass, before its ring slots are freed.
  ing.before_release = [this] {
    CommitJournal();
    batch_cursors_.clear();
  };
  ing.wake_delay = options_.ring_wake_delay;
  ing.on_loss = [this](TapIngress::Loss loss, uint64_t n) {
    if (loss == TapIngress::Loss::kTap) {
      counters_.tap_dropped += n;
      drops_->Add(idflow::v1::DROP_CAUSE_TAP, n);
      // The ring is told these are counted once this returns: make it durable.
      if (absl::Status st = drops_->Flush(); !st.ok()) LogError("drop counters: ", st.ToString());
    } else {
      counters_.ingress_dropped += n;
      drops_->Add(idflow::v1::DROP_CAUSE_INGRESS, n);
    }
  };
  ing.on_ring_drops = [this](uint64_t ring_id, uint64_t n, uint64_t upto) {
    counters_.tap_dropped += n;
    if (absl::Status st = drops_->AddRingDrops(ring_id, n, upto); !st.ok()) {
      LogError("drop counters: ", st.ToString());
    }
  };
  ing.ring_drops_marked = [this](uint64_t ring_id) { drops_->ForgetRing(ring_id); };
  ing.ring_drops_counted = [this](uint64_t ring_id) { return drops_->RingDropsCounted(ring_id); };
  ingress_ = std::make_unique<TapIngress>(
      io_, ing, [this](const TapHello& who, const TapEvent& ev) { OnTapEvent(who, ev); },
      [this](const TapHello&, const TapStats& st) { OnTapStats(st); },
      [this](const TapHello& who) {
        // The ring was drained at close: the process's events are all in.
        context_.ForgetProcess(static_cast<uint32_t>(who.peer.pid));
        if (who.run_id.empty()) return;
        if (auto it = open_runs_.find(who.run_id); it != open_runs_.end() && --it->second == 0) {
          open_runs_.erase(it);
        }
        if (!flush_waiters_.empty()) CheckFlushWaiters();
      });
  ingress_->SetHelloCallback([this](const TapHello& who) {
    if (!who.run_id.empty()) ++open_runs_[who.run_id];
  });
  ingress_->SetControlCallback(
      [this](const PeerCredentials& peer, const ControlRequest& req, TapIngress::Respond respond) {
        OnControl(peer, req, std::move(respond));
      });
  ingress_->SetStatusCallback([this](const PeerCredentials&, TapIngress::Respond respond) {
    ControlReply reply;
    reply.status = Status();
    reply.agent_id = reply.status->agent_id;
    respond(reply);
  });
  // Cookie names/lifetimes (issue 4): an event with `cookie` set and no
  // identifier, for the cookie policies.
  ingress_->SetCookieCallback([this](const TapHello& who, const TapCookie& c) {
    counters_.events_in++;
    if (Shed(c.ring_id, c.ring_next)) return;
    Accept(EnrichCookie(who, c), /*aggregate=*/false, c.ring_id, c.ring_next);
  });
  ingress_->UpdatePatterns(patterns_);
  // TLS inside programs (static OpenSSL, Node.js, Go): the uprobe source.
  TlsUprobeOptions to;
  to.enabled = options_.tls_uprobes;
  to.ring_bytes = options_.tls_uprobe_ring_bytes;
  tls_uprobes_ = TlsUprobeSource::Create(
      io_, to, [this](const TlsWrite& w) { OnTlsWrite(w); }, [this](pid_t pid) { OnTlsExit(pid); });
  if (tls_uprobes_->available()) {
    LogInfo("tls uprobes: available (processes are watched on request)");
  } else {
    LogInfo("tls uprobes: unavailable (", tls_uprobes_->unavailable_reason(),
            "): TLS inside programs (static OpenSSL, Node.js, Go) is not seen; the preload tap "
            "still sees libssl and libgnutls");
  }
  for (const std::string& exe : options_.tls_uprobe_executables) {
    TlsCoverage c = tls_uprobes_->WatchExecutable(exe);
    LogInfo("tls coverage of every process of ", exe, ": ", TlsCoverageLine(c, false));
  }
  RETURN_IF_ERROR(ingress_->Start());

  SenderOptions so;
  so.collectors = options_.collectors;
  so.credentials = credentials_;
  so.device.set_id(identity_.device_id);
  so.device.set_class_(identity_.device_class);
  so.device.set_firmware(identity_.firmware);
  so.drops = drops_.get();
  so.bearer_token = options_.bearer_token;
  so.batch_linger = options_.send_linger;
  sender_ = std::make_unique<Sender>(so, spool_.get());
  sender_->Start();
  flush_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  flush_wait_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  ScheduleFlush();
  WatchdogOptions wo;
  wo.max_rss_bytes = options_.watchdog_max_rss_bytes;
  wo.max_cpu_percent = options_.watchdog_max_cpu_percent;
  watchdog_ =
      std::make_unique<Watchdog>(wo, Watchdog::Actions{[this](MemoryLevel l) { OnMemoryLevel(l); },
                                                       [this](CpuLevel l) { OnCpuLevel(l); }});
  // Start-up (identity, pattern compile, library loading) leaves freed heap
  // and library pages mapped that the running agent never touches again.
  ReleaseMemory("after start-up");
  // Also with both limits off: the status shows RSS and CPU.
  watchdog_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  watchdog_->Check();
  ScheduleWatchdog();
  auto st = spool_->stats();
  LogInfo("agent ", spool_->agent_id(), " listening on ", options_.socket_path, "; spool ",
          options_.spool_dir, " holds ", st.next_seq - 1 - st.acked, " unacked events");
  return absl::OkStatus();
}

void Agent::Run() { io_.run(); }

void Agent::Stop() {
  if (stopped_.exchange(true)) return;
  if (flush_timer_) flush_timer_->cancel();
  if (flush_wait_timer_) flush_wait_timer_->cancel();
  if (watchdog_timer_) watchdog_timer_->cancel();
  if (ingress_) ingress_->Stop();
  if (tls_uprobes_) {
    tls_uprobes_->Drain();
    CollectTlsLosses();
    tls_uprobes_.reset();  // detaches every probe
  }
  Flush();  // whatever is pending is durable before we go
  if (sender_) sender_->Stop();
  if (spool_) {
    if (absl::Status st = spool_->Sync(); !st.ok()) LogError("spool sync: ", st.ToString());
  }
  if (drops_) {
    if (absl::Status st = drops_->Flush(); !st.ok()) LogError("drop counters: ", st.ToString());
  }
  io_.stop();
}

uint64_t Agent::FlushNow() {
  if (stopped_) return spool_->last_seq();  // Stop() flushed already
  std::promise<uint64_t> done;
  std::future<uint64_t> seq = done.get_future();
  boost::asio::post(io_, [this, &done] {
    if (tls_uprobes_) tls_uprobes_->Drain();
    Flush();
    done.set_value(spool_->last_seq());
  });
  return seq.get();
}

void Agent::ScheduleFlush() {
  flush_timer_->expires_after(flush_interval_);
  flush_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    CollectTlsLosses();
    Flush();
    ScheduleFlush();
  });
}

void Agent::Flush() {
  if (pending_.empty()) return;
  // The marker lets a replay tell whether this append reached the spool;
  // it goes out with the events journaled since the last commit.
  const uint64_t last = spool_->last_seq();
  (void)journal_->MarkFlush(last + 1, last + pending_.size());
  CommitJournal();
  absl::Status st = spool_->Append(&pending_);
  // Spooled, or counted by the spool as disk drops: either way they are
  // accounted for and must not be retried (that would spin on a full disk).
  pending_.clear();
  pending_index_.clear();
  // After a failure the journal must forget the batch at once (a replay
  // would spool what was counted); after a success its marker says the
  // spool has it, so the file is only cut when it grows past a bound.
  if (!st.ok() || journal_->bytes() > options_.journal_max_bytes) ResetJournal();
  if (st.ok()) {
    if (spool_failing_) LogInfo("spool writable again");
    spool_failing_ = false;
    if (sender_) sender_->Notify(spool_->last_seq());
    return;
  }
  counters_.spool_errors++;
  // Unavailable: failing fast while the spool backs off; the streak's first
  // failure was logged already.
  if (!spool_failing_ && !absl::IsUnavailable(st)) {
    LogError("spool append failed (events counted as disk drops until it recovers): ",
             st.ToString());
    spool_failing_ = true;
  }
}

void Agent::CommitJournal() {
  absl::Status st = journal_->Commit();
  if (!st.ok()) {
    // The events stay in memory: only their kill -9 safety is lost.
    counters_.journal_errors++;
    if (!journal_failing_) LogError("ingress journal: ", st.ToString());
    journal_failing_ = true;
  } else {
    journal_failing_ = false;
  }
}

void Agent::ResetJournal() {
  if (absl::Status rs = journal_->Reset(); !rs.ok()) counters_.journal_errors++;
  RejournalCursors();
}

namespace {

// Every string an event carries came from the device as bytes (paths, HTTP
// headers, cookie names): make each valid UTF-8, or the event could not be
// serialized or parsed back from the spool and would be lost.
void MakeEventUtf8(idflow::v1::Event* ev) {
  auto* o = ev->mutable_origin();
  MakeValidUtf8(o->mutable_exe());
  MakeValidUtf8(o->mutable_module());
  for (auto& m : *o->mutable_call_chain()) MakeValidUtf8(m.mutable_path());
  auto* d = ev->mutable_destination();
  MakeValidUtf8(d->mutable_hostname());
  MakeValidUtf8(d->mutable_peer_exe());
  MakeValidUtf8(ev->mutable_identifier()->mutable_snippet());
  if (ev->has_cookie()) {
    MakeValidUtf8(ev->mutable_cookie()->mutable_name());
    MakeValidUtf8(ev->mutable_cookie()->mutable_domain());
  }
  auto* ctx = ev->mutable_context();
  for (auto& s : *ctx->mutable_scenarios()) MakeValidUtf8(&s);
  bool bad_key = false;
  for (const auto& [k, v] : ctx->consents()) bad_key |= !IsValidUtf8(k);
  if (bad_key) {
    std::map<std::string, bool> fixed;
    for (const auto& [k, v] : ctx->consents()) fixed[ToValidUtf8(k)] = v;
    ctx->clear_consents();
    for (const auto& [k, v] : fixed) (*ctx->mutable_consents())[k] = v;
  }
}

}  // namespace

void Agent::Accept(idflow::v1::Event enriched, bool aggregate, uint64_t ring_id,
                   uint64_t ring_next) {
  MakeEventUtf8(&enriched);
  if (ring_id != 0) {
    // Held until the drain pass ends (before_release commits it).
    (void)journal_->Append(enriched, ring_id, ring_next);
    batch_cursors_[ring_id] = ring_next;
  } else {
    (void)journal_->Append(enriched);
    CommitJournal();  // from the socket: received now, journaled now
  }
  std::string key;
  if (aggregate) {
    // Repeats within one flush window (an SDK heartbeat carrying the same
    // MAC) become one event with a count and first/last seen.
    key = AggregationKey(enriched);
    if (auto it = pending_index_.find(key); it != pending_index_.end()) {
      idflow::v1::Event& agg = pending_[it->second];
      agg.set_count(agg.count() + 1);
      agg.set_first_seen_unix_ms(std::min(agg.first_seen_unix_ms(), enriched.first_seen_unix_ms()));
      agg.set_last_seen_unix_ms(std::max(agg.last_seen_unix_ms(), enriched.last_seen_unix_ms()));
      counters_.aggregated++;
      return;
    }
  }
  if (pending_.size() >= pending_limit_) {
    counters_.pending_dropped++;
    drops_->Add(idflow::v1::DROP_CAUSE_INGRESS, 1);
    return;
  }
  if (aggregate) pending_index_.emplace(std::move(key), pending_.size());
  pending_.push_back(std::move(enriched));
  if (pending_.size() >= 256) Flush();
}

bool Agent::Shed(uint64_t ring_id, uint64_t ring_next) {
  if (watchdog_ == nullptr || !watchdog_->shedding()) return false;
  // Over a limit at its last step: refused before any work is spent on it,
  // and declared to the collector.
  counters_.watchdog_shed++;
  drops_->Add(idflow::v1::DROP_CAUSE_INGRESS, 1);
  if (ring_id != 0) batch_cursors_[ring_id] = ring_next;
  return true;
}

uint64_t Agent::TakeRingCursor(uint64_t ring_id) {
  std::lock_guard lock(cursors_mu_);
  auto it = ring_cursors_.find(ring_id);
  if (it == ring_cursors_.end()) return 0;
  uint64_t next = it->second;
  ring_cursors_.erase(it);
  return next;
}

void Agent::RejournalCursors() {
  std::lock_guard lock(cursors_mu_);
  // Bounded: rings of processes that never come back are forgotten first.
  while (ring_cursors_.size() > 4096) ring_cursors_.erase(ring_cursors_.begin());
  for (const auto& [id, next] : ring_cursors_) (void)journal_->AppendCursor(id, next);
  for (const auto& [id, next] : batch_cursors_) (void)journal_->AppendCursor(id, next);
  CommitJournal();
}

TapIngress::Counters Agent::ingress_counters() const {
  return ingress_ ? ingress_->counters() : TapIngress::Counters{};
}

void Agent::OnTapEvent(const TapHello& who, const TapEvent& ev) {
  counters_.events_in++;
  if (patterns_->Lookup(ev.pattern_id) == nullptr) {
    counters_.unknown_pattern++;
    drops_->Add(idflow::v1::DROP_CAUSE_INGRESS, 1);
    return;
  }
  if (Shed(ev.ring_id, ev.ring_next)) return;
  Accept(Enrich(who, ev), /*aggregate=*/true, ev.ring_id, ev.ring_next);
}

void Agent::OnTapStats(const TapStats& stats) {
  counters_.tap_dropped += stats.events_dropped;
  drops_->Add(idflow::v1::DROP_CAUSE_TAP, stats.events_dropped);
}

std::string Agent::AggregationKey(const idflow::v1::Event& e) {
  // The chain is part of the key: the same identifier reaching the same
  // place through two different stacks may be judged differently.
  std::string chain;
  for (const auto& m : e.origin().call_chain()) absl::StrAppend(&chain, m.path(), ">");
  // So is the context: events on both sides of a context change are judged
  // apart.
  std::string context = absl::StrCat(e.run_id(), "|", absl::StrJoin(e.context().scenarios(), ","));
  std::map<std::string, bool> consents(e.context().consents().begin(),
                                       e.context().consents().end());
  for (const auto& [k, v] : consents) absl::StrAppend(&context, "|", k, v ? "=1" : "=0");
  return absl::StrCat(e.origin().pid(), "|", chain, "|", e.action(), "|", e.channel(), "|",
                      e.destination().ip(), "|", e.destination().port(), "|",
                      e.destination().hostname(), "|", e.destination().peer_exe(), "|",
                      e.identifier().digest(), "|", e.identifier().encoding(), "|", context);
}

void Agent::FillCommon(const TapHello& who, uint32_t pid, const std::vector<TapModule>& chain,
                       uint64_t timestamp_ms, idflow::v1::Event* out) const {
  out->mutable_device()->set_id(identity_.device_id);
  out->mutable_device()->set_class_(identity_.device_class);
  out->mutable_device()->set_firmware(identity_.firmware);
  auto* origin = out->mutable_origin();
  // The kernel's view of the peer (SO_PEERCRED, /proc/PID/exe) when there is
  // one; the tap's claims only otherwise (tests feeding decoded messages).
  if (who.peer.valid) {
    origin->set_pid(static_cast<uint32_t>(who.peer.pid));
    origin->set_exe(who.peer.exe);  // "" if the process was gone at accept
  } else {
    origin->set_pid(pid ? pid : who.pid);
    origin->set_exe(who.exe);
  }
  // origin.module and origin.sdk stay empty: the collector picks the
  // responsible module from the chain with its own bindings.
  for (const TapModule& m : chain) {
    auto* cm = origin->add_call_chain();
    cm->set_path(m.path);
    cm->set_build_id(m.build_id);
  }
  // The context active when the event happened: what the process declared,
  // changed since by `context set` (context.h).
  ActiveContext declared{who.scenarios, who.consents, who.run_id};
  ActiveContext active = context_.Resolve(declared, static_cast<uint32_t>(origin->pid()),
                                          static_cast<int64_t>(timestamp_ms));
  for (const auto& s : active.scenarios) out->mutable_context()->add_scenarios(s);
  for (const auto& [k, v] : active.consents) (*out->mutable_context()->mutable_consents())[k] = v;
  out->set_run_id(active.run_id);
  out->set_count(1);
  out->set_first_seen_unix_ms(static_cast<int64_t>(timestamp_ms));
  out->set_last_seen_unix_ms(static_cast<int64_t>(timestamp_ms));
}

idflow::v1::Event Agent::Enrich(const TapHello& who, const TapEvent& ev) const {
  idflow::v1::Event out;
  FillCommon(who, ev.pid, ev.call_chain, ev.timestamp_ms, &out);
  out.set_action(ev.action == TapAction::kAcquire ? idflow::v1::ACTION_ACQUIRE
                                                  : idflow::v1::ACTION_TRANSMIT);
  out.set_channel(std::string(ChannelName(ev.channel)));
  out.mutable_destination()->set_ip(ev.address);
  out.mutable_destination()->set_port(ev.port);
  out.mutable_destination()->set_hostname(ev.hostname);
  out.mutable_destination()->set_peer_exe(ev.peer_exe);
  const PatternInfo* info = patterns_->Lookup(ev.pattern_id);
  auto* id = out.mutable_identifier();
  id->set_kind(info->kind);
  id->set_instance(info->instance);
  id->set_encoding(info->encoding);
  id->set_digest(info->digest);
  id->set_offset(static_cast<int64_t>(ev.offset));
  id->set_snippet(patterns_->Redact(ev.context));
  return out;
}

idflow::v1::Event Agent::EnrichCookie(const TapHello& who, const TapCookie& c) const {
  idflow::v1::Event out;
  FillCommon(who, c.pid, c.call_chain, c.timestamp_ms, &out);
  // A cookie moves over the connection either way; the direction says who
  // set it, and the action stays "transmit" as for every network event.
  out.set_action(idflow::v1::ACTION_TRANSMIT);
  out.set_channel(std::string(ChannelName(c.channel)));
  out.mutable_destination()->set_ip(c.address);
  out.mutable_destination()->set_port(c.port);
  out.mutable_destination()->set_hostname(c.hostname);
  auto* cookie = out.mutable_cookie();
  cookie->set_name(c.name);
  cookie->set_direction(c.outgoing ? idflow::v1::COOKIE_SENT_BY_CLIENT
                                   : idflow::v1::COOKIE_SET_BY_SERVER);
  cookie->set_session(c.session);
  cookie->set_has_max_age(c.has_max_age);
  cookie->set_max_age_seconds(c.has_max_age ? c.max_age_seconds : 0);
  cookie->set_domain(c.domain);
  return out;
}

}  // namespace idflow::agent

namespace idflow::agent {

void Agent::OnControl(const PeerCredentials& peer, const ControlRequest& request,
                      TapIngress::Respond respond) {
  ControlReply reply;
  if (const auto* set = std::get_if<ContextSetRequest>(&request)) {
    const bool privileged = peer.uid == 0 || peer.uid == ::geteuid();
    const bool own = set->pid != 0 && static_cast<pid_t>(set->pid) == peer.pid;
    if (!privileged && !(own && options_.allow_app_context)) {
      reply.code = absl::StatusCode::kPermissionDenied;
      reply.text = absl::StrCat("uid ", peer.uid, " may not change the ",
                                set->pid == 0 ? "device's" : "process's",
                                " context (root or the agent's user may)");
      LogWarning("context change refused: pid ", peer.pid, " uid ", peer.uid, " (", peer.exe, ")");
      return respond(reply);
    }
    if (set->pid != 0 && ::kill(static_cast<pid_t>(set->pid), 0) != 0 && errno == ESRCH) {
      reply.code = absl::StatusCode::kNotFound;
      reply.text = absl::StrCat("no process ", set->pid);
      return respond(reply);
    }
    const int64_t now = absl::ToUnixMillis(absl::Now());
    if (!context_.Set(set->pid, now, set->patch)) {
      reply.code = absl::StatusCode::kResourceExhausted;
      reply.text = absl::StrCat("context changes are held for at most ",
                                ContextBoard::kMaxProcessScopes, " processes");
      return respond(reply);
    }
    LogInfo("context of ",
            set->pid == 0 ? std::string("the device") : absl::StrCat("pid ", set->pid),
            " changed by pid ", peer.pid, " uid ", peer.uid);
    reply.applied_unix_ms = static_cast<uint64_t>(now);
    return respond(reply);
  }
  if (const auto* watch = std::get_if<WatchTlsRequest>(&request)) {
    return respond(WatchTls(peer, *watch));
  }
  const auto& flush = std::get<FlushRunRequest>(request);
  // Writes the probes saw before this request are read first.
  if (tls_uprobes_) tls_uprobes_->Drain();
  // At most 10 minutes: a forgotten daemon of the run must not pin a waiter.
  const auto wait = std::chrono::milliseconds(std::min<uint32_t>(flush.timeout_ms, 600000));
  flush_waiters_.push_back(
      {flush.run_id, std::chrono::steady_clock::now() + wait, std::move(respond)});
  CheckFlushWaiters();
}

namespace {

// The real uid of a process; nullopt when it is gone.
std::optional<uid_t> ProcessUid(pid_t pid) {
  absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (!absl::ConsumePrefix(&line, "Uid:")) continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    uint32_t uid = 0;
    if (!f.empty() && absl::SimpleAtoi(f[0], &uid)) return static_cast<uid_t>(uid);
  }
  return std::nullopt;
}

}  // namespace

ControlReply Agent::WatchTls(const PeerCredentials& peer, const WatchTlsRequest& req) {
  ControlReply reply;
  const pid_t pid = static_cast<pid_t>(req.pid);
  std::optional<uid_t> uid = ProcessUid(pid);
  if (!uid) {
    reply.code = absl::StatusCode::kNotFound;
    reply.text = absl::StrCat("no process ", req.pid);
    return reply;
  }
  // Reading a process's TLS plaintext is for root, the agent's user, and a
  // process's own user (as ptrace would allow).
  if (peer.uid != 0 && peer.uid != ::geteuid() && peer.uid != *uid) {
    reply.code = absl::StatusCode::kPermissionDenied;
    reply.text = absl::StrCat("uid ", peer.uid, " may not watch pid ", req.pid, " (uid ", *uid,
                              "): root, the agent's user or the process's own user may");
    LogWarning("tls watch refused: pid ", peer.pid, " uid ", peer.uid, " asked for pid ", req.pid);
    return reply;
  }
  counters_.tls_uprobe_watches++;
  TlsCoverage c = tls_uprobes_->Watch(pid, req.exe, req.scan_maps, req.under_tap);
  reply.text = TlsCoverageLine(c, req.under_tap);
  LogInfo("tls coverage of pid ", req.pid, " (", req.exe, "): ", reply.text);
  if (!c.available || c.probes.empty()) return reply;
  auto [it, added] = tls_watched_.try_emplace(pid);
  TapHello& who = it->second.who;
  const std::string old_run = who.run_id;
  who.pid = req.pid;
  who.exe = req.exe;
  who.peer = PeerCredentials{true, pid, *uid, 0, req.exe};
  if (req.context.scenarios) who.scenarios = *req.context.scenarios;
  for (const auto& [k, v] : req.context.consents) who.consents[k] = v;
  if (req.context.run_id) who.run_id = *req.context.run_id;
  it->second.modules.clear();  // the program may have changed (exec)
  it->second.maps_read = {};
  // The run is open while the process lives (OnTlsExit closes it).
  if (who.run_id != old_run) {
    if (!old_run.empty()) {
      if (auto r = open_runs_.find(old_run); r != open_runs_.end() && --r->second == 0) {
        open_runs_.erase(r);
      }
    }
    if (!who.run_id.empty()) ++open_runs_[who.run_id];
  }
  return reply;
}

void Agent::OnTlsWrite(const TlsWrite& w) {
  const pid_t pid = static_cast<pid_t>(w.tgid);
  auto it = tls_watched_.find(pid);
  if (it == tls_watched_.end()) {
    // A process of a configured executable: the device's context.
    TlsWatched tw;
    tw.who.pid = w.tgid;
    char exe[4096];
    const ssize_t n = ::readlink(absl::StrCat("/proc/", pid, "/exe").c_str(), exe, sizeof(exe) - 1);
    tw.who.exe = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "";
    tw.who.peer = PeerCredentials{true, pid, ProcessUid(pid).value_or(0), 0, tw.who.exe};
    it = tls_watched_.emplace(pid, std::move(tw)).first;
    (void)tls_uprobes_->Watch(pid, "", false, false);  // for its exit
  }
  TlsWatched& tw = it->second;
  counters_.tls_uprobe_writes++;
  auto covered = [&](uint64_t a) {
    for (const TapRingModule& m : tw.modules) {
      if (a >= m.lo && a < m.hi) return true;
    }
    return false;
  };
  // Re-read on a miss, at most once a second: a caller in memory no file
  // backs (JIT code) would otherwise cost a read of the maps per write.
  const auto now = std::chrono::steady_clock::now();
  if ((tw.modules.empty() || (w.return_address != 0 && !covered(w.return_address))) &&
      now - tw.maps_read >= std::chrono::seconds(1)) {
    tw.maps_read = now;
    absl::StatusOr<std::string> maps = ReadFile(absl::StrCat("/proc/", pid, "/maps"));
    if (maps.ok()) tw.modules = ModulesFromMaps(*maps);
  }
  // The process may be gone already (its maps empty): the probed object
  // itself is known from the attachment, and usually holds the caller.
  TapRingModule probed;
  if (!covered(w.ip) && tls_uprobes_->ProbedObject(w, &probed)) tw.modules.push_back(probed);
  const std::string record =
      TlsPayloadRecord(w, static_cast<uint64_t>(absl::ToUnixMillis(absl::Now())));
  std::vector<std::string> encoded;
  absl::Status st = tls_matcher_.Match(record, patterns_, tw.modules.data(),
                                       static_cast<uint32_t>(tw.modules.size()), &encoded);
  if (!st.ok()) {
    LogError("tls uprobe write of pid ", pid, ": ", st.ToString());
    counters_.ingress_dropped++;
    drops_->Add(idflow::v1::DROP_CAUSE_INGRESS, 1);
    return;
  }
  for (const std::string& bytes : encoded) {
    absl::StatusOr<TapMessage> msg = DecodeTapMessage(bytes);
    TapEvent* ev = msg.ok() ? std::get_if<TapEvent>(&msg->body) : nullptr;
    if (ev == nullptr) {  // the matcher builds what the decoder takes: a bug
      LogError("tls uprobe event of pid ", pid, " did not decode");
      counters_.ingress_dropped++;
      drops_->Add(idflow::v1::DROP_CAUSE_INGRESS, 1);
      continue;
    }
    ev->channel = TlsProbeChannel(w.kind);
    OnTapEvent(tw.who, *ev);
  }
}

void Agent::OnTlsExit(pid_t pid) {
  auto it = tls_watched_.find(pid);
  if (it == tls_watched_.end()) return;
  const std::string run_id = it->second.who.run_id;
  tls_watched_.erase(it);
  if (run_id.empty()) return;
  if (auto r = open_runs_.find(run_id); r != open_runs_.end() && --r->second == 0) {
    open_runs_.erase(r);
  }
  if (!flush_waiters_.empty()) CheckFlushWaiters();
}

void Agent::CollectTlsLosses() {
  if (!tls_uprobes_) return;
  const uint64_t n = tls_uprobes_->TakeLost();
  if (n == 0) return;
  counters_.tls_uprobe_lost += n;
  counters_.tap_dropped += n;
  drops_->Add(idflow::v1::DROP_CAUSE_TAP, n);
}

ControlReply Agent::FlushedReply(uint32_t open_processes, bool quiet) {
  ControlReply reply;
  reply.seq = spool_->last_seq();
  reply.agent_id = spool_->agent_id();
  reply.open_processes = open_processes;
  if (open_processes > 0) {
    reply.code = absl::StatusCode::kDeadlineExceeded;
    reply.text = absl::StrCat(
        open_processes, " process(es) of the run are still connected; flushed what they sent");
  } else if (!quiet) {
    reply.code = absl::StatusCode::kDeadlineExceeded;
    reply.text =
        "connections that have not sent their first message are still open; flushed what was read";
  }
  return reply;
}

void Agent::CheckFlushWaiters() {
  if (flush_waiters_.empty() || stopped_) return;
  const auto now = std::chrono::steady_clock::now();
  // Nothing the run's processes sent may still wait unread in a queue.
  const bool quiet = ingress_->Quiescent();
  bool flushed = false;
  for (auto it = flush_waiters_.begin(); it != flush_waiters_.end();) {
    auto open = open_runs_.find(it->run_id);
    const uint32_t n = open == open_runs_.end() ? 0 : static_cast<uint32_t>(open->second);
    if ((n == 0 && quiet) || now >= it->deadline) {
      if (!flushed) Flush();
      flushed = true;
      it->respond(FlushedReply(n, quiet));
      it = flush_waiters_.erase(it);
    } else {
      ++it;
    }
  }
  if (flush_waiters_.empty()) return;
  // A process ending wakes us (goodbye); the timer covers the accept queue
  // and the deadlines.
  flush_wait_timer_->expires_after(std::chrono::milliseconds(5));
  flush_wait_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) CheckFlushWaiters();
  });
}

void Agent::ScheduleWatchdog() {
  watchdog_timer_->expires_after(watchdog_->options().interval);
  watchdog_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    watchdog_->Check();
    const WatchdogStats& ws = watchdog_->stats();
    counters_.watchdog_memory_steps = ws.memory_steps;
    counters_.watchdog_cpu_steps = ws.cpu_steps;
    counters_.watchdog_recoveries = ws.recoveries;
    NoteAck();
    ScheduleWatchdog();
  });
}

void Agent::OnMemoryLevel(MemoryLevel level) {
  // The steps are cumulative: each level keeps what the ones below it do.
  if (level >= MemoryLevel::kShrink) {
    // What waits in memory goes to the spool now, and far less may wait.
    Flush();
    pending_limit_ = std::max<size_t>(64, options_.max_pending / 16);
    pending_.shrink_to_fit();
    pending_index_ = {};
  } else {
    pending_limit_ = options_.max_pending;
  }
  if (level >= MemoryLevel::kTrim) ReleaseMemory("watchdog");
}

void Agent::ReleaseMemory(const char* why) {
  absl::StatusOr<MemoryRelease> r = ReleaseUnusedMemory();
  if (!r.ok()) {
    LogWarning("releasing unused memory (", why, "): ", r.status().ToString());
    return;
  }
  LogInfo("released unused memory (", why, "): ", r->heap_bytes >> 10, " KiB of heap, ",
          r->file_bytes >> 10, " KiB of unused library pages");
}

void Agent::OnCpuLevel(CpuLevel level) {
  // Fewer wake-ups: each drains and flushes more at once (the tap never
  // waits; a ring that fills meanwhile counts its drops).
  const bool slow = level >= CpuLevel::kSlow;
  const auto wake = slow ? std::max(options_.ring_wake_delay * 4, std::chrono::milliseconds(20))
                         : options_.ring_wake_delay;
  flush_interval_ = slow ? std::max(options_.flush_interval * 4, std::chrono::milliseconds(100))
                         : options_.flush_interval;
  if (ingress_) ingress_->SetWakeDelay(wake);
}

void Agent::NoteAck() {
  const uint64_t acked = spool_->acked();
  if (acked != last_ack_seen_) {
    last_ack_seen_ = acked;
    last_ack_unix_ms_ = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  }
}

AgentStatus Agent::Status() {
  NoteAck();
  AgentStatus s;
  s.agent_id = spool_->agent_id();
  s.version = VersionString();
  const SenderStats sender = sender_ ? sender_->stats() : SenderStats{};
  s.connected = sender.connected;
  s.collector = sender.collector.empty() ? options_.collectors.front() : sender.collector;
  s.now_unix_ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  const SpoolStats spool = spool_->stats();
  s.last_seq = spool.next_seq - 1;
  s.spool_events = s.last_seq - std::min(s.last_seq, spool.acked);
  s.spool_bytes = spool.bytes;
  s.pending_events = pending_.size();
  s.last_ack_seq = spool.acked;
  s.last_ack_unix_ms = last_ack_unix_ms_;
  // The oldest event not acknowledged: the first the spool still holds, else
  // the oldest waiting in memory.
  if (s.spool_events > 0) {
    absl::StatusOr<std::vector<idflow::v1::Event>> first =
        spool_->ReadAfter(spool.acked, 1, 1 << 20);
    if (first.ok() && !first->empty()) {
      s.oldest_unsent_unix_ms = static_cast<uint64_t>(first->front().first_seen_unix_ms());
    }
  }
  for (const auto& e : pending_) {
    const auto t = static_cast<uint64_t>(e.first_seen_unix_ms());
    if (s.oldest_unsent_unix_ms == 0 || t < s.oldest_unsent_unix_ms) s.oldest_unsent_unix_ms = t;
  }
  const idflow::v1::DropCounters d = drops_->Snapshot();
  s.drops[idflow::v1::DROP_CAUSE_TAP] = d.tap_dropped();
  s.drops[idflow::v1::DROP_CAUSE_INGRESS] = d.ingress_rejected();
  s.drops[idflow::v1::DROP_CAUSE_SPOOL] = d.spool_dropped();
  s.drops[idflow::v1::DROP_CAUSE_DISK] = d.disk_dropped();
  s.drops[idflow::v1::DROP_CAUSE_DEAD_LETTER] = d.dead_lettered();
  if (watchdog_) {
    s.rss_bytes = watchdog_->rss_bytes();
    s.cpu_permille = static_cast<uint32_t>(watchdog_->cpu_percent() * 10 + 0.5);
    s.memory_level = static_cast<uint32_t>(watchdog_->memory_level());
    s.cpu_level = static_cast<uint32_t>(watchdog_->cpu_level());
  }
  s.max_rss_bytes = options_.watchdog_max_rss_bytes;
  s.max_cpu_permille = static_cast<uint32_t>(options_.watchdog_max_cpu_percent * 10 + 0.5);
  s.watchdog_steps = counters_.watchdog_memory_steps + counters_.watchdog_cpu_steps;
  s.watchdog_shed = counters_.watchdog_shed;
  return s;
}

}  // namespace idflow::agent
