/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A hostile or broken SENDER on the handoff socket (issue #8), against the
 * real receiver on real KVM: sevm_handoff_from_fd(sock, false, ...), info,
 * set_vm, prepare and switch_receive.  The fake sender is a thread of this
 * program (a child process where the sender must die) playing crafted bytes
 * and fds (hostile.h, "tape").
 *
 * Its bytes start from a recording: a tinyvm guest handed over once by the
 * real sender to a recording fake receiver.  Then:
 *   cut      the recording closed at every byte of the HELLO, and at every
 *            message boundary (and next to it) and every 1 KiB of the rest
 *   dribble  the recording 1 and 13 bytes per write, which must succeed with
 *            the guest running here; a sender that dies after END
 *   fds      fewer fds than announced, more, none, 253, MSG_CTRUNC, fds
 *            riding with messages that carry none
 *   kinds    a socket, pipe, eventfd, device, directory, VM fd, regular
 *            file, sealed memfd where a memory fd is expected
 *   sizes    a memfd smaller than its region: refused before any mmap;
 *            an accepted memfd sealed against shrinking
 *   lengths  0, 2^32-1, 2^64-1 (and neighbours) in each length and count
 *            of the header, the HELLO, the region table, a STATE section
 *   regions  overlapping, out of order, repeated slot, zero size,
 *            unaligned; 253 regions, the most a HELLO can carry
 *   types    a message not expected at that point; stalls
 *   uid      a sender of another uid
 *
 * Promised (doc/handoff-protocol.md, doc/handoff.md): each fails with a
 * negative errno and a message naming what was wrong; an fd that cannot
 * back its region is refused before anything maps it; nothing runs before
 * GO; the receiver leaves no fd and no allocation behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "handoff/handoff.h"
#include "hostile.h"
#include "testutil.h"
#include "tinyvm-handoff.h"
#include "tu-tinyvm.h"

#define NR_VCPUS	2
#define MEM		(1u << 20)
#define PAGE		4096u
/* The receiver's every wait: a case that stalls costs about this. */
#define TIMEOUT_MS	300
#define MAX_BARE	8

/* Where the recorded HELLO's fields are in the tape. */
#define HDR(f)		offsetof(struct hw_hdr, f)
#define HELLO_AT	SEVM_WIRE_HDR_LEN
#define HELLO(f)	(HELLO_AT + offsetof(struct sevm__hello, f))
#define REGION_AT	(HELLO_AT + sizeof(struct sevm__hello))
#define REGION(f)	(REGION_AT + offsetof(struct sevm__region_wire, f))
#define HELLO_END	(REGION_AT + sizeof(struct sevm__region_wire))

#define U32MAX		0xffffffffull
#define U64MAX		0xffffffffffffffffull

/* The recorded sender: HELLO + memfd, PREPARED?, STATE..., RESTORED?, GO, RESUMED? */
static struct tape rec;
static int golden = -1;		/* the guest's RAM as the sender left it, paused */
static uint8_t *golden_bytes;
static size_t state_at, go_at;	/* the first STATE message, the GO */
static unsigned int nr_state;
static int kvm = -1;

/* ---- The guest ------------------------------------------------------------------ */

/* A memfd holding the recorded guest RAM: for a case whose guest runs (and writes it). */
static int mem_copy(unsigned int flags)
{
	int fd = memfd_create("hostile-ram", MFD_CLOEXEC | flags);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, MEM), 0);
	ck_assert_int_eq(pwrite(fd, golden_bytes, MEM, 0), MEM);
	return fd;
}

static int memfd_of(size_t size, unsigned int flags)
{
	int fd = memfd_create("hostile-mem", MFD_CLOEXEC | flags);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	return fd;
}

/* ---- Recording the real sender ------------------------------------------------ */

struct recorder {
	int sock;
	const char *err;
};

static void *record(void *arg)
{
	struct recorder *r = arg;
	struct { uint32_t pid, nr; uint64_t addr; } prep = { (uint32_t)getpid(), 1, 0 };
	size_t cap = 4u << 20, len = 0;
	uint8_t *buf = malloc(cap);
	int fds[TAPE_MAX_FDS], type;
	unsigned int n;

	type = hw_recv(r->sock, buf, cap, &len, fds, &n, 10000);
	if (type != SEVM_MSG_HELLO || n != 1 || len != HELLO_END - HELLO_AT) {
		r->err = "no HELLO of one region";
		goto out;
	}
	golden = fds[0];
	tape_msg(&rec, SEVM_MSG_HELLO, buf, (uint32_t)len, &golden, 1);
	tape_wait(&rec, SEVM_MSG_PREPARED);
	hw_send_msg(r->sock, SEVM_MSG_PREPARED, &prep, sizeof(prep), NULL, 0, 0);
	do {
		type = hw_recv(r->sock, buf, cap, &len, NULL, &n, 10000);
		if (type != SEVM_MSG_STATE || n || len > cap) {
			r->err = "expected STATE";
			goto out;
		}
		if (!nr_state++)
			state_at = rec.len;
		tape_msg(&rec, SEVM_MSG_STATE, buf, (uint32_t)len, NULL, 0);
	} while (!hw_state_has_end(buf, len));
	tape_wait(&rec, SEVM_MSG_RESTORED);
	hw_send_msg(r->sock, SEVM_MSG_RESTORED, NULL, 0, NULL, 0, 0);
	type = hw_recv(r->sock, buf, cap, &len, NULL, &n, 10000);
	if (type != SEVM_MSG_GO || len || n) {
		r->err = "expected GO";
		goto out;
	}
	go_at = rec.len;
	tape_msg(&rec, SEVM_MSG_GO, NULL, 0, NULL, 0);
	tape_wait(&rec, SEVM_MSG_RESUMED);
	hw_send_msg(r->sock, SEVM_MSG_RESUMED, NULL, 0, NULL, 0, 0);
out:
	free(buf);
	return NULL;
}

START_TEST(record_handoff)
{
	struct tinyvm_handoff_times t = { .verify_ram = true };
	struct sevm_handoff_opts o = { .sz = sizeof(o), .timeout_ms = 10000 };
	struct tinyvm src = { 0 };
	struct recorder r = { 0 };
	struct sevm_handoff *h;
	pthread_t th;
	int sv[2], err;

	ck_assert_int_eq(tinyvm_create(&src, NR_VCPUS, MEM, TINYVM_F_PIT), 0);
	ck_assert_int_eq(tinyvm_load_guest(&src, 256), 0);
	ck_assert_int_eq(tinyvm_start(&src), 0);
	ck_assert(tu_runs(&src, 3));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	r.sock = sv[1];
	ck_assert_int_eq(pthread_create(&th, NULL, record, &r), 0);
	ck_assert_int_eq(sevm_handoff_from_fd(sv[0], true, &o, &h), 0);
	err = tinyvm_handoff_send(&src, h, &t);
	sevm_handoff_free(h);
	pthread_join(th, NULL);
	close(sv[1]);
	ck_assert_msg(!err && !r.err, "recording: %d %s / %s", err, sevm_last_error(),
		      r.err ? r.err : "-");
	tinyvm_destroy(&src);
	golden_bytes = malloc(MEM);
	ck_assert_ptr_nonnull(golden_bytes);
	ck_assert_int_eq(pread(golden, golden_bytes, MEM, 0), MEM);
	printf("recorded: HELLO %zu bytes, %u STATE messages (%zu bytes), GO at %zu, %zu in all\n",
	       HELLO_END, nr_state, go_at - state_at, go_at, rec.len);
}
END_TEST

/* ---- The receiver under test ------------------------------------------------------ */

/* A new VMM's VM for the guest the HELLO describes; no memory (the library sets it). */
struct bare {
	int vm;
	int vcpus[MAX_BARE];
	unsigned int n;
};

static int bare_create(struct bare *b, const struct sevm_guest_info *gi)
{
	struct kvm_pit_config pit = { 0 };

	b->n = 0;
	if (gi->nr_vcpus > MAX_BARE)
		return -E2BIG;
	b->vm = ioctl(kvm, KVM_CREATE_VM, (unsigned long)gi->vm_type);
	if (b->vm < 0)
		return -errno;
	if ((gi->flags & SEVM_GUEST_IRQCHIP) && ioctl(b->vm, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	if ((gi->flags & SEVM_GUEST_PIT) && ioctl(b->vm, KVM_CREATE_PIT2, &pit) < 0)
		return -errno;
	for (; b->n < gi->nr_vcpus; b->n++) {
		b->vcpus[b->n] = ioctl(b->vm, KVM_CREATE_VCPU, (unsigned long)b->n);
		if (b->vcpus[b->n] < 0)
			return -errno;
	}
	return 0;
}

static void bare_destroy(struct bare *b)
{
	for (unsigned int i = 0; i < b->n; i++)
		close(b->vcpus[i]);
	if (b->vm >= 0)
		close(b->vm);
	b->vm = -1;
	b->n = 0;
}

enum rstep { R_ANY, R_HELLO, R_PREPARE, R_SWITCH, R_DONE };
static const char *const step_name[] = { "anywhere", "from_fd (HELLO)", "prepare",
					 "switch_receive", "done" };

struct rcase {
	char name[160];
	const struct tape *t;
	size_t cut, chunk;	/* see struct feed */
	bool stall;
	enum rstep stop;	/* how far the receiver goes when nothing fails */
	unsigned int want;	/* WANT_*: the results allowed */
	enum rstep at;		/* where a failure must come; R_ANY: before done */
	const char *has;	/* the message must say this */
	int timeout_ms;
	/* Run between the accepted HELLO and prepare (a sender acting meanwhile). */
	void (*after_hello)(void *ctx);
	void *ctx;
};

static struct rcase rcase(const struct tape *t, unsigned int want, enum rstep at,
			  const char *has, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static struct rcase rcase(const struct tape *t, unsigned int want, enum rstep at,
			  const char *has, const char *fmt, ...)
{
	struct rcase c = { .t = t, .cut = SIZE_MAX, .stop = R_DONE, .want = want, .at = at,
			   .has = has };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c.name, sizeof(c.name), fmt, ap);
	va_end(ap);
	return c;
}

struct rx {
	int err;
	enum rstep step;	/* the step that returned err, or R_DONE */
	char msg[512];
};

static void take(int sock, const struct rcase *c, struct rx *o)
{
	struct sevm_handoff_opts opts = { .sz = sizeof(opts),
					  .timeout_ms = c->timeout_ms ? c->timeout_ms : TIMEOUT_MS };
	struct sevm_guest_info gi = { .sz = sizeof(gi) };
	static struct sevm_region regs[SEVM_MAX_REGIONS];
	struct bare vm = { .vm = -1 };
	struct sevm_handoff *h = NULL;
	int err;

	o->step = R_HELLO;
	err = sevm_handoff_from_fd(sock, false, &opts, &h);
	if (err) {
		hostile_expect(!h, "from_fd failed, yet gave a handle");
		snprintf(o->msg, sizeof(o->msg), "%s", sevm_last_error());
		/* The socket stays the caller's on failure. */
		close(sock);
		o->err = err;
		return;
	}
	hostile_expect(sevm_handoff_info(h, &gi) == 0, "no info after an accepted HELLO: %s",
		       sevm_last_error());
	if (c->after_hello)
		c->after_hello(c->ctx);
	if (c->stop > R_HELLO) {
		o->step = R_PREPARE;
		err = bare_create(&vm, &gi);
		hostile_expect(!err, "the test's own VM (%u vCPUs, type %u): %s", gi.nr_vcpus,
			       gi.vm_type, strerror(-err));
		if (!err)
			err = sevm_handoff_set_vm(h, vm.vm, vm.vcpus, gi.nr_vcpus);
		if (!err)
			err = sevm_handoff_prepare(h);
	}
	if (!err && c->stop > R_PREPARE) {
		o->step = R_SWITCH;
		err = sevm_handoff_switch_receive(h, NULL, NULL);
		for (unsigned int i = 0; !err && i < gi.nr_regions; i++) {
			regs[i] = (struct sevm_region){ .sz = sizeof(regs[i]) };
			err = sevm_handoff_region(h, i, &regs[i]);
		}
		if (!err)
			o->step = R_DONE;
	}
	o->err = err;
	snprintf(o->msg, sizeof(o->msg), "%s", err ? sevm_last_error() : "");
	sevm_handoff_free(h);
	/* After a switch the region fds and mappings are the VMM's. */
	for (unsigned int i = 0; o->step == R_DONE && i < gi.nr_regions; i++) {
		munmap(regs[i].host_addr, regs[i].size);
		close(regs[i].fd);
	}
	bare_destroy(&vm);
}

static void judge(const struct rcase *c, const struct rx *o, int64_t ms)
{
	int limit = 4 * (c->timeout_ms ? c->timeout_ms : TIMEOUT_MS) + 3000;

	if (hostile_want(o->err, c->want, o->msg) && o->err) {
		hostile_expect(c->at == R_ANY || o->step == c->at, "failed in %s, not in %s: %s",
			       step_name[o->step], step_name[c->at], o->msg);
		hostile_expect(!c->has || strstr(o->msg, c->has),
			       "the message does not say \"%s\": %s", c->has, o->msg);
	}
	hostile_expect(o->err || o->step == c->stop, "succeeded, yet stopped in %s",
		       step_name[o->step]);
	hostile_expect(ms < limit, "took %lld ms, the waits are bounded by %d ms", (long long)ms,
		       c->timeout_ms ? c->timeout_ms : TIMEOUT_MS);
}

static void run(const struct rcase *c)
{
	struct feed f = { .t = c->t, .cut = c->cut, .chunk = c->chunk, .stall = c->stall };
	struct rx o = { 0 };
	int64_t t0;
	int sv[2];

	hostile_case("%s", c->name);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f.sock = sv[0];
	feed_start(&f);
	t0 = hostile_now_ms();
	take(sv[1], c, &o);
	judge(c, &o, hostile_now_ms() - t0);
	feed_join(&f);
	hostile_case_end();
}

/* The recording, for a case to change. */
static void rec_copy(struct tape *t)
{
	memset(t, 0, sizeof(*t));
	tape_append(t, &rec, 0);
}

/* One field of the recording changed. */
static void poke(size_t at, uint64_t v, unsigned int size, unsigned int want, enum rstep where,
		 const char *has, const char *what)
{
	struct tape t;
	struct rcase c;

	rec_copy(&t);
	tape_poke(&t, at, v, size);
	c = rcase(&t, want, where, has, "%s = 0x%llx", what, (unsigned long long)v);
	/* Accepted: the handle is taken and freed; going on would only repeat the control. */
	if (want & WANT_OK)
		c.stop = where == R_ANY ? R_HELLO : where;
	run(&c);
	tape_free(&t);
}

/* ---- cut: the sender closes at every byte ------------------------------------ */

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

START_TEST(cut_everywhere)
{
	size_t pts[4096];
	unsigned int n = 0, fails = hostile_failed();

	ck_assert_msg(rec.len, "nothing recorded");

	/* Every byte of the HELLO (0: closed at once), then what the receiver reads next. */
	for (size_t k = 0; k <= HELLO_END; k++)
		pts[n++] = k;
	for (unsigned int i = 1; i < rec.nr_msg; i++) {
		size_t m = rec.msg[i].at;
		const size_t near[] = { m - 1, m, m + 1, m + 8, m + 15, m + 16, m + 17 };

		for (size_t j = 0; j < sizeof(near) / sizeof(near[0]); j++)
			if (near[j] < rec.len)
				pts[n++] = near[j];
	}
	for (size_t k = HELLO_END; k < rec.len && n < 4000; k += 1024)
		pts[n++] = k;
	pts[n++] = rec.len - 1;
	qsort(pts, n, sizeof(pts[0]), cmp_size);
	for (unsigned int i = 0; i < n; i++) {
		struct rcase c;

		if (i && pts[i] == pts[i - 1])
			continue;
		c = rcase(&rec, WANT_CLOSED, pts[i] < HELLO_END ? R_HELLO : R_ANY, NULL,
			  "sender closes after %zu of %zu bytes", pts[i], rec.len);
		c.cut = pts[i];
		/* Cut after END, the receiver waits out the pidfd of a live sender. */
		c.timeout_ms = 150;
		run(&c);
	}
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- dribble: short writes the receiver must put together ---------------------- */

static int take_running(int sock, struct tinyvm *vm, char *msg, size_t len)
{
	struct sevm_handoff_opts opts = { .sz = sizeof(opts), .timeout_ms = 5000 };
	struct tinyvm_handoff_times t = { 0 };
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(sock, false, &opts, &h);

	if (err) {
		close(sock);
	} else {
		err = tinyvm_handoff_receive(vm, h, &t);
		sevm_handoff_free(h);
	}
	snprintf(msg, len, "%s", err ? sevm_last_error() : "");
	return err;
}

/* The whole recording, chunk bytes per write: the guest must run here. */
static void taken(size_t chunk)
{
	struct tinyvm vm = { 0 };
	struct tape t;
	struct feed f = { .t = &t, .cut = SIZE_MAX, .chunk = chunk };
	char msg[512];
	int sv[2], mem, err;

	if (chunk)
		hostile_case("the whole handoff, %zu byte(s) per write: taken, the guest runs", chunk);
	else
		hostile_case("the whole handoff, a write per message: taken, the guest runs");
	mem = mem_copy(MFD_ALLOW_SEALING);
	rec_copy(&t);
	t.att[0].fds[0] = mem;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f.sock = sv[0];
	feed_start(&f);
	err = take_running(sv[1], &vm, msg, sizeof(msg));
	if (hostile_want(err, WANT_OK, msg))
		hostile_expect(tu_runs(&vm, 3), "taken, but the guest does not run here "
			       "(errors %llu)", (unsigned long long)tinyvm_total_errors(&vm));
	tinyvm_destroy(&vm);
	feed_join(&f);
	hostile_expect(!f.err, "the fake sender's play ended early: %d (got type %u)", f.err,
		       f.got);
	close(mem);
	tape_free(&t);
	hostile_case_end();
}

/*
 * The sender process sends the whole state and exits — before or after it
 * read RESTORED, never sending GO.  doc/handoff.md: "If the sender dies
 * after the whole state arrived but before the commit, the receiver takes
 * the guest (its switch_receive returns 0), because nobody else can run it
 * any more."  No thread runs here when this forks.
 */
static void sender_exits(bool after_restored)
{
	struct tinyvm vm = { 0 };
	struct tape t;
	char msg[512];
	int sv[2], mem, err;
	pid_t pid;

	hostile_case("sender process exits after END, %s RESTORED: the receiver takes the guest",
		     after_restored ? "after" : "before");
	mem = mem_copy(MFD_ALLOW_SEALING);
	rec_copy(&t);
	t.att[0].fds[0] = mem;
	tape_truncate(&t, go_at);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct feed f = { .t = &t, .sock = sv[0], .cut = after_restored ? SIZE_MAX : go_at };

		close(sv[1]);
		/* The pid a sender announces: on a socketpair SO_PEERCRED names its creator. */
		tape_poke(&t, HELLO(pid), (uint32_t)getpid(), 4);
		feed_run(&f);
		_exit(f.err ? 1 : 0);
	}
	close(sv[0]);
	err = take_running(sv[1], &vm, msg, sizeof(msg));
	if (hostile_want(err, WANT_OK, msg))
		hostile_expect(tu_runs(&vm, 3), "taken, but the guest does not run here");
	tinyvm_destroy(&vm);
	hostile_expect(tu_reap(pid, 5000) == 0, "the fake sender process failed");
	close(mem);
	tape_free(&t);
	hostile_case_end();
}

START_TEST(dribble_and_exit)
{
	unsigned int fails = hostile_failed();

	ck_assert_msg(rec.len, "nothing recorded");

	taken(0);
	taken(1);
	taken(13);
	sender_exits(true);
	sender_exits(false);
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- fds: fewer, more, none, cut off ---------------------------------------------- */

/* The recording with the HELLO's header announcing hdr_fds and these fds attached. */
static void hello_fds(const int *fds, unsigned int n, unsigned int hdr_fds, unsigned int want,
		      const char *has, const char *name)
{
	struct tape t;
	struct rcase c;

	rec_copy(&t);
	t.att[0].n = n;
	if (n)
		memcpy(t.att[0].fds, fds, n * sizeof(int));
	tape_poke(&t, HDR(nr_fds), hdr_fds, 2);
	c = rcase(&t, want, R_HELLO, has, "%s", name);
	run(&c);
	tape_free(&t);
}

/* fds riding with the message at `at`, which carries none. */
static void fds_with(size_t at, const char *what)
{
	struct tape t;
	struct rcase c;

	rec_copy(&t);
	tape_poke(&t, at + HDR(nr_fds), 1, 2);
	tape_attach(&t, at, &golden, 1);
	c = rcase(&t, WANT_FORMAT, R_SWITCH, "fd", "an fd riding with %s", what);
	run(&c);
	tape_free(&t);
}

/* The receiver may take only a few more fds: the kernel cuts the rest off (MSG_CTRUNC). */
static void ctrunc(void)
{
	struct rlimit old, low;
	struct tape t;
	struct feed f;
	struct rx o = { 0 };
	struct rcase c;
	int fds[16], sv[2], top = 0;

	for (int i = 0; i < 16; i++)
		fds[i] = golden;
	rec_copy(&t);
	t.att[0].n = 16;
	memcpy(t.att[0].fds, fds, sizeof(fds));
	tape_poke(&t, HDR(nr_fds), 16, 2);
	c = rcase(&t, WANT_FORMAT, R_HELLO, "MSG_CTRUNC", "16 fds, room for 3: cut off (MSG_CTRUNC)");
	hostile_case("%s", c.name);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* Three free fd numbers below the limit: the peer's pidfd, then 2 of the 16. */
	for (int free_ = 0; free_ < 3; top++)
		free_ += fcntl(top, F_GETFD) < 0;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	f = (struct feed){ .t = &t, .sock = sv[0], .cut = SIZE_MAX };
	feed_start(&f);
	low = old;
	low.rlim_cur = (rlim_t)top;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	take(sv[1], &c, &o);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	judge(&c, &o, 0);
	feed_join(&f);
	hostile_case_end();
	tape_free(&t);
}

START_TEST(fd_counts)
{
	int two[2] = { golden, golden }, many[TAPE_MAX_FDS], extra;
	struct tape t;
	struct rcase c;
	unsigned int fails = hostile_failed();

	ck_assert_msg(rec.len, "nothing recorded");

	for (int i = 0; i < TAPE_MAX_FDS; i++)
		many[i] = golden;
	extra = memfd_of(MEM, MFD_ALLOW_SEALING);
	hello_fds(NULL, 0, 1, WANT_FORMAT, "fds", "HELLO announces 1 fd, none comes");
	hello_fds(NULL, 0, 0, WANT_FORMAT, "regions", "HELLO of 1 region with no fd at all");
	two[1] = extra;
	hello_fds(two, 2, 1, WANT_FORMAT, "fds", "HELLO announces 1 fd, 2 come");
	hello_fds(two, 2, 2, WANT_FORMAT, "regions", "HELLO of 1 region with 2 fds");
	hello_fds(many, TAPE_MAX_FDS, TAPE_MAX_FDS, WANT_FORMAT, "regions",
		  "HELLO of 1 region with 253 fds");
	hello_fds(many, TAPE_MAX_FDS, TAPE_MAX_FDS + 1, WANT_FORMAT, "fds",
		  "HELLO announces 254 fds, 253 come");
	hello_fds(many, 1, 0xffff, WANT_FORMAT, "fds", "HELLO announces 65535 fds, 1 comes");
	ctrunc();
	fds_with(state_at, "the first STATE");
	fds_with(go_at, "GO");
	/* The sender's first word is an ABORT with fds: refused, the fds closed. */
	memset(&t, 0, sizeof(t));
	tape_msg(&t, SEVM_MSG_ABORT, "\xf3\xff\xff\xffnope", 8, two, 2);
	c = rcase(&t, WANT_PEER, R_HELLO, "nope", "an ABORT with 2 fds instead of the HELLO");
	run(&c);
	tape_free(&t);
	close(extra);
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- kinds: an fd that is no memory ----------------------------------------------------- */

/* The recording with region 0's fd replaced by fd. */
static void region_fd(int fd, unsigned int want, enum rstep where, const char *has,
		      const char *name)
{
	struct tape t;
	struct rcase c;

	rec_copy(&t);
	t.att[0].fds[0] = fd;
	c = rcase(&t, want, where, has, "region fd: %s", name);
	run(&c);
	tape_free(&t);
}

static int tmpfile_of(size_t size, int flags)
{
	char path[] = "/tmp/sevm-hostile-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC), ro;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	ro = open(path, flags | O_CLOEXEC);
	unlink(path);
	close(fd);
	ck_assert_int_ge(ro, 0);
	return ro;
}

START_TEST(fd_kinds)
{
	int sv[2], p[2], ev, null, dir, vm, rdwr, rdonly, opath, sealed, fsealed, unsealable;
	unsigned int fails = hostile_failed();
	const char *nomem = "not a memfd";

	ck_assert_msg(rec.len, "nothing recorded");

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ev = eventfd(0, EFD_CLOEXEC);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	vm = ioctl(kvm, KVM_CREATE_VM, 0ul);
	rdwr = tmpfile_of(MEM, O_RDWR);
	rdonly = tmpfile_of(MEM, O_RDONLY);
	opath = tmpfile_of(MEM, O_PATH);
	sealed = mem_copy(MFD_ALLOW_SEALING);
	ck_assert_int_eq(fcntl(sealed, F_ADD_SEALS, F_SEAL_WRITE), 0);
	fsealed = mem_copy(MFD_ALLOW_SEALING);
	ck_assert_int_eq(fcntl(fsealed, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), 0);
	unsealable = mem_copy(0);
	ck_assert(ev >= 0 && null >= 0 && dir >= 0 && vm >= 0);

	region_fd(sv[0], WANT_FORMAT, R_HELLO, nomem, "a UNIX socket");
	region_fd(p[0], WANT_FORMAT, R_HELLO, nomem, "a pipe");
	region_fd(ev, WANT_FORMAT, R_HELLO, nomem, "an eventfd");
	region_fd(null, WANT_FORMAT, R_HELLO, nomem, "/dev/null");
	region_fd(kvm, WANT_FORMAT, R_HELLO, nomem, "/dev/kvm");
	region_fd(dir, WANT_FORMAT, R_HELLO, nomem, "a directory");
	region_fd(vm, WANT_FORMAT, R_HELLO, nomem, "a KVM VM fd");
	/* A regular file holding offset + size bytes may back a region (doc). */
	region_fd(rdwr, WANT_OK, R_DONE, NULL, "a regular file of the region's size, read-write");
	/* It cannot be mapped for writing: refused, at the latest by the mapping. */
	region_fd(rdonly, WANT_ANY_ERR, R_ANY, NULL, "a regular file opened read-only");
	region_fd(opath, WANT_ANY_ERR, R_ANY, NULL, "an O_PATH fd of a regular file");
	region_fd(sealed, WANT_ANY_ERR, R_ANY, NULL, "a memfd sealed against writing");
	region_fd(fsealed, WANT_ANY_ERR, R_ANY, NULL, "a memfd sealed against future writes");
	region_fd(unsealable, WANT_OK, R_DONE, NULL, "a memfd without MFD_ALLOW_SEALING");

	int all[] = { sv[0], sv[1], p[0], p[1], ev, null, dir, vm, rdwr, rdonly, opath, sealed,
		      fsealed, unsealable };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		close(all[i]);
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- sizes: a memfd that cannot hold its region ------------------------------------ */

static int shrink_fd = -1;

static void shrink_now(void *ctx)
{
	(void)ctx;
	hostile_expect(ftruncate(shrink_fd, 0) == 0, "an unsealable memfd could not shrink");
}

/* Accepted: the sealable memfd is sealed against shrinking (doc: "It seals accepted memfds"). */
static void sealed_on_accept(void)
{
	int fd = mem_copy(MFD_ALLOW_SEALING);
	struct tape t;
	struct rcase c;
	int seals;

	rec_copy(&t);
	t.att[0].fds[0] = fd;
	c = rcase(&t, WANT_OK, R_HELLO, NULL, "an accepted memfd is sealed against shrinking");
	c.stop = R_HELLO;
	run(&c);
	hostile_case("after it: the sender cannot shrink the memfd it handed over");
	seals = fcntl(fd, F_GET_SEALS);
	hostile_expect(seals >= 0 && (seals & F_SEAL_SHRINK), "seals 0x%x, no F_SEAL_SHRINK", seals);
	hostile_expect(ftruncate(fd, 0) < 0 && errno == EPERM, "the memfd shrank after the HELLO");
	hostile_case_end();
	close(fd);
	tape_free(&t);
}

START_TEST(fd_sizes)
{
	int empty = memfd_of(0, MFD_ALLOW_SEALING), short1 = memfd_of(MEM - PAGE, MFD_ALLOW_SEALING);
	int tiny = tmpfile_of(PAGE, O_RDWR);
	unsigned int fails = hostile_failed();
	struct tape t;
	struct rcase c;

	ck_assert_msg(rec.len, "nothing recorded");

	region_fd(empty, WANT_FORMAT, R_HELLO, "holds", "a memfd of 0 bytes for 1 MiB");
	region_fd(short1, WANT_FORMAT, R_HELLO, "holds", "a memfd one page short");
	region_fd(tiny, WANT_FORMAT, R_HELLO, "holds", "a regular file of one page for 1 MiB");
	poke(REGION(offset), PAGE, 8, WANT_FORMAT, R_HELLO, "holds",
	     "region offset one page in, a memfd of exactly the size");
	sealed_on_accept();
	/*
	 * Without MFD_ALLOW_SEALING the memfd cannot be sealed: the sender shrinks
	 * it after the HELLO.  The library touches no guest page, so it must not
	 * die of SIGBUS; what the VMM then maps is its own business.
	 */
	shrink_fd = mem_copy(0);
	rec_copy(&t);
	t.att[0].fds[0] = shrink_fd;
	c = rcase(&t, WANT_OK | WANT_ANY_ERR, R_ANY, NULL,
		  "an unsealable memfd shrunk to 0 after the HELLO: no SIGBUS here");
	c.after_hello = shrink_now;
	run(&c);
	tape_free(&t);
	close(shrink_fd);
	close(empty);
	close(short1);
	close(tiny);
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- lengths: 0, 2^32-1, 2^64-1 everywhere ---------------------------------------- */

START_TEST(length_fields)
{
	unsigned int fails = hostile_failed();
	struct tape t;
	struct rcase c;

	ck_assert_msg(rec.len, "nothing recorded");

	/* The wire header. */
	poke(HDR(len), 0, 4, WANT_FORMAT, R_HELLO, "HELLO of 0 bytes", "header len");
	poke(HDR(len), U32MAX, 4, WANT_FORMAT, R_HELLO, "limit", "header len");
	poke(HDR(len), SEVM_WIRE_MAX_LEN + 1ull, 4, WANT_FORMAT, R_HELLO, "limit", "header len");
	/* As long as allowed: it waits for the bytes, and the sender closes. */
	rec_copy(&t);
	tape_poke(&t, HDR(len), SEVM_WIRE_MAX_LEN, 4);
	c = rcase(&t, WANT_CLOSED, R_HELLO, "closed", "header len = 256 MiB, the limit; then closed");
	c.cut = HELLO_END;
	run(&c);
	tape_free(&t);
	poke(HDR(magic), 0, 4, WANT_FORMAT, R_HELLO, "magic", "header magic");
	poke(HDR(magic), U32MAX, 4, WANT_FORMAT, R_HELLO, "magic", "header magic");
	/* The message must name the field that is wrong, not the magic that is right. */
	poke(HDR(reserved), 1, 4, WANT_FORMAT, R_HELLO, "reserved", "header reserved");
	poke(HDR(reserved), U32MAX, 4, WANT_FORMAT, R_HELLO, "reserved", "header reserved");
	poke(HDR(type), 0, 2, WANT_FORMAT, R_HELLO, "unknown message type", "header type");
	poke(HDR(type), SEVM_MSG__END, 2, WANT_FORMAT, R_HELLO, "unknown message type", "header type");
	poke(HDR(type), 0xffff, 2, WANT_FORMAT, R_HELLO, "unknown message type", "header type");

	/* The HELLO. */
	poke(HELLO(major), 0, 2, WANT_VERSION, R_HELLO, "protocol", "HELLO major");
	poke(HELLO(major), 2, 2, WANT_VERSION, R_HELLO, "protocol", "HELLO major");
	poke(HELLO(major), 0xffff, 2, WANT_VERSION, R_HELLO, "protocol", "HELLO major");
	poke(HELLO(minor), 0xffff, 2, WANT_OK, R_HELLO, NULL, "HELLO minor (any is accepted)");
	poke(HELLO(features), 2, 4, WANT_VERSION, R_HELLO, "features", "HELLO features");
	poke(HELLO(features), U32MAX, 4, WANT_VERSION, R_HELLO, "features", "HELLO features");
	poke(HELLO(features), SEVM_FEAT_SEV, 4, WANT_FORMAT, R_HELLO, "SEV", "HELLO features (SEV, "
	     "VM type 0)");
	poke(HELLO(nr_vcpus), 0, 4, WANT_FORMAT, R_HELLO, "vCPUs", "HELLO vCPUs");
	poke(HELLO(nr_vcpus), SEVM_MAX_VCPUS, 4, WANT_OK, R_HELLO, NULL, "HELLO vCPUs (the most)");
	poke(HELLO(nr_vcpus), SEVM_MAX_VCPUS + 1, 4, WANT_FORMAT, R_HELLO, "vCPUs", "HELLO vCPUs");
	poke(HELLO(nr_vcpus), U32MAX, 4, WANT_FORMAT, R_HELLO, "vCPUs", "HELLO vCPUs");
	poke(HELLO(nr_regions), 0, 4, WANT_FORMAT, R_HELLO, "regions", "HELLO regions");
	poke(HELLO(nr_regions), 2, 4, WANT_FORMAT, R_HELLO, "regions", "HELLO regions");
	poke(HELLO(nr_regions), SEVM_MAX_REGIONS + 1, 4, WANT_FORMAT, R_HELLO, "regions",
	     "HELLO regions");
	poke(HELLO(nr_regions), U32MAX, 4, WANT_FORMAT, R_HELLO, "regions", "HELLO regions");
	poke(HELLO(guest_flags), 4, 4, WANT_FORMAT, R_HELLO, "flags", "HELLO guest flags");
	poke(HELLO(guest_flags), U32MAX, 4, WANT_FORMAT, R_HELLO, "flags", "HELLO guest flags");
	poke(HELLO(pid), 0, 4, WANT_OK, R_HELLO, NULL, "HELLO pid");
	poke(HELLO(pid), U32MAX, 4, WANT_OK, R_HELLO, NULL, "HELLO pid");
	poke(HELLO(reserved), 1, 4, WANT_FORMAT, R_HELLO, "reserved", "HELLO reserved");
	poke(HELLO(reserved), U32MAX, 4, WANT_FORMAT, R_HELLO, "reserved", "HELLO reserved");

	/* The region table. */
	poke(REGION(slot), U32MAX, 4, WANT_ANY_ERR, R_PREPARE, "slot", "region slot");
	poke(REGION(flags), 4, 4, WANT_FORMAT, R_HELLO, "flags", "region flags");
	poke(REGION(flags), U32MAX, 4, WANT_FORMAT, R_HELLO, "flags", "region flags");
	/* Bit 16 belongs to an SEV handoff: a plain HELLO has no encrypted region. */
	poke(REGION(flags), SEVM_REGION_ENCRYPTED, 4, WANT_FORMAT, R_HELLO, "encrypted",
	     "region flags (encrypted, in a plain HELLO)");
	poke(REGION(guest_phys_addr), U32MAX, 8, WANT_FORMAT, R_HELLO, "aligned", "region address");
	poke(REGION(guest_phys_addr), U64MAX, 8, WANT_FORMAT, R_HELLO, "aligned", "region address");
	poke(REGION(guest_phys_addr), U64MAX - PAGE + 1, 8, WANT_FORMAT, R_HELLO, "wraps",
	     "region address");
	poke(REGION(size), 0, 8, WANT_FORMAT, R_HELLO, "non-zero", "region size");
	poke(REGION(size), U32MAX, 8, WANT_FORMAT, R_HELLO, "aligned", "region size");
	poke(REGION(size), 1ull << 32, 8, WANT_FORMAT, R_HELLO, "holds", "region size");
	poke(REGION(size), U64MAX, 8, WANT_FORMAT, R_HELLO, "aligned", "region size");
	poke(REGION(size), U64MAX - PAGE + 1, 8, WANT_FORMAT, R_HELLO, "holds", "region size");
	poke(REGION(offset), U32MAX, 8, WANT_FORMAT, R_HELLO, "aligned", "region offset");
	poke(REGION(offset), 1ull << 63, 8, WANT_FORMAT, R_HELLO, "holds", "region offset");
	poke(REGION(offset), U64MAX, 8, WANT_FORMAT, R_HELLO, "aligned", "region offset");
	poke(REGION(offset), U64MAX - PAGE + 1, 8, WANT_FORMAT, R_HELLO, "wraps", "region offset");
	poke(REGION(fd_index), 1, 4, WANT_FORMAT, R_HELLO, "fd", "region fd index");
	poke(REGION(fd_index), U32MAX, 4, WANT_FORMAT, R_HELLO, "fd", "region fd index");
	poke(REGION(reserved), U32MAX, 4, WANT_FORMAT, R_HELLO, "reserved", "region reserved");
	/* The sender's mapping means nothing to a plain receiver: the switch goes through. */
	poke(REGION(host_addr), U64MAX, 8, WANT_OK, R_DONE, NULL, "region sender's address");

	/* The first STATE message's first section: its length, 0 / 2^32-1 / 2^64-1. */
	poke(state_at + HDR(len), 0, 4, WANT_FORMAT | WANT_CHECKSUM, R_SWITCH, NULL, "STATE header len");
	poke(state_at + HDR(len), U32MAX, 4, WANT_FORMAT, R_SWITCH, "limit", "STATE header len");
	poke(state_at + SEVM_WIRE_HDR_LEN + 16, 0, 8, WANT_FORMAT | WANT_CHECKSUM, R_SWITCH, NULL,
	     "first section's length");
	poke(state_at + SEVM_WIRE_HDR_LEN + 16, U32MAX, 8, WANT_FORMAT, R_SWITCH, NULL,
	     "first section's length");
	poke(state_at + SEVM_WIRE_HDR_LEN + 16, U64MAX, 8, WANT_FORMAT, R_SWITCH, NULL,
	     "first section's length");
	poke(go_at + HDR(len), U32MAX, 4, WANT_FORMAT, R_SWITCH, "limit", "GO header len");
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- regions: the table's order and overlaps ------------------------------------- */

/* A HELLO of the recorded guest over these regions and fds, then the recording's rest. */
static void regions(const struct sevm__region_wire *w, unsigned int n, const int *fds,
		    unsigned int want, const char *has, const char *name)
{
	struct sevm__hello hello;
	size_t len = sizeof(hello) + n * sizeof(*w);
	uint8_t *p = malloc(len);
	struct tape t = { 0 };
	struct rcase c;

	memcpy(&hello, rec.b + HELLO_AT, sizeof(hello));
	hello.nr_regions = n;
	memcpy(p, &hello, sizeof(hello));
	memcpy(p + sizeof(hello), w, n * sizeof(*w));
	tape_msg(&t, SEVM_MSG_HELLO, p, (uint32_t)len, fds, n);
	tape_append(&t, &rec, HELLO_END);
	c = rcase(&t, want, R_HELLO, has, "%s", name);
	/* Accepted: prepare maps each region and sets its slot. */
	if (want & WANT_OK)
		c.stop = R_PREPARE;
	run(&c);
	tape_free(&t);
	free(p);
}

static struct sevm__region_wire reg(uint32_t slot, uint64_t gpa, uint64_t size, uint64_t off,
				    uint32_t index)
{
	return (struct sevm__region_wire){ .slot = slot, .guest_phys_addr = gpa, .size = size,
					   .offset = off, .fd_index = index };
}

START_TEST(region_tables)
{
	int m2 = memfd_of(MEM, MFD_ALLOW_SEALING), small = memfd_of(PAGE, MFD_ALLOW_SEALING);
	int fds[2] = { golden, m2 }, big = memfd_of(SEVM_MAX_REGIONS * PAGE, MFD_ALLOW_SEALING);
	static struct sevm__region_wire many[SEVM_MAX_REGIONS];
	static int many_fds[SEVM_MAX_REGIONS];
	unsigned int fails = hostile_failed();
	struct sevm__region_wire w[2];

	ck_assert_msg(rec.len, "nothing recorded");

	w[0] = reg(0, 0, MEM, 0, 0);
	w[1] = reg(1, MEM, MEM, 0, 1);
	regions(w, 2, fds, WANT_OK, NULL, "two adjacent regions (accepted)");
	w[1].guest_phys_addr = MEM - PAGE;
	regions(w, 2, fds, WANT_FORMAT, "overlaps", "the second region overlaps the first by a page");
	w[1].guest_phys_addr = 0;
	regions(w, 2, fds, WANT_FORMAT, "overlaps", "two regions at the same address");
	w[1] = reg(1, PAGE, PAGE, 0, 1);
	regions(w, 2, fds, WANT_FORMAT, "overlaps", "the second region inside the first");
	w[0] = reg(0, MEM, MEM, 0, 0);
	w[1] = reg(1, 0, MEM, 0, 1);
	regions(w, 2, fds, WANT_FORMAT, "sorted", "regions out of order");
	w[0] = reg(0, 0, MEM, 0, 0);
	w[1] = reg(0, MEM, MEM, 0, 1);
	regions(w, 2, fds, WANT_FORMAT, "twice", "the same slot twice");
	w[1] = reg(1, MEM, 0, 0, 1);
	regions(w, 2, fds, WANT_FORMAT, "non-zero", "a second region of size 0");
	w[1] = reg(1, MEM, MEM, 0, 0);
	regions(w, 2, fds, WANT_FORMAT, "fd", "the second region names the first's fd");
	fds[1] = small;
	w[1] = reg(1, MEM, MEM, 0, 1);
	regions(w, 2, fds, WANT_FORMAT, "holds", "the second region's memfd is one page");
	fds[1] = golden;
	w[0] = reg(0, 0, MEM / 2, 0, 0);
	w[1] = reg(1, MEM, MEM / 2, MEM / 2, 1);
	regions(w, 2, fds, WANT_OK, NULL, "two regions in two halves of one memfd (accepted)");
	w[0] = reg(0, 0x800, MEM - PAGE, 0, 0);
	regions(w, 1, fds, WANT_FORMAT, "aligned", "an unaligned address (0x800)");
	w[0] = reg(0, 0, 0x1800, 0, 0);
	regions(w, 1, fds, WANT_FORMAT, "aligned", "an unaligned size (0x1800)");
	w[0] = reg(0, 0, MEM - PAGE, 0x10, 0);
	regions(w, 1, fds, WANT_FORMAT, "aligned", "an unaligned offset (0x10)");

	/* The most a HELLO can carry: one page each, one fd each. */
	for (unsigned int i = 0; i < SEVM_MAX_REGIONS; i++) {
		many[i] = reg(i, 2ull * i * PAGE, PAGE, (uint64_t)i * PAGE, i);
		many_fds[i] = big;
	}
	regions(many, SEVM_MAX_REGIONS, many_fds, WANT_OK, NULL, "253 regions (accepted, 253 slots)");
	many[SEVM_MAX_REGIONS - 1].guest_phys_addr = many[SEVM_MAX_REGIONS - 2].guest_phys_addr;
	regions(many, SEVM_MAX_REGIONS, many_fds, WANT_FORMAT, "overlaps",
		"253 regions, the last on its neighbour: 253 fds to close");
	close(m2);
	close(small);
	close(big);
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- types: a message not expected at that point; stalls ------------------------- */

/* The recording up to `at`, then one message of `type`, then the rest from `from`. */
static void inject(size_t at, uint16_t type, const void *payload, uint32_t len, size_t from,
		   unsigned int want, enum rstep where, const char *has, const char *name)
{
	struct tape t;
	struct rcase c;

	rec_copy(&t);
	tape_truncate(&t, at);
	tape_msg(&t, type, payload, len, NULL, 0);
	if (from != SIZE_MAX)
		tape_append(&t, &rec, from);
	c = rcase(&t, want, where, has, "%s", name);
	run(&c);
	tape_free(&t);
}

/* A message whose payload is the recording's bytes [from, from + len). */
static void inject_rec(size_t at, uint16_t type, size_t from, uint32_t len, size_t rest,
		       unsigned int want, enum rstep where, const char *has, const char *name)
{
	uint8_t *p = malloc(len ? len : 1);

	memcpy(p, rec.b + from, len);
	inject(at, type, p, len, rest, want, where, has, name);
	free(p);
}

static size_t msg_len(unsigned int i)
{
	return (i + 1 < rec.nr_msg ? rec.msg[i + 1].at : rec.len) - rec.msg[i].at;
}

/* A tape of the recording's messages in this order (indexes into rec.msg). */
static void reorder(const unsigned int *order, unsigned int n, const char *name)
{
	struct tape t;
	struct rcase c;

	rec_copy(&t);
	tape_truncate(&t, state_at);
	for (unsigned int i = 0; i < n; i++)
		tape_bytes(&t, rec.b + rec.msg[order[i]].at, msg_len(order[i]));
	c = rcase(&t, WANT_FORMAT | WANT_CHECKSUM, R_SWITCH, NULL, "%s", name);
	/* What the receiver answers is not waited for: it must refuse, then close. */
	run(&c);
	tape_free(&t);
}

static void stall(size_t at, enum rstep where, const char *name)
{
	struct rcase c = rcase(&rec, WANT_TIMEDOUT, where, "peer", "%s", name);

	c.cut = at;
	c.stall = true;
	run(&c);
}

START_TEST(message_types)
{
	static const char garbage[256] = "not a snapshot section at all";
	uint8_t abort_long[4 + 600];
	unsigned int fails = hostile_failed(), first_state = 1, nr = rec.nr_msg;
	int32_t e = INT32_MIN;
	const char *what = "expected HELLO";
	size_t hello_len = HELLO_END - HELLO_AT;

	ck_assert_msg(rec.len, "nothing recorded");

	/* Instead of the HELLO. */
	inject(0, SEVM_MSG_PREPARED, NULL, 0, SIZE_MAX, WANT_FORMAT, R_HELLO, what, "PREPARED first");
	inject_rec(0, SEVM_MSG_STATE, state_at + SEVM_WIRE_HDR_LEN, 256, SIZE_MAX, WANT_FORMAT,
		   R_HELLO, what, "STATE first");
	inject(0, SEVM_MSG_RESTORED, NULL, 0, SIZE_MAX, WANT_FORMAT, R_HELLO, what, "RESTORED first");
	inject(0, SEVM_MSG_GO, NULL, 0, SIZE_MAX, WANT_FORMAT, R_HELLO, what, "GO first");
	inject(0, SEVM_MSG_RESUMED, NULL, 0, SIZE_MAX, WANT_FORMAT, R_HELLO, what, "RESUMED first");
	inject(0, SEVM_MSG_ABORT, "\xea\xff\xff\xffsender says no", 18, SIZE_MAX, WANT_PEER, R_HELLO,
	       "sender says no", "ABORT first, with a reason");
	inject(0, SEVM_MSG_ABORT, NULL, 0, SIZE_MAX, WANT_PEER, R_HELLO, "without a reason",
	       "ABORT first, empty");
	inject(0, SEVM_MSG_ABORT, "\xea\xff\xff", 3, SIZE_MAX, WANT_PEER, R_HELLO, "without a reason",
	       "ABORT first, 3 bytes");
	memcpy(abort_long, &e, 4);
	memset(abort_long + 4, 'x', sizeof(abort_long) - 4);
	inject(0, SEVM_MSG_ABORT, abort_long, sizeof(abort_long), SIZE_MAX, WANT_PEER, R_HELLO,
	       "xxxx", "ABORT first, error INT32_MIN and 600 bytes without a NUL");
	/* A HELLO that carries the wrong payload length for its table. */
	inject_rec(0, SEVM_MSG_HELLO, HELLO_AT, (uint32_t)hello_len - 1, SIZE_MAX, WANT_FORMAT,
		   R_HELLO, "regions", "HELLO one byte short (table cut)");
	inject_rec(0, SEVM_MSG_HELLO, HELLO_AT, (uint32_t)sizeof(struct sevm__hello) - 1, SIZE_MAX,
		   WANT_FORMAT, R_HELLO, "HELLO of", "HELLO shorter than its fixed part");

	/* Instead of the first STATE (after PREPARED). */
	what = "expected STATE";
	inject_rec(state_at, SEVM_MSG_HELLO, HELLO_AT, (uint32_t)hello_len, state_at, WANT_FORMAT,
		   R_SWITCH, what, "a second HELLO after PREPARED");
	inject(state_at, SEVM_MSG_PREPARED, NULL, 0, state_at, WANT_FORMAT, R_SWITCH, what,
	       "PREPARED from the sender");
	inject(state_at, SEVM_MSG_RESTORED, NULL, 0, state_at, WANT_FORMAT, R_SWITCH, what,
	       "RESTORED from the sender");
	inject(state_at, SEVM_MSG_GO, NULL, 0, state_at, WANT_FORMAT, R_SWITCH, what,
	       "GO before any STATE");
	inject(state_at, SEVM_MSG_RESUMED, NULL, 0, state_at, WANT_FORMAT, R_SWITCH, what,
	       "RESUMED from the sender");
	inject(state_at, SEVM_MSG_ABORT, "\xea\xff\xff\xffgave up", 11, SIZE_MAX, WANT_PEER, R_SWITCH,
	       "gave up", "ABORT instead of STATE");
	inject(state_at, SEVM_MSG_STATE, garbage, sizeof(garbage), SIZE_MAX,
	       WANT_FORMAT | WANT_CHECKSUM | WANT_VERSION, R_SWITCH, NULL, "STATE of 256 garbage bytes");

	/* Instead of GO (the whole state arrived). */
	what = "expected GO";
	inject_rec(go_at, SEVM_MSG_STATE, rec.msg[nr - 2].at + SEVM_WIRE_HDR_LEN,
		   (uint32_t)(msg_len(nr - 2) - SEVM_WIRE_HDR_LEN), go_at, WANT_FORMAT, R_SWITCH,
		   what, "the last STATE again");
	inject(go_at, SEVM_MSG_PREPARED, NULL, 0, go_at, WANT_FORMAT, R_SWITCH, what,
	       "PREPARED instead of GO");
	inject(go_at, SEVM_MSG_RESTORED, NULL, 0, go_at, WANT_FORMAT, R_SWITCH, what,
	       "RESTORED instead of GO");
	inject(go_at, SEVM_MSG_RESUMED, NULL, 0, go_at, WANT_FORMAT, R_SWITCH, what,
	       "RESUMED instead of GO");
	inject(go_at, SEVM_MSG_ABORT, "\xea\xff\xff\xff" "changed my mind", 19, SIZE_MAX, WANT_PEER,
	       R_SWITCH, "changed my mind", "ABORT instead of GO");
	/*
	 * GO is empty (doc/handoff-protocol.md): one with a payload is malformed.
	 * The fake sender reads what comes back, so a receiver that takes it
	 * says so (RESUMED) rather than failing to.
	 */
	{
		struct tape t;
		struct rcase c;

		rec_copy(&t);
		tape_truncate(&t, go_at);
		tape_msg(&t, SEVM_MSG_GO, "\x01\x02\x03\x04", 4, NULL, 0);
		tape_wait(&t, SEVM_MSG_RESUMED);
		c = rcase(&t, WANT_FORMAT, R_SWITCH, "GO", "GO with a 4-byte payload");
		run(&c);
		tape_free(&t);
	}

	/* The STATE messages out of order: vCPU 0 carries GUEST, the VM-wide one comes last. */
	{
		unsigned int dup[] = { first_state, first_state, nr - 2, nr - 1 };
		unsigned int last_first[] = { nr - 2, first_state, nr - 1 };
		unsigned int drop0[] = { first_state + 1, nr - 2, nr - 1 };
		unsigned int swap[] = { first_state, nr - 2, first_state + 1, nr - 1 };

		reorder(dup, 4, "vCPU 0's STATE twice");
		reorder(last_first, 3, "the VM-wide STATE first");
		reorder(drop0, 3, "vCPU 0's STATE (with GUEST) missing");
		if (nr_state == 3)
			reorder(swap, 4, "the VM-wide STATE before vCPU 1's");
	}

	/* Stalls: the receiver gives up after its timeout. */
	stall(0, R_HELLO, "a sender that sends nothing");
	stall(7, R_HELLO, "HELLO header half sent, then silence");
	stall(HELLO_AT + 20, R_HELLO, "HELLO payload half sent, then silence");
	stall(state_at + 100, R_SWITCH, "the first STATE half sent, then silence");
	stall(go_at, R_SWITCH, "the whole state sent, then no GO");
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- uid: a sender of another uid ------------------------------------------------ */

START_TEST(other_uid)
{
	hostile_other_uid_case(false, TIMEOUT_MS);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("hostile-handoff-receiver");
	TCase *tc = tcase_create("fake sender, real receiver on KVM");
	int r;

	hostile_child_main(argc, argv, NULL);
	tu_require_kvm();
	hostile_begin("handoff-receiver");
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		perror("/dev/kvm");
		return 1;
	}
	tcase_set_timeout(tc, 300);
	/* First: every other test plays what this one records. */
	tcase_add_test(tc, record_handoff);
	tcase_add_test(tc, cut_everywhere);
	tcase_add_test(tc, dribble_and_exit);
	tcase_add_test(tc, fd_counts);
	tcase_add_test(tc, fd_kinds);
	tcase_add_test(tc, fd_sizes);
	tcase_add_test(tc, length_fields);
	tcase_add_test(tc, region_tables);
	tcase_add_test(tc, message_types);
	tcase_add_test(tc, other_uid);
	suite_add_tcase(s, tc);
	r = tu_run(s);
	if (!rec.len)
		return 1;
	r |= !hostile_report();
	tape_free(&rec);
	free(golden_bytes);
	close(golden);
	close(kvm);
	return r ? 1 : 0;
}
