/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whole buffers over the benchmarks' stream sockets (see sockio.h). */
#include <sys/socket.h>
#include <unistd.h>

#include "sockio.h"
#include "sys.h"

int peer_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = PEER_WAIT_MS / 1000,
			      .tv_usec = (PEER_WAIT_MS % 1000) * 1000 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return neg_errno();
	return 0;
}

/* A socket timeout reads as EAGAIN: say what it was. */
static int io_err(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : neg_errno();
}

int write_all(int fd, const void *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? io_err() : -EPIPE;
		p = (const char *)p + n;
		len -= (size_t)n;
	}
	return 0;
}

int read_all(int fd, void *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? io_err() : -ECONNRESET;
		p = (char *)p + n;
		len -= (size_t)n;
	}
	return 0;
}
