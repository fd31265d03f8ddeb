/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "handoff/wire.h"
#include "hostile.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#else
#define HAVE_LSAN 0
#endif

/* ---- Cases ---------------------------------------------------------------- */

static const char *surface;
static unsigned int nr_cases, nr_passed;
static char cur[256];
static bool cur_ok;
static int cur_fds;
static bool trace;
static char cur_result[600];	/* for HOSTILE_TRACE: what the case returned */

void hostile_begin(const char *name)
{
	surface = name;
	trace = getenv("HOSTILE_TRACE");
	/* A peer that closed must give EPIPE, not a signal that kills the test. */
	signal(SIGPIPE, SIG_IGN);
}

void hostile_case(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cur, sizeof(cur), fmt, ap);
	va_end(ap);
	cur_ok = true;
	cur_result[0] = '\0';
	cur_fds = tu_count_fds();
	nr_cases++;
}

void hostile_fail(const char *file, int line, const char *fmt, ...)
{
	char what[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	cur_ok = false;
	printf("HOSTILE-FAIL surface=%s case=\"%s\": %s (%s:%d)\n", surface, cur, what, file, line);
	fflush(stdout);
}

bool hostile_case_end(void)
{
	int fds = tu_count_fds();

	hostile_expect(fds == cur_fds, "%d fds open before the case, %d after", cur_fds, fds);
#if HAVE_LSAN
	hostile_expect(!__lsan_do_recoverable_leak_check(), "LeakSanitizer found a leak (above)");
#endif
	if (cur_ok)
		nr_passed++;
	if (trace)
		printf("  %s: %s -> %s\n", cur_ok ? "ok  " : "FAIL", cur, cur_result);
	return cur_ok;
}

bool hostile_report(void)
{
	printf("HOSTILE surface=%s cases=%u passed=%u\n", surface, nr_cases, nr_passed);
	fflush(stdout);
	return nr_cases && nr_passed == nr_cases;
}

unsigned int hostile_failed(void)
{
	return nr_cases - nr_passed;
}

unsigned int hostile_class(int err)
{
	switch (err) {
	case 0:
		return WANT_OK;
	case -ECONNRESET:
	case -EPIPE:
		return WANT_CLOSED;
	case -ETIMEDOUT:
		return WANT_TIMEDOUT;
	case -SEVM_ERR_FORMAT:
		return WANT_FORMAT;
	case -SEVM_ERR_CHECKSUM:
		return WANT_CHECKSUM;
	case -SEVM_ERR_VERSION:
		return WANT_VERSION;
	case -SEVM_ERR_PEER:
		return WANT_PEER;
	case -SEVM_ERR_INDOUBT:
		return WANT_INDOUBT;
	case -EPERM:
		return WANT_PERM;
	default:
		return WANT_OTHER;
	}
}

const char *hostile_errname(int err)
{
	static __thread char buf[64];
	const char *s;

	if (err == 0)
		return "0";
	if (err <= -SEVM_ERR__START && err > -SEVM_ERR__END) {
		snprintf(buf, sizeof(buf), "%d (%s)", err, sevm_strerror(err));
		return buf;
	}
	s = err < 0 ? strerrorname_np(-err) : NULL;
	snprintf(buf, sizeof(buf), "%d (%s)", err, s ? s : "?");
	return buf;
}

bool hostile_want_(int err, unsigned int want, const char *msg, const char *file, int line)
{
	snprintf(cur_result, sizeof(cur_result), "%s %s", hostile_errname(err), msg ? msg : "");
	if (!(hostile_class(err) & want)) {
		hostile_fail(file, line, "returned %s, not what the case expects (0x%x): %s",
			     hostile_errname(err), want, msg);
		return false;
	}
	/* Every failure says what was wrong. */
	if (err && !(msg && msg[0]))
		hostile_fail(file, line, "returned %s without a message", hostile_errname(err));
	return true;
}

/* ---- Processes -------------------------------------------------------------- */

int64_t hostile_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The helper: become uid 65534, make a socketpair, pass one end back on fd. */
static int other_uid_pair(int fd)
{
	int sv[2];

	if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
		return 1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 1;
	return tu_send_fd(fd, sv[0]) ? 1 : 0;
}

void hostile_child_main(int argc, char **argv, int (*own)(int argc, char **argv))
{
	int r;

	if (argc >= 5 && !strcmp(argv[1], "other-uid-pair")) {
		hostile_child_ready(argv);
		_exit(other_uid_pair(atoi(argv[2])));
	}
	if (own && (r = own(argc, argv)) >= 0)
		_exit(r);
}

pid_t hostile_spawn(const char *mode, int fd, const char *arg)
{
	int ready[2];
	char c;
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		char num[16], rd[16];

		snprintf(num, sizeof(num), "%d", dup(fd));
		snprintf(rd, sizeof(rd), "%d", dup(ready[1]));
		execl("/proc/self/exe", "hostile-helper", mode, num, arg ? arg : "-", rd,
		      (char *)NULL);
		_exit(127);
	}
	close(ready[1]);
	if (pid > 0 && read(ready[0], &c, 1) != 1) {
		tu_reap(pid, 1000);
		pid = -1;
	}
	close(ready[0]);
	return pid;
}

void hostile_child_ready(char **argv)
{
	int fd = atoi(argv[4]);

	if (write(fd, "r", 1) != 1)
		_exit(126);
	close(fd);
}

/*
 * A connected UNIX stream socket whose peer is uid 65534: a helper process
 * drops to that uid, makes a socketpair and passes one end back, so that
 * SO_PEERCRED names uid 65534.  -1 when this process cannot change uid.
 */
static int other_uid_socket(void)
{
	int sv[2], fd;
	pid_t pid;

	if (geteuid() != 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	pid = hostile_spawn("other-uid-pair", sv[1], NULL);
	close(sv[1]);
	fd = pid > 0 ? tu_recv_fd(sv[0]) : -1;
	close(sv[0]);
	if (pid > 0 && tu_reap(pid, 5000) != 0 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

void hostile_other_uid_case(bool sender, int timeout_ms)
{
	struct sevm_handoff_opts opts = { .sz = sizeof(opts), .timeout_ms = timeout_ms };
	const char *peer = sender ? "receiver" : "sender";
	struct sevm_handoff *h = (void *)1;
	int fd, err;

	if (geteuid() != 0) {
		printf("SKIP case \"a %s of uid 65534\": needs root to change uid\n", peer);
		return;
	}
	hostile_case("a %s of uid 65534 (SO_PEERCRED): refused, the socket stays ours", peer);
	fd = other_uid_socket();
	hostile_expect(fd >= 0, "no socket from a uid 65534 process");
	if (fd >= 0) {
		err = sevm_handoff_from_fd(fd, sender, &opts, &h);
		if (hostile_want(err, WANT_PERM, sevm_last_error()))
			hostile_expect(strstr(sevm_last_error(), "uid 65534"), "the message does not "
				       "name the uid: %s", sevm_last_error());
		hostile_expect(!h, "refused, yet a handle");
		hostile_expect(fcntl(fd, F_GETFD) >= 0, "the socket was closed on failure");
		close(fd);
	}
	ck_assert(hostile_case_end());
}

/* ---- The handoff wire, raw ---------------------------------------------------- */

static size_t read_chunk;

void hw_read_chunk(size_t n)
{
	read_chunk = n;
}

static int wait_in(int sock, int64_t deadline)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	int64_t left = deadline - hostile_now_ms();
	int r;

	do
		r = poll(&p, 1, left < 0 ? 0 : (int)left);
	while (r < 0 && errno == EINTR);
	return r > 0 ? 0 : r == 0 ? -ETIMEDOUT : -errno;
}

/* Read exactly n bytes (p NULL: discard), keeping (keep) or closing the fds that come along. */
static int read_n(int sock, void *p, size_t n, int *keep, unsigned int *nr_fds, int64_t deadline)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SEVM_WIRE_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	char sink[4096];

	while (n) {
		struct iovec iov = { .iov_base = p ? p : sink,
				     .iov_len = p ? n : (n < sizeof(sink) ? n : sizeof(sink)) };
		if (read_chunk && iov.iov_len > read_chunk)
			iov.iov_len = read_chunk;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		ssize_t got;
		int r = wait_in(sock, deadline);

		if (r)
			return r;
		got = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got < 0)
			return -errno;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
				if (keep && nr_fds && *nr_fds < TAPE_MAX_FDS)
					keep[*nr_fds] = fd;
				else
					close(fd);
				if (nr_fds)
					++*nr_fds;
			}
		}
		if (got == 0)
			return -ECONNRESET;
		if (p)
			p = (char *)p + got;
		n -= (size_t)got;
	}
	return 0;
}

int hw_recv(int sock, void *payload, size_t cap, size_t *len, int *fds, unsigned int *nr_fds,
	    int timeout_ms)
{
	int64_t deadline = hostile_now_ms() + timeout_ms;
	unsigned int n = 0;
	struct hw_hdr h;
	size_t keep;
	int r;

	if (!nr_fds)
		nr_fds = &n;
	*nr_fds = 0;
	r = read_n(sock, &h, sizeof(h), fds, nr_fds, deadline);
	if (r)
		return r;
	if (h.magic != SEVM_WIRE_MAGIC || h.len > SEVM_WIRE_MAX_LEN)
		return -EPROTO;
	keep = h.len < cap ? h.len : cap;
	r = read_n(sock, payload, keep, fds, nr_fds, deadline);
	if (!r)
		r = read_n(sock, NULL, h.len - keep, fds, nr_fds, deadline);
	if (r)
		return r;
	if (len)
		*len = h.len;
	return h.type;
}

int hw_send(int sock, const void *p, size_t n, const int *fds, unsigned int nr_fds, size_t chunk)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * TAPE_MAX_FDS)];
		struct cmsghdr align;
	} ctl;

	while (n) {
		struct iovec iov = { .iov_base = (void *)p,
				     .iov_len = chunk && chunk < n ? chunk : n };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t got;

		if (nr_fds) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nr_fds);
		}
		got = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		nr_fds = 0;
		p = (const char *)p + got;
		n -= (size_t)got;
	}
	return 0;
}

int hw_send_msg(int sock, uint16_t type, const void *payload, uint32_t len, const int *fds,
		unsigned int n, size_t chunk)
{
	struct tape t = { 0 };
	int r;

	/* The header counts n fds; they ride with the first write. */
	tape_msg(&t, type, payload, len, NULL, n);
	r = hw_send(sock, t.b, t.len, fds, n, chunk);
	tape_free(&t);
	return r;
}

void hw_drain(int sock)
{
	int64_t deadline = hostile_now_ms() + 30000;

	while (read_n(sock, NULL, 1, NULL, NULL, deadline) == 0)
		;
}

bool hw_state_has_end(const uint8_t *p, size_t len)
{
	for (size_t off = 0; off + 24 <= len;) {
		uint32_t id;
		uint64_t n;

		memcpy(&id, p + off, 4);
		memcpy(&n, p + off + 16, 8);
		if (id == 0xffff)
			return true;
		if (n > len)
			return false;
		off += 24 + ((n + 7) & ~7ull);
	}
	return false;
}

/* ---- Tapes -------------------------------------------------------------------- */

void tape_free(struct tape *t)
{
	free(t->b);
	free(t->att);
	memset(t, 0, sizeof(*t));
}

static void *reserve(struct tape *t, size_t n)
{
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;

		while (cap < t->len + n)
			cap *= 2;
		t->b = realloc(t->b, cap);
		if (!t->b)
			abort();
		t->cap = cap;
	}
	t->len += n;
	return t->b + t->len - n;
}

void tape_bytes(struct tape *t, const void *p, size_t n)
{
	if (n)
		memcpy(reserve(t, n), p, n);
}

void tape_attach(struct tape *t, size_t at, const int *fds, unsigned int n)
{
	struct tape_att *a;

	t->att = realloc(t->att, (t->nr_att + 1) * sizeof(*t->att));
	if (!t->att || n > TAPE_MAX_FDS)
		abort();
	a = &t->att[t->nr_att++];
	a->at = at;
	a->n = n;
	memcpy(a->fds, fds, n * sizeof(int));
}

size_t tape_msg(struct tape *t, uint16_t type, const void *payload, uint32_t len,
		const int *fds, unsigned int n)
{
	struct hw_hdr h = { .magic = SEVM_WIRE_MAGIC, .type = type, .nr_fds = (uint16_t)n,
			    .len = len };
	size_t at = t->len;

	tape_bytes(t, &h, sizeof(h));
	tape_bytes(t, payload, len);
	if (fds && n)
		tape_attach(t, at, fds, n);
	if (t->nr_msg < TAPE_MAX_MARKS)
		t->msg[t->nr_msg++] = (struct tape_mark){ .at = at, .type = type };
	return at;
}

void tape_wait(struct tape *t, uint16_t type)
{
	if (t->nr_wait == TAPE_MAX_MARKS)
		abort();
	t->wait[t->nr_wait++] = (struct tape_mark){ .at = t->len, .type = type };
}

void tape_truncate(struct tape *t, size_t len)
{
	unsigned int k = 0;

	if (len > t->len)
		return;
	t->len = len;
	for (unsigned int i = 0; i < t->nr_att; i++)
		if (t->att[i].at < len)
			t->att[k++] = t->att[i];
	t->nr_att = k;
	k = 0;
	for (unsigned int i = 0; i < t->nr_wait; i++)
		if (t->wait[i].at <= len)
			t->wait[k++] = t->wait[i];
	t->nr_wait = k;
	k = 0;
	for (unsigned int i = 0; i < t->nr_msg; i++)
		if (t->msg[i].at < len)
			t->msg[k++] = t->msg[i];
	t->nr_msg = k;
}

void tape_append(struct tape *t, const struct tape *src, size_t from)
{
	size_t shift = t->len;

	if (from > src->len)
		return;
	tape_bytes(t, src->b + from, src->len - from);
	for (unsigned int i = 0; i < src->nr_att; i++)
		if (src->att[i].at >= from)
			tape_attach(t, src->att[i].at - from + shift, src->att[i].fds, src->att[i].n);
	for (unsigned int i = 0; i < src->nr_wait && t->nr_wait < TAPE_MAX_MARKS; i++)
		if (src->wait[i].at >= from)
			t->wait[t->nr_wait++] = (struct tape_mark){
				.at = src->wait[i].at - from + shift, .type = src->wait[i].type };
	for (unsigned int i = 0; i < src->nr_msg && t->nr_msg < TAPE_MAX_MARKS; i++)
		if (src->msg[i].at >= from)
			t->msg[t->nr_msg++] = (struct tape_mark){
				.at = src->msg[i].at - from + shift, .type = src->msg[i].type };
}

void tape_poke(struct tape *t, size_t at, uint64_t v, unsigned int size)
{
	if (at + size > t->len)
		abort();
	memcpy(t->b + at, &v, size);	/* little-endian host, as the formats */
}

uint64_t tape_peek(const struct tape *t, size_t at, unsigned int size)
{
	uint64_t v = 0;

	if (at + size > t->len)
		abort();
	memcpy(&v, t->b + at, size);
	return v;
}

/* ---- Playing a tape ------------------------------------------------------------ */

static const struct tape_att *att_at(const struct tape *t, size_t at)
{
	for (unsigned int i = 0; i < t->nr_att; i++)
		if (t->att[i].at == at)
			return &t->att[i];
	return NULL;
}

/* The first mark after pos (SIZE_MAX: none). */
static size_t next_att(const struct tape *t, size_t pos)
{
	size_t next = SIZE_MAX;

	for (unsigned int i = 0; i < t->nr_att; i++)
		if (t->att[i].at > pos && t->att[i].at < next)
			next = t->att[i].at;
	return next;
}

static int play(struct feed *f)
{
	const struct tape *t = f->t;
	bool whole = f->cut == SIZE_MAX;
	size_t end = whole || f->cut > t->len ? t->len : f->cut, pos = 0;
	unsigned int wi = 0;

	for (;;) {
		const struct tape_att *a;
		size_t next;
		int r;

		for (; wi < t->nr_wait && t->wait[wi].at <= pos && (pos < end || whole); wi++) {
			r = hw_recv(f->sock, NULL, 0, NULL, NULL, NULL, f->wait_ms ? f->wait_ms : 10000);
			if (r != t->wait[wi].type) {
				f->got = r > 0 ? (uint16_t)r : 0;
				return r < 0 ? r : -EPROTO;
			}
		}
		if (pos >= end)
			return 0;
		next = end;
		if (wi < t->nr_wait && t->wait[wi].at < next)
			next = t->wait[wi].at;
		if (next_att(t, pos) < next)
			next = next_att(t, pos);
		if (f->chunk && next - pos > f->chunk)
			next = pos + f->chunk;
		a = att_at(t, pos);
		r = hw_send(f->sock, t->b + pos, next - pos, a ? a->fds : NULL, a ? a->n : 0, 0);
		if (r)
			return r;
		pos = next;
	}
}

void feed_run(struct feed *f)
{
	f->err = play(f);
	if (f->stall && !f->err)
		hw_drain(f->sock);
	close(f->sock);
}

static void *feed_thread(void *arg)
{
	feed_run(arg);
	return NULL;
}

void feed_start(struct feed *f)
{
	f->err = 0;
	f->got = 0;
	if (pthread_create(&f->thread, NULL, feed_thread, f))
		abort();
}

void feed_join(struct feed *f)
{
	pthread_join(f->thread, NULL);
}
