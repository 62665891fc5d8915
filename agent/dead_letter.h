// Events the collector refused for good (Reject), set aside on the device so
// an operator can inspect them: `dead_letter.log` in the spool directory,
// record_io framing, payload 'R' + reason text or 'E' + Event bytes. Bounded:
// past max_bytes / 2 the file rotates to `dead_letter.1.log` (replacing the
// older one), so both together stay within max_bytes. Counting the events
// (DROP_CAUSE_DEAD_LETTER) is the caller's job: they are lost to the store
// whether or not they fit here.
#ifndef IDFLOW_AGENT_DEAD_LETTER_H_
#define IDFLOW_AGENT_DEAD_LETTER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "idflow/v1/event.pb.h"

namespace idflow::agent {

class DeadLetterFile {
 public:
  DeadLetterFile(std::string dir, uint64_t max_bytes = 16ull << 20);

  absl::Status Write(const std::vector<idflow::v1::Event>& events, absl::string_view reason);
  // Every event kept (older file first), for inspection and tests.
  absl::StatusOr<std::vector<idflow::v1::Event>> ReadAll() const;
  std::string path() const { return dir_ + "/dead_letter.log"; }

 private:
  const std::string dir_;
  const uint64_t max_bytes_;
  mutable std::mutex mu_;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_DEAD_LETTER_H_
