/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Walking and combining page bitmaps: runs skip EMPTY and FULL chunks whole
 * and scan MIXED blocks a word at a time; merges work chunk by chunk with
 * the uniform cases needing no words at all.
 */
#include <errno.h>
#include <string.h>

#include "../core/error.h"
#include "bitmap.h"

/* The first page at or after off in range r whose bit is `want`, or r->npages. */
static uint64_t find_bit(const struct sevm_bitmap *b, const struct bm_range *r, uint64_t off,
			 bool want)
{
	const uint32_t *tab = b->chunk + r->chunk0;
	uint64_t nch = bm_range_chunks(r), flip = want ? 0 : ~0ull;
	uint32_t skip = want ? BM_EMPTY : BM_FULL;

	for (uint64_t c = off >> BM_CHUNK_SHIFT; c < nch; c++, off = c << BM_CHUNK_SHIFT) {
		uint32_t e = tab[c];
		const uint64_t *w;
		unsigned int i;
		uint64_t x;

		if (e == skip)
			continue;
		if (e < BM_MIXED)
			return off;
		w = bm_block(b, e);
		i = (unsigned int)(off / 64) % BM_WORDS;
		x = (w[i] ^ flip) & (~0ull << (off % 64));
		while (!x) {
			if (++i == BM_WORDS)
				break;
			/* Four words a test: the loop runs at memory speed. */
			while (i + 4 <= BM_WORDS &&
			       ((w[i] ^ flip) | (w[i + 1] ^ flip) | (w[i + 2] ^ flip) |
				(w[i + 3] ^ flip)) == 0)
				i += 4;
			if (i == BM_WORDS)
				break;
			x = w[i] ^ flip;
		}
		if (x) {
			/* Past a short last chunk the bits are 0: as clear pages they end here. */
			uint64_t p = (c << BM_CHUNK_SHIFT) + i * 64u + (uint64_t)__builtin_ctzll(x);

			return p < r->npages ? p : r->npages;
		}
	}
	return r->npages;
}

int sevm_bitmap_next_run(const struct sevm_bitmap *b, uint64_t gfn, bool set,
			 struct sevm_gfn_range *run)
{
	if (!b || !run)
		return sevm__fail(-EINVAL, "bitmap next run: no bitmap or no result");
	for (unsigned int i = sevm__bm_first_after(b, gfn); i < b->nr; i++) {
		const struct bm_range *r = &b->ranges[i];
		uint64_t off = gfn > r->gfn ? gfn - r->gfn : 0;
		uint64_t s = find_bit(b, r, off, set);

		if (s < r->npages) {
			run->gfn = r->gfn + s;
			run->npages = find_bit(b, r, s, !set) - s;
			return 1;
		}
	}
	return 0;
}

/* ---- merge ----------------------------------------------------------------- */

/* Whether op on a dst chunk in state d with a src chunk in state s needs a new block. */
static bool merge_needs_block(enum sevm_bitmap_op op, uint32_t d, uint32_t s)
{
	if (s < BM_MIXED || d >= BM_MIXED)
		return false;
	switch (op) {
	case SEVM_BITMAP_OR:
		return d == BM_EMPTY;
	case SEVM_BITMAP_AND:
	case SEVM_BITMAP_ANDNOT:
		return d == BM_FULL;
	default:
		return true;
	}
}

static void set_uniform(struct sevm_bitmap *b, uint32_t *e, uint32_t u)
{
	if (*e >= BM_MIXED)
		sevm__bm_drop_block(b, *e);
	*e = u;
}

static void merge_chunk(struct sevm_bitmap *b, uint32_t *e, const uint64_t *sw, uint32_t s,
			uint64_t len, enum sevm_bitmap_op op)
{
	uint64_t *w;
	unsigned int k;

	/* The uniform source cases. */
	if (s < BM_MIXED) {
		if ((op == SEVM_BITMAP_OR && s == BM_FULL) || op == SEVM_BITMAP_COPY)
			set_uniform(b, e, s);
		else if ((op == SEVM_BITMAP_AND && s == BM_EMPTY) ||
			 (op == SEVM_BITMAP_ANDNOT && s == BM_FULL))
			set_uniform(b, e, BM_EMPTY);
		return;
	}
	/* A MIXED source against a uniform destination. */
	if (*e < BM_MIXED) {
		bool keep = (op == SEVM_BITMAP_OR && *e == BM_FULL) ||
			    (op != SEVM_BITMAP_OR && op != SEVM_BITMAP_COPY && *e == BM_EMPTY);

		if (keep)
			return;
		*e = sevm__bm_take_block(b);
		w = bm_block(b, *e);
		memcpy(w, sw, BM_BLOCK_BYTES);
		if (op == SEVM_BITMAP_ANDNOT) {		/* FULL & ~src */
			for (k = 0; k < BM_WORDS; k++)
				w[k] = ~w[k];
			sevm__bm_mask_tail(w, len);
		}
		goto normalize;
	}
	w = bm_block(b, *e);
	switch (op) {
	case SEVM_BITMAP_OR:
		for (k = 0; k < BM_WORDS; k++)
			w[k] |= sw[k];
		break;
	case SEVM_BITMAP_AND:
		for (k = 0; k < BM_WORDS; k++)
			w[k] &= sw[k];
		break;
	case SEVM_BITMAP_ANDNOT:
		for (k = 0; k < BM_WORDS; k++)
			w[k] &= ~sw[k];
		break;
	default:
		if (w != sw)
			memcpy(w, sw, BM_BLOCK_BYTES);
		return;
	}
normalize:
	s = sevm__bm_classify(w, len);
	if (s < BM_MIXED)
		set_uniform(b, e, s);
}

static bool same_map(const struct sevm_bitmap *a, const struct sevm_bitmap *b)
{
	if (a->nr != b->nr)
		return false;
	for (unsigned int i = 0; i < a->nr; i++)
		if (a->ranges[i].gfn != b->ranges[i].gfn ||
		    a->ranges[i].npages != b->ranges[i].npages)
			return false;
	return true;
}

int sevm_bitmap_merge(struct sevm_bitmap *dst, const struct sevm_bitmap *src,
		      enum sevm_bitmap_op op)
{
	uint64_t need = 0;
	int r;

	if (!dst || !src)
		return sevm__fail(-EINVAL, "bitmap merge: no bitmap");
	if ((unsigned int)op > SEVM_BITMAP_COPY)
		return sevm__fail(-EINVAL, "bitmap merge: unknown operation %d", (int)op);
	if (!same_map(dst, src))
		return sevm__fail(-EINVAL, "bitmap merge: the bitmaps are over different maps");
	for (uint64_t c = 0; c < dst->nr_chunks; c++)
		need += merge_needs_block(op, dst->chunk[c], src->chunk[c]);
	r = sevm__bm_reserve(dst, need);
	if (r)
		return sevm__context(r, "bitmap merge");
	for (unsigned int i = 0; i < dst->nr; i++) {
		const struct bm_range *rg = &dst->ranges[i];

		for (uint64_t c = 0; c < bm_range_chunks(rg); c++) {
			uint32_t s = src->chunk[rg->chunk0 + c];

			merge_chunk(dst, &dst->chunk[rg->chunk0 + c],
				    s >= BM_MIXED ? bm_block(src, s) : NULL, s,
				    bm_chunk_len(rg, c), op);
		}
	}
	sevm__bm_trim_spares(dst);
	return 0;
}
