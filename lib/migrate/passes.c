/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-pass statistics, the same on both sides. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/error.h"
#include "../core/opts.h"
#include "migrate.h"

uint64_t sevm__now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void sevm__pass_begin(struct sevm__passes *p, uint64_t bytes)
{
	memset(&p->cur, 0, sizeof(p->cur));
	p->cur.sz = sizeof(p->cur);
	p->cur.iteration = p->nr;
	p->t0 = sevm__now_ns();
	p->bytes0 = bytes;
}

int sevm__pass_reserve(struct sevm__passes *p)
{
	if (p->nr == p->cap) {
		unsigned int cap = p->cap ? 2 * p->cap : 8;
		struct sevm_iteration_stats *v = realloc(p->v, cap * sizeof(*v));

		if (!v)
			return sevm__fail(-ENOMEM, "statistics of pass %u", p->nr);
		p->v = v;
		p->cap = cap;
	}
	return 0;
}

int sevm__pass_end(struct sevm__passes *p, uint64_t bytes)
{
	int err = sevm__pass_reserve(p);

	if (err)
		return err;
	p->cur.ns = sevm__now_ns() - p->t0;
	p->cur.bytes = bytes - p->bytes0;
	p->v[p->nr++] = p->cur;
	sevm__pass_begin(p, bytes);
	return 0;
}

int sevm__pass_get(const struct sevm__passes *p, unsigned int i, struct sevm_iteration_stats *st)
{
	int err = SEVM_OPTS_CHECK(st, "sevm_iteration_stats");

	if (err)
		return err;
	if (i >= p->nr)
		return sevm__fail(-ENOENT, "pass %u: %u passes so far", i, p->nr);
	sevm__report_out(st, &p->v[i], sizeof(p->v[i]));
	return 0;
}

void sevm__passes_free(struct sevm__passes *p)
{
	free(p->v);
	memset(p, 0, sizeof(*p));
}
