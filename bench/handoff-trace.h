/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where a staged handoff's blackout goes, seen from outside the library.
 * bench-handoff installs a backend on libsevmigrate's public seam
 * (sevm_set_backend()) that passes every call on to the kernel and notes
 * when it ran: ioctls by fd, and the handoff socket's bytes followed through
 * the protocol's framing (doc/handoff-protocol.md, a 16-byte header with the
 * payload length), so that every message has the time of its first and last
 * byte.  The library has no hook for this and gets none.
 *
 * Threads.  Any number of threads may call through the seam at once, in
 * either process: the old VMM's vCPU threads each capture their vCPU and
 * send it as they pause (sevm_handoff_capture_vcpu()), the new VMM's
 * workers restore vCPUs side by side.  Each thread notes its calls in
 * blocks of a shared pool that it alone writes: claiming a block is one
 * atomic add, publishing a note one release store, so the hot path takes
 * no lock and shares no cache line with other threads.  Each direction of
 * the socket is followed by one thread at a time, because the library
 * sends (and receives) a message at a time under its own lock — it must,
 * or messages would interleave on the stream; two threads found following
 * one direction at once mark the side incomplete instead of guessing the
 * bytes' order.
 *
 * Overlap.  When capture overlaps the pause and restore runs on several
 * threads, a side's steps are no longer one after another, so each side
 * reports spans and sums beside its milestones:
 *   first_ioctl -> last_ioctl  the wall-clock span of its work inside the
 *       blackout: the old VMM's capture (first KVM_GET_* to the last), the
 *       new VMM's restore (first KVM_SET_* to the last);
 *   ioctl_ns  the time inside those ioctls summed over the threads, so
 *       ioctl_ns / span is how many ran at once on average;
 *   ioctl_threads  how many threads made them.
 * On one thread the span is ioctl_ns plus the gaps between the calls, and
 * ioctl_threads is 1: the figures mean what they did before.  KVM_RUN (a
 * vCPU thread quiescing) counts in none of them.  The critical path that
 * adds up to the blackout is built from the milestones (handoff.h, enum
 * fig): the capture there is only what was left of it after the stop.
 *
 * The cost is two clock reads and a note per call (trace_call_cost_ns());
 * the table prints what that adds up to.
 */
#ifndef BENCH_HANDOFF_TRACE_H
#define BENCH_HANDOFF_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#define TRACE_MAX_CPUS	64	/* CPUs told apart; the rest count as CPU 0 */

/* What one side's calls show of one handoff.  CLOCK_MONOTONIC ns, 0: not seen. */
struct trace_side {
	uint64_t first_ioctl;	/* the first ioctl began (old: capture, new: restore) */
	uint64_t last_ioctl;	/* the last ioctl ended */
	uint64_t vcpu_first;	/* the first vCPU done: its last ioctl ended */
	uint64_t vcpu_last;	/* the last vCPU done */
	uint64_t vm_last;	/* the last ioctl on the VM fd ended */
	uint64_t ioctl_ns;	/* time inside those ioctls, summed over threads */
	uint64_t sock_ns;	/* time inside sendmsg/recvmsg calls that moved bytes */
	uint64_t state_first;	/* sender: began to send the first STATE; receiver: its first byte in */
	uint64_t state_last;	/* sender: began to send the last; receiver: had all of it */
	uint64_t state_bytes;	/* STATE payload */
	uint64_t restored;	/* receiver: began to send RESTORED; sender: had it all */
	uint64_t go;		/* sender: sent GO; receiver: had it */
	uint64_t resumed;	/* receiver: sent RESUMED; sender: had it */
	uint32_t state_msgs;
	uint32_t ioctls;
	uint32_t ioctl_threads;	/* threads that made those ioctls */
	uint32_t calls;		/* every call noted since `from`: the tracing's cost */
	int cpu;		/* the CPU most of those ioctls ran on (-1: none) */
	double cpu_share;	/* the share of them that ran there */
	bool complete;		/* the framing parsed and no note was dropped */
};

/*
 * Put the backend in (before threads use the library; it also faults the
 * notes' memory in, so that no note takes a page fault) and take it out.
 */
int trace_install(void);
void trace_remove(void);

/*
 * fn runs once, on the thread that sends PREPARED, just before it does
 * (the receiver's preparation is done; the sender pauses when it arrives),
 * armed or not.
 */
void trace_before_prepared(void (*fn)(void));

/*
 * Forget every note and note from now on; stop noting.  One thread arms,
 * disarms and summarises, and arms only when no thread is still inside a
 * call it noted under the previous arming (the benchmark arms once per VM,
 * before the handoff).
 */
void trace_arm(void);
void trace_disarm(void);

/*
 * Since `from`: the vCPU fds (and the VM fd) are the side's own.  Threads
 * may still be noting calls meanwhile (vCPU threads of a released guest):
 * only whole notes are read.
 */
void trace_summarise(uint64_t from, int vm_fd, const int *vcpu_fds, unsigned int nr_vcpus,
		     struct trace_side *out);

/* Measured here: what noting one call costs, ns. */
double trace_call_cost_ns(void);

#endif
