/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-bitmap: page bitmaps of a 1 TiB guest (2^28 pages, a 3 GiB range
 * below the PCI hole and the rest from 4 GiB), against a naive flat bit
 * array scanned bit by bit, measured in the same run.
 *
 * Patterns.  "private": an SEV guest after boot, mostly private, with a
 * 64 MiB swiotlb bounce buffer, one shared GHCB page per vCPU and scattered
 * shared runs (DMA buffers) of 1 to 256 pages.  "dirty": a sparse dirty
 * set of one pre-copy round, single pages and short runs clustered in a few
 * hot GiB.
 *
 * Iterate = every run of both kinds, from the first frame to the last;
 * GB/s of bitmap = (2^28 / 8 bytes) / time.  No /dev/kvm needed.
 *
 *   bench-bitmap [--quick]
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sevmigrate.h>

#define NPAGES		(1ull << 28)
#define LOW_PAGES	(3ull << 18)		/* 3 GiB */
#define HIGH_GFN	(1ull << 20)		/* 4 GiB */
#define BITMAP_BYTES	(NPAGES / 8)

static const struct sevm_gfn_range map[2] = {
	{ 0, LOW_PAGES },
	{ HIGH_GFN, NPAGES - LOW_PAGES },
};

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Page index 0 .. NPAGES-1 <-> gfn: the flat array has no hole. */
static uint64_t gfn_of(uint64_t i)
{
	return i < LOW_PAGES ? i : HIGH_GFN + (i - LOW_PAGES);
}

static uint64_t index_of(uint64_t gfn)
{
	return gfn < HIGH_GFN ? gfn : LOW_PAGES + (gfn - HIGH_GFN);
}

static void die(const char *what, long r)
{
	fprintf(stderr, "bench-bitmap: %s: %ld: %s\n", what, r, sevm_last_error());
	exit(1);
}

/* A span of n pages at page index i, cut at the end of the guest and at the hole. */
static void put(struct sevm_bitmap *b, uint64_t i, uint64_t n, bool set)
{
	if (i >= NPAGES)
		return;
	if (n > NPAGES - i)
		n = NPAGES - i;
	if (i < LOW_PAGES && i + n > LOW_PAGES)
		n = LOW_PAGES - i;
	int r = set ? sevm_bitmap_set(b, gfn_of(i), n) : sevm_bitmap_clear(b, gfn_of(i), n);

	if (r)
		die("set/clear", r);
}

static struct sevm_bitmap *build_private(void)
{
	struct sevm_bitmap *b = NULL;
	int r = sevm_bitmap_new(map, 2, &b);

	if (r)
		die("new", r);
	put(b, 0, LOW_PAGES, true);
	put(b, LOW_PAGES, NPAGES - LOW_PAGES, true);
	put(b, 0, 256, false);				/* BIOS area */
	put(b, 0x20000, 16384, false);			/* swiotlb, 64 MiB at 512 MiB */
	for (uint64_t v = 0; v < 64; v++)		/* GHCBs */
		put(b, 0x30000 + 0x10 * v, 1, false);
	for (int k = 0; k < 2000; k++)			/* DMA buffers */
		put(b, rnd() % NPAGES, 1 + rnd() % 256, false);
	return b;
}

static struct sevm_bitmap *build_dirty(void)
{
	struct sevm_bitmap *b = NULL;
	int r = sevm_bitmap_new(map, 2, &b);

	if (r)
		die("new", r);
	for (int h = 0; h < 4; h++) {			/* four hot GiB */
		uint64_t base = (rnd() % (NPAGES >> 18)) << 18;

		for (int k = 0; k < 25000; k++)
			put(b, base + rnd() % (1ull << 18), 1 + (rnd() % 8 == 0) * (rnd() % 16), true);
	}
	return b;
}

/* ---- the naive flat array ------------------------------------------------------ */

static uint64_t *naive_from(const struct sevm_bitmap *b)
{
	uint64_t *a = calloc(NPAGES / 64, 8), gfn = 0;
	struct sevm_gfn_range run;

	if (!a)
		die("calloc", 0);
	while (sevm_bitmap_next_run(b, gfn, true, &run) == 1) {
		for (uint64_t i = index_of(run.gfn); i < index_of(run.gfn) + run.npages; i++)
			a[i / 64] |= 1ull << (i % 64);
		gfn = run.gfn + run.npages;
	}
	return a;
}

/* Every run, bit by bit: the runs counted, as a checksum against ours. */
static uint64_t naive_iterate(const uint64_t *a)
{
	uint64_t runs = 0;
	int prev = -1;

	for (uint64_t i = 0; i < NPAGES; i++) {
		int bit = (int)((a[i / 64] >> (i % 64)) & 1);

		if (i == LOW_PAGES)
			prev = -1;		/* runs stop at the end of a range */
		runs += bit != prev;
		prev = bit;
	}
	return runs;
}

static uint64_t naive_count(const uint64_t *a)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < NPAGES; i++)
		n += (a[i / 64] >> (i % 64)) & 1;
	return n;
}

/* ---- ours ------------------------------------------------------------------------ */

/* Every run of both kinds, in order. */
static uint64_t iterate(const struct sevm_bitmap *b)
{
	uint64_t runs = 0;

	for (int ri = 0; ri < 2; ri++) {
		uint64_t gfn = map[ri].gfn, end = map[ri].gfn + map[ri].npages;
		bool want = sevm_bitmap_test(b, gfn) == 1;
		struct sevm_gfn_range run;

		while (gfn < end && sevm_bitmap_next_run(b, gfn, want, &run) == 1) {
			runs++;
			gfn = run.gfn + run.npages;
			want = !want;
		}
	}
	return runs;
}

static uint64_t count(const struct sevm_bitmap *b)
{
	return (uint64_t)sevm_bitmap_count(b, map[0].gfn, map[0].npages) +
	       (uint64_t)sevm_bitmap_count(b, map[1].gfn, map[1].npages);
}

struct row {
	const char *name;
	double build_s, query_ns, naive_query_ns, iter_s, naive_iter_s, count_s, naive_count_s;
	uint64_t runs, set;
	size_t mem;
};

static double best_of(int reps, uint64_t (*fn)(const void *), const void *arg, uint64_t *out)
{
	double best = 1e9;

	for (int k = 0; k < reps; k++) {
		double t = now();

		*out = fn(arg);
		t = now() - t;
		if (t < best)
			best = t;
	}
	return best;
}

static uint64_t iterate_v(const void *b) { return iterate(b); }
static uint64_t count_v(const void *b) { return count(b); }
static uint64_t naive_iterate_v(const void *a) { return naive_iterate(a); }
static uint64_t naive_count_v(const void *a) { return naive_count(a); }

static void measure(struct row *row, struct sevm_bitmap *(*build)(void), uint64_t nq, int reps)
{
	uint64_t *q = malloc(nq * sizeof(*q)), *a, sum = 0, check;
	struct sevm_bitmap *b;
	double t;

	t = now();
	b = build();
	row->build_s = now() - t;
	row->mem = sevm_bitmap_memory(b);
	a = naive_from(b);
	for (uint64_t k = 0; k < nq; k++)
		q[k] = gfn_of(rnd() % NPAGES);

	t = now();
	for (uint64_t k = 0; k < nq; k++)
		sum += (uint64_t)sevm_bitmap_test(b, q[k]);
	row->query_ns = (now() - t) * 1e9 / (double)nq;
	t = now();
	for (uint64_t k = 0; k < nq; k++) {
		uint64_t i = index_of(q[k]);

		check = (a[i / 64] >> (i % 64)) & 1;
		sum -= check;
	}
	row->naive_query_ns = (now() - t) * 1e9 / (double)nq;
	if (sum)
		die("point queries disagree with the flat array", (long)sum);

	row->iter_s = best_of(reps, iterate_v, b, &row->runs);
	row->naive_iter_s = best_of(reps > 1 ? 2 : 1, naive_iterate_v, a, &check);
	if (check != row->runs)
		die("run counts disagree with the flat array", (long)(check - row->runs));
	row->count_s = best_of(reps, count_v, b, &row->set);
	row->naive_count_s = best_of(1, naive_count_v, a, &check);
	if (check != row->set)
		die("counts disagree with the flat array", (long)(check - row->set));
	free(a);
	free(q);
	sevm_bitmap_free(b);
}

int main(int argc, char **argv)
{
	bool quick = argc > 1 && !strcmp(argv[1], "--quick");
	uint64_t nq = quick ? 2000000 : 20000000;
	int reps = quick ? 5 : 20;
	struct row rows[2] = { { .name = "private" }, { .name = "dirty" } };

	if (argc > 1 && !quick) {
		fprintf(stderr, "usage: bench-bitmap [--quick]\n");
		return 2;
	}
	measure(&rows[0], build_private, nq, reps);
	measure(&rows[1], build_dirty, nq, reps);

	printf("1 TiB guest, 2^28 pages, %u MiB as a flat bit array; %s\n",
	       (unsigned int)(BITMAP_BYTES >> 20), quick ? "--quick" : "full");
	printf("%-8s %10s %10s %8s %9s %12s %12s %9s %9s %11s %11s %10s\n", "pattern", "set pages",
	       "runs", "build", "query", "naive query", "iterate", "GB/s", "naive", "count",
	       "naive count", "memory");
	for (int i = 0; i < 2; i++) {
		struct row *r = &rows[i];

		printf("%-8s %10" PRIu64 " %10" PRIu64 " %6.1fms %7.1fns %10.1fns %10.3fms %9.1f "
		       "%7.0fms %9.3fms %9.0fms %8zuKiB\n",
		       r->name, r->set, r->runs, r->build_s * 1e3, r->query_ns, r->naive_query_ns,
		       r->iter_s * 1e3, BITMAP_BYTES / r->iter_s / 1e9, r->naive_iter_s * 1e3,
		       r->count_s * 1e3, r->naive_count_s * 1e3, r->mem >> 10);
	}
	printf("memory: private %.3f bits/page, dirty %.4f bits/page (flat array: 1)\n",
	       rows[0].mem * 8.0 / NPAGES, rows[1].mem * 8.0 / NPAGES);
	printf("RESULT iterate_gbps=%.1f\n", BITMAP_BYTES / rows[0].iter_s / 1e9);
	printf("RESULT speedup_vs_naive=%.0f\n", rows[0].naive_iter_s / rows[0].iter_s);
	return 0;
}
