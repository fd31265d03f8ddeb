/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fault sweep shared by the programs of suite `fault`: run one flow
 * clean and count the calls it makes through the library's seam (N); then
 * run it N more times, the k-th call failing with an errno that call can
 * really return.  After each run: a negative errno and a message naming the
 * failed call, or success where the library must retry (EINTR; EAGAIN of a
 * socket); no fd and no heap block left behind; and the guest in the state
 * the documentation promises, which the flow itself checks.
 */
#ifndef SEVM_FAULT_SWEEP_H
#define SEVM_FAULT_SWEEP_H

#include <stdbool.h>
#include <stddef.h>

#include "testutil.h"

struct sweep_flow {
	const char *name;
	void *ctx;
	/* Before each run, with no injector: the guest, the peer, the socket. */
	void (*setup)(void *ctx);
	/* The public calls under test, run with the injector in this thread. */
	int (*run)(void *ctx);
	/*
	 * After each run, with no injector: check the state the docs promise
	 * after result err (report with sweep_expect), and tear down.  hit is
	 * the failed call, NULL when none was failed.
	 */
	void (*check)(void *ctx, int err, const struct tu_call *hit);
	int clean_result;	/* what run returns without a fault: 0, or the flow's own error */
	/*
	 * Count and fail the calls of every thread, not only of the one that
	 * runs the flow: the library's restore threads, the VMM's vCPU threads
	 * that capture their own vCPU.  The number of calls is the same in
	 * every run, their order across threads is not, so the k-th call
	 * differs between runs; which one failed is reported each time.
	 */
	bool all_threads;
};

/*
 * Sweep one flow; the test fails (after the whole sweep) on any finding.
 * FAULT_ONLY=<flow>:<k>[:<round>] runs that one case, FAULT_TRACE=1 prints
 * every run.
 */
void sweep(const struct sweep_flow *flow);

/* Inside check: a broken promise, reported with the flow, k and the failed call. */
#define sweep_expect(cond, ...) \
	((cond) ? (void)0 : sweep_finding(__FILE__, __LINE__, __VA_ARGS__))
void sweep_finding(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A note that is no failure, printed once per distinct text at the end of the flow. */
void sweep_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "KVM_GET_REGS", "SEV SEND_START", "sendmsg": what a call is, for messages. */
const char *sweep_call_name(const struct tu_call *c, char *buf, size_t len);

#endif
