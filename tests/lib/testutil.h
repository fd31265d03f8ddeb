/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the test programs: skipping, running a Check suite, processes, faults. */
#ifndef SEVM_TESTUTIL_H
#define SEVM_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Meson counts this exit status as a skipped test. */
#define TU_SKIP 77

/* Exit with TU_SKIP, after printing why, when /dev/kvm cannot be used. */
void tu_require_kvm(void);

/* Run the suite (no fork, so fd and leak checks see the whole process). */
int tu_run(Suite *s);

/* Number of open fds of this process (/proc/self/fd), for leak checks. */
int tu_count_fds(void);

/* Deterministic pseudo-random numbers (xorshift64*), so a failure reproduces. */
void tu_rng_seed(uint64_t seed);
uint64_t tu_rng(void);
void tu_rng_fill(void *p, size_t n);

/* Pass one fd over a UNIX socket (SCM_RIGHTS) with one byte: 0 / -1, fd / -1. */
int tu_send_fd(int sock, int fd);
int tu_recv_fd(int sock);

void tu_sleep_ms(unsigned int ms);
/* Wait up to timeout_ms for a child, then SIGKILL it: its exit status, 128 + signal, or -1. */
int tu_reap(pid_t pid, int timeout_ms);

/*
 * From now on this process dies by SIGKILL when the library is about to
 * send a handoff message of `type` (SEVM_MSG_*), as a VMM crashing there
 * would; the backend in force serves every other call.
 */
void tu_die_before_msg(uint16_t type);

/*
 * Fault injection at the library's seam: a backend that passes every call
 * on to the backend installed before it, counts the calls and makes the
 * `fail_at`-th matching one (1-based; 0 never) return `err` without reaching
 * the layer below.  `request` 0 matches every ioctl; with `ops` set to
 * TU_OP_IOCTL only ioctls count, and so on.  It sits below the seam's EINTR
 * retry, so an injected EINTR is retried as a signal's would be.
 */
enum tu_op { TU_OP_OPEN = 1, TU_OP_IOCTL = 2, TU_OP_CLOSE = 4, TU_OP_SENDMSG = 8,
	     TU_OP_RECVMSG = 16, TU_OP_ALL = 31 };

/* Index of one op in tu_fault.per_op: 0 open, 1 ioctl, 2 close, 3 sendmsg, 4 recvmsg. */
#define TU_OP_INDEX(op) ((unsigned int)__builtin_ctz((unsigned int)(op)))
#define TU_NR_OPS 5

/* One call through the seam, as the injector saw it. */
struct tu_call {
	enum tu_op op;
	unsigned long request;	/* an ioctl's request */
	bool sev;		/* an SEV command: KVM_MEMORY_ENCRYPT_OP or SEV_ISSUE_CMD */
	uint32_t sev_id;	/* its kvm_sev_cmd.id or sev_issue_cmd.cmd */
	int err;		/* what the injector made it return (negative) */
	uint32_t fw_status;	/* and the firmware status it wrote, 0 for none */
};

struct tu_fault {
	unsigned int ops;
	unsigned long request;
	unsigned int fail_at;
	int err;
	unsigned int calls;	/* matching calls seen so far */
	unsigned int injected;	/* failures injected */
	/* Optional; zero keeps the behaviour above. */
	pid_t tid;		/* count only this thread's calls (gettid()); 0: every thread */
	uint32_t fw_status;	/* fail an SEV command with this firmware status (err -EIO) */
	/*
	 * Chooses err and fw_status for the failing call (call->err and
	 * call->fw_status come preset from the fields above); NULL keeps them.
	 */
	void (*choose)(struct tu_call *call, void *ctx);
	void *choose_ctx;
	struct tu_call hit;	/* the call that was failed */
	unsigned int per_op[TU_NR_OPS];	/* the watched threads' calls per op, counted or not */
	struct tu_call *log;	/* if set: the first log_cap matching calls, in order */
	unsigned int log_cap;
	/*
	 * A non-blocking sendmsg/recvmsg that could only say EAGAIN now goes on
	 * uncounted, so that the numbering of calls does not hang on timing.
	 */
	bool skip_would_block;
};

void tu_fault_install(struct tu_fault *f);
void tu_fault_remove(void);

#endif
