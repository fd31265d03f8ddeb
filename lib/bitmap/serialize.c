/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bitmap as bytes (doc/bitmap-format.md).  Little-endian, byte by byte.
 * The reader checks the magic, the CRC, the version and then the whole
 * structure, every length against the bytes actually there, before it
 * allocates anything: a forged count fails in the parse, not in malloc.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../core/crc32c.h"
#include "../core/error.h"
#include "../core/le.h"
#include "bitmap.h"

#define MAGIC		"SEVMBMP1"
#define VERSION		1u
#define HDR_LEN		16u	/* magic, version, nr_ranges */
#define RANGE_LEN	16u
#define RUN_LEN		5u	/* u8 state, u32 count */
#define CRC_LEN		4u

static unsigned int state_of(uint32_t e)
{
	return e < BM_MIXED ? e : BM_MIXED;
}

/* Bytes a MIXED chunk of len pages takes: its words up to the last page. */
static uint64_t block_bytes(uint64_t len)
{
	return (len + 63) / 64 * 8;
}

/*
 * Calls fn for each run of equal states (count < 2^32) and sums the bytes of
 * the MIXED blocks; the writer calls it twice, once to size, once to write.
 */
static uint64_t for_each_run(const struct sevm_bitmap *b, uint8_t *out, uint64_t *nruns)
{
	uint64_t mixed = 0, runs = 0, g = 0;

	while (g < b->nr_chunks) {
		unsigned int st = state_of(b->chunk[g]);
		uint64_t n = 1;

		while (g + n < b->nr_chunks && n < UINT32_MAX && state_of(b->chunk[g + n]) == st)
			n++;
		if (out) {
			out[RUN_LEN * runs] = (uint8_t)st;
			sevm__put32(out + RUN_LEN * runs + 1, (uint32_t)n);
		}
		runs++;
		g += n;
	}
	for (unsigned int i = 0; i < b->nr; i++) {
		const struct bm_range *r = &b->ranges[i];

		for (uint64_t c = 0; c < bm_range_chunks(r); c++)
			if (b->chunk[r->chunk0 + c] >= BM_MIXED)
				mixed += block_bytes(bm_chunk_len(r, c));
	}
	*nruns = runs;
	return mixed;
}

ssize_t sevm_bitmap_serialize(const struct sevm_bitmap *b, void *buf, size_t len)
{
	uint64_t runs, mixed, size;
	uint8_t *p = buf;

	if (!b)
		return sevm__fail(-EINVAL, "bitmap serialize: no bitmap");
	mixed = for_each_run(b, NULL, &runs);
	size = HDR_LEN + (uint64_t)b->nr * RANGE_LEN + runs * RUN_LEN + mixed + CRC_LEN;
	if (!buf)
		return (ssize_t)size;
	if (len < size)
		return sevm__fail(-ENOSPC, "bitmap serialize: %zu bytes, %" PRIu64 " needed",
				  len, size);
	memcpy(p, MAGIC, 8);
	sevm__put32(p + 8, VERSION);
	sevm__put32(p + 12, b->nr);
	p += HDR_LEN;
	for (unsigned int i = 0; i < b->nr; i++, p += RANGE_LEN) {
		sevm__put64(p, b->ranges[i].gfn);
		sevm__put64(p + 8, b->ranges[i].npages);
	}
	for_each_run(b, p, &runs);
	p += runs * RUN_LEN;
	for (unsigned int i = 0; i < b->nr; i++) {
		const struct bm_range *r = &b->ranges[i];

		for (uint64_t c = 0; c < bm_range_chunks(r); c++) {
			uint32_t e = b->chunk[r->chunk0 + c];
			uint64_t nw = block_bytes(bm_chunk_len(r, c)) / 8;

			if (e < BM_MIXED)
				continue;
			for (uint64_t k = 0; k < nw; k++, p += 8)
				sevm__put64(p, bm_block(b, e)[k]);
		}
	}
	sevm__put32(p, sevm__crc32c(0, buf, size - CRC_LEN));
	return (ssize_t)size;
}

/* ---- reading ----------------------------------------------------------------- */

struct parse {
	const uint8_t *p;
	uint64_t len;		/* without the CRC */
	uint64_t runs_at, nruns, blocks_at, nr_mixed;
	struct sevm_gfn_range *ranges;
	unsigned int nr;
};

#define BAD(...) sevm__fail(-SEVM_ERR_FORMAT, "bitmap deserialize: " __VA_ARGS__)

static int parse_ranges(struct parse *ps, uint64_t *chunks)
{
	uint64_t prev_end = 0;

	ps->ranges = calloc(ps->nr, sizeof(*ps->ranges));
	if (!ps->ranges)
		return sevm__fail(-ENOMEM, "bitmap deserialize: %u ranges", ps->nr);
	*chunks = 0;
	for (unsigned int i = 0; i < ps->nr; i++) {
		const uint8_t *q = ps->p + HDR_LEN + (uint64_t)i * RANGE_LEN;
		uint64_t g = sevm__get64(q), n = sevm__get64(q + 8);

		if (n == 0 || n > BM_GFN_LIMIT || g > BM_GFN_LIMIT - n || g < prev_end)
			return BAD("range %u (gfn %#" PRIx64 ", %" PRIu64 " pages) is empty, "
				   "unsorted, overlapping or past 2^40 frames", i, g, n);
		ps->ranges[i] = (struct sevm_gfn_range){ g, n };
		prev_end = g + n;
		*chunks += (n + BM_CHUNK_PAGES - 1) >> BM_CHUNK_SHIFT;
	}
	return 0;
}

/* The runs: they must cover exactly `chunks` chunks, and the blocks fill the rest. */
static int parse_runs(struct parse *ps, uint64_t chunks)
{
	uint64_t at = ps->runs_at, g = 0, mixed_bytes = 0;
	unsigned int ri = 0;
	uint64_t rc = 0;	/* chunk within range ri */

	while (g < chunks) {
		unsigned int st;
		uint64_t n;

		if (ps->len - at < RUN_LEN)
			return BAD("chunk states end at chunk %" PRIu64 " of %" PRIu64, g, chunks);
		st = ps->p[at];
		n = sevm__get32(ps->p + at + 1);
		at += RUN_LEN;
		ps->nruns++;
		if (st > BM_MIXED || n == 0 || n > chunks - g)
			return BAD("run at byte %" PRIu64 ": state %u, %" PRIu64 " chunks",
				   at - RUN_LEN, st, n);
		for (uint64_t k = 0; k < n; k++, g++, rc++) {
			const struct sevm_gfn_range *r = &ps->ranges[ri];

			if (rc << BM_CHUNK_SHIFT >= r->npages) {
				ri++;
				rc = 0;
				r++;
			}
			if (st != BM_MIXED) {
				/* Skip the rest of this range's chunks in the run at once. */
				uint64_t left = ((r->npages + BM_CHUNK_PAGES - 1) >> BM_CHUNK_SHIFT) - rc;
				uint64_t step = left < n - k ? left : n - k;

				k += step - 1;
				g += step - 1;
				rc += step - 1;
				continue;
			}
			ps->nr_mixed++;
			mixed_bytes += block_bytes(r->npages - (rc << BM_CHUNK_SHIFT) < BM_CHUNK_PAGES ?
						   r->npages - (rc << BM_CHUNK_SHIFT) : BM_CHUNK_PAGES);
			if (mixed_bytes > ps->len - at)
				return BAD("MIXED blocks need more than the %" PRIu64 " bytes left",
					   ps->len - at);
		}
	}
	ps->blocks_at = at;
	if (ps->len - at != mixed_bytes)
		return BAD("%" PRIu64 " bytes of blocks, %" PRIu64 " expected", ps->len - at,
			   mixed_bytes);
	return 0;
}

/* Fill b (allocated over the parsed ranges) from the runs and blocks. */
static int fill(struct sevm_bitmap *b, const struct parse *ps)
{
	const uint8_t *runs = ps->p + ps->runs_at, *blk = ps->p + ps->blocks_at;
	uint64_t g = 0;

	for (uint64_t i = 0; i < ps->nruns; i++) {
		unsigned int st = runs[i * RUN_LEN];
		uint64_t n = sevm__get32(runs + i * RUN_LEN + 1);

		for (uint64_t end = g + n; g < end; g++)
			b->chunk[g] = st;
	}
	for (unsigned int i = 0; i < b->nr; i++) {
		const struct bm_range *r = &b->ranges[i];

		for (uint64_t c = 0; c < bm_range_chunks(r); c++) {
			uint32_t *e = &b->chunk[r->chunk0 + c];
			uint64_t len = bm_chunk_len(r, c), nw = block_bytes(len) / 8;
			uint64_t *w;

			if (*e != BM_MIXED)
				continue;
			*e = sevm__bm_take_block(b);
			w = bm_block(b, *e);
			memset(w, 0, BM_BLOCK_BYTES);
			for (uint64_t k = 0; k < nw; k++, blk += 8)
				w[k] = sevm__get64(blk);
			if ((len % 64 && w[nw - 1] >> (len % 64)) || sevm__bm_classify(w, len) != BM_MIXED)
				return BAD("block of gfn %#" PRIx64 " has bits past the range, "
					   "or is all clear or all set",
					   r->gfn + (c << BM_CHUNK_SHIFT));
		}
	}
	return 0;
}

int sevm_bitmap_deserialize(const void *buf, size_t len, struct sevm_bitmap **out)
{
	struct parse ps = { .p = buf };
	struct sevm_bitmap *b = NULL;
	uint64_t chunks = 0;
	int r;

	if (out)
		*out = NULL;
	if (!buf || !out)
		return sevm__fail(-EINVAL, "bitmap deserialize: no buffer or no result pointer");
	if (len < HDR_LEN + RANGE_LEN + RUN_LEN + CRC_LEN || memcmp(buf, MAGIC, 8))
		return BAD("not a bitmap (%zu bytes, magic %s)", len,
			   len >= 8 && !memcmp(buf, MAGIC, 8) ? "right" : "wrong");
	ps.len = len - CRC_LEN;
	if (sevm__crc32c(0, buf, ps.len) != sevm__get32(ps.p + ps.len))
		return sevm__fail(-SEVM_ERR_CHECKSUM, "bitmap deserialize: CRC32C mismatch");
	if (sevm__get32(ps.p + 8) != VERSION)
		return sevm__fail(-SEVM_ERR_VERSION, "bitmap deserialize: version %u, not %u",
				  sevm__get32(ps.p + 8), VERSION);
	ps.nr = sevm__get32(ps.p + 12);
	if (ps.nr == 0 || ps.nr > (ps.len - HDR_LEN) / RANGE_LEN)
		return BAD("%u ranges in %zu bytes", ps.nr, len);
	ps.runs_at = HDR_LEN + (uint64_t)ps.nr * RANGE_LEN;
	r = parse_ranges(&ps, &chunks);
	if (!r)
		r = parse_runs(&ps, chunks);
	if (!r) {
		b = sevm__bm_alloc(ps.ranges, ps.nr);
		r = b ? sevm__bm_reserve(b, ps.nr_mixed) : sevm__fail(-ENOMEM, "bitmap deserialize");
	}
	if (!r)
		r = fill(b, &ps);
	free(ps.ranges);
	if (r) {
		sevm_bitmap_free(b);
		return r;
	}
	sevm__bm_trim_spares(b);
	*out = b;
	return 0;
}
