/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Part 2: shared pages, that is every page of a plain guest (real KVM,
 * real bytes, no firmware), over TCP loopback.
 *
 * library: sevm_send_final() of the whole guest (every page, its vCPU and
 *   VM state, END) into a thread that runs a full sevm_recv_run() into the
 *   destination VM's memory; wall time from the call to the receiver's
 *   return.  Pages are all of the stream but a few KiB of state.
 * socket: the same number of bytes written from guest memory in 1 MiB
 *   write()s into a new connection of the same kind, which a thread reads
 *   into a 1 MiB buffer and throws away: what the connection can carry.
 *
 * Then where the time goes: each side's CPU time per MiB, and each side
 * again without a socket (struct sevm_io into memory), next to the bare
 * memcpy()s it does; the rest is CRC32C and record handling.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remote.h"

struct side {
	double wall_ns;
	double send_cpu_ns, recv_cpu_ns;
};

static void plain_opts(const struct tinyvm *vm, const struct sevm_region *r, int fd,
		       const struct sevm_io *io, int *vcpu_fd, struct sevm_migrate_opts *o)
{
	*vcpu_fd = vm->vcpus[0].fd;
	*o = (struct sevm_migrate_opts){ .sz = sizeof(*o), .fd = fd, .io = io, .vm_fd = vm->vm_fd,
					 .vcpu_fds = vcpu_fd, .nr_vcpus = 1, .regions = r,
					 .nr_regions = 1, .sev_fd = -1 };
}

/* ---- Library, end to end ---------------------------------------------------------- */

struct receiver {
	struct tinyvm *vm;
	int fd;				/* or -1 with io */
	const struct sevm_io *io;
	int ready;			/* atomic */
	int err;
	uint64_t done_ns, cpu_ns;
	char msg[512];
};

static void *receive(void *arg)
{
	struct receiver *rx = arg;
	struct sevm_migrate_opts o;
	struct sevm_region r;
	struct sevm_recv *recv = NULL;
	int vcpu_fd;
	uint64_t cpu0;

	guest_region(rx->vm, 0, &r);
	plain_opts(rx->vm, &r, rx->fd, rx->io, &vcpu_fd, &o);
	rx->err = sevm_recv_new(&o, &recv);
	__atomic_store_n(&rx->ready, 1, __ATOMIC_RELEASE);
	cpu0 = thread_cpu_ns();
	if (!rx->err)
		rx->err = sevm_recv_run(recv, NULL);
	rx->done_ns = now_ns();
	rx->cpu_ns = thread_cpu_ns() - cpu0;
	snprintf(rx->msg, sizeof(rx->msg), "%s", sevm_last_error());
	sevm_recv_free(recv);
	return NULL;
}

static void receiver_start(struct receiver *rx, pthread_t *t)
{
	if (pthread_create(t, NULL, receive, rx))
		die("receiver thread", -EAGAIN);
	while (!__atomic_load_n(&rx->ready, __ATOMIC_ACQUIRE))
		sleep_ns(100000);
}

static void receiver_join(struct receiver *rx, pthread_t t)
{
	pthread_join(t, NULL);
	if (rx->err) {
		fprintf(stderr, "bench-remote: receiving: %s\n", rx->msg);
		exit(1);
	}
}

/* The whole guest, the final pass alone (nothing pre-copied): every page once. */
static int send_all(struct tinyvm *src, int fd, const struct sevm_io *io, uint64_t *cpu_ns)
{
	struct sevm_migrate_opts o;
	struct sevm_region r;
	struct sevm_send *s;
	int vcpu_fd, err;
	uint64_t cpu0;

	guest_region(src, SEVM_REGION_LOG_DIRTY, &r);
	plain_opts(src, &r, fd, io, &vcpu_fd, &o);
	err = sevm_send_new(&o, &s, NULL);
	if (err)
		return err;
	cpu0 = thread_cpu_ns();
	err = sevm_send_final(s, NULL, 0, NULL);
	if (cpu_ns)
		*cpu_ns = thread_cpu_ns() - cpu0;
	sevm_send_free(s);
	return err;
}

static struct side run_library(struct tinyvm *src, struct tinyvm *dst)
{
	struct receiver rx = { .vm = dst };
	struct side sd;
	pthread_t t;
	uint64_t t0, cpu;
	int a, b, err = tcp_pair(&a, &b);

	if (err)
		die("TCP loopback connection", err);
	rx.fd = b;
	receiver_start(&rx, &t);
	t0 = now_ns();
	err = send_all(src, a, NULL, &cpu);
	if (err)
		die("sevm_send_final of the plain guest", err);
	receiver_join(&rx, t);
	close(a);
	close(b);
	sd = (struct side){ .wall_ns = (double)(rx.done_ns - t0), .send_cpu_ns = (double)cpu,
			    .recv_cpu_ns = (double)rx.cpu_ns };
	return sd;
}

/* ---- The connection alone ------------------------------------------------------------ */

static struct side run_socket(const struct tinyvm *src)
{
	struct drain d;
	uint64_t t0, cpu0, cpu;
	int a, b, err = tcp_pair(&a, &b);

	if (!err)
		err = drain_start(&d, b);
	if (err)
		die("TCP loopback connection", err);
	t0 = now_ns();
	cpu0 = thread_cpu_ns();
	for (uint64_t off = 0; off < src->mem_size && !err; off += CHUNK)
		err = write_all(a, (const uint8_t *)src->mem + off, CHUNK);
	cpu = thread_cpu_ns() - cpu0;
	shutdown(a, SHUT_WR);
	drain_join(&d);
	if (err || d.bytes != src->mem_size)
		die("the raw socket run", err ? err : -EPIPE);
	close(a);
	close(b);
	return (struct side){ .wall_ns = (double)(d.last_ns - t0), .send_cpu_ns = (double)cpu,
			      .recv_cpu_ns = (double)d.cpu_ns };
}

/* ---- Each side without a socket ------------------------------------------------------ */

/* The stream in memory: kept (to replay it) or thrown away. */
struct tape {
	uint8_t *buf;
	size_t len, cap, pos;
	bool keep;
};

static ssize_t tape_write(void *ctx, const void *buf, size_t len)
{
	struct tape *t = ctx;

	if (t->keep) {
		if (len > t->cap - t->len)
			return -ENOSPC;
		memcpy(t->buf + t->len, buf, len);
		t->len += len;
	}
	return (ssize_t)len;
}

/* Stands in for the kernel's copy in read(). */
static ssize_t tape_read(void *ctx, void *buf, size_t len)
{
	struct tape *t = ctx;
	size_t n = len < t->len - t->pos ? len : t->len - t->pos;

	memcpy(buf, t->buf + t->pos, n);
	t->pos += n;
	return (ssize_t)n;
}

/* The sender's pages into nothing: ns. */
static double sender_alone(struct tinyvm *src)
{
	struct tape tape = { 0 };
	struct sevm_io io = { .sz = sizeof(io), .ctx = &tape, .write = tape_write,
			      .read = tape_read };
	struct sevm_migrate_opts o;
	struct sevm_region r;
	struct sevm_send *s;
	int vcpu_fd, err;
	uint64_t t0, t1;

	guest_region(src, SEVM_REGION_LOG_DIRTY, &r);
	plain_opts(src, &r, -1, &io, &vcpu_fd, &o);
	err = sevm_send_new(&o, &s, NULL);
	if (err)
		die("sevm_send_new", err);
	t0 = now_ns();
	err = sevm_send_pages(s, NULL, NULL);
	t1 = now_ns();
	if (err)
		die("sevm_send_pages", err);
	sevm_send_cancel(s, NULL);
	sevm_send_free(s);
	return (double)(t1 - t0);
}

/* The receiver from a recorded stream: ns. */
static double receiver_alone(struct tinyvm *dst, struct tape *tape)
{
	struct sevm_io io = { .sz = sizeof(io), .ctx = tape, .write = tape_write,
			      .read = tape_read };
	struct receiver rx = { .vm = dst, .fd = -1, .io = &io };
	uint64_t t0;

	tape->pos = 0;
	t0 = now_ns();
	receive(&rx);
	if (rx.err) {
		fprintf(stderr, "bench-remote: replaying the stream: %s\n", rx.msg);
		exit(1);
	}
	return (double)(rx.done_ns - t0);
}

/* What each side copies, and nothing else: ns. */
static double copies_alone(const struct tinyvm *src, const struct tape *tape, uint8_t *buf,
			   struct tinyvm *dst)
{
	uint64_t t0 = now_ns();

	for (uint64_t off = 0; off < src->mem_size; off += CHUNK) {
		if (dst) {
			memcpy(buf, tape->buf + off, CHUNK);
			memcpy((uint8_t *)dst->mem + off, buf, CHUNK);
		} else {
			memcpy(buf, (const uint8_t *)src->mem + off, CHUNK);
		}
	}
	__asm__ volatile("" : : "r"(buf) : "memory");
	return (double)(now_ns() - t0);
}

/* ---- The table -------------------------------------------------------------------------- */

static double per_mib(double ns, uint64_t bytes)
{
	return ns / ((double)bytes / MIB);
}

static void breakdown(const struct config *cfg, struct tinyvm *src, struct tinyvm *dst,
		      const struct side *lib, const struct side *sock, unsigned int n)
{
	static double s_lib[MAX_RUNS], r_lib[MAX_RUNS], s_cp[MAX_RUNS], r_cp[MAX_RUNS];
	double v[4][MAX_RUNS];
	struct tape tape = { .cap = src->mem_size + 64 * MIB, .keep = true };
	uint8_t *buf = malloc(CHUNK);
	uint64_t bytes = src->mem_size;
	int err;

	tape.buf = malloc(tape.cap);
	if (!tape.buf || !buf)
		die("the recorded stream", -ENOMEM);
	memset(buf, 0, CHUNK);
	err = send_all(src, -1, &(struct sevm_io){ .sz = sizeof(struct sevm_io), .ctx = &tape,
						   .write = tape_write, .read = tape_read }, NULL);
	if (err)
		die("recording the stream", err);
	for (unsigned int i = 0; i < cfg->runs; i++) {
		wait_quiet();
		s_lib[i] = sender_alone(src);
		s_cp[i] = copies_alone(src, &tape, buf, NULL);
		r_lib[i] = receiver_alone(dst, &tape);
		r_cp[i] = copies_alone(src, &tape, buf, dst);
	}
	for (unsigned int i = 0; i < n; i++) {
		v[0][i] = lib[i].send_cpu_ns;
		v[1][i] = lib[i].recv_cpu_ns;
		v[2][i] = sock[i].send_cpu_ns;
		v[3][i] = sock[i].recv_cpu_ns;
	}
	printf("  where the time goes: ns per MiB of guest memory, medians; one thread per side "
	       "on 2 CPUs,\n  so the slower side sets the pace (stream recorded once: %.1f MiB)\n",
	       (double)tape.len / MIB);
	printf("  %-46s %9s %9s\n", "", "sender", "receiver");
	printf("  %-46s %9.0f %9.0f\n", "socket alone: CPU of write() / read()",
	       per_mib(median(v[2], n), bytes), per_mib(median(v[3], n), bytes));
	printf("  %-46s %9.0f %9.0f\n", "library end to end: CPU of each thread",
	       per_mib(median(v[0], n), bytes), per_mib(median(v[1], n), bytes));
	printf("  %-46s %9.0f %9.0f\n", "library without a socket (sevm_io in memory)",
	       per_mib(median(s_lib, cfg->runs), bytes), per_mib(median(r_lib, cfg->runs), bytes));
	printf("  %-46s %9.0f %9.0f\n", "  of which memcpy (1 sender, 2 receiver)",
	       per_mib(median(s_cp, cfg->runs), bytes), per_mib(median(r_cp, cfg->runs), bytes));
	printf("  %-46s %9.0f %9.0f\n", "  the rest: CRC32C, records, applying",
	       per_mib(median(s_lib, cfg->runs) - median(s_cp, cfg->runs), bytes),
	       per_mib(median(r_lib, cfg->runs) - median(r_cp, cfg->runs), bytes));
	free(tape.buf);
	free(buf);
}

int bench_shared(const struct config *cfg, struct tinyvm *src, struct tinyvm *dst,
		 struct shared_result *res)
{
	static struct side lib[MAX_RUNS], sock[MAX_RUNS];
	double lw[MAX_RUNS], sw[MAX_RUNS], pair[MAX_RUNS];
	uint64_t bytes = src->mem_size;
	bool same;

	printf("\n2. shared pages: plain guest on real KVM, %llu MiB, TCP loopback; %u runs each "
	       "+ 1 warm-up, alternating\n", (unsigned long long)(bytes >> 20), cfg->runs);
	/* The warm-up pair, and proof that the pages arrive. */
	memset(dst->mem, 0, bytes);
	run_library(src, dst);
	run_socket(src);
	same = !memcmp(src->mem, dst->mem, bytes);
	for (unsigned int i = 0; i < cfg->runs; i++) {
		wait_quiet();
		if (i % 2) {
			lib[i] = run_library(src, dst);
			sock[i] = run_socket(src);
		} else {
			sock[i] = run_socket(src);
			lib[i] = run_library(src, dst);
		}
		lw[i] = lib[i].wall_ns;
		sw[i] = sock[i].wall_ns;
		if (cfg->verbose)
			fprintf(stderr, "shared run %u: library %.0f socket %.0f MB/s\n", i,
				mb_per_s(bytes, lw[i]), mb_per_s(bytes, sw[i]));
	}
	printf("  %-46s %9s %9s %9s %11s\n", "", "MB/s", "min", "max", "pages/s");
	printf("  %-46s %9.0f %9.0f %9.0f %11.0f\n", "library: sevm_send_final -> sevm_recv_run",
	       mb_per_s(bytes, median(lw, cfg->runs)), mb_per_s(bytes, max_of(lw, cfg->runs)),
	       mb_per_s(bytes, min_of(lw, cfg->runs)),
	       (double)(bytes / PAGE) / median(lw, cfg->runs) * 1e9);
	printf("  %-46s %9.0f %9.0f %9.0f %11.0f\n", "socket alone: write() -> read(), discarded",
	       mb_per_s(bytes, median(sw, cfg->runs)), mb_per_s(bytes, max_of(sw, cfg->runs)),
	       mb_per_s(bytes, min_of(sw, cfg->runs)),
	       (double)(bytes / PAGE) / median(sw, cfg->runs) * 1e9);
	res->ran = true;
	res->ours_mb_s = mb_per_s(bytes, median(lw, cfg->runs));
	res->socket_mb_s = mb_per_s(bytes, median(sw, cfg->runs));
	for (unsigned int i = 0; i < cfg->runs; i++)
		pair[i] = sw[i] / lw[i];
	printf("  library / socket: %.3f (pair by pair: median %.3f, %.3f-%.3f); destination RAM "
	       "equal\n  to the source's: %s\n", res->ours_mb_s / res->socket_mb_s,
	       median(pair, cfg->runs), min_of(pair, cfg->runs), max_of(pair, cfg->runs),
	       same ? "yes" : "NO");
	breakdown(cfg, src, dst, lib, sock, cfg->runs);
	return same ? 0 : -EBADMSG;
}
