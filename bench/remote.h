/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-remote: what its parts share.  remote.c runs the parts and prints
 * the RESULT lines; remote-private.c measures private pages on the SEV model,
 * remote-shared.c shared pages against the socket, remote-precopy.c pre-copy
 * under a guest that keeps writing; remote-guest.c is that guest.
 */
#ifndef BENCH_REMOTE_H
#define BENCH_REMOTE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sevmigrate.h>

#include "quiet.h"	/* each measured run waits for a quiet machine */
#include "sockio.h"	/* write_all() */
#include "sys.h"
#include "tinyvm.h"

#define PAGE		4096u
#define MIB		(1ull << 20)
#define MAX_RUNS	63
#define CHUNK		MIB		/* every raw baseline's read() and write() size */

struct config {
	bool quick;
	unsigned int runs;		/* measured pairs per comparison */
	uint64_t private_pages;		/* pages per private run */
	unsigned int e2e_runs;		/* private end-to-end migrations */
	uint64_t shared_bytes;		/* guest RAM for shared pages and pre-copy */
	bool verbose;
	unsigned int parts;		/* PART_* */
};

#define PART_PRIVATE	(1u << 0)
#define PART_SHARED	(1u << 1)
#define PART_PRECOPY	(1u << 2)

/* ---- remote.c: small things ------------------------------------------------ */

uint64_t thread_cpu_ns(void);
double median(const double *v, unsigned int n);
double min_of(const double *v, unsigned int n);
double max_of(const double *v, unsigned int n);
/* MB = 10^6 bytes of guest memory; per second from a byte count and ns. */
double mb_per_s(uint64_t bytes, double ns);
__attribute__((noreturn)) void die(const char *what, int err);

/* A connected TCP connection over 127.0.0.1 (what a remote migration uses). */
int tcp_pair(int *tx, int *rx);

/* A thread that reads a socket to its end and throws the bytes away. */
struct drain {
	int fd;
	pthread_t thread;
	uint64_t bytes;
	uint64_t cpu_ns;		/* its CPU time */
	uint64_t last_ns;		/* when it read the last byte */
};

int drain_start(struct drain *d, int fd);
/* Wait for the drain to see the peer's end; the fd is not closed. */
void drain_join(struct drain *d);

/* ---- The parts ------------------------------------------------------------------ */

struct private_result {
	bool ran;
	double ours_ns_page, raw_ns_page;	/* medians, sender side */
	double e2e_ns_page;			/* library on both sides, median */
	unsigned int e2e_ok;
};

struct shared_result {
	bool ran;
	double ours_mb_s, socket_mb_s;		/* medians of the end-to-end runs */
};

struct precopy_result {
	bool ran;
	unsigned int scenarios, converged;
};

int bench_private(const struct config *cfg, struct private_result *res);
int bench_shared(const struct config *cfg, struct tinyvm *src, struct tinyvm *dst,
		 struct shared_result *res);
int bench_precopy(const struct config *cfg, struct tinyvm *src, struct tinyvm *dst,
		  struct precopy_result *res);

/* ---- remote-guest.c: a guest that writes pages at a known rate -------------------- */

/*
 * A 32-bit flat protected-mode loop, one vCPU, on tinyvm's VM (irqchip, CPUID,
 * slot 0 with the dirty log on): it adds 1 to the first dword of page
 * base + i, i = 0, 1, ... pages - 1, 0, ..., and after every GUEST_BATCH
 * pages it counts the batch at GUEST_COUNTER_GPA and writes port
 * GUEST_PORT.  The VMM thread paces it there: a write rate in pages/s
 * (0: as fast as the vCPU goes).  Every write is the guest's own, so KVM's
 * dirty log sees it, which a host thread writing into guest RAM would not.
 */
#define GUEST_CODE_GPA		0x1000
#define GUEST_COUNTER_GPA	0x2000
#define GUEST_DATA_GPA		0x10000	/* the first page the guest may stride over */
#define GUEST_BATCH		64
#define GUEST_PORT		0x11

struct guest_run {
	struct tinyvm *vm;
	uint64_t rate;			/* pages/s, 0: unpaced */
	pthread_t thread;
	bool started;
	int stop;			/* atomic */
	int err;			/* first bad exit or ioctl, -errno */
	uint64_t batches;		/* atomic: batches done since the start */
	uint64_t t0;
};

/* Create the VM, fill RAM with bytes that differ page by page, dirty log on slot 0. */
int guest_create(struct tinyvm *vm, uint64_t mem_size);
/* The destination: an empty VM of the same shape on a fresh memfd, faulted in. */
int guest_create_dest(struct tinyvm *vm, uint64_t mem_size);
/* Point the vCPU at the loop over pages [first_gfn, first_gfn + pages). */
int guest_load(struct tinyvm *vm, uint64_t first_gfn, uint64_t pages);
int guest_start(struct guest_run *g, struct tinyvm *vm, uint64_t rate);
/* Stop the vCPU thread and complete the last exit (sevm_vcpu_quiesce()). */
int guest_stop(struct guest_run *g);
uint64_t guest_pages_written(const struct guest_run *g);
/* The batch counter in guest memory. */
uint32_t guest_counter(const struct tinyvm *vm);
/* slot 0 with or without KVM_MEM_LOG_DIRTY_PAGES */
int guest_log_dirty(struct tinyvm *vm, bool on);
/* slot 0 as the library takes it (flags: SEVM_REGION_LOG_DIRTY on the source) */
void guest_region(const struct tinyvm *vm, uint32_t flags, struct sevm_region *r);

#endif
