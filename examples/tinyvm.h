/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tinyvm: the smallest VMM that can be handed over — raw KVM ioctls and one
 * pthread per vCPU.  The upgrade example, the tests and the benchmarks use it
 * to play the old and the new VMM; it is not part of the library.
 *
 * The guest is a 16-bit real-mode loop, one per vCPU: increment a 32-bit
 * counter in guest memory; every `period` iterations write the counter to
 * port TINYVM_PORT_HEARTBEAT (the heartbeat) and read the port once (its
 * echo).  The vCPU threads check that each heartbeat is exactly the previous
 * one plus the period, and that no echo is read twice (the VMM marks the
 * answered beat in guest memory), so a lost or repeated port write, or a
 * repeated port read — a handoff that loses or replays an instruction —
 * shows up in `errors`.
 *
 * Threads: tinyvm_pause(), tinyvm_resume(), tinyvm_expect_continuation() and
 * tinyvm_destroy() are for one controlling thread.  While the guest runs,
 * read a vCPU's progress with the accessors (tinyvm_heartbeats() ...); while
 * it is paused (or before it starts) the fields may be read directly.
 */
#ifndef TINYVM_H
#define TINYVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TINYVM_MAX_VCPUS	512
#define TINYVM_PORT_HEARTBEAT	0x10	/* out: eax = the vCPU's counter; in: its echo */

/* Guest physical layout (all below 64 KiB: real mode with every base 0). */
#define TINYVM_CODE_GPA		0x1000	/* the guest program */
#define TINYVM_COUNTER_GPA	0x8000	/* vCPU i's counter at + 64 * i, echo mark at + 4 */
#define TINYVM_COUNTER_STRIDE	64	/* one cache line each */

/* tinyvm_create() / tinyvm_create_shell() flags */
#define TINYVM_F_PIT		(1u << 0) /* an in-kernel PIT (KVM_CREATE_PIT2) */
#define TINYVM_F_NO_MEMSLOT	(1u << 1) /* map RAM but leave slot 0 to the caller */
#define TINYVM_F_ALWAYS_QUIESCE	(1u << 2) /* pause: sevm_vcpu_quiesce() every vCPU, not
					     only those that just handled an exit */

/*
 * Interrupts KVM_RUN.  Starting the threads installs a handler for it that
 * does nothing (process-wide): a VMM using tinyvm leaves this signal to it.
 */
#define TINYVM_KICK_SIGNAL	SIGUSR1

struct tinyvm;

struct tinyvm_vcpu {
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	uint32_t index;
	uint64_t heartbeats;	/* heartbeats seen by this VMM */
	uint32_t last_beat;	/* value of the last one (valid when has_base) */
	uint64_t errors;	/* wrong heartbeats, unexpected exits, failed ioctls */
	bool has_base;		/* the next heartbeat must be last_beat + period */
	bool stopped;		/* an unexpected exit ended this vCPU (see stderr) */
	bool exit_pending;	/* last KVM_RUN returned an exit: its instruction may be unfinished */
	struct tinyvm *vm;
	/* CLOCK_MONOTONIC since the guest was last let run; read with tinyvm_run_stamps() */
	uint64_t run_ns;	/* the thread's first KVM_RUN */
	uint64_t exit_ns;	/* the first KVM_RUN that came back with an exit */
};

struct tinyvm {
	int kvm_fd, vm_fd;
	unsigned int nr_vcpus;
	struct tinyvm_vcpu *vcpus;
	int mem_fd;		/* memfd (MFD_ALLOW_SEALING) holding guest RAM, slot 0 at GPA 0 */
	void *mem;
	uint64_t mem_size;
	bool owns_mem_fd;	/* tinyvm_destroy() closes mem_fd */
	bool initialized;	/* false in a zeroed or destroyed struct */
	unsigned int flags;
	uint32_t period;	/* heartbeat period, a power of two */
	uint64_t slot_ns;	/* time KVM_SET_USER_MEMORY_REGION took (grows with RAM) */
	uint64_t resume_ns;	/* CLOCK_MONOTONIC: the last tinyvm_resume() let the threads run */
	bool (*park_hook)(struct tinyvm *vm, unsigned int i, void *ctx);
	void *park_ctx;
	size_t run_size;
	unsigned int nr_cpus;	/* online CPUs, for pause's wait */

	/* pause/run control: see "Pause protocol" in tinyvm.c */
	uint32_t cmd;		/* futex: sequence << 2 | command */
	uint32_t acks;		/* futex: vCPU threads parked for the current pause */
	bool threads_started;
	bool paused;
};

/*
 * Create the VM: in-kernel irqchip, PIT if TINYVM_F_PIT, RAM of mem_size in
 * a fresh memfd (sparse: only touched pages cost memory) as slot 0 at GPA 0,
 * nr_vcpus vCPUs with the supported CPUID.  0 or -errno; on failure nothing
 * is left open and tinyvm_destroy() is a no-op.
 */
int tinyvm_create(struct tinyvm *vm, unsigned int nr_vcpus, uint64_t mem_size, unsigned int flags);

/*
 * The same for a new VMM that receives the guest: RAM is mem_fd (already
 * holding the guest; the caller keeps it), nothing is loaded and no register
 * is set — the caller restores the state.  With TINYVM_F_NO_MEMSLOT the RAM
 * is mapped (for tinyvm_counter() and the checksum) but slot 0 is left to the
 * caller, e.g. a library that sets the slots itself.
 */
int tinyvm_create_shell(struct tinyvm *vm, unsigned int nr_vcpus, int mem_fd,
			uint64_t mem_size, unsigned int flags);

/*
 * Load the guest program with heartbeat_period (a power of two) and point
 * every vCPU at it: real mode, IP = TINYVM_CODE_GPA, SI = its index, APs
 * made runnable.  Counters restart at 0.
 */
int tinyvm_load_guest(struct tinyvm *vm, uint32_t heartbeat_period);

/*
 * Start one thread per vCPU running the guest.  The first heartbeat of each
 * vCPU is taken as its base, unless tinyvm_expect_continuation() was called;
 * every later one must be exactly the previous one + period.  Across
 * tinyvm_pause()/tinyvm_resume() the check continues.
 */
int tinyvm_start(struct tinyvm *vm);

/*
 * Create the threads parked, as if paused: tinyvm_resume() lets them run.
 * A new VMM does this before the blackout, so that only a futex wake is left
 * inside it.  Needs the guest in memory (the period is read from its code).
 */
int tinyvm_start_paused(struct tinyvm *vm);

/*
 * Stop every vCPU and return when each one is out of KVM_RUN, with the
 * instruction whose exit it last handled complete (sevm_vcpu_quiesce() after
 * an exit; a KVM_RUN that returned EINTR left nothing pending): the caller
 * may then use the vCPU fds from its own thread.  No sleeps.
 */
int tinyvm_pause(struct tinyvm *vm);

/*
 * While paused or running, for the pauses to come: each vCPU thread calls
 * fn(vm, its index, ctx) as it pauses, out of KVM_RUN, before
 * tinyvm_pause() can return.  fn returns true when it completed the last
 * exit's instruction itself (a KVM_RUN with immediate_exit, as
 * sevm_vcpu_quiesce() or sevm_handoff_capture_vcpu() with the kvm_run do);
 * false, and the thread does that after it.  NULL: no hook.
 */
void tinyvm_set_park_hook(struct tinyvm *vm,
			  bool (*fn)(struct tinyvm *vm, unsigned int i, void *ctx), void *ctx);
int tinyvm_resume(struct tinyvm *vm);

/* Stop and join the threads, unmap, close the fds (mem_fd only if owned).  Idempotent. */
void tinyvm_destroy(struct tinyvm *vm);

/* vCPU i's counter in guest memory (the guest increments it every loop iteration). */
uint32_t tinyvm_counter(const struct tinyvm *vm, unsigned int i);

/*
 * A 64-bit FNV-1a checksum of guest RAM: every page that is not all zero,
 * with its offset.  Holes are skipped with SEEK_DATA/SEEK_HOLE, so a sparse
 * 1 TiB guest costs what it holds.  Equal RAM gives an equal sum whether a
 * zero page is a hole or not.  Take it with the guest paused.
 */
uint64_t tinyvm_ram_checksum(const struct tinyvm *vm);

/*
 * The last heartbeat the previous VMM saw for each vCPU (nr_vcpus values):
 * the first heartbeat here must be exactly last + period.  This is how a test
 * proves that no beat was lost or repeated across processes.  NULL forgets
 * every base instead.  Call it before starting, or while paused.
 */
void tinyvm_expect_continuation(struct tinyvm *vm, const uint32_t *last_beats);

/* Progress of vCPU i, safe to read while the guest runs. */
uint64_t tinyvm_heartbeats(const struct tinyvm *vm, unsigned int i);
uint32_t tinyvm_last_beat(const struct tinyvm *vm, unsigned int i);
uint64_t tinyvm_errors(const struct tinyvm *vm, unsigned int i);
/* Sum of the errors of every vCPU. */
uint64_t tinyvm_total_errors(const struct tinyvm *vm);

/*
 * When vCPU i's thread, last let run (tinyvm_start() or tinyvm_resume()),
 * first called KVM_RUN, and when a KVM_RUN first came back with an exit:
 * the guest had then executed on it.  CLOCK_MONOTONIC ns; 0 for what has
 * not happened yet.  A benchmark reads how long a released guest takes to
 * run again.
 */
void tinyvm_run_stamps(const struct tinyvm *vm, unsigned int i, uint64_t *run_ns,
		       uint64_t *exit_ns);

#endif /* TINYVM_H */
