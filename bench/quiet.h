/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Waiting for a quiet machine.  Other sessions build and test on this
 * 2-CPU machine, so each measured run starts when the CPUs were at least
 * QUIET_IDLE idle over QUIET_WINDOW_MS, or when its wait ran out (per run,
 * or in all): the run then counts as started busy.
 */
#ifndef BENCH_QUIET_H
#define BENCH_QUIET_H

#include <stdbool.h>
#include <stdint.h>

#define QUIET_WINDOW_MS	50
#define QUIET_IDLE	0.75

/* The longest wait before one run and in all; forgets what was waited so far. */
void quiet_set(unsigned int per_run_ms, uint64_t budget_ms);
/* false: the wait ran out and the machine was still busy. */
bool wait_quiet(void);
unsigned int quiet_busy_runs(void);
uint64_t quiet_waited_ms(void);

#endif
