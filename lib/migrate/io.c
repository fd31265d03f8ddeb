/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The stream's channel: a socket through the seam (so that the fault
 * injector and hostile-peer tests reach it), any other fd with read/write,
 * or the VMM's own callbacks.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../core/error.h"
#include "../core/seam.h"
#include "migrate.h"

int sevm__mio_init(struct sevm__mio *m, int fd, const struct sevm_io *io, int timeout_ms)
{
	struct stat st;

	*m = (struct sevm__mio){ .fd = fd, .timeout_ms = timeout_ms < 0 ? 0 : timeout_ms };
	if (fd < 0) {
		if (!io || io->sz < sizeof(*io) || !io->read || !io->write)
			return sevm__fail(-EINVAL, "stream: no fd and no complete struct sevm_io");
		m->io = *io;
		return 0;
	}
	if (fstat(fd, &st) < 0)
		return sevm__fail(-errno, "stream fd %d", fd);
	m->sock = S_ISSOCK(st.st_mode);
	return 0;
}

/*
 * Before every read and write of an fd: a silent peer costs at most the
 * timeout, and a non-blocking fd does not spin.
 */
static int wait_fd(const struct sevm__mio *m, short events)
{
	struct pollfd p = { .fd = m->fd, .events = events };
	int n;

	do
		n = poll(&p, 1, m->timeout_ms ? m->timeout_ms : -1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

/*
 * A pipe whose reader is gone raises SIGPIPE, which would kill the VMM:
 * block it for this thread around the write and take a pending one back.
 */
static ssize_t write_nosignal(int fd, const struct iovec *v, int nv)
{
	static const struct timespec now = { 0 };
	sigset_t pipe, old;
	ssize_t n;
	int err;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &old);
	n = writev(fd, v, nv);
	err = errno;
	if (n < 0 && err == EPIPE && !sigismember(&old, SIGPIPE))
		sigtimedwait(&pipe, NULL, &now);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return n < 0 ? -err : n;
}

/* One write of the pieces (the callback takes the first only); the bytes taken. */
static ssize_t put(struct sevm__mio *m, struct iovec *v, int nv)
{
	struct msghdr h = { .msg_iov = v, .msg_iovlen = (size_t)nv };

	if (m->fd < 0)
		return m->io.write(m->io.ctx, v[0].iov_base, v[0].iov_len);
	/* With a timeout, a full socket buffer must come back as EAGAIN to the poll. */
	if (m->sock)
		return sevm__sendmsg(m->fd, &h, MSG_NOSIGNAL | (m->timeout_ms ? MSG_DONTWAIT : 0));
	return write_nosignal(m->fd, v, nv);
}

static size_t total(const struct iovec *v, int nv)
{
	size_t n = 0;

	for (int i = 0; i < nv; i++)
		n += v[i].iov_len;
	return n;
}

int sevm__mio_write(struct sevm__mio *m, const void *buf, size_t len)
{
	struct iovec v = { .iov_base = (void *)buf, .iov_len = len };

	return sevm__mio_writev(m, &v, 1);
}

int sevm__mio_writev(struct sevm__mio *m, struct iovec *v, int nv)
{
	size_t len = total(v, nv);

	/* Empty pieces first out, so that v[0] is always something to write. */
	while (nv && !v[0].iov_len) {
		v++;
		nv--;
	}
	while (len && nv) {
		ssize_t n;

		if (m->fd >= 0 && m->timeout_ms) {
			int r = wait_fd(m, POLLOUT);

			if (r)
				return sevm__fail(r, "stream: waiting %d ms to write at byte %llu",
						  m->timeout_ms, (unsigned long long)m->bytes);
		}
		n = put(m, v, nv);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN && m->fd >= 0) {
			int r = wait_fd(m, POLLOUT);

			if (r)
				return sevm__fail(r, "stream: waiting to write");
			continue;
		}
		if (n < 0)
			return sevm__fail((int)n, "stream: writing at byte %llu%s",
					  (unsigned long long)m->bytes,
					  n == -EPIPE || n == -ECONNRESET ? " (the receiver is gone)" : "");
		if (n == 0 || (size_t)n > (m->fd < 0 ? v[0].iov_len : len))
			return sevm__fail(n ? -EPROTO : -EPIPE, "stream: the channel took %zd of %zu "
					  "bytes at byte %llu", n, len, (unsigned long long)m->bytes);
		len -= (size_t)n;
		m->bytes += (uint64_t)n;
		while (nv && (size_t)n >= v[0].iov_len) {
			n -= (ssize_t)v[0].iov_len;
			v++;
			nv--;
		}
		if (nv) {
			v[0].iov_base = (uint8_t *)v[0].iov_base + n;
			v[0].iov_len -= (size_t)n;
		}
	}
	return 0;
}

static ssize_t get(struct sevm__mio *m, void *buf, size_t len)
{
	struct iovec v = { .iov_base = buf, .iov_len = len };
	struct msghdr h = { .msg_iov = &v, .msg_iovlen = 1 };
	ssize_t n;

	if (m->fd < 0)
		return m->io.read(m->io.ctx, buf, len);
	if (m->sock)
		return sevm__recvmsg(m->fd, &h, 0);
	n = read(m->fd, buf, len);
	return n < 0 ? -errno : n;
}

ssize_t sevm__mio_read(struct sevm__mio *m, void *buf, size_t len)
{
	for (;;) {
		ssize_t n;

		if (m->fd >= 0 && m->timeout_ms) {
			int r = wait_fd(m, POLLIN);

			if (r)
				return sevm__fail(r, "stream: nothing from the peer for %d ms at byte "
						  "%llu", m->timeout_ms, (unsigned long long)m->bytes);
		}
		n = get(m, buf, len);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN && m->fd >= 0) {
			int r = wait_fd(m, POLLIN);

			if (r)
				return sevm__fail(r, "stream: waiting to read");
			continue;
		}
		if (n < 0)
			return sevm__fail((int)n, "stream: reading at byte %llu",
					  (unsigned long long)m->bytes);
		if ((size_t)n > len)
			return sevm__fail(-EPROTO, "stream: the channel gave %zd bytes for %zu",
					  n, len);
		m->bytes += (uint64_t)n;
		return n;
	}
}
