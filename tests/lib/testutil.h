/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the test programs: skipping, running a Check suite, faults. */
#ifndef SEVM_TESTUTIL_H
#define SEVM_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/*
 * Fault injection at the library's seam: a backend that passes every call
 * on to the backend installed before it, counts the calls and makes the
 * `fail_at`-th matching one (1-based; 0 never) return `err` without reaching
 * the layer below.  `request` 0 matches every ioctl; with `ops` set to
 * TU_OP_IOCTL only ioctls count, and so on.
 */
enum tu_op { TU_OP_OPEN = 1, TU_OP_IOCTL = 2, TU_OP_CLOSE = 4, TU_OP_SENDMSG = 8,
	     TU_OP_RECVMSG = 16, TU_OP_ALL = 31 };

struct tu_fault {
	unsigned int ops;
	unsigned long request;
	unsigned int fail_at;
	int err;
	unsigned int calls;	/* matching calls seen so far */
	unsigned int injected;	/* failures injected */
};

void tu_fault_install(struct tu_fault *f);
void tu_fault_remove(void);

#endif
