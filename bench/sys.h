/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every benchmark here asks of the system: the host-wide clock, a
 * sleep, and the error of a call that failed.  Inline, so that the seam
 * tracer's hot path pays for nothing but the clock read.
 */
#ifndef BENCH_SYS_H
#define BENCH_SYS_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC is host-wide: two processes' stamps compare. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * -errno of the call that just failed.  Never 0: clang's analyzer does not
 * know that a failed call sets errno, and would follow a "failure" that
 * returns 0 into outputs the call never wrote.  The test is on the negated
 * value itself, read once: the analyzer neither takes two reads of errno
 * for one value nor carries "e != 0" over to "-e != 0".
 */
static inline int neg_errno(void)
{
	int e = -errno;

	return e < 0 ? e : -EIO;
}

#endif
