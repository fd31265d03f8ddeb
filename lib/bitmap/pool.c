/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The block pool of a page bitmap.  An operation counts the blocks it may
 * need and reserves them first (sevm__bm_reserve); after that, taking a block
 * cannot fail, so no operation is left half done by ENOMEM.  A couple of
 * blocks stay spare between operations, so the common flip of one chunk
 * between FULL and MIXED does not go to malloc each time.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "../core/error.h"
#include "bitmap.h"

#define SPARES_KEPT	2

static int grow(void **p, uint32_t *cap, uint32_t want, size_t size)
{
	uint32_t n = *cap ? *cap : 8;
	void *q;

	while (n < want)
		n *= 2;
	q = realloc(*p, (size_t)n * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

int sevm__bm_reserve(struct sevm_bitmap *b, uint64_t n)
{
	uint64_t slots = (uint64_t)b->pool_len + n - b->nr_free;

	if (n <= b->nr_spare && slots <= b->pool_cap)
		return 0;
	if (n > b->nr_chunks)	/* more blocks than chunks: a bug, not a size */
		return sevm__fail(-EINVAL, "bitmap: %" PRIu64 " blocks asked for", n);
	if (slots > b->pool_cap) {
		uint32_t cap = b->pool_cap;

		if (grow((void **)&b->pool, &cap, (uint32_t)slots, sizeof(*b->pool)) ||
		    grow((void **)&b->free_slots, &b->pool_cap, (uint32_t)slots,
			 sizeof(*b->free_slots)))
			return sevm__fail(-ENOMEM, "bitmap: %" PRIu64 " block slots", slots);
	}
	if (n > b->spare_cap && grow((void **)&b->spare, &b->spare_cap, (uint32_t)n,
				     sizeof(*b->spare)))
		return sevm__fail(-ENOMEM, "bitmap: %" PRIu64 " spare blocks", n);
	while (b->nr_spare < n) {
		void *blk = aligned_alloc(64, BM_BLOCK_BYTES);

		if (!blk)
			return sevm__fail(-ENOMEM, "bitmap: %" PRIu64 " blocks of 4 KiB", n);
		b->spare[b->nr_spare++] = blk;
	}
	return 0;
}

uint32_t sevm__bm_take_block(struct sevm_bitmap *b)
{
	uint32_t slot = b->nr_free ? b->free_slots[--b->nr_free] : b->pool_len++;

	b->pool[slot] = b->spare[--b->nr_spare];
	b->nr_blocks++;
	return slot + BM_MIXED;
}

void sevm__bm_drop_block(struct sevm_bitmap *b, uint32_t e)
{
	uint32_t slot = e - BM_MIXED;

	if (b->nr_spare < b->spare_cap && b->nr_spare < SPARES_KEPT)
		b->spare[b->nr_spare++] = b->pool[slot];
	else
		free(b->pool[slot]);
	b->pool[slot] = NULL;
	b->free_slots[b->nr_free++] = slot;
	b->nr_blocks--;
}

void sevm__bm_trim_spares(struct sevm_bitmap *b)
{
	while (b->nr_spare > SPARES_KEPT)
		free(b->spare[--b->nr_spare]);
	if (b->nr_blocks == 0 && b->pool_cap > 64) {
		/* All uniform again: give back the slot tables of a past dense phase. */
		free(b->pool);
		free(b->free_slots);
		b->pool = NULL;
		b->free_slots = NULL;
		b->pool_len = b->pool_cap = b->nr_free = 0;
	}
}
