/* The record the TLS uprobe programs (tls_probes.bpf.c) put in their ring
 * buffer for the agent (tls_uprobe_source.cc). Plain C: compiled both for the
 * BPF target and into the agent. Fixed-size fields, native byte order. */
#ifndef IDFLOW_AGENT_UPROBE_TLS_EVENT_H_
#define IDFLOW_AGENT_UPROBE_TLS_EVENT_H_

/* Bytes of one write copied out of the process. Longer writes are cut here
 * and the rest is counted (IDFLOW_TLS_STAT_TRUNCATED_BYTES), never silent. */
#define IDFLOW_TLS_DATA_MAX 16384
/* User stack frames taken per write, innermost first. */
#define IDFLOW_TLS_FRAMES 32

/* Which probe saw the write. */
#define IDFLOW_TLS_SOURCE_OPENSSL 1    /* SSL_write(ssl, buf, num) */
#define IDFLOW_TLS_SOURCE_OPENSSL_EX 2 /* SSL_write_ex(ssl, buf, num, written) */
#define IDFLOW_TLS_SOURCE_GO 3         /* crypto/tls.(*Conn).Write(c, b []byte), register ABI */

/* Per-CPU counters (array map "stats"). */
#define IDFLOW_TLS_STAT_WRITES 0          /* probe hits */
#define IDFLOW_TLS_STAT_LOST 1            /* records the ring buffer had no room for */
#define IDFLOW_TLS_STAT_TRUNCATED_BYTES 2 /* bytes past IDFLOW_TLS_DATA_MAX */
#define IDFLOW_TLS_STAT_READ_FAULTS 3     /* the buffer could not be read */
#define IDFLOW_TLS_STAT_COUNT 4

struct idflow_tls_event {
  unsigned long long ktime_ns; /* bpf_ktime_get_ns() */
  unsigned long long ret_addr; /* the probed function's return address */
  unsigned long long cookie;   /* the attachment's bpf cookie: which object, which probe */
  unsigned int tgid;
  unsigned int tid;
  unsigned int len;         /* bytes the call was asked to write */
  unsigned int data_len;    /* bytes copied into data (<= IDFLOW_TLS_DATA_MAX) */
  unsigned int source;      /* IDFLOW_TLS_SOURCE_* */
  unsigned int frame_bytes; /* bytes of frames filled by bpf_get_stack (0: none) */
  unsigned long long frames[IDFLOW_TLS_FRAMES]; /* frames[0]: the probed function */
  unsigned char data[IDFLOW_TLS_DATA_MAX];
};

/* Bytes of the record before data. */
#define IDFLOW_TLS_EVENT_HEADER_BYTES (8 + 8 + 8 + 4 * 6 + 8 * IDFLOW_TLS_FRAMES)

#endif /* IDFLOW_AGENT_UPROBE_TLS_EVENT_H_ */
