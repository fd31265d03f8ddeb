/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-handoff's parts: one handoff and the new VMM (handoff-run.c), the
 * copy baseline (handoff-copy.c), the seam tracer (handoff-trace.c) and the
 * driver with its tables (handoff.c).
 */
#ifndef BENCH_HANDOFF_H
#define BENCH_HANDOFF_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sockio.h"
#include "sys.h"

#define PAGE		4096u
#define MIB		(1ull << 20)
#define GIB		(1ull << 30)
#define MAX_RUNS	101

/* ---- Children (handoff-run.c) ------------------------------------------- */

double ms_between(uint64_t from, uint64_t to);

/* This binary again, in a hidden role: the new VMM ("new") or a copy receiver ("copy"). */
struct child {
	pid_t pid;
	int sock;	/* the handoff (or copy) channel */
	int ctl;	/* the child's report */
};

extern const char *bench_argv0;
/* Our ends of both channels wait at most PEER_WAIT_MS (sockio.h) in each read or write. */
int spawn(const char *role, const char *mode, uint64_t size, struct child *ch);
/*
 * Closing our ends ends a child that still waits for us; then collect it,
 * killed if it has not exited within PEER_WAIT_MS.  0: it exited 0.
 */
int reap(struct child *ch);

/* ---- One handoff (handoff-run.c) ---------------------------------------- */

enum mode { MODE_LIB, MODE_RAW, NR_MODES };

/*
 * One handoff's figures in ms, NAN where the mode (or an untraced run) has
 * none.  The critical path adds up to the blackout: for the raw floor
 * stop + capture + transfer + restore + release, for the staged library
 * stop + capture + restore (its tail) + commit + release.  When the
 * vCPU threads capture as they pause, the staged capture may end before
 * the stop does: it then counts 0 and the restore starts where the stop
 * ended, so the steps still add up; the capture's and the restore's own
 * spans and sums stand beside them (F_O_SPAN ..., handoff-trace.h).
 */
enum fig {
	F_BLACKOUT,	/* the old VMM starts to pause -> the new VMM releases its vCPUs */
	F_STOP,		/* -> every vCPU out of KVM_RUN */
	F_CAPTURE,	/* raw: every getter done; staged: the old VMM began its last STATE (or 0) */
	F_TRANSFER,	/* raw: -> the new VMM holds the whole array */
	F_RESTORE,	/* raw: every setter; staged: -> the new VMM restored all (began RESTORED) */
	F_COMMIT,	/* staged: -> the new VMM's switch returned (RESTORED, GO, RESUMED) */
	F_RELEASE,	/* -> the new VMM released its vCPU threads */
	/* After the blackout, from the release on. */
	F_RUN_FIRST,	/* the first vCPU thread called KVM_RUN */
	F_RUN_ALL,	/* every vCPU thread had */
	F_RAN_ALL,	/* every vCPU came back with an exit: the guest ran on each */
	/* Staged: each side's clock, ms since the pause began. */
	F_O_CAPT1,	/* old: the first vCPU captured (its last ioctl) */
	F_O_CAPTN,	/* old: the last vCPU captured */
	F_O_SENT,	/* old: began to send the last STATE: all captured */
	F_O_RESTORED,	/* old: RESTORED in */
	F_O_SWITCHED,	/* old: sevm_handoff_switch() returned */
	F_N_STATE1,	/* new: the first STATE's first byte in */
	F_N_STATEN,	/* new: the last STATE in */
	F_N_RESTORED,	/* new: every vCPU and the VM restored, RESTORED going out */
	F_N_GO,		/* new: GO in */
	F_N_SWITCHED,	/* new: sevm_handoff_switch_receive() returned */
	/* Staged: work inside the blackout. */
	F_O_SPAN,	/* old: the first capture ioctl began -> the last ended */
	F_N_SPAN,	/* new: the first restore ioctl began -> the last ended */
	F_O_IOCTL,	/* old: ms inside the library's ioctls (capture), summed over threads */
	F_N_IOCTL,	/* new: ms inside them (restore), summed over threads */
	F_O_THREADS,	/* old: threads that made them */
	F_N_THREADS,	/* new: threads that made them */
	F_O_PER_VCPU,	/* old: ioctls per vCPU (the VM's included) */
	F_N_PER_VCPU,	/* new: ioctls per vCPU */
	F_O_SOCK,	/* old: ms inside sendmsg/recvmsg */
	F_N_SOCK,	/* new: ms inside sendmsg/recvmsg */
	F_MSGS,		/* STATE messages */
	F_KIB,		/* STATE payload, KiB */
	F_TRACE,	/* what noting the calls cost, both sides, ms (estimated) */
	F_ONE_CPU,	/* 1: most calls of both sides ran on the same CPU (no overlap) */
	NR_FIGS
};

struct sample {
	double f[NR_FIGS];
};

struct handoff_cfg {
	unsigned int vcpus;
	uint64_t mem_size;
	int mem_fd;		/* the guest's RAM, touched beforehand */
	bool trace;		/* staged: note the library's calls on both sides */
	bool fifo;		/* the new VMM's control thread SCHED_FIFO */
	bool one_thread;	/* staged: the switch captures, one thread restores */
	bool verbose;		/* where the handoff's time outside the blackout goes, on stderr */
	double trace_cost_ns;	/* per call noted */
};

/*
 * Boot a tinyvm guest on the memfd in this process (the old VMM), start a
 * new VMM process, hand the guest over; the new VMM runs it until every
 * vCPU beat twice more, exactly.  0 with *s filled, or -errno.  *slot_ms:
 * how long the old VM's memory slot took to set (outside the blackout).
 */
int handoff_once(enum mode m, const struct handoff_cfg *c, struct sample *s, double *slot_ms);

/* The new VMM (the hidden role "new"): mode is "lib" or "raw", then "+trace", "+fifo". */
int new_vmm_main(const char *mode, int sock, int ctl);

/* --fifo: the new VMM's control thread SCHED_FIFO; what it got, as text. */
const char *new_vmm_fifo(void);

/* ---- The copy baseline (handoff-copy.c) --------------------------------- */

/*
 * COPY_RAM: the receiver reads into RAM of its own of the full size, faulted
 * in beforehand (the copy's best case); the RESULT line uses it.
 * COPY_SOCKET: it reads into one 1 MiB buffer it reuses, so every byte
 * crosses the socket and none lands in new memory.
 */
enum copy_kind { COPY_SOCKET, COPY_RAM, NR_COPY_KINDS };

struct copy_result {
	uint64_t mem_size;
	unsigned int n[NR_COPY_KINDS];
	double ms[NR_COPY_KINDS][MAX_RUNS];
};

/* A copy receiver and what it said about its memory: 1 in place, 0 not yet heard, < 0 failed. */
struct copy_peer {
	struct child ch;
	int ready;
};

bool copy_is_size(uint64_t size);
/* Start a RAM receiver early, so that it faults its memory in while the guest's is touched. */
int copy_spawn_early(uint64_t size, struct copy_peer *p);
int copy_wait_ready(struct copy_peer *p);
/* Every copy of one size; early: the RAM receiver started beforehand, or NULL. */
void copy_run_all(struct copy_result *cr, int mem_fd, uint64_t size, unsigned int runs,
		  bool quick, struct copy_peer *early);
/* The hidden role "copy". */
int copy_receiver_main(const char *kind, int sock, int ctl, uint64_t size);

#endif
