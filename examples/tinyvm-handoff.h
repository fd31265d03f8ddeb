/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Handing a tinyvm guest over with libsevmigrate: the old VMM's side and the
 * new VMM's side, shared by the upgrade example, the tests and the
 * benchmark.  The device state this VMM passes along is its heartbeat
 * checker and a RAM checksum, so the new side can prove the guest lost
 * nothing.
 */
#ifndef TINYVM_HANDOFF_H
#define TINYVM_HANDOFF_H

#include <sevmigrate.h>

#include "tinyvm.h"

struct tinyvm_handoff_times {
	bool verify_ram;	/* in: checksum guest RAM on both sides (inside the blackout) */
	/*
	 * in, old VMM: the switch captures every vCPU, one after another,
	 * instead of each vCPU thread its own as it pauses
	 * (sevm_handoff_capture_vcpu()).
	 */
	bool capture_in_switch;
	uint64_t pause_ns;	/* CLOCK_MONOTONIC when the old VMM began to pause */
	uint64_t paused_ns;	/* every vCPU out of KVM_RUN */
	uint64_t switched_ns;	/* switch returned */
	uint64_t resumed_ns;	/* the side's vCPUs were released again (new VMM), or 0 */
};

/*
 * Old VMM: vm runs; h is a connected sender.  Prepare while it runs, pause,
 * switch.  0: handed over (vm stays paused; destroy it).  Otherwise the
 * guest was resumed here (rollback), or, for -SEVM_ERR_INDOUBT, left paused.
 */
int tinyvm_handoff_send(struct tinyvm *vm, struct sevm_handoff *h,
			struct tinyvm_handoff_times *t);

/*
 * New VMM: h is an accepted receiver.  Build a shell VM on the handed-over
 * memory, restore, check the RAM checksum, resume with the heartbeat
 * checker continuing from the old VMM's last beats.  `t->pause_ns` comes
 * from the old VMM, so resumed_ns - pause_ns is the blackout.
 */
int tinyvm_handoff_receive(struct tinyvm *vm, struct sevm_handoff *h,
			   struct tinyvm_handoff_times *t);

#endif
