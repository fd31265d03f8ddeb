/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "abi/compat.h"
#include "core/names.h"
#include "sweep.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#else
#define HAVE_LSAN 0
#endif

/*
 * The errnos each kind of call can really return (see tries()).  An ioctl
 * into KVM: EIO (a dead VM), ENOMEM, EFAULT, EBUSY; EINTR and EAGAIN a signal
 * or a busy resource.  An SEV command may also fail in the firmware: -EIO
 * with a status.  open: ENOMEM, EACCES, EINTR.  A socket: EAGAIN (full or
 * empty, the library's sockets are non-blocking or polled), EINTR,
 * ECONNRESET (the peer died), ENOMEM.
 */
static const int ioctl_errs[] = { -EIO, -ENOMEM, -EFAULT, -EBUSY, -EINTR, -EAGAIN };	/* last two: retryable */
static const uint32_t fw_statuses[] = { SEVM_ABI_SEV_RET_INVALID_GUEST_STATE,
					SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM };
static const int open_errs[] = { -ENOMEM, -EACCES, -EINTR };
static const int sock_errs[] = { -EAGAIN, -EINTR, -ECONNRESET, -ENOMEM };

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A flow of at most this many calls is swept with every errno at every call. */
#define SHORT_FLOW 16

/* Call k of round r gets entry k + r of its set: over the rounds, every errno. */
static void choose(struct tu_call *c, void *ctx)
{
	unsigned int k = *(const unsigned int *)ctx;

	c->fw_status = 0;
	switch (c->op) {
	case TU_OP_OPEN:
		c->err = open_errs[k % N(open_errs)];
		break;
	case TU_OP_SENDMSG:
	case TU_OP_RECVMSG:
		c->err = sock_errs[k % N(sock_errs)];
		break;
	default:
		/*
		 * KVM_RUN with immediate_exit answers EINTR as its success, after
		 * it completed the last exit's instruction; faking one would skip
		 * that, which no kernel does.
		 */
		if (c->request == KVM_RUN) {
			c->err = ioctl_errs[k % (N(ioctl_errs) - 2)];
			break;
		}
		if (c->sev && k % (N(ioctl_errs) + N(fw_statuses)) >= N(ioctl_errs)) {
			c->fw_status = fw_statuses[k % (N(ioctl_errs) + N(fw_statuses)) -
						   N(ioctl_errs)];
			c->err = -EIO;
		} else {
			c->err = ioctl_errs[(c->sev ? k % (N(ioctl_errs) + N(fw_statuses)) : k) %
					    N(ioctl_errs)];
		}
	}
}

/* POSIX: EINTR is retried; a non-blocking socket's EAGAIN is waited out. */
static bool must_retry(const struct tu_call *c)
{
	if (c->err == -EINTR)
		return !(c->op == TU_OP_IOCTL && c->request == KVM_RUN);
	return c->err == -EAGAIN && (c->op == TU_OP_SENDMSG || c->op == TU_OP_RECVMSG);
}

static const char *errname(int err)
{
	const char *s;

	if (err <= -SEVM_ERR__START && err > -SEVM_ERR__END) {
		static const char *const own[] = { "SEVM_ERR_FORMAT", "SEVM_ERR_CHECKSUM",
			"SEVM_ERR_VERSION", "SEVM_ERR_FIRMWARE", "SEVM_ERR_PEER",
			"SEVM_ERR_INDOUBT", "SEVM_ERR_MOVED" };
		return own[-err - SEVM_ERR__START];
	}
	s = strerrorname_np(err < 0 ? -err : err);
	return s ? s : "?";
}

const char *sweep_call_name(const struct tu_call *c, char *buf, size_t len)
{
	const char *name;

	switch (c->op) {
	case TU_OP_OPEN:
		return "open";
	case TU_OP_CLOSE:
		return "close";
	case TU_OP_SENDMSG:
		return "sendmsg";
	case TU_OP_RECVMSG:
		return "recvmsg";
	default:
		break;
	}
	if (c->sev) {
		name = c->request == SEV_ISSUE_CMD ? sevm__sev_dev_cmd_name(c->sev_id) :
						     sevm__sev_cmd_name(c->sev_id);
		snprintf(buf, len, "%s %s", c->request == SEV_ISSUE_CMD ? "/dev/sev" : "SEV",
			 name ? name : "?");
		return buf;
	}
	name = sevm__ioctl_name(c->request);
	if (name)
		return name;
	snprintf(buf, len, "ioctl 0x%lx", c->request);
	return buf;
}

/* Whether msg says which call failed (and, for the firmware, its status). */
static bool names_call(const char *msg, const struct tu_call *c, int err)
{
	const char *name;

	/* The documented outcomes after the commit carry their own words. */
	if (err == -SEVM_ERR_INDOUBT)
		return strstr(msg, "did not confirm") || strstr(msg, "SEND_FINISH");
	switch (c->op) {
	case TU_OP_OPEN:
		return strstr(msg, "open");
	case TU_OP_SENDMSG:
		return strstr(msg, "sendmsg") || strstr(msg, "writing");
	case TU_OP_RECVMSG:
		return strstr(msg, "recvmsg") || strstr(msg, "reading");
	default:
		break;
	}
	if (c->sev) {
		name = c->request == SEV_ISSUE_CMD ? sevm__sev_dev_cmd_name(c->sev_id) :
						     sevm__sev_cmd_name(c->sev_id);
		if (!name || !strstr(msg, name))
			return false;
		return !c->fw_status || strstr(msg, sevm_fw_status_name(c->fw_status));
	}
	if (c->request == KVM_ENABLE_CAP && strstr(msg, "KVM_CAP_"))
		return true;
	name = sevm__ioctl_name(c->request);
	return name && strstr(msg, name);
}

/* ---- Findings and notes --------------------------------------------------- */

static const char *cur_flow;
static unsigned int cur_k, cur_round;
static const struct tu_call *cur_hit;
static unsigned int hard;

#define MAX_NOTES 64
static char *notes[MAX_NOTES];
static unsigned int note_count[MAX_NOTES], nr_notes;

/* The same broken promise at the same call is printed once, then counted. */
#define MAX_KINDS 64
static struct { const char *file; int line; char call[64]; unsigned int n; } kinds[MAX_KINDS];
static unsigned int nr_kinds;

static bool seen_before(const char *file, int line, const char *call)
{
	for (unsigned int i = 0; i < nr_kinds; i++)
		if (kinds[i].line == line && !strcmp(kinds[i].file, file) &&
		    !strcmp(kinds[i].call, call))
			return kinds[i].n++, true;
	if (nr_kinds < MAX_KINDS) {
		kinds[nr_kinds].file = file;
		kinds[nr_kinds].line = line;
		snprintf(kinds[nr_kinds].call, sizeof(kinds[nr_kinds].call), "%s", call);
		kinds[nr_kinds++].n = 1;
	}
	return false;
}

void sweep_finding(const char *file, int line, const char *fmt, ...)
{
	char what[512], buf[64];
	const char *call = cur_hit ? sweep_call_name(cur_hit, buf, sizeof(buf)) : "-";
	va_list ap;

	hard++;
	if (seen_before(file, line, call))
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (cur_hit)
		printf("FINDING flow=%s k=%u call=%s err=%s: %s (%s:%d; FAULT_ONLY=%s:%u:%u)\n",
		       cur_flow, cur_k, call, cur_hit->fw_status ?
		       sevm_fw_status_name(cur_hit->fw_status) : errname(cur_hit->err), what, file,
		       line, cur_flow, cur_k, cur_round);
	else
		printf("FINDING flow=%s k=%u (no call failed): %s (%s:%d)\n", cur_flow, cur_k, what,
		       file, line);
	fflush(stdout);
}

static void findings_flush(void)
{
	for (unsigned int i = 0; i < nr_kinds; i++)
		if (kinds[i].n > 1)
			printf("  the finding at %s:%d for %s: %u times in all\n", kinds[i].file,
			       kinds[i].line, kinds[i].call, kinds[i].n);
	nr_kinds = 0;
}

void sweep_note(const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	for (unsigned int i = 0; i < nr_notes; i++)
		if (!strcmp(notes[i], what)) {
			note_count[i]++;
			return;
		}
	if (nr_notes < MAX_NOTES) {
		notes[nr_notes] = strdup(what);
		note_count[nr_notes++] = 1;
	}
}

static void notes_flush(void)
{
	for (unsigned int i = 0; i < nr_notes; i++) {
		printf("  note (x%u): %s\n", note_count[i], notes[i]);
		free(notes[i]);
	}
	nr_notes = 0;
}

/* ---- The sweep -------------------------------------------------------------- */

struct tally {
	unsigned int injected, ok, failed, tolerated, unreached;
};

/* What one run with a failed call must show; the flow checks the guest. */
static void judge(const struct sweep_flow *fl, const struct tu_fault *f, int err,
		  const char *msg, struct tally *t)
{
	const struct tu_call *c = &f->hit;
	char buf[64];

	if (!f->injected) {
		t->unreached++;
		sweep_expect(err == fl->clean_result, "no call failed, yet the flow returned %d: %s",
			     err, msg);
		return;
	}
	t->injected++;
	if (err == fl->clean_result) {
		if (must_retry(c)) {
			t->ok++;
			return;
		}
		t->tolerated++;
		sweep_note("%s failing with %s did not fail the flow", sweep_call_name(c, buf,
			   sizeof(buf)), c->fw_status ? sevm_fw_status_name(c->fw_status) :
			   errname(c->err));
		return;
	}
	t->failed++;
	sweep_expect(!must_retry(c), "%s was reported (%d: %s), not retried", errname(c->err),
		     err, msg);
	sweep_expect(err < 0, "the flow returned %d", err);
	sweep_expect(msg[0], "no message for %d", err);
	sweep_expect(names_call(msg, c, err), "the message does not name the failed call: \"%s\"",
		     msg);
	if (err != c->err)
		sweep_note("%s failing with %s: returned %s", sweep_call_name(c, buf, sizeof(buf)),
			   c->fw_status ? sevm_fw_status_name(c->fw_status) : errname(c->err),
			   errname(err));
}

static void leak_check(void)
{
#if HAVE_LSAN
	sweep_expect(!__lsan_do_recoverable_leak_check(), "LeakSanitizer found a leak (above)");
#endif
}

/* FAULT_ONLY=flow:k[:round] runs that one case (a reproducer). */
static bool only(const char *name, unsigned int *k, unsigned int *round)
{
	const char *o = getenv("FAULT_ONLY");
	size_t n = strlen(name);

	if (!o || !*o)
		return false;
	if (strncmp(o, name, n) || o[n] != ':') {
		*k = 0;
		return true;
	}
	*k = (unsigned int)atoi(o + n + 1);
	o = strchr(o + n + 1, ':');
	*round = o ? (unsigned int)atoi(o + 1) : 0;
	return true;
}

static int run_once(const struct sweep_flow *fl, struct tu_fault *f, char *msg, size_t len)
{
	int err;

	fl->setup(fl->ctx);
	tu_fault_install(f);
	err = fl->run(fl->ctx);
	tu_fault_remove();
	snprintf(msg, len, "%s", sevm_last_error());
	return err;
}

/*
 * How many errnos call k is tried with: all of its set in a short flow, and
 * for a socket call or an open (few per flow, and each errno takes another
 * path: wait, retry, peer gone) in any flow; an ioctl of a long flow gets
 * one, rotated along the flow.
 */
static unsigned int tries(const struct tu_call *c, unsigned int n)
{
	switch (c->op) {
	case TU_OP_OPEN:
		return N(open_errs);
	case TU_OP_SENDMSG:
	case TU_OP_RECVMSG:
		return N(sock_errs);
	default:
		return n <= SHORT_FLOW ? N(ioctl_errs) + (c->sev ? N(fw_statuses) : 0) : 1;
	}
}

#define MAX_LOG 4096

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sweep(const struct sweep_flow *fl)
{
	static struct tu_call log[MAX_LOG];
	pid_t tid = fl->all_threads ? 0 : gettid();
	struct tu_fault count = { .ops = TU_OP_ALL & ~TU_OP_CLOSE, .tid = tid, .log = log,
				  .log_cap = MAX_LOG, .skip_would_block = true };
	struct tally t = { 0 };
	unsigned int n, one = 0, round = 0, runs = 0;
	bool trace = getenv("FAULT_TRACE");
	long long t0;
	bool single = only(fl->name, &one, &round);
	char msg[512];
	int fds = tu_count_fds(), err;

	if (single && !one)
		return;
	cur_flow = fl->name;
	cur_k = cur_round = 0;
	cur_hit = NULL;
	hard = 0;
	err = run_once(fl, &count, msg, sizeof(msg));
	sweep_expect(err == fl->clean_result, "the clean run returned %d, not %d: %s", err,
		     fl->clean_result, msg);
	fl->check(fl->ctx, err, NULL);
	sweep_expect(tu_count_fds() == fds, "%d fds before, %d after", fds, tu_count_fds());
	n = count.calls < MAX_LOG ? count.calls : MAX_LOG;
	/* Close is not swept: the seam never retries it, Linux frees the fd anyway. */
	printf("flow %s: %u calls (open %u, ioctl %u, sendmsg %u, recvmsg %u); close %u, "
	       "never failed\n", fl->name, n, count.per_op[TU_OP_INDEX(TU_OP_OPEN)],
	       count.per_op[TU_OP_INDEX(TU_OP_IOCTL)], count.per_op[TU_OP_INDEX(TU_OP_SENDMSG)],
	       count.per_op[TU_OP_INDEX(TU_OP_RECVMSG)], count.per_op[TU_OP_INDEX(TU_OP_CLOSE)]);
	fflush(stdout);
	for (unsigned int r = single ? round : 0; r < (single ? round + 1 : 8); r++) {
		for (unsigned int k = single ? one : 1; k <= (single ? one : n); k++) {
			unsigned int pick = k + r;
			struct tu_fault f = { .ops = TU_OP_ALL & ~TU_OP_CLOSE, .fail_at = k,
					      .tid = tid, .choose = choose,
					      .choose_ctx = &pick, .skip_would_block = true };

			if (!single && r >= tries(&log[k - 1], n))
				continue;
			fds = tu_count_fds();
			t0 = now_ms();
			cur_k = k;
			cur_round = r;
			cur_hit = NULL;
			err = run_once(fl, &f, msg, sizeof(msg));
			cur_hit = f.injected ? &f.hit : NULL;
			if (single) {
				char buf[64];

				printf("k=%u round %u: %s failed with %s; returned %d: %s\n", k, r,
				       cur_hit ? sweep_call_name(cur_hit, buf, sizeof(buf)) :
				       "nothing", cur_hit ? errname(cur_hit->err) : "-", err, msg);
			}
			judge(fl, &f, err, msg, &t);
			fl->check(fl->ctx, err, cur_hit);
			sweep_expect(tu_count_fds() == fds, "%d fds before, %d after", fds,
				     tu_count_fds());
			leak_check();
			if (trace) {
				char buf[64];

				printf("  k=%u round %u %s %s: %d, %lld ms\n", k, r,
				       sweep_call_name(&f.hit, buf, sizeof(buf)), errname(f.hit.err),
				       err, now_ms() - t0);
			}
			cur_hit = NULL;
			runs++;
		}
	}
	printf("FAULT flow=%s calls=%u runs=%u injected=%u ok=%u failed=%u tolerated=%u "
	       "unreached=%u findings=%u\n", fl->name, n, runs, t.injected, t.ok, t.failed,
	       t.tolerated, t.unreached, hard);
	findings_flush();
	notes_flush();
	fflush(stdout);
	ck_assert_msg(hard == 0, "flow %s: %u findings (FINDING lines above)", fl->name, hard);
}
