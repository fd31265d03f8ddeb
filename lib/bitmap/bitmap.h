/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Page bitmaps inside: each range of the map is cut into chunks of 2^15
 * pages, one 4 KiB block of bits when the chunk is MIXED, no block at all
 * when it is EMPTY or FULL.  A chunk's entry in the chunk table is 4 bytes
 * (so an empty or full 1 TiB map costs 32 KiB): 0 EMPTY, 1 FULL, else the
 * index + 2 of its block in the block pool.
 *
 * Invariants every function keeps: a MIXED block has at least one bit set
 * and one clear among the chunk's pages; the bits past the end of a range's
 * last, short chunk are 0.
 */
#ifndef SEVM_BITMAP_BITMAP_H
#define SEVM_BITMAP_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "sevmigrate.h"

#define BM_CHUNK_SHIFT	15
#define BM_CHUNK_PAGES	(1ull << BM_CHUNK_SHIFT)
#define BM_WORDS	(BM_CHUNK_PAGES / 64)		/* 512 */
#define BM_BLOCK_BYTES	(BM_CHUNK_PAGES / 8)		/* 4096 */
#define BM_EMPTY	0u
#define BM_FULL		1u
#define BM_MIXED	2u	/* entries >= BM_MIXED name a block */

/*
 * Frames at or past 2^40 would be guest physical addresses past 52 bits,
 * which no x86 guest has: this bounds every chunk table, also one a
 * deserialized header asks for.
 */
#define BM_GFN_LIMIT	(1ull << 40)

struct bm_range {
	uint64_t gfn;
	uint64_t npages;
	uint64_t chunk0;	/* its first entry in the chunk table */
};

struct sevm_bitmap {
	uint64_t *starts;	/* ranges[i].gfn, alone: the binary search stays in few lines */
	struct bm_range *ranges;
	unsigned int nr;
	uint64_t nr_chunks;
	uint32_t *chunk;	/* the chunk table */
	uint64_t **pool;	/* blocks; NULL slots are free */
	uint32_t pool_len;	/* slots in use or freed */
	uint32_t pool_cap;
	uint32_t *free_slots;	/* a stack of NULL slots below pool_len */
	uint32_t nr_free;
	uint64_t **spare;	/* blocks reserved so that an operation cannot fail midway */
	uint32_t nr_spare;
	uint32_t spare_cap;
	uint64_t nr_blocks;	/* MIXED chunks */
};

/* Pages in chunk c (0-based within range r): BM_CHUNK_PAGES but for the last. */
static inline uint64_t bm_chunk_len(const struct bm_range *r, uint64_t c)
{
	uint64_t left = r->npages - (c << BM_CHUNK_SHIFT);

	return left < BM_CHUNK_PAGES ? left : BM_CHUNK_PAGES;
}

static inline uint64_t bm_range_chunks(const struct bm_range *r)
{
	return (r->npages + BM_CHUNK_PAGES - 1) >> BM_CHUNK_SHIFT;
}

static inline uint64_t *bm_block(const struct sevm_bitmap *b, uint32_t e)
{
	return b->pool[e - BM_MIXED];
}

/* The range holding gfn, or -1. */
int sevm__bm_find(const struct sevm_bitmap *b, uint64_t gfn);
/* The first range that ends after gfn, or b->nr. */
unsigned int sevm__bm_first_after(const struct sevm_bitmap *b, uint64_t gfn);

/*
 * 0 when [gfn, gfn + npages) is inside the map (possibly across adjacent
 * ranges), with *ri the first range; else a recorded -EINVAL or -ERANGE.
 */
int sevm__bm_locate(const struct sevm_bitmap *b, uint64_t gfn, uint64_t npages, const char *what,
	      unsigned int *ri);

/* A new empty bitmap over checked ranges; NULL on ENOMEM (not recorded). */
struct sevm_bitmap *sevm__bm_alloc(const struct sevm_gfn_range *ranges, unsigned int nr);

/* Make `n` blocks available to sevm__bm_take_block: -ENOMEM (recorded) or 0. */
int sevm__bm_reserve(struct sevm_bitmap *b, uint64_t n);
/* A reserved block, uninitialized, as a chunk-table entry. */
uint32_t sevm__bm_take_block(struct sevm_bitmap *b);
void sevm__bm_drop_block(struct sevm_bitmap *b, uint32_t e);
/* Give back reserved blocks beyond a couple kept for the next operation. */
void sevm__bm_trim_spares(struct sevm_bitmap *b);

/* EMPTY, FULL or MIXED: the words of a chunk of `len` pages. */
unsigned int sevm__bm_classify(const uint64_t *w, uint64_t len);
/* A block with the chunk's `len` pages all clear or all set, the tail 0. */
void sevm__bm_fill_block(uint64_t *w, uint64_t len, bool full);
/* Clear the bits of a block past a short chunk's `len` pages. */
void sevm__bm_mask_tail(uint64_t *w, uint64_t len);

/*
 * Setting or clearing [off, off + n) of range r: sevm__bm_need counts the blocks
 * it will take (a chunk whose global index is *last is not counted again:
 * several spans in increasing order share one reservation); sevm__bm_apply, after
 * sevm__bm_reserve of that many, does it and cannot fail.
 */
uint64_t sevm__bm_need(const struct sevm_bitmap *b, const struct bm_range *r, uint64_t off,
		 uint64_t n, bool set, uint64_t *last);
void sevm__bm_apply(struct sevm_bitmap *b, const struct bm_range *r, uint64_t off, uint64_t n,
	      bool set);

#endif
