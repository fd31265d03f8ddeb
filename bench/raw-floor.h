/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The raw-ioctl floor of an intra-host handoff: the same move that
 * libsevmigrate makes, written by hand with KVM ioctls and no format, so
 * that bench-handoff can put the library's blackout next to what a perfect
 * implementation costs on the same machine in the same run.
 *
 * The state is exactly the list the project's handoff notes measured their
 * floor with: per vCPU regs, sregs, xsave, xcrs, lapic, the MSRs that read back, vCPU events,
 * debug registers, MP state; per VM the clock, PIC x2, IOAPIC, PIT2.  No
 * CPUID: the new VMM set it when it built its vCPUs, before the pause.
 *
 * It is the naive sequence of the handoff notes' floor: everything that does
 * not depend on the guest's state is ready before the pause (the new VM on
 * the memfd, its vCPUs with CPUID, the slot, parked threads, the MSR list,
 * the buffers); then, one after another, pause, capture every vCPU and the
 * VM, write it all, read it all, restore every vCPU and the VM, release.
 *
 * Protocol on a connected UNIX stream socket:
 *   old -> new  HELLO (vCPU count, RAM size) + the memfd by SCM_RIGHTS
 *   new         builds its VM on the memfd, parks its vCPU threads
 *   new -> old  READY (a status)
 *   old         pauses, captures, writes one plain array of structs
 *   new         reads it, sets it in the kernel's order, releases its threads
 */
#ifndef RAW_FLOOR_H
#define RAW_FLOOR_H

#include <stdint.h>

#include "tinyvm.h"

/* KVM_GET_MSR_INDEX_LIST lists 41 here; room for a richer kernel. */
#define RAW_FLOOR_MAX_MSRS	64

/* CLOCK_MONOTONIC stamps; the host-wide clock makes the two processes' comparable. */
struct raw_floor_times {
	uint64_t pause_ns;	/* old VMM began to pause */
	uint64_t paused_ns;	/* every vCPU out of KVM_RUN */
	uint64_t captured_ns;	/* old VMM read every item */
	uint64_t received_ns;	/* new VMM has the whole array */
	uint64_t restored_ns;	/* new VMM set every item */
	uint64_t resumed_ns;	/* new VMM released its vCPU threads */
};

/* The old VMM's side of one handoff. */
struct raw_floor_old {
	struct tinyvm *vm;
	int sock;
	uint32_t nr_msrs;
	uint32_t msrs[RAW_FLOOR_MAX_MSRS];	/* the indices that read back */
	void *state;				/* the array, allocated before the pause */
	size_t state_len;
};

/*
 * Before the guest runs (vm built, guest loaded, threads not started): learn
 * which MSRs read back, on vCPU 0, and allocate the state array.  A running
 * vCPU would hold its mutex and make each probe wait for an exit.
 */
int raw_floor_old_init(struct raw_floor_old *o, struct tinyvm *vm, int sock);

/*
 * The guest runs: send HELLO and the memfd, wait until the new VMM is READY
 * (as long as sock's receive timeout lets it: see peer_timeouts()).
 */
int raw_floor_offer(struct raw_floor_old *o);

/*
 * The blackout's first half: pause, capture, write.  The old VM stays
 * paused; the caller destroys it.  Fills pause_ns, paused_ns, captured_ns.
 */
int raw_floor_send(struct raw_floor_old *o, struct raw_floor_times *t);

void raw_floor_old_free(struct raw_floor_old *o);

/*
 * New VMM: take the guest from sock into vm (built here), run it with the
 * heartbeat checker continuing from the old VMM's last beats.  ready (may
 * be NULL) is called when vm is built, just before READY goes out.  0 with
 * every stamp filled, or -errno (a message on stderr).
 */
int raw_floor_receive(int sock, struct tinyvm *vm, void (*ready)(void),
		      struct raw_floor_times *t);

#endif
