/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../core/error.h"
#include "../core/seam.h"
#include "wire.h"

struct wire_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t nr_fds;
	uint32_t len;
	uint32_t reserved;
};
_Static_assert(sizeof(struct wire_hdr) == SEVM_WIRE_HDR_LEN, "wire header");

static const char *const names[SEVM_MSG__END] = {
	[SEVM_MSG_HELLO] = "HELLO", [SEVM_MSG_PREPARED] = "PREPARED",
	[SEVM_MSG_STATE] = "STATE", [SEVM_MSG_RESTORED] = "RESTORED",
	[SEVM_MSG_GO] = "GO", [SEVM_MSG_RESUMED] = "RESUMED",
	[SEVM_MSG_ABORT] = "ABORT",
};

const char *sevm__msg_name(uint16_t type)
{
	return type < SEVM_MSG__END && names[type] ? names[type] : "unknown";
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * The commit's messages (RESTORED, GO, RESUMED) answer each other within
 * microseconds, while waking a process that slept in poll() costs 40-200 us
 * on these machines: look without sleeping for a moment first.  Nowhere
 * else: while the state streams, the peer needs every CPU there is.
 */
#define SPIN_US 150

/* Wait until sock is ready for `events` or the deadline passes. */
static int wait_ready(int sock, short events, int64_t deadline, bool spin)
{
	struct pollfd p = { .fd = sock, .events = events };
	int64_t spin_end = spin ? now_us() + SPIN_US : 0;

	while (now_us() < spin_end) {
		if (poll(&p, 1, 0) > 0)
			return 0;
	}
	for (;;) {
		int64_t left = deadline - now_ms();
		int r;

		if (left < 0)
			left = 0;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

int sevm__wire_send(int sock, uint16_t type, const void *payload, size_t len,
		    const int *fds, unsigned int nr_fds, int timeout_ms)
{
	struct wire_hdr hdr = { .magic = SEVM_WIRE_MAGIC, .type = type,
				.nr_fds = (uint16_t)nr_fds, .len = (uint32_t)len };
	union {
		char buf[CMSG_SPACE(sizeof(int) * SEVM_WIRE_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = len },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	int64_t deadline = now_ms() + timeout_ms;
	size_t left = sizeof(hdr) + len;

	if (len > SEVM_WIRE_MAX_LEN || nr_fds > SEVM_WIRE_MAX_FDS)
		return sevm__fail(-E2BIG, "send %s: %zu bytes, %u fds", sevm__msg_name(type),
				  len, nr_fds);
	if (nr_fds) {
		struct cmsghdr *c;

		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nr_fds);
	}
	while (left) {
		ssize_t n = sevm__sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == -EAGAIN) {
			int r = wait_ready(sock, POLLOUT, deadline, false);
			if (r)
				return sevm__fail(r, "send %s: peer not reading", sevm__msg_name(type));
			continue;
		}
		if (n < 0)
			return sevm__context((int)n, "send %s", sevm__msg_name(type));
		/* The fds went with the first bytes; advance past what was sent. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		left -= (size_t)n;
		while (n > 0 && mh.msg_iovlen) {
			size_t step = (size_t)n < mh.msg_iov->iov_len ? (size_t)n : mh.msg_iov->iov_len;

			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + step;
			mh.msg_iov->iov_len -= step;
			n -= (ssize_t)step;
			if (!mh.msg_iov->iov_len) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

void sevm__msg_close_fds(struct sevm__msg *m)
{
	for (unsigned int i = 0; i < m->nr_fds; i++)
		sevm__close(m->fds[i]);
	m->nr_fds = 0;
}

/* Take the fds of one control message; any beyond the room left are closed. */
static int take_fds(struct sevm__msg *m, struct msghdr *mh)
{
	int err = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;
		int *fds;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, fds + i, sizeof(fd));
			if (m->nr_fds < SEVM_WIRE_MAX_FDS)
				m->fds[m->nr_fds++] = fd;
			else {
				sevm__close(fd);
				err = -SEVM_ERR_FORMAT;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		err = -SEVM_ERR_FORMAT;
	return err;
}

/* Read exactly len bytes into p, collecting fds; 0, or -errno. */
static int read_exact(int sock, struct sevm__msg *m, void *p, size_t len, int64_t deadline,
		      bool spin)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SEVM_WIRE_MAX_FDS)];
		struct cmsghdr align;
	} ctl;

	while (len) {
		struct iovec iov = { .iov_base = p, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
		ssize_t n = sevm__recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		int r;

		if (n == -EAGAIN) {
			r = wait_ready(sock, POLLIN, deadline, spin);
			if (r)
				return sevm__fail(r, "waiting for the peer");
			continue;
		}
		if (n < 0)
			return (int)n;
		r = take_fds(m, &mh);
		if (r)
			return sevm__fail(r, "more fds than a message may carry, or control data cut off (MSG_CTRUNC)");
		if (n == 0)
			return sevm__fail(-ECONNRESET, "the peer closed the connection");
		p = (char *)p + n;
		len -= (size_t)n;
	}
	return 0;
}

int sevm__wire_recv(int sock, struct sevm__msg *m, int timeout_ms, bool spin)
{
	int64_t deadline = now_ms() + timeout_ms;
	struct wire_hdr hdr;
	void *payload;
	int r;

	m->nr_fds = 0;
	sevm__buf_reset(&m->payload);
	r = read_exact(sock, m, &hdr, sizeof(hdr), deadline, spin);
	if (r)
		goto fail;
	r = -SEVM_ERR_FORMAT;
	if (hdr.magic != SEVM_WIRE_MAGIC) {
		sevm__fail(r, "not a handoff message (magic 0x%08x)", hdr.magic);
		goto fail;
	}
	if (hdr.reserved) {
		sevm__fail(r, "message header with reserved bits set");
		goto fail;
	}
	if (hdr.type == 0 || hdr.type >= SEVM_MSG__END) {
		sevm__fail(r, "unknown message type %u", hdr.type);
		goto fail;
	}
	if (hdr.len > SEVM_WIRE_MAX_LEN) {
		sevm__fail(r, "%s claims %u bytes, limit %u", sevm__msg_name(hdr.type),
			   hdr.len, SEVM_WIRE_MAX_LEN);
		goto fail;
	}
	payload = sevm__buf_grow(&m->payload, hdr.len);
	if (!payload) {
		r = sevm__fail(-ENOMEM, "%s of %u bytes", sevm__msg_name(hdr.type), hdr.len);
		goto fail;
	}
	r = read_exact(sock, m, payload, hdr.len, deadline, spin);
	if (r) {
		sevm__context(r, "%s payload", sevm__msg_name(hdr.type));
		goto fail;
	}
	if (m->nr_fds != hdr.nr_fds) {
		r = sevm__fail(-SEVM_ERR_FORMAT, "%s announced %u fds, %u arrived",
			       sevm__msg_name(hdr.type), hdr.nr_fds, m->nr_fds);
		goto fail;
	}
	m->type = hdr.type;
	return 0;
fail:
	sevm__msg_close_fds(m);
	return r;
}

void sevm__wire_abort(int sock, int err, int fd, int timeout_ms)
{
	char buf[4 + 512];
	int32_t e = err;
	size_t n = strnlen(sevm_last_error(), 511);

	memcpy(buf, &e, 4);
	memcpy(buf + 4, sevm_last_error(), n);
	buf[4 + n] = '\0';
	sevm__wire_send(sock, SEVM_MSG_ABORT, buf, 4 + n, &fd, fd >= 0, timeout_ms);
	/* A failed send must not replace the reason the caller will report. */
	sevm__set_msg(buf + 4);
}

int sevm__wire_peer_abort(const struct sevm__msg *m)
{
	int32_t e;

	if (m->type != SEVM_MSG_ABORT)
		return 0;
	if (m->payload.len < 4)
		return sevm__fail(-SEVM_ERR_PEER, "peer aborted without a reason");
	memcpy(&e, m->payload.data, 4);
	if (e >= 0 || e < -SEVM_ERR__END)
		e = -SEVM_ERR_PEER;
	return sevm__fail(-SEVM_ERR_PEER, "peer aborted: %.*s (its error %d)",
			  (int)(m->payload.len - 4 > 400 ? 400 : m->payload.len - 4),
			  (const char *)m->payload.data + 4, e);
}
