// SPDX-License-Identifier: GPL-2.0
/* eBPF uprobes on TLS write functions: they copy the plaintext a process
 * hands to its TLS library, with the user stack, into a ring buffer the
 * agent reads (tls_uprobe_source.cc). Entry probes only: the plaintext of a
 * write is complete when the function starts, and Go stacks, which move,
 * break return probes. The agent attaches them per process, so they only
 * fire in the processes it watches. Built with clang -target bpf. */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "tls_event.h"

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20); /* resized by the agent before load */
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct idflow_tls_event);
} scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, IDFLOW_TLS_STAT_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 which, __u64 n) {
  __u64 *v = bpf_map_lookup_elem(&stats, &which);
  if (v) *v += n;
}

static __always_inline unsigned long long return_address(struct pt_regs *ctx) {
#if defined(__TARGET_ARCH_x86)
  /* At the first instruction the return address is on top of the stack. */
  unsigned long long ret = 0;
  bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx));
  return ret;
#elif defined(__TARGET_ARCH_arm64)
  return PT_REGS_RET(ctx); /* the link register */
#else
#error "unsupported architecture"
#endif
}

static __always_inline int emit(struct pt_regs *ctx, const void *buf, __u64 len, __u32 source) {
  __u32 zero = 0;
  struct idflow_tls_event *e = bpf_map_lookup_elem(&scratch, &zero);
  if (!e) return 0;
  count(IDFLOW_TLS_STAT_WRITES, 1);
  if (!buf || len == 0) return 0;
  __u64 tgid_tid = bpf_get_current_pid_tgid();
  e->ktime_ns = bpf_ktime_get_ns();
  e->tgid = tgid_tid >> 32;
  e->tid = (__u32)tgid_tid;
  e->len = len > 0xffffffffULL ? 0xffffffffU : (__u32)len;
  e->source = source;
  e->ret_addr = return_address(ctx);
  e->cookie = bpf_get_attach_cookie(ctx);
  long frames = bpf_get_stack(ctx, e->frames, sizeof(e->frames), BPF_F_USER_STACK);
  e->frame_bytes = frames > 0 ? (__u32)frames : 0;
  __u64 n = len;
  if (n > IDFLOW_TLS_DATA_MAX) {
    count(IDFLOW_TLS_STAT_TRUNCATED_BYTES, n - IDFLOW_TLS_DATA_MAX);
    n = IDFLOW_TLS_DATA_MAX;
  }
  /* Bounded for the verifier: 1..IDFLOW_TLS_DATA_MAX. */
  n &= (2 * IDFLOW_TLS_DATA_MAX - 1);
  if (n == 0 || n > IDFLOW_TLS_DATA_MAX) return 0;
  if (bpf_probe_read_user(e->data, n, buf) != 0) {
    count(IDFLOW_TLS_STAT_READ_FAULTS, 1);
    return 0;
  }
  e->data_len = (__u32)n;
  __u64 size = IDFLOW_TLS_EVENT_HEADER_BYTES + n;
  if (size > sizeof(*e)) return 0;
  if (bpf_ringbuf_output(&events, e, size, 0) != 0) count(IDFLOW_TLS_STAT_LOST, 1);
  return 0;
}

/* int SSL_write(SSL *ssl, const void *buf, int num) */
SEC("uprobe")
int ssl_write(struct pt_regs *ctx) {
  long num = (int)PT_REGS_PARM3(ctx);
  if (num <= 0) return 0;
  return emit(ctx, (const void *)PT_REGS_PARM2(ctx), (__u64)num, IDFLOW_TLS_SOURCE_OPENSSL);
}

/* int SSL_write_ex(SSL *ssl, const void *buf, size_t num, size_t *written) */
SEC("uprobe")
int ssl_write_ex(struct pt_regs *ctx) {
  return emit(ctx, (const void *)PT_REGS_PARM2(ctx), (__u64)PT_REGS_PARM3(ctx),
              IDFLOW_TLS_SOURCE_OPENSSL_EX);
}

/* func (c *Conn) Write(b []byte) (int, error), Go's register ABI (1.17+):
 * amd64 c=RAX, b.ptr=RBX, b.len=RCX; arm64 c=X0, b.ptr=X1, b.len=X2. */
SEC("uprobe")
int go_tls_write(struct pt_regs *ctx) {
#if defined(__TARGET_ARCH_x86)
  const void *buf = (const void *)ctx->rbx;
  __u64 len = ctx->rcx;
#else
  const void *buf = (const void *)PT_REGS_PARM2(ctx);
  __u64 len = PT_REGS_PARM3(ctx);
#endif
  return emit(ctx, buf, len, IDFLOW_TLS_SOURCE_GO);
}
