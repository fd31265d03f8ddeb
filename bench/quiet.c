/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Waiting for a quiet machine (see quiet.h). */
#include <stdio.h>

#include "quiet.h"
#include "sys.h"

static struct {
	unsigned int per_run_ms;	/* longest wait before one run */
	uint64_t budget_ms;		/* longest wait in all */
	uint64_t waited_ms;
	unsigned int busy;		/* runs whose wait ran out */
} gate;

void quiet_set(unsigned int per_run_ms, uint64_t budget_ms)
{
	gate.per_run_ms = per_run_ms;
	gate.budget_ms = budget_ms;
	gate.waited_ms = 0;
}

unsigned int quiet_busy_runs(void)
{
	return gate.busy;
}

uint64_t quiet_waited_ms(void)
{
	return gate.waited_ms;
}

/* Jiffies of the whole machine: busy (steal included: we could not run) and all. */
static bool cpu_jiffies(uint64_t *busy, uint64_t *all)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "re");
	int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) : 0;

	if (f)
		fclose(f);
	if (n < 8)
		return false;
	*busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
	*all = *busy + v[3] + v[4];
	return true;
}

static double idle_over(unsigned int ms)
{
	uint64_t b0, a0, b1, a1;

	if (!cpu_jiffies(&b0, &a0))
		return 1;
	sleep_ns(ms * 1000000ull);
	if (!cpu_jiffies(&b1, &a1) || a1 == a0)
		return 1;
	return 1 - (double)(b1 - b0) / (double)(a1 - a0);
}

bool wait_quiet(void)
{
	for (unsigned int waited = 0;; waited += QUIET_WINDOW_MS) {
		if (idle_over(QUIET_WINDOW_MS) >= QUIET_IDLE)
			return true;
		if (waited >= gate.per_run_ms || gate.waited_ms >= gate.budget_ms) {
			gate.busy++;
			return false;
		}
		gate.waited_ms += QUIET_WINDOW_MS;
	}
}
