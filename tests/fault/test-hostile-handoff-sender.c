/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A hostile or broken RECEIVER on the handoff socket (issue #8), against the
 * real sender: a tinyvm guest running here, sevm_handoff_from_fd(sock,
 * true, ...), prepare, pause, switch (tinyvm_handoff_send()).  The fake
 * receiver is this program started again ("fake-receiver CASE"), a process
 * of its own — the sender tells a receiver that died from one that went
 * silent by its pid.  It plays the protocol right until the point its case
 * names, and there:
 *   closes    (and exits, or stays alive), at each step;
 *   is silent (the sender's timeout_ms bounds each wait);
 *   answers   with a cut message (at every byte), a wrong type, a wrong
 *             length, garbage, fds where none belong, an ABORT.
 * The controls: a right receiver, and one that reads a byte at a time and
 * answers a byte per write while the sender's socket buffer is small (short
 * writes and short reads everywhere).
 *
 * Promised (doc/handoff.md, "Rollback and failure"): before GO every
 * failure rolls back — a negative errno with a message, the guest resumed
 * and running on here with exact heartbeats.  After GO only an ABORT or a
 * receiver process that is gone rolls back; anything else is
 * -SEVM_ERR_INDOUBT with the guest left paused (this test resumes it, then
 * checks it runs on).  One guest lives through every case.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "handoff/handoff.h"
#include "hostile.h"
#include "testutil.h"
#include "tinyvm-handoff.h"
#include "tu-tinyvm.h"

#define NR_VCPUS	2
#define MEM		(1u << 20)
/* The sender's every wait: a silent receiver costs this much. */
#define TIMEOUT_MS	300
#define U32MAX		0xffffffffu

/* Where the fake receiver misbehaves: instead of the answer to what it just read. */
enum phase {
	P_START,	/* before reading anything */
	P_HELLO,	/* instead of PREPARED */
	P_STATE1,	/* after the first STATE, while the rest comes */
	P_STATE,	/* instead of RESTORED */
	P_GO,		/* instead of RESUMED: after the commit */
	P_NEVER,	/* a right receiver */
};

enum act {
	A_CLOSE_EXIT,	/* close and exit: the receiver is gone */
	A_CLOSE_STAY,	/* close, but live on (killed at the end of the case) */
	A_SILENT,	/* say nothing, live on */
	A_REPLY,	/* the crafted reply, then read until the sender hangs up */
	A_CUT_EXIT,	/* the first `cut` bytes of the right answer, close, exit */
	A_CUT_STAY,	/* the same, live on */
};

/* Payloads of a crafted reply. */
enum { PL_RIGHT, PL_EMPTY, PL_SHORT, PL_EXTRA, PL_REGIONS_2, PL_REGIONS_MAX, PL_LONGER,
       PL_ABORT, PL_ABORT_EMPTY, PL_ABORT_BAD_ERR, PL_GARBAGE };

struct reply {
	uint16_t type;		/* 0: the right one */
	int payload;		/* PL_* */
	uint32_t magic;		/* 0: the right one */
	uint32_t reserved;
	uint32_t len;		/* 0: the payload's (see PL_LONGER, PL_EMPTY) */
	unsigned int fds;	/* fds attached (/dev/null) */
	bool hdr_fds_set;	/* the header announces hdr_fds; else as many as attached */
	unsigned int hdr_fds;
	bool raw;		/* 64 bytes of garbage instead of a message */
};

struct scase {
	char name[128];
	enum phase at;
	enum act act;
	struct reply r;
	size_t cut;
	bool slow;		/* reads a byte at a time, answers a byte per write */
	unsigned int want;	/* WANT_* */
	const char *has;	/* in the message */
};

#define MAX_CASES	256
static struct scase cases[MAX_CASES];
static unsigned int nr_cases;

static struct scase *add(enum phase at, enum act act, unsigned int want, const char *has,
			 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static struct scase *add(enum phase at, enum act act, unsigned int want, const char *has,
			 const char *fmt, ...)
{
	struct scase *c = &cases[nr_cases++];
	va_list ap;

	if (nr_cases > MAX_CASES)
		abort();
	*c = (struct scase){ .at = at, .act = act, .want = want, .has = has };
	va_start(ap, fmt);
	vsnprintf(c->name, sizeof(c->name), fmt, ap);
	va_end(ap);
	return c;
}

static const char *const phase_name[] = { "before the HELLO is read", "instead of PREPARED",
	"after the first STATE", "instead of RESTORED", "after GO, instead of RESUMED", "" };

static struct scase *reply(enum phase at, unsigned int want, const char *has, struct reply r,
			   const char *what)
{
	struct scase *c = add(at, A_REPLY, want, has, "%s %s", what, phase_name[at]);

	c->r = r;
	return c;
}

/* The same table in the test and in each fake receiver, which gets an index. */
static void build_cases(void)
{
	/* Answers that confuse the sender: before GO it rolls back, after GO it is in doubt. */
	const enum phase answers[] = { P_HELLO, P_STATE, P_GO };
	const char *const right[] = { "PREPARED", "RESTORED", "RESUMED" };
	const size_t right_len[] = { SEVM_WIRE_HDR_LEN + 8 + 8, SEVM_WIRE_HDR_LEN,
				     SEVM_WIRE_HDR_LEN };
	struct scase *c;

	add(P_NEVER, A_REPLY, WANT_OK, NULL, "a right receiver (control)");
	c = add(P_NEVER, A_REPLY, WANT_OK, NULL, "a right receiver reading a byte at a time, "
		"answering a byte per write, the sender's buffer small (control)");
	c->slow = true;

	add(P_START, A_CLOSE_EXIT, WANT_CLOSED, NULL, "receiver closes and exits at once");
	add(P_START, A_CLOSE_STAY, WANT_CLOSED, NULL, "receiver closes at once, lives on");
	add(P_START, A_SILENT, WANT_TIMEDOUT, "PREPARED", "receiver never reads nor answers");
	add(P_STATE1, A_CLOSE_EXIT, WANT_CLOSED, NULL, "receiver closes and exits mid-state");
	reply(P_STATE1, WANT_PEER, "out of room",
		  (struct reply){ .type = SEVM_MSG_ABORT, .payload = PL_ABORT }, "an ABORT");

	for (unsigned int i = 0; i < 3; i++) {
		enum phase at = answers[i];
		bool go = at == P_GO;
		/* After GO: a receiver that is alive but said no RESUMED leaves it in doubt. */
		unsigned int confused = go ? WANT_INDOUBT : WANT_FORMAT;
		const char *expected = go ? "did not confirm" : NULL;

		add(at, A_CLOSE_EXIT, WANT_CLOSED, go ? "did not take the guest" : NULL,
		    "receiver closes and exits %s", phase_name[at]);
		add(at, A_CLOSE_STAY, go ? WANT_INDOUBT : WANT_CLOSED, expected,
		    "receiver closes %s, lives on", phase_name[at]);
		add(at, A_SILENT, go ? WANT_INDOUBT : WANT_TIMEDOUT, go ? expected : right[i],
		    "receiver silent %s", phase_name[at]);
		/* The right answer cut at every byte, then the receiver gone. */
		for (size_t k = 0; k < right_len[i]; k++) {
			c = add(at, A_CUT_EXIT, WANT_CLOSED, NULL, "%s cut after %zu of %zu bytes, "
				"receiver exits", right[i], k, right_len[i]);
			c->cut = k;
		}
		c = add(at, A_CUT_STAY, go ? WANT_INDOUBT : WANT_CLOSED, expected,
			"%s cut after 8 bytes, receiver lives on", right[i]);
		c->cut = 8;

		/* A message that is not the answer. */
		for (uint16_t t = SEVM_MSG_HELLO; t < SEVM_MSG__END; t++) {
			char what[64];

			if (t == SEVM_MSG_ABORT || (t == SEVM_MSG_PREPARED && at == P_HELLO) ||
			    (t == SEVM_MSG_RESTORED && at == P_STATE) ||
			    (t == SEVM_MSG_RESUMED && at == P_GO))
				continue;
			snprintf(what, sizeof(what), "%s", sevm__msg_name(t));
			reply(at, confused, go ? expected : "expected",
			      (struct reply){ .type = t, .payload = PL_GARBAGE }, what);
		}
		reply(at, confused, go ? expected : "unknown message type",
		      (struct reply){ .type = SEVM_MSG__END }, "a message of unknown type 8");
		reply(at, confused, go ? expected : "unknown message type",
		      (struct reply){ .type = 0xffff }, "a message of unknown type 0xffff");
		reply(at, confused, go ? expected : "magic", (struct reply){ .magic = 0x12345678 },
		      "the answer with a wrong magic");
		reply(at, confused, go ? expected : "reserved", (struct reply){ .reserved = 1 },
		      "the answer with reserved bits");
		reply(at, confused, go ? expected : "limit", (struct reply){ .len = U32MAX },
		      "the answer claiming 2^32-1 bytes");
		reply(at, confused, go ? expected : NULL, (struct reply){ .raw = true },
		      "64 bytes of garbage");
		/* The answer with a payload it does not have, or more or less of it. */
		reply(at, confused, go ? expected : right[i], (struct reply){ .payload = PL_EXTRA },
		      "the answer with 4 bytes too many");
		reply(at, go ? WANT_INDOUBT : WANT_TIMEDOUT, go ? expected : NULL,
		      (struct reply){ .payload = PL_LONGER },
		      "the answer announcing 100 bytes more than come");
		/* fds: none belong to a plain guest's answers. */
		reply(at, confused, go ? expected : "fd", (struct reply){ .fds = 1 },
		      "the answer with an fd");
		reply(at, confused, go ? expected : "fd",
		      (struct reply){ .fds = 3, .hdr_fds_set = true, .hdr_fds = 1 },
		      "the answer announcing 1 fd, with 3");
		reply(at, confused, go ? expected : "fd",
		      (struct reply){ .hdr_fds_set = true, .hdr_fds = 1 },
		      "the answer announcing 1 fd, with none");
		/* A refusal rolls back, before GO and after. */
		reply(at, WANT_PEER, "out of room",
		      (struct reply){ .type = SEVM_MSG_ABORT, .payload = PL_ABORT }, "an ABORT");
		reply(at, WANT_PEER, "without a reason",
		      (struct reply){ .type = SEVM_MSG_ABORT, .payload = PL_ABORT_EMPTY },
		      "an empty ABORT");
		reply(at, WANT_PEER, "out of room",
		      (struct reply){ .type = SEVM_MSG_ABORT, .payload = PL_ABORT_BAD_ERR },
		      "an ABORT with a positive error");
	}
	/* PREPARED's own fields. */
	reply(P_HELLO, WANT_FORMAT, "PREPARED of 0", (struct reply){ .payload = PL_EMPTY },
	      "PREPARED of 0 bytes");
	reply(P_HELLO, WANT_FORMAT, "PREPARED of 4", (struct reply){ .payload = PL_SHORT },
	      "PREPARED of 4 bytes");
	reply(P_HELLO, WANT_FORMAT, "regions", (struct reply){ .payload = PL_REGIONS_2 },
	      "PREPARED naming 2 regions");
	reply(P_HELLO, WANT_FORMAT, "regions", (struct reply){ .payload = PL_REGIONS_MAX },
	      "PREPARED naming 2^32-1 regions");
	/* Right in content, but dead by the time GO goes. */
	c = add(P_STATE, A_CUT_EXIT, WANT_CLOSED, NULL,
		"RESTORED whole, then the receiver exits before reading GO");
	c->cut = SEVM_WIRE_HDR_LEN;
}

/* ---- The fake receiver (a process of its own) ---------------------------------- */

static uint32_t regions_in(const uint8_t *hello, size_t len)
{
	uint32_t n = 0;

	if (len >= sizeof(struct sevm__hello))
		memcpy(&n, hello + offsetof(struct sevm__hello, nr_regions), 4);
	return n;
}

/* The right answer at `at`, or the case's reply instead; its length. */
static size_t answer(const struct scase *c, enum phase at, uint32_t nr_regions, uint8_t *out,
		     bool crafted)
{
	const struct reply *r = &c->r;
	uint8_t payload[4096];
	size_t n = 0;
	struct hw_hdr h = { .magic = SEVM_WIRE_MAGIC };

	h.type = at == P_HELLO ? SEVM_MSG_PREPARED : at == P_STATE ? SEVM_MSG_RESTORED :
		 SEVM_MSG_RESUMED;
	if (at == P_HELLO) {
		uint32_t pid = (uint32_t)getpid();

		if (nr_regions > 256)
			nr_regions = 256;
		memcpy(payload, &pid, 4);
		memcpy(payload + 4, &nr_regions, 4);
		memset(payload + 8, 0, 8 * nr_regions);
		n = 8 + 8 * nr_regions;
	}
	if (!crafted)
		goto out;
	if (r->raw) {
		for (int i = 0; i < 64; i++)
			out[i] = (uint8_t)(0x5a ^ (i * 37));
		return 64;
	}
	if (r->type)
		h.type = r->type;
	if (r->magic)
		h.magic = r->magic;
	h.reserved = r->reserved;
	switch (r->payload) {
	case PL_EMPTY:
		n = 0;
		break;
	case PL_SHORT:
		n = 4;
		break;
	case PL_EXTRA:
		memset(payload + n, 0xee, 4);
		n += 4;
		break;
	case PL_REGIONS_2:
	case PL_REGIONS_MAX: {
		uint32_t v = r->payload == PL_REGIONS_2 ? 2 : U32MAX;

		memcpy(payload + 4, &v, 4);
		memset(payload + 8, 0, 16);
		n = 8 + 16;
		break;
	}
	case PL_ABORT:
	case PL_ABORT_BAD_ERR: {
		int32_t e = r->payload == PL_ABORT ? -ENOMEM : 5;

		memcpy(payload, &e, 4);
		memcpy(payload + 4, "out of room", 11);
		n = 15;
		break;
	}
	case PL_ABORT_EMPTY:
		n = 0;
		break;
	case PL_GARBAGE:
		for (size_t i = 0; i < 40; i++)
			payload[i] = (uint8_t)(i * 13 + 1);
		n = 40;
		break;
	}
out:
	h.len = (uint32_t)n;
	if (crafted && r->len)
		h.len = r->len;
	if (crafted && r->payload == PL_LONGER)
		h.len = (uint32_t)n + 100;
	h.nr_fds = (uint16_t)(!crafted ? 0 : r->hdr_fds_set ? r->hdr_fds : r->fds);
	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), payload, n);
	return sizeof(h) + n;
}

static void live_on(void)
{
	for (;;)
		pause();
}

/* At `at`: misbehave as the case says (false: it is not this case's point). */
static bool misbehave(const struct scase *c, enum phase at, int fd, uint32_t nr_regions)
{
	uint8_t out[8192];
	int nulls[4];
	unsigned int nr_nulls;
	size_t n;

	if (c->at != at)
		return false;
	switch (c->act) {
	case A_CLOSE_EXIT:
		close(fd);
		_exit(0);
	case A_CLOSE_STAY:
		close(fd);
		live_on();
		break;
	case A_SILENT:
		live_on();
		break;
	case A_CUT_EXIT:
	case A_CUT_STAY:
		n = answer(c, at, nr_regions, out, false);
		hw_send(fd, out, c->cut < n ? c->cut : n, NULL, 0, c->slow);
		close(fd);
		if (c->act == A_CUT_STAY)
			live_on();
		_exit(0);
	case A_REPLY:
		n = answer(c, at, nr_regions, out, true);
		nr_nulls = c->r.fds < 4 ? c->r.fds : 4;
		for (unsigned int i = 0; i < nr_nulls; i++)
			nulls[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		hw_send(fd, out, n, nulls, nr_nulls, c->slow);
		for (unsigned int i = 0; i < nr_nulls; i++)
			close(nulls[i]);
		/* Until the sender hangs up: it must not wait on a peer that went away. */
		hw_drain(fd);
		_exit(0);
	}
	return true;
}

static int fake_receiver(const struct scase *c, int fd)
{
	size_t cap = 4u << 20, len = 0, n;
	uint8_t *buf = malloc(cap), out[8192];
	uint32_t nr_regions;
	unsigned int nr_fds, states = 0;
	int type;

	if (c->slow)
		hw_read_chunk(1);
	misbehave(c, P_START, fd, 0);
	type = hw_recv(fd, buf, cap, &len, NULL, &nr_fds, 10000);
	if (type != SEVM_MSG_HELLO)
		return 2;
	nr_regions = regions_in(buf, len);
	if (!misbehave(c, P_HELLO, fd, nr_regions)) {
		n = answer(c, P_HELLO, nr_regions, out, false);
		hw_send(fd, out, n, NULL, 0, c->slow);
	}
	do {
		type = hw_recv(fd, buf, cap, &len, NULL, &nr_fds, 10000);
		if (type != SEVM_MSG_STATE)
			return 3;
		if (!states++)
			misbehave(c, P_STATE1, fd, nr_regions);
	} while (!hw_state_has_end(buf, len));
	if (!misbehave(c, P_STATE, fd, nr_regions)) {
		n = answer(c, P_STATE, nr_regions, out, false);
		hw_send(fd, out, n, NULL, 0, c->slow);
	}
	type = hw_recv(fd, buf, cap, &len, NULL, &nr_fds, 10000);
	if (type != SEVM_MSG_GO)
		return 4;
	if (!misbehave(c, P_GO, fd, nr_regions)) {
		n = answer(c, P_GO, nr_regions, out, false);
		hw_send(fd, out, n, NULL, 0, c->slow);
	}
	hw_drain(fd);
	free(buf);
	return 0;
}

static int helper(int argc, char **argv)
{
	unsigned int i;

	if (argc < 5 || strcmp(argv[1], "fake-receiver"))
		return -1;
	i = (unsigned int)atoi(argv[3]);
	build_cases();
	hostile_child_ready(argv);
	return i < nr_cases ? fake_receiver(&cases[i], atoi(argv[2])) : 2;
}

/* ---- The sender under test ---------------------------------------------------- */

static struct tinyvm vm;

static void run_case(unsigned int i)
{
	const struct scase *c = &cases[i];
	/* A receiver reading a byte at a time needs longer for each message. */
	struct sevm_handoff_opts opts = { .sz = sizeof(opts),
					  .timeout_ms = c->slow ? 10 * TIMEOUT_MS : TIMEOUT_MS };
	struct tinyvm_handoff_times t = { .verify_ram = true };
	struct sevm_handoff *h;
	char idx[16], msg[512];
	int sv[2], err, status, small = 4096;
	pid_t pid;

	hostile_case("%s", c->name);
	snprintf(idx, sizeof(idx), "%u", i);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* Small buffers: the sender's writes come out short. */
	if (c->slow)
		ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	pid = hostile_spawn("fake-receiver", sv[1], idx);
	close(sv[1]);
	ck_assert_int_gt(pid, 0);
	err = sevm_handoff_from_fd(sv[0], true, &opts, &h);
	if (err) {
		close(sv[0]);
	} else {
		err = tinyvm_handoff_send(&vm, h, &t);
		sevm_handoff_free(h);
	}
	snprintf(msg, sizeof(msg), "%s", err ? sevm_last_error() : "");
	if (hostile_want(err, c->want, msg) && err)
		hostile_expect(!c->has || strstr(msg, c->has), "the message does not say \"%s\": %s",
			       c->has, msg);
	if (err == -SEVM_ERR_INDOUBT || err == 0) {
		/* In doubt: paused.  Handed over: paused too, to a fake that never ran it. */
		hostile_expect(tu_stays_paused(&vm), "%s, yet the guest runs here",
			       err ? "in doubt" : "handed over");
		tinyvm_resume(&vm);
	}
	hostile_expect(tu_runs(&vm, 3), "returned %s, but the guest does not run on here "
		       "(errors %llu)", hostile_errname(err),
		       (unsigned long long)tinyvm_total_errors(&vm));
	if (c->act == A_CLOSE_STAY || c->act == A_SILENT || c->act == A_CUT_STAY)
		kill(pid, SIGKILL);
	status = tu_reap(pid, 5000);
	if (c->act != A_CLOSE_STAY && c->act != A_SILENT && c->act != A_CUT_STAY)
		hostile_expect(status == 0, "the fake receiver exited %d (it lost its place)",
			       status);
	hostile_case_end();
}

START_TEST(answers)
{
	unsigned int fails = hostile_failed();

	ck_assert_int_eq(tinyvm_create(&vm, NR_VCPUS, MEM, TINYVM_F_PIT), 0);
	ck_assert_int_eq(tinyvm_load_guest(&vm, 256), 0);
	ck_assert_int_eq(tinyvm_start(&vm), 0);
	ck_assert(tu_runs(&vm, 3));
	for (unsigned int i = 0; i < nr_cases; i++)
		run_case(i);
	tinyvm_destroy(&vm);
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

START_TEST(other_uid)
{
	hostile_other_uid_case(true, TIMEOUT_MS);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("hostile-handoff-sender");
	TCase *tc = tcase_create("real sender on KVM, fake receiver");
	int r;

	hostile_child_main(argc, argv, helper);
	tu_require_kvm();
	hostile_begin("handoff-sender");
	build_cases();
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, answers);
	tcase_add_test(tc, other_uid);
	suite_add_tcase(s, tc);
	r = tu_run(s);
	r |= !hostile_report();
	return r ? 1 : 0;
}
