/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Whole buffers over the benchmarks' stream sockets.  A wait on a peer is
 * bounded by the socket, not by the call: peer_timeouts() sets it once on
 * an end, and every blocking read or write there then fails with
 * -ETIMEDOUT instead of hanging when the peer hangs.  The calls themselves
 * are plain blocking read() and send(), so a baseline that is measured
 * through them pays for nothing else.
 */
#ifndef BENCH_SOCKIO_H
#define BENCH_SOCKIO_H

#include <stddef.h>

/* Each wait on a peer: a 1 TiB memory slot takes 6 s to set, and 256 vCPUs seconds to build. */
#define PEER_WAIT_MS	120000

/* Every read and write on fd waits at most PEER_WAIT_MS: 0 or -errno. */
int peer_timeouts(int fd);

/* Send all of p (no SIGPIPE), retrying EINTR: 0 or -errno (-ETIMEDOUT, -EPIPE). */
int write_all(int fd, const void *p, size_t len);

/* Read exactly len bytes: 0 or -errno (-ETIMEDOUT, -ECONNRESET at the peer's end). */
int read_all(int fd, void *p, size_t len);

#endif
