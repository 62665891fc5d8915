// The channel to idflow-agent: the Unix SOCK_SEQPACKET connection (Hello,
// the pattern database, the exit Stats) and this process's shared-memory
// event ring (agent/tap_protocol.h), through which events and cookies go.
// Never blocks: a full ring is a counted drop; a lost agent is reconnected
// at most every 250 ms and handed the same ring.
#ifndef IDFLOW_AGENT_TAP_CHANNEL_AGENT_CHANNEL_H_
#define IDFLOW_AGENT_TAP_CHANNEL_AGENT_CHANNEL_H_

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "agent/tap_protocol.h"

namespace idflow::tap {

// The agent connection of this process (-1: none) and its owner: after
// fork() the child reconnects as itself.
extern std::atomic<int> g_agent_fd;
extern std::atomic<int> g_agent_pid;

// (fd -1, a TLS session whose socket is unknown, is never ours: while the
// agent is away its events still go to the ring.)
inline bool IsAgentFd(int fd) {
  return fd >= 0 && fd == g_agent_fd.load(std::memory_order_relaxed);
}
// The app closed (or dup'ed over) `fd`: if it was our connection, forget it
// (reconnected lazily).
inline void ForgetAgentFd(int fd) {
  int expected = fd;
  if (fd >= 0) g_agent_fd.compare_exchange_strong(expected, -1);
}

// Ring size in slots (a power of two), set by Init() before CreateRing().
extern uint32_t g_ring_slots;
// Set at init: events go through rings (false when memfd is unavailable:
// events then go over the socket, best effort).
extern bool g_ring_mode;

// Creates this process's ring: a sealed memfd and an eventfd doorbell.
// Syscalls only, no malloc (a fork child runs this from a hook).
bool CreateRing();
void DestroyRing();
// This process's ring, nullptr if none (or the parent's, after fork).
agent::TapRingHeader* OwnRing();
// The ring's memfd and doorbell (-1 if none): sent with the Hello.
int RingFd();
int DoorbellFd();
// Appends one message; false when the ring is full (never waits).
bool RingPush(agent::TapRingHeader* h, const void* msg, size_t len);
// Appends one record (up to kTapRingRecordMax bytes, spanning several slots)
// gathered from parts; false when the ring has no room (never waits).
struct RingPart {
  const void* data;
  size_t len;
};
bool RingPushParts(agent::TapRingHeader* h, const RingPart* parts, size_t nparts);

// Connects and sends Hello (with the ring's descriptors when there is a
// ring); the fd or -1.
int ConnectAgent(bool want_patterns, int64_t deadline_ms);
// Receives the Patterns chunks; on success sets g_db and g_proto_scratch.
bool ReceivePatterns(int fd, int64_t deadline_ms);

// The agent fd for this process; reconnects (without asking for patterns)
// after fork() or if the app closed our fd, at most every 250 ms.
int AgentFd();
// Notices a dead agent: a zero-wait poll at most every 250 ms (every 10 ms
// when the ring is full: now_please).
void CheckAgent(bool now_please);

// Hands one event or cookie to the agent (ring, else socket); counts a drop
// when it cannot.
void SendToAgent(const void* msg, size_t len);
// Hands one record to the ring, or counts it dropped (in the ring's shared
// counter) when the ring is full; false only when there is no ring.
bool HandToRing(const RingPart* parts, size_t nparts);
// The exit Stats on the socket, best effort.
void SendStats();

// fork() child: drops the parent's connection and ring (made anew lazily).
void ChannelAtForkChild();

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_CHANNEL_AGENT_CHANNEL_H_
