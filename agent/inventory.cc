#include "agent/inventory.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "yaml-cpp/yaml.h"

namespace idflow::agent {
namespace {

namespace fs = std::filesystem;

// 12 hex digits, optionally separated by ':' or '-' between octets.
std::optional<std::string> ParseHardwareAddress(std::string_view value) {
  std::string hex;
  for (char c : value) {
    if (absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      hex.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else if (c != ':' && c != '-') {
      return std::nullopt;
    }
  }
  if (hex.size() != 12) return std::nullopt;
  // Separators, when present, must sit between octets: "aa:bb:..." only.
  if (value.size() != 12 && value.size() != 17) return std::nullopt;
  if (value.size() == 17) {
    for (size_t i = 2; i < 17; i += 3) {
      if (value[i] != ':' && value[i] != '-') return std::nullopt;
    }
  }
  std::string out;
  for (size_t i = 0; i < 12; i += 2) {
    if (!out.empty()) out.push_back(':');
    out.append(hex, i, 2);
  }
  return out;
}

bool ValidKind(std::string_view kind) {
  if (kind.empty()) return false;
  return std::all_of(kind.begin(), kind.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

class YamlError {
 public:
  explicit YamlError(std::string_view name) : name_(name) {}
  absl::Status At(const YAML::Mark& mark, absl::string_view message) const {
    if (mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(name_, ": ", message));
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ":", mark.line + 1, ":", mark.column + 1, ": ", message));
  }
  absl::Status At(const YAML::Node& node, absl::string_view message) const {
    return At(node.Mark(), message);
  }

 private:
  std::string name_;
};

absl::Status CheckKeys(const YamlError& err, const YAML::Node& map,
                       const std::set<std::string>& allowed, absl::string_view where) {
  if (!map.IsMap()) return err.At(map, absl::StrCat(where, " must be a mapping"));
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return err.At(kv.first, "keys must be scalars");
    const std::string& key = kv.first.Scalar();
    if (allowed.count(key) == 0) {
      return err.At(kv.first, absl::StrCat("unknown key '", key, "' in ", where,
                                           " (allowed: ", absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status GetScalar(const YamlError& err, const YAML::Node& map, const char* key, bool required,
                       std::string* out) {
  YAML::Node n = map[key];
  if (!n) {
    if (required) return err.At(map, absl::StrCat("missing required key '", key, "'"));
    return absl::OkStatus();
  }
  if (!n.IsScalar()) return err.At(n, absl::StrCat("'", key, "' must be a scalar"));
  *out = n.Scalar();
  return absl::OkStatus();
}

absl::StatusOr<Identity> ParseIdentityNode(const YAML::Node& root, const YamlError& err) {
  Identity id;
  if (!root || root.IsNull()) return err.At(YAML::Mark::null_mark(), "empty identity file");
  absl::Status s = CheckKeys(err, root, {"device", "digest_key", "identifiers"}, "identity");
  if (!s.ok()) return s;

  YAML::Node device = root["device"];
  if (!device) return err.At(root, "missing required key 'device'");
  s = CheckKeys(err, device, {"id", "class", "firmware"}, "device");
  if (!s.ok()) return s;
  if (!(s = GetScalar(err, device, "id", true, &id.device_id)).ok()) return s;
  if (!(s = GetScalar(err, device, "class", false, &id.device_class)).ok()) return s;
  if (!(s = GetScalar(err, device, "firmware", false, &id.firmware)).ok()) return s;
  if (id.device_id.empty()) return err.At(device["id"], "device id must not be empty");
  if (!(s = GetScalar(err, root, "digest_key", false, &id.digest_key)).ok()) return s;

  YAML::Node list = root["identifiers"];
  if (list && !list.IsNull()) {
    if (!list.IsSequence()) return err.At(list, "'identifiers' must be a sequence");
    for (const YAML::Node& item : list) {
      s = CheckKeys(err, item, {"kind", "value", "instance"}, "identifier");
      if (!s.ok()) return s;
      Identifier ident;
      ident.source = "identity_file";
      if (!(s = GetScalar(err, item, "kind", true, &ident.kind)).ok()) return s;
      if (!(s = GetScalar(err, item, "value", true, &ident.value)).ok()) return s;
      if (!(s = GetScalar(err, item, "instance", false, &ident.instance)).ok()) return s;
      if (!ValidKind(ident.kind)) {
        return err.At(item["kind"],
                      absl::StrCat("invalid kind '", ident.kind, "' (expected lower_snake_case)"));
      }
      if (ident.value.empty()) return err.At(item["value"], "value must not be empty");
      if (IsHardwareAddressKind(ident.kind) && !ParseHardwareAddress(ident.value)) {
        return err.At(item["value"], absl::StrCat(ident.kind,
                                                  " value is not a hardware address like "
                                                  "aa:bb:cc:dd:ee:ff"));
      }
      id.identifiers.push_back(std::move(ident));
    }
  }
  return id;
}

}  // namespace

bool IsHardwareAddressKind(std::string_view kind) {
  return kind == "mac_address" || kind == "bluetooth_address" || kind == "p2p_address";
}

std::string CanonicalValue(std::string_view kind, std::string_view value) {
  if (IsHardwareAddressKind(kind)) {
    if (auto hw = ParseHardwareAddress(value)) return *hw;
  }
  return absl::AsciiStrToLower(absl::string_view(value.data(), value.size()));
}

bool IsPlaceholder(std::string_view kind, std::string_view value) {
  absl::string_view trimmed =
      absl::StripAsciiWhitespace(absl::string_view(value.data(), value.size()));
  if (trimmed.empty()) return true;
  if (IsHardwareAddressKind(kind)) {
    std::optional<std::string> hw =
        ParseHardwareAddress(std::string_view(trimmed.data(), trimmed.size()));
    if (!hw) return false;
    return *hw == "00:00:00:00:00:00" || *hw == "ff:ff:ff:ff:ff:ff" || *hw == "02:00:00:00:00:00";
  }
  // All-zero OAIDs/UUIDs/ids (separators aside) are "not available" markers.
  bool any_digit = false;
  for (char c : trimmed) {
    if (c == '-' || c == ':') continue;
    if (c != '0') return false;
    any_digit = true;
  }
  return any_digit;
}

absl::StatusOr<Identity> ParseIdentity(std::string_view yaml, std::string_view name) {
  YamlError err(name);
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    return ParseIdentityNode(root, err);
  } catch (const YAML::Exception& e) {
    return err.At(e.mark, e.msg);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(name), ": ", e.what()));
  }
}

absl::StatusOr<Identity> LoadIdentityFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(), absl::StrCat("cannot read identity file ", path, ": ",
                                                           text.status().message()));
  }
  return ParseIdentity(*text, path);
}

absl::Status DiscoverSysfs(const std::string& sysfs_root, std::vector<Identifier>* out) {
  std::error_code ec;
  if (!fs::is_directory(sysfs_root, ec)) {
    return absl::NotFoundError(absl::StrCat("sysfs root ", sysfs_root, " is not a directory"));
  }
  struct Source {
    const char* dir;
    const char* kind;
    const char* prefix;  // only entries whose name starts with it
  };
  const Source sources[] = {{"class/net", "mac_address", ""},
                            {"class/bluetooth", "bluetooth_address", "hci"}};
  for (const Source& src : sources) {
    fs::path dir = fs::path(sysfs_root) / src.dir;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<std::string> names;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name.rfind(src.prefix, 0) == 0) names.push_back(name);
    }
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot list ", dir.string(), ": ", ec.message()));
    }
    std::sort(names.begin(), names.end());  // stable order => stable pattern ids
    for (const std::string& name : names) {
      absl::StatusOr<std::string> text = ReadFile((dir / name / "address").string());
      if (!text.ok()) continue;  // interfaces without an address file are normal
      absl::string_view value = absl::StripAsciiWhitespace(*text);
      std::optional<std::string> hw =
          ParseHardwareAddress(std::string_view(value.data(), value.size()));
      if (!hw || IsPlaceholder(src.kind, *hw)) continue;
      out->push_back(Identifier{src.kind, name, *hw, "sysfs"});
    }
  }
  return absl::OkStatus();
}

}  // namespace idflow::agent
