/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Page bitmaps: the map and its chunk table, set, clear, test, count.
 * Every operation that may need new blocks reserves them first (pool.c), so
 * it either fails with nothing changed or cannot fail at all.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "bitmap.h"

int sevm__bm_find(const struct sevm_bitmap *b, uint64_t gfn)
{
	unsigned int lo = 0, hi = b->nr;

	/* The last range starting at or before gfn. */
	while (hi - lo > 1) {
		unsigned int mid = (lo + hi) / 2;

		if (b->starts[mid] <= gfn)
			lo = mid;
		else
			hi = mid;
	}
	if (gfn < b->starts[lo] || gfn - b->starts[lo] >= b->ranges[lo].npages)
		return -1;
	return (int)lo;
}

unsigned int sevm__bm_first_after(const struct sevm_bitmap *b, uint64_t gfn)
{
	unsigned int lo = 0, hi = b->nr;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;
		const struct bm_range *r = &b->ranges[mid];

		if (r->gfn + r->npages <= gfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int sevm__bm_locate(const struct sevm_bitmap *b, uint64_t gfn, uint64_t npages, const char *what,
	      unsigned int *ri)
{
	uint64_t end;
	int i;

	if (!b)
		return sevm__fail(-EINVAL, "%s: no bitmap", what);
	if (npages == 0)
		return sevm__fail(-EINVAL, "%s: gfn %#" PRIx64 ": no pages", what, gfn);
	if (__builtin_add_overflow(gfn, npages, &end))
		return sevm__fail(-ERANGE, "%s: gfn %#" PRIx64 " + %" PRIu64 " pages wraps around",
				  what, gfn, npages);
	i = sevm__bm_find(b, gfn);
	if (i < 0)
		return sevm__fail(-ERANGE, "%s: gfn %#" PRIx64 " is outside the map", what, gfn);
	*ri = (unsigned int)i;
	/* Adjacent ranges (memory slots back to back) cover a span together. */
	for (unsigned int k = (unsigned int)i;; k++) {
		uint64_t rend = b->ranges[k].gfn + b->ranges[k].npages;

		if (end <= rend)
			return 0;
		if (k + 1 == b->nr || b->ranges[k + 1].gfn != rend)
			return sevm__fail(-ERANGE, "%s: gfn %#" PRIx64 " is outside the map",
					  what, rend);
	}
}

struct sevm_bitmap *sevm__bm_alloc(const struct sevm_gfn_range *ranges, unsigned int nr)
{
	struct sevm_bitmap *b = calloc(1, sizeof(*b));
	uint64_t chunks = 0;

	if (!b)
		return NULL;
	b->nr = nr;
	b->starts = calloc(nr, sizeof(*b->starts));
	b->ranges = calloc(nr, sizeof(*b->ranges));
	if (!b->starts || !b->ranges)
		goto fail;
	for (unsigned int i = 0; i < nr; i++) {
		struct bm_range *r = &b->ranges[i];

		r->gfn = b->starts[i] = ranges[i].gfn;
		r->npages = ranges[i].npages;
		r->chunk0 = chunks;
		chunks += bm_range_chunks(r);
	}
	b->nr_chunks = chunks;
	b->chunk = calloc(chunks, sizeof(*b->chunk));	/* all BM_EMPTY */
	if (!b->chunk)
		goto fail;
	return b;
fail:
	sevm_bitmap_free(b);
	return NULL;
}

int sevm_bitmap_new(const struct sevm_gfn_range *ranges, unsigned int nr,
		    struct sevm_bitmap **out)
{
	if (!ranges || nr == 0 || !out)
		return sevm__fail(-EINVAL, "bitmap: no ranges or no result pointer");
	for (unsigned int i = 0; i < nr; i++) {
		uint64_t g = ranges[i].gfn, n = ranges[i].npages;

		if (n == 0 || n > BM_GFN_LIMIT || g > BM_GFN_LIMIT - n)
			return sevm__fail(-EINVAL, "bitmap: range %u (gfn %#" PRIx64 ", %" PRIu64
					  " pages) is empty or ends past 2^40 frames (52-bit GPA)",
					  i, g, n);
		if (i && g < ranges[i - 1].gfn + ranges[i - 1].npages)
			return sevm__fail(-EINVAL, "bitmap: range %u (gfn %#" PRIx64
					  ") is not after range %u: ranges must be sorted and disjoint",
					  i, g, i - 1);
	}
	*out = sevm__bm_alloc(ranges, nr);
	return *out ? 0 : sevm__fail(-ENOMEM, "bitmap over %u ranges", nr);
}

void sevm_bitmap_free(struct sevm_bitmap *b)
{
	if (!b)
		return;
	for (uint32_t i = 0; i < b->pool_len; i++)
		free(b->pool[i]);
	for (uint32_t i = 0; i < b->nr_spare; i++)
		free(b->spare[i]);
	free(b->pool);
	free(b->free_slots);
	free(b->spare);
	free(b->chunk);
	free(b->ranges);
	free(b->starts);
	free(b);
}

size_t sevm_bitmap_memory(const struct sevm_bitmap *b)
{
	if (!b)
		return 0;
	return sizeof(*b) + b->nr * (sizeof(*b->starts) + sizeof(*b->ranges)) +
	       b->nr_chunks * sizeof(*b->chunk) +
	       b->pool_cap * (sizeof(*b->pool) + sizeof(*b->free_slots)) +
	       b->spare_cap * sizeof(*b->spare) +
	       (b->nr_blocks + b->nr_spare) * BM_BLOCK_BYTES;
}

/* ---- words ---------------------------------------------------------------- */

unsigned int sevm__bm_classify(const uint64_t *w, uint64_t len)
{
	uint64_t nfull = len / 64, tail = len % 64;

	if (w[0] == 0) {
		for (uint64_t i = 1; i < (len + 63) / 64; i++)
			if (w[i])
				return BM_MIXED;
		return BM_EMPTY;
	}
	for (uint64_t i = 0; i < nfull; i++)
		if (w[i] != ~0ull)
			return BM_MIXED;
	if (tail && w[nfull] != ~0ull >> (64 - tail))
		return BM_MIXED;
	return BM_FULL;
}

static void bits_fill(uint64_t *w, uint64_t lo, uint64_t hi, bool set)
{
	uint64_t a = lo / 64, z = (hi - 1) / 64;
	uint64_t ma = ~0ull << (lo % 64), mz = ~0ull >> (63 - (hi - 1) % 64);

	if (a == z)
		ma &= mz;
	w[a] = set ? w[a] | ma : w[a] & ~ma;
	if (a == z)
		return;
	memset(&w[a + 1], set ? 0xff : 0, (z - a - 1) * sizeof(*w));
	w[z] = set ? w[z] | mz : w[z] & ~mz;
}

void sevm__bm_fill_block(uint64_t *w, uint64_t len, bool full)
{
	memset(w, 0, BM_BLOCK_BYTES);
	if (full)
		bits_fill(w, 0, len, true);
}

void sevm__bm_mask_tail(uint64_t *w, uint64_t len)
{
	if (len == BM_CHUNK_PAGES)
		return;
	if (len % 64)
		w[len / 64] &= ~0ull >> (64 - len % 64);
	memset(&w[(len + 63) / 64], 0, (BM_WORDS - (len + 63) / 64) * sizeof(*w));
}

/* ---- set, clear ------------------------------------------------------------ */

/* Blocks [off, off + n) of range r needs, its chunks counted once after *last. */
uint64_t sevm__bm_need(const struct sevm_bitmap *b, const struct bm_range *r, uint64_t off,
		 uint64_t n, bool set, uint64_t *last)
{
	uint64_t ends[2] = { off >> BM_CHUNK_SHIFT, (off + n - 1) >> BM_CHUNK_SHIFT };
	uint32_t opposite = set ? BM_EMPTY : BM_FULL;
	uint64_t need = 0;

	for (int k = 0; k < 2; k++) {
		uint64_t c = ends[k], base = c << BM_CHUNK_SHIFT, len = bm_chunk_len(r, c);
		uint64_t g = r->chunk0 + c;

		if (g == *last || b->chunk[g] != opposite)
			continue;
		*last = g;
		if (off > base || off + n < base + len)
			need++;
	}
	return need;
}

void sevm__bm_apply(struct sevm_bitmap *b, const struct bm_range *r, uint64_t off, uint64_t n,
	      bool set)
{
	uint32_t uniform = set ? BM_FULL : BM_EMPTY;

	for (uint64_t end = off + n; off < end;) {
		uint64_t c = off >> BM_CHUNK_SHIFT, base = c << BM_CHUNK_SHIFT;
		uint64_t len = bm_chunk_len(r, c);
		uint64_t lo = off - base, hi = end - base < len ? end - base : len;
		uint32_t *e = &b->chunk[r->chunk0 + c];

		off = base + hi;
		if (*e == uniform)
			continue;
		if (lo == 0 && hi == len) {
			if (*e >= BM_MIXED)
				sevm__bm_drop_block(b, *e);
			*e = uniform;
			continue;
		}
		if (*e < BM_MIXED) {
			uint32_t blk = sevm__bm_take_block(b);

			sevm__bm_fill_block(bm_block(b, blk), len, *e == BM_FULL);
			*e = blk;
		}
		bits_fill(bm_block(b, *e), lo, hi, set);
		if (sevm__bm_classify(bm_block(b, *e), len) == uniform) {
			sevm__bm_drop_block(b, *e);
			*e = uniform;
		}
	}
}

/* Walk [gfn, gfn + n) from range ri on (sevm__bm_locate checked it), needing or applying. */
static uint64_t span(struct sevm_bitmap *b, unsigned int ri, uint64_t gfn, uint64_t n,
		     bool set, bool apply)
{
	uint64_t need = 0, last = UINT64_MAX;

	while (n) {
		const struct bm_range *r = &b->ranges[ri++];
		uint64_t off = gfn - r->gfn, k = r->npages - off < n ? r->npages - off : n;

		if (apply)
			sevm__bm_apply(b, r, off, k, set);
		else
			need += sevm__bm_need(b, r, off, k, set, &last);
		gfn += k;
		n -= k;
	}
	return need;
}

static int set_bits(struct sevm_bitmap *b, uint64_t gfn, uint64_t npages, bool set)
{
	const char *what = set ? "bitmap set" : "bitmap clear";
	unsigned int ri;
	int r = sevm__bm_locate(b, gfn, npages, what, &ri);

	if (r)
		return r;
	r = sevm__bm_reserve(b, span(b, ri, gfn, npages, set, false));
	if (r) {
		sevm__bm_trim_spares(b);
		return sevm__context(r, "%s of gfn %#" PRIx64, what, gfn);
	}
	span(b, ri, gfn, npages, set, true);
	sevm__bm_trim_spares(b);
	return 0;
}

int sevm_bitmap_set(struct sevm_bitmap *b, uint64_t gfn, uint64_t npages)
{
	return set_bits(b, gfn, npages, true);
}

int sevm_bitmap_clear(struct sevm_bitmap *b, uint64_t gfn, uint64_t npages)
{
	return set_bits(b, gfn, npages, false);
}

/* ---- queries --------------------------------------------------------------- */

int sevm_bitmap_test(const struct sevm_bitmap *b, uint64_t gfn)
{
	const struct bm_range *r;
	uint64_t off;
	uint32_t e;
	int i;

	if (!b)
		return sevm__fail(-EINVAL, "bitmap test: no bitmap");
	i = sevm__bm_find(b, gfn);
	if (i < 0)
		return sevm__fail(-ERANGE, "bitmap test: gfn %#" PRIx64 " is outside the map", gfn);
	r = &b->ranges[i];
	off = gfn - r->gfn;
	e = b->chunk[r->chunk0 + (off >> BM_CHUNK_SHIFT)];
	if (e < BM_MIXED)
		return (int)e;
	return (int)((bm_block(b, e)[(off / 64) % BM_WORDS] >> (off % 64)) & 1);
}

static uint64_t popcount_bits(const uint64_t *w, uint64_t lo, uint64_t hi)
{
	uint64_t a = lo / 64, z = (hi - 1) / 64, n = 0;
	uint64_t ma = ~0ull << (lo % 64), mz = ~0ull >> (63 - (hi - 1) % 64);

	if (a == z)
		return (uint64_t)__builtin_popcountll(w[a] & ma & mz);
	n = (uint64_t)__builtin_popcountll(w[a] & ma) + (uint64_t)__builtin_popcountll(w[z] & mz);
	for (uint64_t i = a + 1; i < z; i++)
		n += (uint64_t)__builtin_popcountll(w[i]);
	return n;
}

int64_t sevm_bitmap_count(const struct sevm_bitmap *b, uint64_t gfn, uint64_t npages)
{
	unsigned int ri;
	uint64_t total = 0;
	int r = sevm__bm_locate(b, gfn, npages, "bitmap count", &ri);

	if (r)
		return r;
	while (npages) {
		const struct bm_range *rg = &b->ranges[ri++];
		uint64_t off = gfn - rg->gfn;
		uint64_t end = off + (rg->npages - off < npages ? rg->npages - off : npages);

		gfn += end - off;
		npages -= end - off;
		while (off < end) {
			uint64_t c = off >> BM_CHUNK_SHIFT, base = c << BM_CHUNK_SHIFT;
			uint64_t hi = end - base < BM_CHUNK_PAGES ? end - base : BM_CHUNK_PAGES;
			uint32_t e = b->chunk[rg->chunk0 + c];

			if (e == BM_FULL)
				total += hi - (off - base);
			else if (e >= BM_MIXED)
				total += popcount_bits(bm_block(b, e), off - base, hi);
			off = base + hi;
		}
	}
	return (int64_t)total;
}
