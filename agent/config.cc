#include "agent/config.h"

#include <grp.h>
#include <pwd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "yaml-cpp/yaml.h"

namespace idflow::agent {
namespace {

// One setting's value and where it came from, for error messages.
struct Value {
  std::vector<std::string> items;  // one item unless the setting is a list
  std::string label;               // "--spool-max-mb", or "FILE:LINE:COLUMN: spool-max-mb"

  const std::string& one() const {
    static const std::string kEmpty;
    return items.empty() ? kEmpty : items.back();
  }
  // "LABEL takes ...".
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(label, " ", what));
  }
  // "LABEL: no user ...".
  absl::Status Fail(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(label, ": ", what));
  }
};

enum class Shape { kScalar, kList, kBool };

// Checks a value and stores it in the options.
using Apply = std::function<absl::Status(const Value&, AgentOptions*)>;

struct Setting {
  const char* name;
  Shape shape;
  std::string default_value;  // scalars only; lists default to empty
  const char* help;
  Apply apply;
};

// A path or address, taken as written.
Apply Text(std::string AgentOptions::*field) {
  return [field](const Value& v, AgentOptions* o) {
    o->*field = v.one();
    return absl::OkStatus();
  };
}

template <typename T>
absl::Status Integer(const Value& v, T min, T* out) {
  T n{};
  if (!absl::SimpleAtoi(v.one(), &n) || n < min) {
    return v.Error(min > 0 ? "takes a positive integer" : "takes a non-negative integer");
  }
  *out = n;
  return absl::OkStatus();
}

// Milliseconds, at least `min`.
Apply Millis(std::chrono::milliseconds AgentOptions::*field, int min) {
  return [field, min](const Value& v, AgentOptions* o) {
    int ms = 0;
    if (absl::Status s = Integer(v, min, &ms); !s.ok()) return s;
    o->*field = std::chrono::milliseconds(ms);
    return absl::OkStatus();
  };
}

absl::Status Megabytes(const Value& v, uint64_t min, uint64_t* bytes) {
  uint64_t mb = 0;
  if (absl::Status s = Integer(v, min, &mb); !s.ok()) return s;
  if (mb > (std::numeric_limits<uint64_t>::max() >> 20)) return v.Error("is too large");
  *bytes = mb << 20;
  return absl::OkStatus();
}

absl::Status Number(const Value& v, double min, double* out) {
  double d = 0;
  if (!absl::SimpleAtod(v.one(), &d) || !std::isfinite(d) || d < min) {
    return v.Error(absl::StrCat("takes a number >= ", min));
  }
  *out = d;
  return absl::OkStatus();
}

// A number, or a name looked up in /etc/passwd or /etc/group.
absl::Status UserId(const Value& v, const std::string& name, uint32_t* id) {
  if (absl::SimpleAtoi(name, id)) return absl::OkStatus();
  if (const passwd* pw = getpwnam(name.c_str())) {
    *id = pw->pw_uid;
    return absl::OkStatus();
  }
  return v.Fail(absl::StrCat("no user ", name));
}

absl::Status GroupId(const Value& v, const std::string& name, uint32_t* id) {
  if (absl::SimpleAtoi(name, id)) return absl::OkStatus();
  if (const group* gr = getgrnam(name.c_str())) {
    *id = gr->gr_gid;
    return absl::OkStatus();
  }
  return v.Fail(absl::StrCat("no group ", name));
}

template <typename IdT>
absl::Status Ids(const Value& v,
                 absl::Status (*lookup)(const Value&, const std::string&, uint32_t*),
                 std::vector<IdT>* out) {
  out->clear();
  for (const std::string& item : v.items) {
    uint32_t id = 0;
    if (absl::Status s = lookup(v, item, &id); !s.ok()) return s;
    out->push_back(id);
  }
  return absl::OkStatus();
}

// Every setting, in the order `--help` shows them; defaults come from
// AgentOptions where it has them, so there is one source for each.
const std::vector<Setting>& Settings() {
  static const auto* settings = [] {
    const AgentOptions d;
    using O = AgentOptions;
    return new std::vector<Setting>{
        {"collector", Shape::kList, "", "collector HOST:PORT[,HOST:PORT...] in failover order",
         [](const Value& v, O* o) {
           o->collectors = v.items;
           return absl::OkStatus();
         }},
        {"socket", Shape::kScalar, "/run/idflow/agent.sock", "Unix socket the taps connect to",
         Text(&O::socket_path)},
        {"spool", Shape::kScalar, "/var/lib/idflow/spool", "spool directory (durable event queue)",
         Text(&O::spool_dir)},
        {"identity", Shape::kScalar, "",
         "identity file (YAML): device id, class, declared identifiers", Text(&O::identity_file)},
        {"sysfs-root", Shape::kScalar, d.sysfs_root, "where to discover hardware addresses",
         Text(&O::sysfs_root)},
        {"spool-max-mb", Shape::kScalar, absl::StrCat(d.spool_max_bytes >> 20),
         "on-disk bound of the spool; oldest events go first",
         [](const Value& v, O* o) { return Megabytes(v, 1, &o->spool_max_bytes); }},
        {"flush-interval-ms", Shape::kScalar, absl::StrCat(d.flush_interval.count()),
         "how long events wait (and repeats aggregate) before they are spooled",
         Millis(&O::flush_interval, 1)},
        {"spool-sync-ms", Shape::kScalar, absl::StrCat(d.spool_sync_interval.count()),
         "group commit: fdatasync the spool at most this often (0 = every append); a power cut "
         "loses at most this window, declared as a gap",
         Millis(&O::spool_sync_interval, 0)},
        {"ring-wake-delay-ms", Shape::kScalar, absl::StrCat(d.ring_wake_delay.count()),
         "after a tap rings, wait this long before draining its ring, so records of a few ms are "
         "read in one wake-up (0 = at once)",
         Millis(&O::ring_wake_delay, 0)},
        {"send-linger-ms", Shape::kScalar, absl::StrCat(d.send_linger.count()),
         "a batch short of 256 events waits this long for more before it is sent",
         Millis(&O::send_linger, 0)},
        {"tls-ca", Shape::kScalar, "", "CA certificate (PEM) to verify the collector; enables TLS",
         Text(&O::tls_ca)},
        {"tls-cert", Shape::kScalar, "", "client certificate (PEM) for mutual TLS",
         Text(&O::tls_cert)},
        {"tls-key", Shape::kScalar, "", "client private key (PEM) for mutual TLS",
         Text(&O::tls_key)},
        {"token-file", Shape::kScalar, "",
         "file holding the Ingest bearer token (sent as authorization)",
         [](const Value& v, O* o) {
           o->bearer_token.clear();
           if (v.one().empty()) return absl::OkStatus();
           auto token = ReadFile(v.one());
           if (!token.ok()) return v.Fail(token.status().message());
           o->bearer_token = std::string(absl::StripAsciiWhitespace(*token));
           if (o->bearer_token.empty()) return v.Fail(absl::StrCat(v.one(), " is empty"));
           return absl::OkStatus();
         }},
        {"socket-group", Shape::kScalar, "", "group owning the tap socket (mode 0660)",
         [](const Value& v, O* o) {
           o->socket_gid = static_cast<gid_t>(-1);
           if (v.one().empty()) return absl::OkStatus();
           uint32_t gid = 0;
           if (absl::Status s = GroupId(v, v.one(), &gid); !s.ok()) return s;
           o->socket_gid = gid;
           return absl::OkStatus();
         }},
        {"allow-uid", Shape::kList, "",
         "uid (or user name) allowed on the tap socket; repeatable (default: own uid, root)",
         [](const Value& v, O* o) { return Ids(v, &UserId, &o->allow_uids); }},
        {"allow-gid", Shape::kList, "", "gid (or group name) allowed on the tap socket; repeatable",
         [](const Value& v, O* o) { return Ids(v, &GroupId, &o->allow_gids); }},
        {"max-connections", Shape::kScalar, absl::StrCat(d.max_connections),
         "tap connections in total",
         [](const Value& v, O* o) { return Integer<size_t>(v, 1, &o->max_connections); }},
        {"max-connections-per-uid", Shape::kScalar, absl::StrCat(d.max_connections_per_uid),
         "tap connections per peer uid",
         [](const Value& v, O* o) { return Integer<size_t>(v, 1, &o->max_connections_per_uid); }},
        {"tap-rate", Shape::kScalar, absl::StrCat(d.tap_rate_per_second),
         "events per second per tap connection (beyond: counted drops)",
         [](const Value& v, O* o) {
           if (absl::Status s = Number(v, 0, &o->tap_rate_per_second); !s.ok()) return s;
           return o->tap_rate_per_second > 0 ? absl::OkStatus()
                                             : v.Error("takes a positive number");
         }},
        {"tap-burst", Shape::kScalar, absl::StrCat(d.tap_rate_burst),
         "events a tap connection may send at once above the rate",
         [](const Value& v, O* o) { return Number(v, 1, &o->tap_rate_burst); }},
        {"allow-app-context", Shape::kBool, "false",
         "let a process change its own usage context over the tap socket (its claim then decides "
         "its verdicts; default: only root and the agent's user may)",
         [](const Value& v, O* o) {
           o->allow_app_context = v.one() == "true";
           return absl::OkStatus();
         }},
        {"watchdog-max-rss-mb", Shape::kScalar, absl::StrCat(d.watchdog_max_rss_bytes >> 20),
         "watchdog: resident memory above which the agent degrades, counted (0 = no limit)",
         [](const Value& v, O* o) { return Megabytes(v, 0, &o->watchdog_max_rss_bytes); }},
        {"watchdog-max-cpu-percent", Shape::kScalar, absl::StrCat(d.watchdog_max_cpu_percent),
         "watchdog: percent of one core above which the agent degrades, counted (0 = no limit)",
         [](const Value& v, O* o) { return Number(v, 0, &o->watchdog_max_cpu_percent); }},
        {"tls-uprobes", Shape::kScalar, d.tls_uprobes ? "auto" : "off",
         "TLS inside programs (static OpenSSL, Node.js, Go) through eBPF uprobes: auto (when the "
         "agent may load BPF: root or CAP_BPF+CAP_PERFMON) or off",
         [](const Value& v, O* o) {
           if (v.one() != "auto" && v.one() != "off") return v.Error("takes auto or off");
           o->tls_uprobes = v.one() == "auto";
           return absl::OkStatus();
         }},
        {"tls-uprobe-exe", Shape::kList, "",
         "absolute path of an executable whose every process has its TLS writes probed; "
         "repeatable",
         [](const Value& v, O* o) {
           o->tls_uprobe_executables.clear();
           for (const std::string& path : v.items) {
             if (path.empty() || path.front() != '/') {
               return v.Fail(absl::StrCat(path, " is not an absolute path"));
             }
             o->tls_uprobe_executables.push_back(path);
           }
           return absl::OkStatus();
         }},
        {"tls-uprobe-ring-kb", Shape::kScalar, absl::StrCat(d.tls_uprobe_ring_bytes >> 10),
         "the uprobes' BPF ring buffer in KiB (a power of two, 64 to 65536); records without "
         "room are counted as tap drops",
         [](const Value& v, O* o) {
           uint32_t kb = 0;
           if (absl::Status s = Integer<uint32_t>(v, 64, &kb); !s.ok()) return s;
           if (kb > 65536 || (kb & (kb - 1)) != 0)
             return v.Error("takes a power of two, 64 to 65536");
           o->tls_uprobe_ring_bytes = kb << 10;
           return absl::OkStatus();
         }},
    };
  }();
  return *settings;
}

const Setting* FindSetting(absl::string_view name) {
  for (const Setting& s : Settings()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

// List items may also be comma-separated ("a:1,b:2"), on a flag or in a file.
void AppendItems(const std::string& text, std::vector<std::string>* out) {
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    out->emplace_back(absl::StripAsciiWhitespace(part));
  }
}

std::string At(const std::string& path, const YAML::Mark& mark) {
  if (mark.is_null()) return path;
  return absl::StrCat(path, ":", mark.line + 1, ":", mark.column + 1);
}

// One key of the file into `value`, checked against the setting's shape.
absl::Status ReadKey(const std::string& path, const Setting& setting, const YAML::Node& node,
                     Value* value) {
  value->label = absl::StrCat(At(path, node.Mark()), ": ", setting.name);
  if (setting.shape == Shape::kList && node.IsSequence()) {
    for (const YAML::Node& item : node) {
      if (!item.IsScalar()) {
        return absl::InvalidArgumentError(
            absl::StrCat(At(path, item.Mark()), ": ", setting.name, " takes a list of scalars"));
      }
      AppendItems(item.Scalar(), &value->items);
    }
    return absl::OkStatus();
  }
  if (!node.IsScalar()) {
    return value->Error(setting.shape == Shape::kList ? "takes a scalar or a list of scalars"
                                                      : "takes a scalar");
  }
  if (setting.shape == Shape::kList) {
    AppendItems(node.Scalar(), &value->items);
  } else if (setting.shape == Shape::kBool) {
    bool b = false;
    if (!YAML::convert<bool>::decode(node, b)) return value->Error("takes true or false");
    value->items = {b ? "true" : "false"};
  } else {
    value->items = {node.Scalar()};
  }
  return absl::OkStatus();
}

absl::Status ReadConfigNode(const std::string& path, const YAML::Node& root,
                            std::map<std::string, Value>* values) {
  if (!root || root.IsNull()) return absl::OkStatus();  // empty, or comments only
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(At(path, root.Mark()), ": expected a mapping of settings (key: value)"));
  }
  std::map<std::string, Value> seen;
  for (const auto& kv : root) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    const Setting* setting = key == "config" ? nullptr : FindSetting(key);
    if (setting == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(At(path, kv.first.Mark()), ": unknown key '",
                                                     key, "' (keys are the agent's flag names)"));
    }
    if (seen.count(key) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(At(path, kv.first.Mark()), ": duplicate key '", key, "'"));
    }
    Value value;
    if (kv.second.IsNull()) {
      // A missing value's mark is wherever the parser went on: name the key.
      value.label = absl::StrCat(At(path, kv.first.Mark()), ": ", key);
      return value.Error("has no value");
    }
    if (absl::Status s = ReadKey(path, *setting, kv.second, &value); !s.ok()) return s;
    seen.emplace(key, std::move(value));
  }
  for (auto& [key, value] : seen) (*values)[key] = std::move(value);
  return absl::OkStatus();
}

// yaml-cpp throws (syntax errors, and on any surprise while walking the
// nodes): nothing escapes this function.
absl::Status ReadConfigFile(const std::string& path, std::map<std::string, Value>* values) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  try {
    return ReadConfigNode(path, YAML::Load(*text), values);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(At(path, e.mark), ": ", e.msg));
  }
}

// --config when given (it must exist; "" reads no file), else the default
// path if it exists.
absl::StatusOr<std::string> ConfigPath(const FlagSet& flags, const std::string& default_path) {
  if (flags.IsSet("config")) {
    const std::string& path = flags.Get("config");
    if (path.empty()) return path;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return absl::NotFoundError(absl::StrCat("--config ", path, ": no such file"));
    }
    return path;
  }
  std::error_code ec;
  if (default_path.empty() || !std::filesystem::exists(default_path, ec)) return std::string();
  return default_path;
}

}  // namespace

void AddAgentFlags(FlagSet* flags) {
  flags->Add("config", kDefaultAgentConfigPath,
             "configuration file (YAML; keys are these flag names; flags override it); the "
             "default is read only when it exists, an empty value reads none");
  for (const Setting& s : Settings()) {
    if (s.shape == Shape::kBool) {
      flags->AddBool(s.name, s.help);
    } else {
      flags->Add(s.name, s.default_value, s.help);
    }
  }
  flags->AddBool("help", "show this help");
  flags->AddBool("version", "print the version and exit");
}

absl::StatusOr<AgentOptions> LoadAgentConfig(const FlagSet& flags,
                                             const std::string& default_path) {
  std::map<std::string, Value> values;
  for (const Setting& s : Settings()) {
    Value& v = values[s.name];
    v.label = absl::StrCat("--", s.name);
    if (s.shape != Shape::kList) v.items = {s.default_value};
  }
  absl::StatusOr<std::string> path = ConfigPath(flags, default_path);
  if (!path.ok()) return path.status();
  if (!path->empty()) {
    if (absl::Status s = ReadConfigFile(*path, &values); !s.ok()) return s;
  }
  for (const Setting& s : Settings()) {
    if (!flags.IsSet(s.name)) continue;
    Value v;
    v.label = absl::StrCat("--", s.name);
    if (s.shape == Shape::kList) {
      for (const std::string& item : flags.GetAll(s.name)) AppendItems(item, &v.items);
    } else {
      v.items = {flags.Get(s.name)};  // a bool flag's value is "true" or "false"
    }
    values[s.name] = std::move(v);
  }
  AgentOptions options;
  for (const Setting& s : Settings()) {
    if (absl::Status st = s.apply(values[s.name], &options); !st.ok()) return st;
  }
  if (options.tls_cert.empty() != options.tls_key.empty() ||
      (!options.tls_cert.empty() && options.tls_ca.empty())) {
    return absl::InvalidArgumentError("tls-cert and tls-key go together, and need tls-ca");
  }
  return options;
}

}  // namespace idflow::agent
