// The device's identifier inventory: what idflow looks for in outgoing bytes.
// Sources are the identity file (YAML, declared by the deployment) and sysfs
// discovery (network and Bluetooth hardware addresses). Raw values live only
// inside the agent process (and, as compiled patterns, in the tap).
#ifndef IDFLOW_AGENT_INVENTORY_H_
#define IDFLOW_AGENT_INVENTORY_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace idflow::agent {

struct Identifier {
  std::string kind;      // mac_address, bluetooth_address, oaid, device_id, ...
  std::string instance;  // e.g. interface name ("wlan0", "hci0"); may be empty
  std::string value;     // raw value, as declared or read
  std::string source;    // "identity_file" or "sysfs"
};

struct Identity {
  std::string device_id;
  std::string device_class;
  std::string firmware;
  std::string digest_key;  // per-deployment HMAC key, used as given (not hex-decoded)
  std::vector<Identifier> identifiers;
};

// Kinds whose values are 6-byte hardware addresses (aa:bb:cc:dd:ee:ff).
bool IsHardwareAddressKind(std::string_view kind);

// True for values that identify nothing: all-zero / broadcast / the
// 02:00:00:00:00:00 privacy placeholder for addresses, and empty or all-zero
// values (e.g. 00000000-0000-0000-0000-000000000000 OAID) for other kinds.
bool IsPlaceholder(std::string_view kind, std::string_view value);

// Canonical form used for digests: lower-case with ':' separators for
// hardware addresses (when the value parses as one), lower-case otherwise.
std::string CanonicalValue(std::string_view kind, std::string_view value);

// Parses the identity YAML:
//   device: {id: qa-phone-0001, class: qa-phone, firmware: "1.2.3"}
//   digest_key: "..."              # optional per-deployment HMAC key
//   identifiers:
//     - {kind: oaid, value: "..."}
//     - {kind: bluetooth_address, value: "aa:bb:cc:dd:ee:ff", instance: hci0}
// device.id is required; kinds are lower_snake_case; hardware-address kinds
// must parse as 6-byte addresses. Errors are
// InvalidArgument("PATH:LINE:COLUMN: message") with 1-based positions;
// unknown keys are rejected. Placeholder values are kept; PatternDb skips them.
absl::StatusOr<Identity> LoadIdentityFile(const std::string& path);
// Same, from text already in memory; `name` is used in error messages.
absl::StatusOr<Identity> ParseIdentity(std::string_view yaml, std::string_view name);

// Appends hardware addresses found under sysfs_root (normally "/sys"):
// class/net/*/address (instance = interface) and class/bluetooth/hci*/address.
// Placeholders and non-6-byte addresses are skipped. A missing class/net or
// class/bluetooth directory is not an error; a missing sysfs_root is.
absl::Status DiscoverSysfs(const std::string& sysfs_root, std::vector<Identifier>* out);

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_INVENTORY_H_
