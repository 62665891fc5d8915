// Writes one encoded datagram per message type (tap and control) into DIR (argv[1]): the seed
// corpus of fuzz_tap_message.
#include <fstream>
#include <string>

#include "agent/control_protocol.h"
#include "agent/tap_protocol.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  auto put = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
  };
  using namespace idflow::agent;
  put("hello",
      EncodeHello(TapHello{}, "casting,device_discovery", "user_experience_program=false"));
  put("event", EncodeEvent(TapEvent{}));
  put("stats", EncodeStats(TapStats{}));
  put("cookie", EncodeCookie(TapCookie{}));
  ContextSetRequest set;
  set.pid = 42;
  set.patch.scenarios = std::vector<std::string>{"casting"};
  set.patch.consents["user_experience_program"] = false;
  set.patch.run_id = "ci-1";
  put("context_set", *EncodeContextSet(set));
  put("flush_run", *EncodeFlushRun(FlushRunRequest{"ci-1", 1000}));
  put("control_reply", EncodeControlReply(ControlReply{}));
  int i = 0;
  for (const std::string& chunk : EncodePatterns(std::string(3000, 'p'), 7, 3)) {
    put("patterns" + std::to_string(i++), chunk);
  }
  return 0;
}
