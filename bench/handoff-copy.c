/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-handoff's copy baseline: guest RAM read from its memfd and written
 * through a UNIX socket in 1 MiB send()s to a child, timed until the child
 * has it all — what a handoff that copied memory would pay at least.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "handoff.h"

#define COPY_CHUNK	MIB	/* the copy's write() size */

static const char *const copy_arg[NR_COPY_KINDS] = { "socket", "ram" };

bool copy_is_size(uint64_t size)
{
	return size == 64 * MIB || size == GIB || size == 4 * GIB;
}

/* ---- The receiver (a child) ----------------------------------------------- */

/* A reused 1 MiB buffer, or RAM of the full size, faulted in. */
static char *copy_target(enum copy_kind k, uint64_t size, int32_t *err)
{
	int fd = -1;
	char *p = MAP_FAILED;

	if (k == COPY_SOCKET)
		size = COPY_CHUNK;
	else if ((fd = memfd_create("bench-copy", MFD_CLOEXEC)) < 0 ||
		 ftruncate(fd, (off_t)size) < 0)
		*err = neg_errno();
	if (!*err)
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_POPULATE | (fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_SHARED), fd, 0);
	if (!*err && p == MAP_FAILED)
		*err = neg_errno();
	if (fd >= 0)
		close(fd);	/* the mapping keeps the memory */
	return p == MAP_FAILED ? NULL : p;
}

int copy_receiver_main(const char *kind, int sock, int ctl, uint64_t size)
{
	struct { int32_t err; uint32_t pad; uint64_t end_ns; } rep = { 0 };
	enum copy_kind k = strcmp(kind, "ram") ? COPY_SOCKET : COPY_RAM;
	char *dst = copy_target(k, size, &rep.err);

	write_all(ctl, &rep.err, sizeof(rep.err));		/* READY, or why not */
	for (uint64_t got = 0; !rep.err && got < size; got += COPY_CHUNK) {
		size_t want = size - got < COPY_CHUNK ? size - got : COPY_CHUNK;

		rep.err = read_all(sock, k == COPY_RAM ? dst + got : dst, want);
	}
	rep.end_ns = now_ns();
	write_all(ctl, &rep, sizeof(rep));
	return rep.err ? 1 : 0;
}

/* ---- The sender (this process) -------------------------------------------- */

static int copy_spawn(enum copy_kind k, uint64_t size, struct copy_peer *p)
{
	p->ready = 0;
	return spawn("copy", copy_arg[k], size, &p->ch);
}

int copy_spawn_early(uint64_t size, struct copy_peer *p)
{
	return copy_spawn(COPY_RAM, size, p);
}

int copy_wait_ready(struct copy_peer *p)
{
	int32_t status;
	int err;

	if (p->ready)
		return p->ready < 0 ? p->ready : 0;
	err = read_all(p->ch.ctl, &status, sizeof(status));
	if (!err)
		err = status;
	p->ready = err ? err : 1;
	return err;
}

static int copy_send(int sock, const char *src, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += COPY_CHUNK) {
		size_t len = size - off < COPY_CHUNK ? size - off : COPY_CHUNK;
		int err = write_all(sock, src + off, len);

		if (err)
			return err;
	}
	return 0;
}

/* Guest RAM through a UNIX socket in 1 MiB writes, timed until the receiver has it all. */
static int copy_run(struct copy_peer *p, int mem_fd, uint64_t size, double *ms)
{
	struct { int32_t err; uint32_t pad; uint64_t end_ns; } rep;
	char *src = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, mem_fd, 0);
	int err = src == MAP_FAILED ? neg_errno() : copy_wait_ready(p), reaped;
	uint64_t t0;

	t0 = now_ns();
	if (!err)
		err = copy_send(p->ch.sock, src, size);
	if (!err)
		err = read_all(p->ch.ctl, &rep, sizeof(rep));
	if (!err && rep.err)
		err = rep.err;
	if (!err)
		*ms = ms_between(t0, rep.end_ns);
	if (src != MAP_FAILED)
		munmap(src, size);
	reaped = reap(&p->ch);
	return err ? err : reaped;
}

/* 4 GiB takes seconds: fewer runs there; --quick only what its RESULT line needs. */
static unsigned int copy_runs(unsigned int runs, bool quick, enum copy_kind k, uint64_t size)
{
	unsigned int small = quick ? 3 : 5;

	if (size < GIB)
		return runs < small ? runs : small;
	if (quick)
		return k == COPY_RAM;
	return k == COPY_RAM ? 1 : 3;
}

void copy_run_all(struct copy_result *cr, int mem_fd, uint64_t size, unsigned int runs,
		  bool quick, struct copy_peer *early)
{
	cr->mem_size = size;
	for (int k = 0; k < NR_COPY_KINDS; k++) {
		unsigned int n = copy_runs(runs, quick, k, size);

		for (unsigned int i = 0; i < n; i++) {
			struct copy_peer peer;
			bool reuse = k == COPY_RAM && !i && early;
			int err = reuse ? 0 : copy_spawn(k, size, &peer);

			if (!err)
				err = copy_run(reuse ? early : &peer, mem_fd, size,
					       &cr->ms[k][cr->n[k]]);
			if (err)
				fprintf(stderr, "bench-handoff: copy of %llu MiB (%s) failed: %s\n",
					(unsigned long long)(size >> 20), copy_arg[k], strerror(-err));
			else
				cr->n[k]++;
		}
	}
}
