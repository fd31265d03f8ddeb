/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The seam tracer of bench-handoff (see handoff-trace.h). */
#include <errno.h>
#include <linux/kvm.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <sevmigrate.h>

#include "handoff-trace.h"
#include "sys.h"

#define BLOCK_NOTES	32		/* a vCPU thread makes about 20 calls in a handoff */
#define MAX_BLOCKS	2048		/* 65536 notes; 256 vCPUs take about 6000 per side */
#define MAX_MSGS	4096		/* per direction */
#define HDR_LEN		16		/* doc/handoff-protocol.md, "Message framing" */
#define WIRE_MAGIC	0x484d5653u
enum { MSG_PREPARED = 2, MSG_STATE = 3, MSG_RESTORED = 4, MSG_GO = 5, MSG_RESUMED = 6 };

enum kind { K_IOCTL, K_SEND, K_RECV };

struct note {
	uint64_t t0, t1;
	unsigned long request;
	int fd;
	int ret;
	int cpu;	/* where the call ended (vDSO getcpu) */
	enum kind kind;
};

/*
 * A run of one thread's notes.  Only the thread that claimed the block
 * writes it, and it publishes each note by storing n (release) after it,
 * having published the block itself by storing gen (release) after
 * resetting n: a reader on another thread who sees the current gen reads
 * the notes below n whole.
 */
struct block {
	unsigned int gen;	/* atomic: the arming it was claimed in */
	unsigned int n;		/* atomic: notes written */
	uintptr_t thread;	/* who writes it */
	struct note notes[BLOCK_NOTES];
};

/* One message: sent (first = its first call began) or received (first = its first byte in). */
struct msg_note {
	uint64_t first, done;
	uint32_t len;
	uint16_t type;
};

/* One direction of the socket's byte stream, followed through the framing. */
struct stream {
	bool busy;		/* atomic: a thread follows it */
	bool broken;		/* atomic: the framing is lost */
	/* The message under way: only the thread that holds busy touches these. */
	uint8_t hdr[HDR_LEN];
	unsigned int have;
	uint64_t left, first;
	unsigned int nr_msgs;	/* atomic: published (release) after each message */
	struct msg_note msgs[MAX_MSGS];
};

static struct block blocks[MAX_BLOCKS];
static unsigned int nr_blocks;		/* atomic: claimed since the arming */
static unsigned int gen;		/* atomic: the arming; 0 before the first */
static bool armed;			/* atomic */
static bool dropped;			/* atomic: a note or a message found no room */
static struct stream streams[2];	/* [0] received, [1] sent */
static void (*prepared_hook)(void);	/* atomic */

/*
 * The calling thread's block.  Its address also names the thread: no two
 * live threads share it, and asking the kernel (gettid) would cost a
 * system call.
 */
static __thread struct {
	struct block *b;
	unsigned int gen;
} mine;

/* ---- Noting ------------------------------------------------------------- */

static struct block *claim_block(unsigned int g)
{
	unsigned int i = __atomic_fetch_add(&nr_blocks, 1, __ATOMIC_RELAXED);
	struct block *b;

	if (i >= MAX_BLOCKS) {
		__atomic_store_n(&dropped, true, __ATOMIC_RELAXED);
		return NULL;
	}
	b = &blocks[i];
	b->thread = (uintptr_t)&mine;
	__atomic_store_n(&b->n, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->gen, g, __ATOMIC_RELEASE);
	mine.b = b;
	mine.gen = g;
	return b;
}

static void note(enum kind k, int fd, unsigned long request, int ret, uint64_t t0, uint64_t t1)
{
	unsigned int g = __atomic_load_n(&gen, __ATOMIC_RELAXED);
	struct block *b = mine.b;
	unsigned int n;

	if (!b || mine.gen != g || __atomic_load_n(&b->n, __ATOMIC_RELAXED) == BLOCK_NOTES)
		b = claim_block(g);
	if (!b)
		return;
	n = __atomic_load_n(&b->n, __ATOMIC_RELAXED);
	b->notes[n] = (struct note){ .t0 = t0, .t1 = t1, .request = request, .fd = fd,
				     .ret = ret, .cpu = sched_getcpu(), .kind = k };
	__atomic_store_n(&b->n, n + 1, __ATOMIC_RELEASE);
}

/* When a call starts: its clock if armed, 0 (nothing to note) if not. */
static uint64_t armed_now(void)
{
	return __atomic_load_n(&armed, __ATOMIC_RELAXED) ? now_ns() : 0;
}

/* ---- Following the framing ---------------------------------------------- */

static void msg_done(struct stream *s, uint64_t end)
{
	unsigned int i = __atomic_load_n(&s->nr_msgs, __ATOMIC_RELAXED);
	uint32_t len;
	uint16_t type;

	memcpy(&type, s->hdr + 4, 2);
	memcpy(&len, s->hdr + 8, 4);
	s->have = 0;
	if (i == MAX_MSGS) {
		__atomic_store_n(&dropped, true, __ATOMIC_RELAXED);
		return;
	}
	s->msgs[i] = (struct msg_note){ .first = s->first, .done = end, .len = len, .type = type };
	__atomic_store_n(&s->nr_msgs, i + 1, __ATOMIC_RELEASE);
}

/* n bytes of one buffer, moved by a call from start to end. */
static void follow(struct stream *s, bool out, const uint8_t *p, size_t n, uint64_t start,
		   uint64_t end)
{
	while (n && !__atomic_load_n(&s->broken, __ATOMIC_RELAXED)) {
		size_t step;

		if (s->have < HDR_LEN) {
			uint32_t magic, len;

			if (!s->have)
				s->first = out ? start : end;
			step = HDR_LEN - s->have < n ? HDR_LEN - s->have : n;
			memcpy(s->hdr + s->have, p, step);
			s->have += (unsigned int)step;
			if (s->have == HDR_LEN) {
				memcpy(&magic, s->hdr, 4);
				memcpy(&len, s->hdr + 8, 4);
				if (magic != WIRE_MAGIC)
					__atomic_store_n(&s->broken, true, __ATOMIC_RELAXED);
				s->left = len;
			}
		} else {
			step = s->left < n ? (size_t)s->left : n;
			s->left -= step;
		}
		p += step;
		n -= step;
		if (s->have == HDR_LEN && !s->left && !__atomic_load_n(&s->broken, __ATOMIC_RELAXED))
			msg_done(s, end);
	}
}

static void follow_iov(bool out, const struct msghdr *mh, size_t n, uint64_t start, uint64_t end)
{
	struct stream *s = &streams[out];

	/* Two calls that moved bytes one way at once: their order on the stream is unknown. */
	if (__atomic_exchange_n(&s->busy, true, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&s->broken, true, __ATOMIC_RELAXED);
		return;
	}
	for (size_t i = 0; n && i < mh->msg_iovlen; i++) {
		size_t len = mh->msg_iov[i].iov_len < n ? mh->msg_iov[i].iov_len : n;

		follow(s, out, mh->msg_iov[i].iov_base, len, start, end);
		n -= len;
	}
	__atomic_store_n(&s->busy, false, __ATOMIC_RELEASE);
}

static void stream_reset(struct stream *s)
{
	s->have = 0;
	s->left = 0;
	__atomic_store_n(&s->nr_msgs, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->broken, false, __ATOMIC_RELAXED);
}

/* ---- The backend: the kernel, noted ------------------------------------- */

static int t_ioctl(void *ctx, int fd, unsigned long request, void *arg)
{
	uint64_t t0 = armed_now();
	int r = ioctl(fd, request, arg);

	(void)ctx;
	r = r < 0 ? -errno : r;
	if (t0)
		note(K_IOCTL, fd, request, r, t0, now_ns());
	return r;
}

/* A socket call that began at t0 (0: unarmed) and returned r: noted, its bytes followed. */
static ssize_t sock_noted(enum kind k, int fd, const struct msghdr *mh, ssize_t r, uint64_t t0)
{
	uint64_t t1;

	if (!t0)
		return r;
	t1 = now_ns();
	note(k, fd, 0, (int)r, t0, t1);
	if (r > 0)
		follow_iov(k == K_SEND, mh, (size_t)r, t0, t1);
	return r;
}

/* A message's first bytes, going out: its header, whole in the first iovec (wire.c). */
static bool is_prepared(const struct msghdr *mh)
{
	uint32_t magic;
	uint16_t type;

	if (!mh->msg_iovlen || mh->msg_iov[0].iov_len < HDR_LEN)
		return false;
	memcpy(&magic, mh->msg_iov[0].iov_base, 4);
	memcpy(&type, (const char *)mh->msg_iov[0].iov_base + 4, 2);
	return magic == WIRE_MAGIC && type == MSG_PREPARED;
}

static ssize_t t_sendmsg(void *ctx, int fd, const struct msghdr *mh, int flags)
{
	uint64_t t0;
	ssize_t r;

	(void)ctx;
	if (__atomic_load_n(&prepared_hook, __ATOMIC_RELAXED) && is_prepared(mh)) {
		void (*fn)(void) = __atomic_exchange_n(&prepared_hook, NULL, __ATOMIC_ACQ_REL);

		if (fn)
			fn();
	}
	t0 = armed_now();
	r = sendmsg(fd, mh, flags);
	return sock_noted(K_SEND, fd, mh, r < 0 ? -errno : r, t0);
}

static ssize_t t_recvmsg(void *ctx, int fd, struct msghdr *mh, int flags)
{
	uint64_t t0 = armed_now();
	ssize_t r = recvmsg(fd, mh, flags);

	(void)ctx;
	return sock_noted(K_RECV, fd, mh, r < 0 ? -errno : r, t0);
}

/*
 * Every page of the notes written once beforehand, so that no note inside
 * a blackout takes a page fault.  No thread notes meanwhile (see
 * handoff-trace.h): nothing is read while this writes.
 */
static void fault_in(void)
{
	memset(blocks, 0, sizeof(blocks));
	memset(streams, 0, sizeof(streams));
}

int trace_install(void)
{
	struct sevm_backend b = {
		.sz = sizeof(b), .ioctl = t_ioctl, .sendmsg = t_sendmsg, .recvmsg = t_recvmsg,
	};

	fault_in();
	return sevm_set_backend(&b);
}

void trace_remove(void)
{
	trace_disarm();
	sevm_set_backend(NULL);
}

void trace_before_prepared(void (*fn)(void))
{
	__atomic_store_n(&prepared_hook, fn, __ATOMIC_RELEASE);
}

void trace_arm(void)
{
	stream_reset(&streams[0]);
	stream_reset(&streams[1]);
	__atomic_store_n(&dropped, false, __ATOMIC_RELAXED);
	__atomic_store_n(&nr_blocks, 0, __ATOMIC_RELAXED);
	/* A thread's block of the last arming is stale from here: its next note claims one. */
	__atomic_add_fetch(&gen, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&armed, true, __ATOMIC_RELEASE);
}

void trace_disarm(void)
{
	__atomic_store_n(&armed, false, __ATOMIC_RELEASE);
}

/* ---- What the notes show ------------------------------------------------ */

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* a if b is 0 (not seen), else the earlier. */
static uint64_t min_seen(uint64_t a, uint64_t b)
{
	return !a || (b && b < a) ? b : a;
}

/* The side's own vCPUs, by fd: index + 1, 0 for any other fd. */
struct vcpu_map {
	unsigned int *of;
	int max_fd;
	uint64_t *done;		/* per vCPU: its last ioctl ended */
};

static int map_vcpus(const int *fds, unsigned int nr, struct vcpu_map *m)
{
	m->max_fd = -1;
	for (unsigned int i = 0; i < nr; i++)
		m->max_fd = fds[i] > m->max_fd ? fds[i] : m->max_fd;
	m->of = calloc((size_t)m->max_fd + 1, sizeof(*m->of));
	m->done = calloc(nr ? nr : 1, sizeof(*m->done));
	if (!m->of || !m->done)
		return -ENOMEM;
	for (unsigned int i = 0; i < nr; i++)
		if (fds[i] >= 0)
			m->of[fds[i]] = i + 1;
	return 0;
}

static unsigned int vcpu_of(const struct vcpu_map *m, int fd)
{
	return fd >= 0 && fd <= m->max_fd ? m->of[fd] : 0;
}

/* One ioctl of the side's: into the sums, the span and its fd's last. */
static void count_ioctl(const struct note *e, int vm_fd, struct vcpu_map *m,
			unsigned int *per_cpu, struct trace_side *out)
{
	unsigned int v = vcpu_of(m, e->fd);

	out->ioctls++;
	out->ioctl_ns += e->t1 - e->t0;
	out->first_ioctl = min_seen(out->first_ioctl, e->t0);
	out->last_ioctl = max_u64(out->last_ioctl, e->t1);
	per_cpu[e->cpu >= 0 && e->cpu < TRACE_MAX_CPUS ? e->cpu : 0]++;
	if (e->fd == vm_fd)
		out->vm_last = max_u64(out->vm_last, e->t1);
	else if (v)
		m->done[v - 1] = max_u64(m->done[v - 1], e->t1);
}

/* One block's notes since `from`: true if it holds one of the side's ioctls. */
static bool summarise_block(const struct block *b, unsigned int n, uint64_t from, int vm_fd,
			    struct vcpu_map *m, unsigned int *per_cpu, struct trace_side *out)
{
	bool any = false;

	for (unsigned int i = 0; i < n; i++) {
		const struct note *e = &b->notes[i];

		if (e->t0 < from)
			continue;
		out->calls++;
		if (e->kind != K_IOCTL)
			out->sock_ns += e->ret > 0 ? e->t1 - e->t0 : 0;
		else if (e->request != KVM_RUN) {	/* KVM_RUN: a vCPU thread quiescing */
			count_ioctl(e, vm_fd, m, per_cpu, out);
			any = true;
		}
	}
	return any;
}

static int cmp_uintptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return (x > y) - (x < y);
}

static uint32_t distinct(uintptr_t *v, unsigned int n)
{
	uint32_t d = 0;

	qsort(v, n, sizeof(*v), cmp_uintptr);
	for (unsigned int i = 0; i < n; i++)
		d += !i || v[i] != v[i - 1];
	return d;
}

/* The CPU most of the side's ioctls ran on, and how many of them did. */
static void main_cpu(const unsigned int *per_cpu, struct trace_side *out)
{
	unsigned int best = 0;

	for (unsigned int c = 1; c < TRACE_MAX_CPUS; c++)
		best = per_cpu[c] > per_cpu[best] ? c : best;
	out->cpu = out->ioctls ? (int)best : -1;
	out->cpu_share = out->ioctls ? (double)per_cpu[best] / out->ioctls : 0;
}

static void per_vcpu_done(const struct vcpu_map *m, unsigned int nr_vcpus,
			  struct trace_side *out)
{
	for (unsigned int i = 0; i < nr_vcpus; i++) {
		out->vcpu_last = max_u64(out->vcpu_last, m->done[i]);
		out->vcpu_first = min_seen(out->vcpu_first, m->done[i]);
	}
}

static int summarise_ioctls(uint64_t from, int vm_fd, const int *vcpu_fds, unsigned int nr_vcpus,
			    struct trace_side *out)
{
	uintptr_t threads[MAX_BLOCKS];
	unsigned int per_cpu[TRACE_MAX_CPUS] = { 0 }, nr_threads = 0;
	unsigned int g = __atomic_load_n(&gen, __ATOMIC_ACQUIRE);
	unsigned int nr = __atomic_load_n(&nr_blocks, __ATOMIC_RELAXED);
	struct vcpu_map m;
	int err = map_vcpus(vcpu_fds, nr_vcpus, &m);

	for (unsigned int i = 0; !err && i < nr && i < MAX_BLOCKS; i++) {
		const struct block *b = &blocks[i];

		/* Claimed but not yet published, or not of this arming: nothing of ours. */
		if (__atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) != g)
			continue;
		if (summarise_block(b, __atomic_load_n(&b->n, __ATOMIC_ACQUIRE), from, vm_fd, &m,
				    per_cpu, out))
			threads[nr_threads++] = b->thread;
	}
	if (!err) {
		out->ioctl_threads = distinct(threads, nr_threads);
		main_cpu(per_cpu, out);
		per_vcpu_done(&m, nr_vcpus, out);
	}
	free(m.of);
	free(m.done);
	return err;
}

/* sent: the messages this side sent, else those it received. */
static void summarise_msgs(const struct stream *s, bool sent, uint64_t from,
			   struct trace_side *out)
{
	unsigned int n = __atomic_load_n(&s->nr_msgs, __ATOMIC_ACQUIRE);

	for (unsigned int i = 0; i < n; i++) {
		const struct msg_note *m = &s->msgs[i];

		if (m->first < from)
			continue;
		switch (m->type) {
		case MSG_STATE:
			if (!out->state_msgs++)
				out->state_first = m->first;
			out->state_last = sent ? m->first : m->done;
			out->state_bytes += m->len;
			break;
		case MSG_RESTORED:
			if (!out->restored)
				out->restored = sent ? m->first : m->done;
			break;
		case MSG_GO:
			if (!out->go)
				out->go = m->done;
			break;
		case MSG_RESUMED:
			if (!out->resumed)
				out->resumed = m->done;
			break;
		default:
			break;
		}
	}
}

void trace_summarise(uint64_t from, int vm_fd, const int *vcpu_fds, unsigned int nr_vcpus,
		     struct trace_side *out)
{
	int err;

	memset(out, 0, sizeof(*out));
	err = summarise_ioctls(from, vm_fd, vcpu_fds, nr_vcpus, out);
	/* Each message type travels one way only, so the two directions need no merging. */
	summarise_msgs(&streams[0], false, from, out);
	summarise_msgs(&streams[1], true, from, out);
	out->complete = !err && !__atomic_load_n(&dropped, __ATOMIC_RELAXED) &&
			!__atomic_load_n(&streams[0].broken, __ATOMIC_RELAXED) &&
			!__atomic_load_n(&streams[1].broken, __ATOMIC_RELAXED);
}

/* The whole noting path of one call, on this thread, in an arming of its own. */
double trace_call_cost_ns(void)
{
	enum { N = 20000 };	/* fewer than the pool holds */
	uint64_t t0;
	double cost;

	fault_in();
	trace_arm();
	t0 = now_ns();
	for (unsigned int i = 0; i < N; i++)
		note(K_IOCTL, -1, 0, 0, armed_now(), now_ns());
	cost = (double)(now_ns() - t0) / N;
	trace_disarm();
	return cost;
}
