/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Remote migration: the sender and receiver drivers over the migration
 * stream (lib/stream), the SEV transport commands (lib/sev) and KVM's state
 * (lib/kvm).  Layout: io.c moves bytes, memmap.c knows where guest frames
 * live, send.c / precopy.c write the stream, recv.c applies it.
 */
#ifndef SEVM_MIGRATE_H
#define SEVM_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "sevmigrate.h"
#include "../core/buf.h"
#include "../kvm/state.h"
#include "../stream/format.h"

/* ---- io.c: the stream's channel ---------------------------------------- */

struct sevm__mio {
	int fd;
	bool sock;			/* sendmsg/recvmsg through the seam, no SIGPIPE */
	int timeout_ms;			/* each wait on fd; 0: none */
	struct sevm_io io;		/* when fd is -1 */
	uint64_t bytes;			/* moved so far */
};

int sevm__mio_init(struct sevm__mio *m, int fd, const struct sevm_io *io, int timeout_ms);
/* All of buf, or -errno (EPIPE, ECONNRESET when the peer went away). */
int sevm__mio_write(struct sevm__mio *m, const void *buf, size_t len);
/* All of the pieces, in one system call when the channel takes them (v is used up). */
int sevm__mio_writev(struct sevm__mio *m, struct iovec *v, int nv);
/* Some bytes: the count, 0 at the end of the stream, or -errno. */
ssize_t sevm__mio_read(struct sevm__mio *m, void *buf, size_t len);

/* ---- memmap.c: the guest's memory ------------------------------------------- */

struct sevm__memmap {
	unsigned int nr;
	struct sevm_gfn_range *ranges;	/* sorted by gfn, one per region */
	struct sevm_region *regions;	/* the same order */
};

/* Copy and check the regions (page aligned, mapped, disjoint), sorted. */
int sevm__memmap_init(struct sevm__memmap *m, const struct sevm_region *regions,
		      unsigned int nr);
void sevm__memmap_free(struct sevm__memmap *m);
/* Where gfn .. gfn + npages - 1 is mapped, all inside range i; NULL if not. */
uint8_t *sevm__memmap_host(const struct sevm__memmap *m, unsigned int i, uint64_t gfn,
			   uint64_t npages);
/* The range that holds gfn, or -1. */
int sevm__memmap_find(const struct sevm__memmap *m, uint64_t gfn);

/* ---- side.c: what both drivers hold ------------------------------------------ */

struct sevm__side {
	struct sevm__mio io;
	struct sevm__memmap map;
	int vm_fd;
	int *vcpu_fds;
	unsigned int nr_vcpus;
	enum sevm_sev_type sev_type;
};

/* From checked opts (a VM, its vCPUs, a channel, the regions): 0 or -errno, recorded. */
int sevm__side_init(struct sevm__side *d, const struct sevm_migrate_opts *o);
void sevm__side_free(struct sevm__side *d);

/* ---- Statistics ---------------------------------------------------------------- */

struct sevm__passes {
	struct sevm_iteration_stats *v;
	unsigned int nr, cap;
	struct sevm_iteration_stats cur;	/* the pass being made */
	uint64_t t0;			/* its start, ns */
	uint64_t bytes0;		/* channel bytes at its start */
};

uint64_t sevm__now_ns(void);
void sevm__pass_begin(struct sevm__passes *p, uint64_t bytes);
/* Close the current pass: -ENOMEM (recorded) or 0; never fails after a reserve. */
int sevm__pass_end(struct sevm__passes *p, uint64_t bytes);
int sevm__pass_reserve(struct sevm__passes *p);
int sevm__pass_get(const struct sevm__passes *p, unsigned int i, struct sevm_iteration_stats *st);
void sevm__passes_free(struct sevm__passes *p);

/* ---- The sender --------------------------------------------------------------- */

enum sevm__send_step { SEND_OPEN, SEND_DONE, SEND_FAILED, SEND_INDOUBT, SEND_CANCELLED };

struct sevm_send {
	struct sevm__side d;
	const struct sevm_bitmap *private_pages;
	bool send_started;		/* SEND_START succeeded: FINISH or CANCEL owed */
	bool dirty_clear;		/* the VMM enabled manual dirty-log protection */
	enum sevm__send_step step;
	struct sevm__buf buf;
	struct sevm__stream_writer w;
	struct sevm__passes passes;
	struct sevm_bitmap *dirty;	/* pages written since they were last sent */
	bool tracking;			/* pre-copy ran: `dirty` is all that changed since */
	bool paused;			/* the final pass: guest memory holds still */
	bool io_broken;			/* a write failed: the stream is cut mid-record */
};

/* Write what the buffer holds; keep the writer on the emptied buffer. */
int sevm__send_flush(struct sevm_send *s);
/* Every page in `pages` (NULL: all), as shared or private records. */
int sevm__send_set(struct sevm_send *s, const struct sevm_bitmap *pages, uint32_t *fw_error);
/*
 * precopy.c: OR into b the pages written since the last read and clear the
 * log.  A region that logs no dirty pages is left out, except in the final
 * read, where it counts as written all over.
 */
int sevm__send_read_dirty(struct sevm_send *s, struct sevm_bitmap *b, bool final);
/* 0 while the sender takes more records, else why not, named after fn. */
int sevm__send_check_open(const struct sevm_send *s, const char *fn);
/* After a failure: the handle takes only cancel and free. */
int sevm__send_failed(struct sevm_send *s, int err);

#endif
