/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration stream codec: every record kind round-trips, any split of
 * the bytes reads the same, and no truncation, flipped bit, forged length,
 * page outside the memory map or wrong total is ever accepted.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sevmigrate.h>

#include "core/buf.h"
#include "core/crc32c.h"
#include "snapshot/format.h"
#include "stream/format.h"
#include "core/le.h"
#include "testutil.h"

#define has_msg(s) (strstr(sevm_last_error(), (s)) != NULL)

/* Reseal the record at off after a forged edit, over len payload bytes. */
static void fix_crc(uint8_t *p, size_t off, size_t len)
{
	uint8_t *h = p + off;

	sevm__put32(h + 20, 0);
	sevm__put32(h + 20, sevm__crc32c(sevm__crc32c(0, h, 24), h + 24, len));
}

/* Reseal the 32-byte stream header. */
static void fix_header_crc(uint8_t *p)
{
	sevm__put32(p + 28, 0);
	sevm__put32(p + 28, sevm__crc32c(0, p, 32));
}

/* The guest: 1024 pages at 0, a hole, 512 pages at 1 GiB. */
static const struct sevm_gfn_range map[] = {
	{ .gfn = 0, .npages = 1024 },
	{ .gfn = 0x40000, .npages = 512 },
};
#define NR_MAP 2
#define POLICY_ES 0x4u

/* A record as the reader gave it, its data reduced to a CRC. */
struct seen {
	uint16_t type, flags;
	uint32_t len, count, data_crc;
	uint64_t arg, offset;
};

#define MAX_SEEN 64
struct run {
	struct seen rec[MAX_SEEN];
	int nr;
	int rc;			/* the last return value, then sevm__stream_eof()'s */
	int eof;		/* sevm__stream_eof() after the last byte */
	bool ended;
	size_t cap;		/* what the reader allocated */
};

static void note(struct run *out, const struct sevm__stream_rec *rec)
{
	struct seen *s;

	ck_assert_int_lt(out->nr, MAX_SEEN);
	s = &out->rec[out->nr++];
	*s = (struct seen){ .type = rec->type, .flags = rec->flags, .len = rec->len,
			    .count = rec->count, .arg = rec->arg, .offset = rec->offset,
			    .data_crc = sevm__crc32c(0, rec->data, rec->len) };
}

/*
 * Feed p[0, len) in chunks: chunk 0 means random sizes from 1 to 2 * max_chunk,
 * else exactly `chunk` bytes at a time.  Stops at the first error.
 */
static void feed(const uint8_t *p, size_t len, size_t chunk, size_t max_chunk, struct run *out)
{
	struct sevm__stream_reader r;
	struct sevm__stream_rec rec;
	size_t at = 0;

	memset(out, 0, sizeof(*out));
	ck_assert_int_eq(sevm__stream_reader_init(&r, map, NR_MAP), 0);
	while (at < len && out->rc >= 0) {
		size_t n = chunk ? chunk : 1 + tu_rng() % (2 * max_chunk);
		const void *q = p + at;
		size_t left;

		if (n > len - at)
			n = len - at;
		left = n;
		while ((out->rc = sevm__stream_next(&r, &q, &left, &rec)) > 0)
			note(out, &rec);
		if (out->rc == 0)
			ck_assert_uint_eq(left, 0);
		at += n;
	}
	out->ended = r.stage == SR_ENDED;
	out->eof = sevm__stream_eof(&r);
	if (!out->rc)
		out->rc = out->eof;
	out->cap = r.cap;
	ck_assert_uint_le(r.cap, SEVM_STREAM_READER_BOUND);
	sevm__stream_reader_free(&r);
}

static void same_records(const struct run *a, const struct run *b)
{
	ck_assert_int_eq(a->nr, b->nr);
	ck_assert_mem_eq(a->rec, b->rec, sizeof(a->rec[0]) * (size_t)a->nr);
}

static void fill_pages(struct sevm__stream_writer *w, uint64_t gfn, uint32_t n, bool private)
{
	uint8_t *p = private ? sevm__stream_open_private(w, gfn, n)
			     : sevm__stream_open_shared(w, gfn, n);

	ck_assert_ptr_nonnull(p);
	tu_rng_fill(p, (size_t)n * ((private ? SEVM_STREAM_PKT_HDR_LEN : 0) + 4096));
	sevm__stream_close(w);
}

/*
 * An SEV-ES stream with every record kind: SESSION, BITMAP, SHARED, PRIVATE,
 * ITERATION, VMSA x 2, STATE (snapshot sections), VMM, END.  13 records.
 */
#define FULL_RECORDS 13
static void build_full(struct sevm__buf *b)
{
	struct sevm__stream_writer w;
	struct sevm__snap_writer sw;
	struct sevm__buf state = { 0 };
	struct sevm_bitmap *bm;
	uint8_t pdh[SEVM_STREAM_PDH_LEN], session[128], hdr[52], vmsa[4096], bytes[4096];
	ssize_t blen;

	tu_rng_seed(7);
	tu_rng_fill(pdh, sizeof(pdh));
	tu_rng_fill(session, sizeof(session));
	ck_assert_int_eq(sevm__stream_begin(&w, b, POLICY_ES | 0x1, SEVM_STREAM_F_SEV |
					    SEVM_STREAM_F_SEV_ES), 0);
	ck_assert_int_eq(sevm__stream_put_session(&w, pdh, session), 0);
	ck_assert_int_eq(sevm_bitmap_new(map, NR_MAP, &bm), 0);
	ck_assert_int_eq(sevm_bitmap_set(bm, 0x40000, 2), 0);
	blen = sevm_bitmap_serialize(bm, bytes, sizeof(bytes));
	ck_assert_int_gt(blen, 0);
	sevm_bitmap_free(bm);
	ck_assert_int_eq(sevm__stream_put_bitmap(&w, bytes, (size_t)blen), 0);
	fill_pages(&w, 0, 3, false);
	fill_pages(&w, 0x40000, 2, true);
	ck_assert_int_eq(sevm__stream_put_iteration(&w), 0);
	fill_pages(&w, 1023, 1, false);
	fill_pages(&w, 0x401ff, 1, true);
	ck_assert_int_eq(sevm__stream_put_iteration(&w), 0);
	for (uint32_t cpu = 0; cpu < 2; cpu++) {
		tu_rng_fill(hdr, sizeof(hdr));
		tu_rng_fill(vmsa, sizeof(vmsa));
		ck_assert_int_eq(sevm__stream_put_vmsa(&w, cpu, hdr, vmsa), 0);
	}
	sevm__snap_sections(&sw, &state);
	ck_assert_int_eq(sevm__snap_put(&sw, SEVM_SECT_REGS, SEVM_SNAP_MANDATORY, 0,
					"0123456789abc", 13), 0);
	ck_assert_int_eq(sevm__snap_end(&sw), 0);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_STATE, SEVM_STREAM_MANDATORY, 0, 0,
					  state.data, (uint32_t)state.len), 0);
	sevm__buf_free(&state);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_VMM, 0, 0xabcdef, 0, "qemu", 4), 0);
	ck_assert_int_eq(sevm__stream_end(&w), 0);
	ck_assert_uint_eq(w.t.records, FULL_RECORDS - 1);
	ck_assert_uint_eq(w.t.pages_shared, 4);
	ck_assert_uint_eq(w.t.pages_private, 3);
}

/*
 * A plain guest, small enough to cut at every byte and flip every bit:
 * STATE, SHARED (1 page), ITERATION, VMM (empty), END.  5 records.
 */
static void build_small(struct sevm__buf *b)
{
	struct sevm__stream_writer w;

	tu_rng_seed(11);
	ck_assert_int_eq(sevm__stream_begin(&w, b, 0, 0), 0);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_STATE, SEVM_STREAM_MANDATORY, 0, 0,
					  "vcpu state", 10), 0);
	fill_pages(&w, 5, 1, false);
	ck_assert_int_eq(sevm__stream_put_iteration(&w), 0);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_VMM, 0, 1, 0, NULL, 0), 0);
	ck_assert_int_eq(sevm__stream_end(&w), 0);
}

/* ---- Layout and round trips --------------------------------------------- */

START_TEST(layout_is_the_documented_one)
{
	struct sevm__buf b = { 0 };
	const uint8_t *h, *r;

	build_small(&b);
	h = b.data;
	ck_assert_mem_eq(h, "SEVMSTRM", 8);
	ck_assert_uint_eq(h[8] | h[9] << 8, 1);
	ck_assert_uint_eq(h[10] | h[11] << 8, 0);
	ck_assert_uint_eq(sevm__get32(h + 12), 32);
	ck_assert_uint_eq(sevm__get32(h + 16), 0);
	ck_assert_uint_eq(sevm__get32(h + 20), 0);
	ck_assert_uint_eq(sevm__get32(h + 24), 0);
	{
		uint8_t c[32];

		memcpy(c, h, 32);
		sevm__put32(c + 28, 0);
		ck_assert_uint_eq(sevm__get32(h + 28), sevm__crc32c(0, c, 32));
	}
	/* STATE: 24-byte header, 10 bytes, 6 of padding. */
	r = h + 32;
	ck_assert_uint_eq(r[0] | r[1] << 8, SEVM_REC_STATE);
	ck_assert_uint_eq(r[2] | r[3] << 8, SEVM_STREAM_MANDATORY);
	ck_assert_uint_eq(sevm__get32(r + 4), 10);
	ck_assert_uint_eq(sevm__get32(r + 8) | sevm__get32(r + 12), 0);
	ck_assert_uint_eq(sevm__get32(r + 16), 0);
	ck_assert_mem_eq(r + 24, "vcpu state\0\0\0\0\0\0", 16);
	{
		uint8_t c[24];

		memcpy(c, r, 24);
		sevm__put32(c + 20, 0);
		ck_assert_uint_eq(sevm__get32(r + 20), sevm__crc32c(sevm__crc32c(0, c, 24), r + 24, 10));
	}
	/* SHARED: gfn 5, 1 page, payload 8-aligned. */
	r += 24 + 16;
	ck_assert_uint_eq(r[0] | r[1] << 8, SEVM_REC_SHARED);
	ck_assert_uint_eq(sevm__get32(r + 4), 4096);
	ck_assert_uint_eq(sevm__get32(r + 8), 5);
	ck_assert_uint_eq(sevm__get32(r + 16), 1);
	/* ITERATION 0: 1 shared, 0 private. */
	r += 24 + 4096;
	ck_assert_uint_eq(r[0] | r[1] << 8, SEVM_REC_ITERATION);
	ck_assert_uint_eq(r[2] | r[3] << 8, 0);
	ck_assert_uint_eq(sevm__get32(r + 24), 1);
	ck_assert_uint_eq(sevm__get32(r + 32), 0);
	/* VMM, then END: 4 records, 1 shared page, 10 + 4096 + 16 bytes. */
	r += 24 + 16 + 24;
	ck_assert_uint_eq(r[0] | r[1] << 8, SEVM_REC_END);
	ck_assert_uint_eq(sevm__get32(r + 4), 32);
	ck_assert_uint_eq(sevm__get32(r + 24), 4);
	ck_assert_uint_eq(sevm__get32(r + 32), 1);
	ck_assert_uint_eq(sevm__get32(r + 40), 0);
	ck_assert_uint_eq(sevm__get32(r + 48), 10 + 4096 + 16);
	ck_assert_uint_eq((size_t)(r + 24 + 32 - b.data), b.len);
	sevm__buf_free(&b);
}
END_TEST

START_TEST(round_trip_every_kind)
{
	static const uint16_t types[FULL_RECORDS] = {
		SEVM_REC_SESSION, SEVM_REC_BITMAP, SEVM_REC_SHARED, SEVM_REC_PRIVATE,
		SEVM_REC_ITERATION, SEVM_REC_SHARED, SEVM_REC_PRIVATE, SEVM_REC_ITERATION,
		SEVM_REC_VMSA, SEVM_REC_VMSA, SEVM_REC_STATE, SEVM_REC_VMM, SEVM_REC_END,
	};
	struct sevm__buf b = { 0 };
	struct sevm__stream_reader r;
	struct sevm__stream_rec rec;
	struct sevm__snap_reader sr;
	struct sevm__sect s;
	struct sevm_bitmap *bm;
	const void *p;
	size_t n;
	int i = 0, rc;

	build_full(&b);
	p = b.data;
	n = b.len;
	ck_assert_int_eq(sevm__stream_reader_init(&r, map, NR_MAP), 0);
	while ((rc = sevm__stream_next(&r, &p, &n, &rec)) > 0) {
		/* Whole input at once: every payload is read in place. */
		ck_assert(rec.data >= b.data && rec.data + rec.len <= b.data + b.len);
		if (i < FULL_RECORDS)
			ck_assert_uint_eq(rec.type, types[i]);
		switch (rec.type) {
		case SEVM_REC_SESSION:
			ck_assert_uint_eq(rec.len, 16 + 2084 + 128);
			ck_assert_uint_eq(sevm__get32(rec.data), 2084);
			ck_assert_uint_eq(sevm__get32(rec.data + 4), 128);
			ck_assert_uint_eq(sevm__get32(rec.data + 8), 52);
			break;
		case SEVM_REC_BITMAP:
			ck_assert_int_eq(sevm_bitmap_deserialize(rec.data, rec.len, &bm), 0);
			ck_assert_int_eq(sevm_bitmap_test(bm, 0x40001), 1);
			ck_assert_int_eq(sevm_bitmap_test(bm, 0x40002), 0);
			sevm_bitmap_free(bm);
			ck_assert_uint_eq(rec.count, 1);
			break;
		case SEVM_REC_SHARED:
			ck_assert_uint_eq(rec.len, rec.count * 4096);
			ck_assert_uint_eq(rec.arg, i == 2 ? 0 : 1023);
			break;
		case SEVM_REC_PRIVATE:
			ck_assert_uint_eq(rec.len, rec.count * (52 + 4096));
			ck_assert_uint_eq(rec.arg, i == 3 ? 0x40000 : 0x401ff);
			break;
		case SEVM_REC_ITERATION:
			ck_assert_uint_eq(rec.arg, i == 4 ? 0 : 1);
			ck_assert_uint_eq(sevm__get32(rec.data), i == 4 ? 3 : 1);
			ck_assert_uint_eq(sevm__get32(rec.data + 8), i == 4 ? 2 : 1);
			break;
		case SEVM_REC_VMSA:
			ck_assert_uint_eq(rec.arg, i - 8);
			ck_assert_uint_eq(rec.len, 52 + 4096);
			break;
		case SEVM_REC_STATE:
			sevm__snap_reader_sections(&sr, rec.data, rec.len);
			ck_assert_int_eq(sevm__snap_next(&sr, &s), 1);
			ck_assert_uint_eq(s.id, SEVM_SECT_REGS);
			ck_assert_mem_eq(s.data, "0123456789abc", 13);
			ck_assert_int_eq(sevm__snap_next(&sr, &s), 1);
			ck_assert(sr.ended);
			break;
		case SEVM_REC_VMM:
			ck_assert_uint_eq(rec.arg, 0xabcdef);
			ck_assert_mem_eq(rec.data, "qemu", 4);
			break;
		case SEVM_REC_END:
			ck_assert_int_eq(i, FULL_RECORDS - 1);
			break;
		}
		i++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(i, FULL_RECORDS);
	ck_assert_uint_eq(n, 0);
	ck_assert(r.stage == SR_ENDED);
	ck_assert_uint_eq(r.policy, POLICY_ES | 1);
	ck_assert_uint_eq(r.features, SEVM_STREAM_F_SEV | SEVM_STREAM_F_SEV_ES);
	/* In place from one buffer: nothing was copied, nothing allocated. */
	ck_assert_uint_eq(r.cap, 0);
	/* And it stays ended: more calls, no bytes, return 0. */
	ck_assert_int_eq(sevm__stream_next(&r, &p, &n, &rec), 0);
	sevm__stream_reader_free(&r);
	sevm__buf_free(&b);
}
END_TEST

START_TEST(any_split_reads_the_same)
{
	struct sevm__buf b = { 0 };
	static struct run whole, split;

	build_full(&b);
	feed(b.data, b.len, b.len, 0, &whole);
	ck_assert_int_eq(whole.rc, 0);
	ck_assert(whole.ended);
	ck_assert_int_eq(whole.nr, FULL_RECORDS);
	feed(b.data, b.len, 1, 0, &split);
	ck_assert_int_eq(split.rc, 0);
	ck_assert(split.ended);
	same_records(&whole, &split);
	tu_rng_seed(3);
	for (int i = 0; i < 200; i++) {
		size_t max = (size_t[]){ 3, 30, 500, 5000 }[i % 4];

		feed(b.data, b.len, 0, max, &split);
		ck_assert_int_eq(split.rc, 0);
		ck_assert(split.ended);
		same_records(&whole, &split);
	}
	sevm__buf_free(&b);
}
END_TEST

START_TEST(largest_record_byte_by_byte)
{
	struct sevm__buf b = { 0 };
	struct sevm__stream_writer w;
	static struct run out;

	ck_assert_int_eq(sevm__stream_begin(&w, &b, POLICY_ES, SEVM_STREAM_F_SEV |
					    SEVM_STREAM_F_SEV_ES), 0);
	{
		uint8_t pdh[2084] = { 0 }, s[128] = { 0 };

		ck_assert_int_eq(sevm__stream_put_session(&w, pdh, s), 0);
	}
	fill_pages(&w, 512, SEVM_STREAM_MAX_PAGES, true);
	fill_pages(&w, 768, SEVM_STREAM_MAX_PAGES, false);
	ck_assert_int_eq(sevm__stream_end(&w), 0);
	feed(b.data, b.len, 1, 0, &out);
	ck_assert_int_eq(out.rc, 0);
	ck_assert(out.ended);
	ck_assert_int_eq(out.nr, 4);
	ck_assert_uint_eq(out.rec[1].len, 256 * (52 + 4096));
	/* One record's bound, no more. */
	ck_assert_uint_le(out.cap, SEVM_STREAM_READER_BOUND);
	ck_assert_uint_ge(out.cap, 24 + 256 * (52 + 4096));
	sevm__buf_free(&b);
}
END_TEST

/* ---- Damage ------------------------------------------------------------- */

/* Every prefix is "need more" (0) with only the records it wholly holds. */
static void check_every_prefix(const struct sevm__buf *b)
{
	static struct run whole, part;

	feed(b->data, b->len, b->len, 0, &whole);
	ck_assert(whole.ended);
	for (size_t cut = 0; cut < b->len; cut++) {
		feed(b->data, cut, cut ? cut : 1, 0, &part);
		ck_assert_msg(part.rc == -SEVM_ERR_FORMAT && has_msg("before END"),
			      "cut %zu: %d %s", cut, part.rc, sevm_last_error());
		ck_assert(!part.ended);
		ck_assert_int_le(part.nr, whole.nr - 1);
		ck_assert_mem_eq(part.rec, whole.rec, sizeof(part.rec[0]) * (size_t)part.nr);
		/* The next record did not fit. */
		ck_assert_uint_gt(whole.rec[part.nr].offset + 24 +
				  ((whole.rec[part.nr].len + 7) & ~7u), cut);
		/* And at the end of the input, an unfinished stream is an error. */
		ck_assert_int_eq(part.eof, -SEVM_ERR_FORMAT);
	}
}

START_TEST(truncation_at_every_byte)
{
	struct sevm__buf b = { 0 };

	build_small(&b);
	check_every_prefix(&b);
	sevm__buf_reset(&b);
	build_full(&b);
	check_every_prefix(&b);
	sevm__buf_free(&b);
}
END_TEST

/* A damaged stream fails; the records before the damage are the originals. */
static void check_rejected(const uint8_t *p, size_t len, const struct run *whole,
			   size_t where, size_t chunk)
{
	static struct run out;

	feed(p, len, chunk, 0, &out);
	ck_assert_msg(out.rc == -SEVM_ERR_CHECKSUM || out.rc == -SEVM_ERR_FORMAT ||
		      out.rc == -SEVM_ERR_VERSION, "damage at byte %zu: rc %d", where, out.rc);
	ck_assert(!out.ended);
	ck_assert_int_le(out.nr, whole->nr);
	ck_assert_mem_eq(out.rec, whole->rec, sizeof(out.rec[0]) * (size_t)out.nr);
	for (int i = 0; i < out.nr; i++)
		ck_assert_uint_le(out.rec[i].offset + 24 + out.rec[i].len, where);
}

START_TEST(flipped_bit_anywhere_is_rejected)
{
	struct sevm__buf b = { 0 };
	static struct run whole;
	uint8_t *copy;

	build_small(&b);
	feed(b.data, b.len, b.len, 0, &whole);
	copy = malloc(b.len);
	ck_assert_ptr_nonnull(copy);
	for (size_t i = 0; i < b.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(copy, b.data, b.len);
			copy[i] ^= (uint8_t)(1u << bit);
			check_rejected(copy, b.len, &whole, i, b.len);
		}
	}
	/* The big one, at sampled bits, fed in small pieces. */
	sevm__buf_reset(&b);
	build_full(&b);
	feed(b.data, b.len, b.len, 0, &whole);
	copy = realloc(copy, b.len);
	tu_rng_seed(5);
	for (int k = 0; k < 3000; k++) {
		size_t i = tu_rng() % b.len;

		memcpy(copy, b.data, b.len);
		copy[i] ^= (uint8_t)(1u << (tu_rng() % 8));
		check_rejected(copy, b.len, &whole, i, 1 + k % 700);
	}
	free(copy);
	sevm__buf_free(&b);
}
END_TEST

static int read_one(const uint8_t *p, size_t len, struct run *out)
{
	feed(p, len, len, 0, out);
	return out->rc;
}

START_TEST(forged_lengths)
{
	static const uint64_t lens[] = { 0, 1, 4095, 4097, 0xffffffffu, SEVM_STREAM_MAX_LEN + 1 };
	struct sevm__buf b = { 0 };
	static struct run out;
	uint8_t *c;
	size_t shared;

	build_small(&b);
	c = malloc(b.len);
	shared = 32 + 24 + 16;	/* the SHARED record */
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		memcpy(c, b.data, b.len);
		sevm__put32(c + shared + 4, (uint32_t)lens[k]);
		fix_crc(c, shared, lens[k] < 4096 ? lens[k] : 4096);
		ck_assert_int_eq(read_one(c, b.len, &out), -SEVM_ERR_FORMAT);
		ck_assert(has_msg("SHARED (0x0002) gfn 0x5 at stream offset 72"));
		ck_assert_int_eq(out.nr, 1);
		/* Rejected from the header: nothing was buffered for it. */
		ck_assert_uint_eq(out.cap, 0);
	}
	/* A VMM record may be any length up to the bound; 2^32 - 1 is not. */
	memcpy(c, b.data, b.len);
	shared = b.len - 56 - 24;
	sevm__put32(c + shared + 4, 0xffffffffu);
	fix_crc(c, shared, 0);
	ck_assert_int_eq(read_one(c, b.len, &out), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("claims 4294967295 bytes"));
	/* Page counts and gfn at their extremes. */
	shared = 32 + 24 + 16;
	memcpy(c, b.data, b.len);
	sevm__put32(c + shared + 16, 0xffffffffu);
	fix_crc(c, shared, 4096);
	ck_assert_int_eq(read_one(c, b.len, &out), -SEVM_ERR_FORMAT);
	memcpy(c, b.data, b.len);
	sevm__put32(c + shared + 16, 0);
	fix_crc(c, shared, 4096);
	ck_assert_int_eq(read_one(c, b.len, &out), -SEVM_ERR_FORMAT);
	memcpy(c, b.data, b.len);
	sevm__put64(c + shared + 8, UINT64_MAX);
	fix_crc(c, shared, 4096);
	ck_assert_int_eq(read_one(c, b.len, &out), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("gfn 0xffffffffffffffff"));
	ck_assert(has_msg("outside the guest's memory map"));
	/* The header's own length. */
	for (int k = 0; k < 3; k++) {
		memcpy(c, b.data, b.len);
		sevm__put32(c + 12, (uint32_t[]){ 0, 0xffffffffu, 36 }[k]);
		fix_header_crc(c);
		ck_assert_int_eq(read_one(c, b.len, &out), -SEVM_ERR_FORMAT);
		ck_assert_uint_le(out.cap, 64);
	}
	free(c);
	sevm__buf_free(&b);
}
END_TEST

static int write_and_read(uint64_t gfn, uint32_t npages, bool private, struct run *out)
{
	struct sevm__buf b = { 0 };
	struct sevm__stream_writer w;
	uint8_t pdh[2084] = { 0 }, s[128] = { 0 };
	int rc;

	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, SEVM_STREAM_F_SEV), 0);
	ck_assert_int_eq(sevm__stream_put_session(&w, pdh, s), 0);
	fill_pages(&w, gfn, npages, private);
	ck_assert_int_eq(sevm__stream_end(&w), 0);
	rc = read_one(b.data, b.len, out);
	sevm__buf_free(&b);
	return rc;
}

START_TEST(gfn_outside_the_map)
{
	static struct run out;
	static const struct { uint64_t gfn; uint32_t n; int ok; } cases[] = {
		{ 0, 1, 1 }, { 1023, 1, 1 }, { 1020, 4, 1 }, { 0x40000, 256, 1 },
		{ 0x401ff, 1, 1 }, { 1024, 1, 0 }, { 1023, 2, 0 }, { 0x3ffff, 1, 0 },
		{ 0x3ffff, 2, 0 }, { 0x40200, 1, 0 }, { 0x401ff, 2, 0 },
		{ UINT64_MAX, 1, 0 }, { UINT64_MAX - 1, 4, 0 },
		/* Adjacent in the map's order but not contiguous: one record, one range. */
		{ 1000, 30, 0 },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		for (int priv = 0; priv < 2; priv++) {
			int rc = write_and_read(cases[k].gfn, cases[k].n, priv, &out);

			if (cases[k].ok) {
				ck_assert_msg(rc == 0 && out.ended, "gfn 0x%llx: %s",
					      (unsigned long long)cases[k].gfn, sevm_last_error());
			} else {
				ck_assert_int_eq(rc, -SEVM_ERR_FORMAT);
				ck_assert(has_msg("outside the guest's memory map"));
				ck_assert(has_msg(priv ? "PRIVATE" : "SHARED"));
				/* Only SESSION came out; never the page. */
				ck_assert_int_eq(out.nr, 1);
			}
		}
	}
}
END_TEST

START_TEST(end_must_agree)
{
	static struct run out;
	static const char *const what[] = { "records", "shared", "private", "bytes" };

	for (int k = 0; k < 4; k++) {
		struct sevm__buf b = { 0 };
		struct sevm__stream_writer w;

		ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, 0), 0);
		fill_pages(&w, 1, 2, false);
		switch (k) {
		case 0: w.t.records++; break;
		case 1: w.t.pages_shared--; break;
		case 2: w.t.pages_private++; break;
		case 3: w.t.payload_bytes += 8; break;
		}
		ck_assert_int_eq(sevm__stream_end(&w), 0);
		ck_assert_int_eq(read_one(b.data, b.len, &out), -SEVM_ERR_FORMAT);
		ck_assert_msg(has_msg("END (0xffff)") && has_msg("the reader saw"), "%s: %s",
			      what[k], sevm_last_error());
		ck_assert(!out.ended);
		sevm__buf_free(&b);
	}
}
END_TEST

START_TEST(iterations_must_agree)
{
	static struct run out;
	struct sevm__buf b = { 0 };
	struct sevm__stream_writer w;

	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, 0), 0);
	fill_pages(&w, 1, 2, false);
	w.iter_shared = 3;
	ck_assert_int_eq(sevm__stream_put_iteration(&w), 0);
	ck_assert_int_eq(sevm__stream_end(&w), 0);
	ck_assert_int_eq(read_one(b.data, b.len, &out), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("ITERATION (0x0007) iteration 0x0"));
	sevm__buf_reset(&b);
	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, 0), 0);
	w.iteration = 1;
	ck_assert_int_eq(sevm__stream_put_iteration(&w), 0);
	ck_assert_int_eq(sevm__stream_end(&w), 0);
	ck_assert_int_eq(read_one(b.data, b.len, &out), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("expected iteration 0"));
	sevm__buf_free(&b);
}
END_TEST

START_TEST(unknown_records)
{
	static struct run out;
	struct sevm__buf b = { 0 };
	struct sevm__stream_writer w;

	/* Optional: checked, counted in END, skipped. */
	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, 0), 0);
	ck_assert_int_eq(sevm__stream_put(&w, 0x0200, 0, 42, 7, "future", 6), 0);
	fill_pages(&w, 1, 1, false);
	ck_assert_int_eq(sevm__stream_end(&w), 0);
	ck_assert_int_eq(read_one(b.data, b.len, &out), 0);
	ck_assert(out.ended);
	ck_assert_int_eq(out.nr, 2);
	ck_assert_uint_eq(out.rec[0].type, SEVM_REC_SHARED);
	/* ... fed a byte at a time too. */
	feed(b.data, b.len, 1, 0, &out);
	ck_assert_int_eq(out.rc, 0);
	ck_assert_int_eq(out.nr, 2);
	/* A damaged unknown record is still caught. */
	b.data[32 + 24] ^= 1;
	ck_assert_int_eq(read_one(b.data, b.len, &out), -SEVM_ERR_CHECKSUM);
	/* Mandatory: rejected, naming it. */
	sevm__buf_reset(&b);
	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, 0), 0);
	ck_assert_int_eq(sevm__stream_put(&w, 0x0200, SEVM_STREAM_MANDATORY, 42, 0, "x", 1), 0);
	ck_assert_int_eq(sevm__stream_end(&w), 0);
	ck_assert_int_eq(read_one(b.data, b.len, &out), -SEVM_ERR_VERSION);
	ck_assert(has_msg("unknown mandatory record"));
	ck_assert(has_msg("(0x0200) arg 0x2a at stream offset 32"));
	sevm__buf_free(&b);
}
END_TEST

START_TEST(header_checked)
{
	static struct run out;
	struct sevm__buf b = { 0 };
	uint8_t *c;

	build_small(&b);
	c = malloc(b.len);
	memcpy(c, b.data, b.len);
	c[0] = 'X';
	ck_assert_int_eq(read_one(c, b.len, &out), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("bad magic"));
	memcpy(c, b.data, b.len);
	c[8] = 2;
	ck_assert_int_eq(read_one(c, b.len, &out), -SEVM_ERR_VERSION);
	/* A higher minor is read. */
	memcpy(c, b.data, b.len);
	c[10] = 9;
	fix_header_crc(c);
	ck_assert_int_eq(read_one(c, b.len, &out), 0);
	ck_assert(out.ended);
	/* An unknown feature changes what records mean. */
	memcpy(c, b.data, b.len);
	sevm__put32(c + 20, 0x100);
	fix_header_crc(c);
	ck_assert_int_eq(read_one(c, b.len, &out), -SEVM_ERR_VERSION);
	/* SEV-ES without SEV; a policy in a plain stream; reserved. */
	for (int k = 0; k < 3; k++) {
		memcpy(c, b.data, b.len);
		sevm__put32(c + (k == 2 ? 24 : k ? 16 : 20), k == 0 ? SEVM_STREAM_F_SEV_ES : 1);
		fix_header_crc(c);
		ck_assert_int_eq(read_one(c, b.len, &out), -SEVM_ERR_FORMAT);
	}
	free(c);
	sevm__buf_free(&b);
}
END_TEST

START_TEST(order_rules)
{
	static struct run out;
	struct sevm__buf b = { 0 };
	struct sevm__stream_writer w;
	uint8_t pdh[2084] = { 0 }, s[128] = { 0 }, hdr[52] = { 0 }, vmsa[4096] = { 0 };

	/* A private page before the session. */
	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, SEVM_STREAM_F_SEV), 0);
	fill_pages(&w, 1, 1, true);
	ck_assert_int_eq(sevm__stream_end(&w), 0);
	ck_assert_int_eq(read_one(b.data, b.len, &out), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("before the SESSION record"));
	/* Two sessions. */
	sevm__buf_reset(&b);
	ck_assert_int_eq(sevm__stream_begin(&w, &b, POLICY_ES, SEVM_STREAM_F_SEV |
					    SEVM_STREAM_F_SEV_ES), 0);
	ck_assert_int_eq(sevm__stream_put_session(&w, pdh, s), 0);
	ck_assert_int_eq(sevm__stream_put_vmsa(&w, 0, hdr, vmsa), 0);
	ck_assert_int_eq(sevm__stream_put_session(&w, pdh, s), 0);
	ck_assert_int_eq(sevm__stream_end(&w), 0);
	ck_assert_int_eq(read_one(b.data, b.len, &out), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("a second SESSION"));
	ck_assert_int_eq(out.nr, 2);
	/* A bitmap whose last piece never came. */
	sevm__buf_reset(&b);
	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, 0), 0);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_BITMAP, SEVM_STREAM_MANDATORY, 0, 0,
					  "abc", 3), 0);
	ck_assert_int_eq(sevm__stream_end(&w), 0);
	ck_assert_int_eq(read_one(b.data, b.len, &out), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("last piece"));
	/* Bytes after END. */
	sevm__buf_reset(&b);
	build_small(&b);
	memset(sevm__buf_grow(&b, 8), 0, 8);
	ck_assert_int_eq(read_one(b.data, b.len, &out), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("after END"));
	ck_assert_int_eq(out.nr, 5);
	ck_assert(!out.ended || out.rc < 0);
	sevm__buf_free(&b);
}
END_TEST

START_TEST(errors_are_sticky)
{
	struct sevm__buf b = { 0 };
	struct sevm__stream_reader r;
	struct sevm__stream_rec rec;
	const void *p;
	size_t n;

	build_small(&b);
	b.data[60] ^= 0x80;
	ck_assert_int_eq(sevm__stream_reader_init(&r, map, NR_MAP), 0);
	p = b.data;
	n = b.len;
	ck_assert_int_eq(sevm__stream_next(&r, &p, &n, &rec), -SEVM_ERR_CHECKSUM);
	ck_assert(has_msg("STATE (0x0006) arg 0x0 at stream offset 32"));
	p = b.data;
	n = b.len;
	ck_assert_int_eq(sevm__stream_next(&r, &p, &n, &rec), -SEVM_ERR_CHECKSUM);
	sevm__stream_reader_free(&r);
	/* A memory map the reader cannot bisect is refused. */
	{
		const struct sevm_gfn_range bad[] = { { 10, 5 }, { 12, 5 } };
		const struct sevm_gfn_range empty[] = { { 10, 0 } };

		ck_assert_int_eq(sevm__stream_reader_init(&r, bad, 2), -EINVAL);
		ck_assert_int_eq(sevm__stream_reader_init(&r, empty, 1), -EINVAL);
	}
	sevm__buf_free(&b);
}
END_TEST

START_TEST(writer_refuses_what_no_reader_takes)
{
	struct sevm__buf b = { 0 };
	struct sevm__stream_writer w;
	uint8_t hdr[52] = { 0 }, vmsa[4096] = { 0 };
	size_t len;

	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, 0x8), -EINVAL);
	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, SEVM_STREAM_F_SEV_ES), -EINVAL);
	ck_assert_int_eq(sevm__stream_begin(&w, &b, 1, 0), -EINVAL);
	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, SEVM_STREAM_F_SEV |
					    SEVM_STREAM_F_SEV_ES), -EINVAL);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, 0), 0);
	len = b.len;
	ck_assert_ptr_null(sevm__stream_open_shared(&w, 0, 0));
	ck_assert_ptr_null(sevm__stream_open_shared(&w, 0, SEVM_STREAM_MAX_PAGES + 1));
	ck_assert_ptr_null(sevm__stream_open_private(&w, 0, 1));
	ck_assert(has_msg("without the SEV feature"));
	ck_assert_int_eq(sevm__stream_put_vmsa(&w, 0, hdr, vmsa), -EINVAL);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_SHARED, SEVM_STREAM_MANDATORY, 0, 1,
					  vmsa, 4095), -EINVAL);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_STATE, 0, 0, 0, "x", 1), -EINVAL);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_VMM, 0x2, 0, 0, "x", 1), -EINVAL);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_VMM, 0, 0, 0, vmsa,
					  SEVM_STREAM_MAX_LEN + 1), -E2BIG);
	ck_assert_uint_eq(b.len, len);
	ck_assert_uint_eq(w.t.records, 0);
	/* A bitmap longer than 1 MiB goes in pieces a reader puts back together. */
	{
		size_t big = (2u << 20) + 5;
		uint8_t *bytes = calloc(1, big);
		static struct run out;

		ck_assert_int_eq(sevm__stream_put_bitmap(&w, bytes, big), 0);
		ck_assert_int_eq(sevm__stream_end(&w), 0);
		ck_assert_int_eq(read_one(b.data, b.len, &out), 0);
		ck_assert(out.ended);
		ck_assert_int_eq(out.nr, 4);
		ck_assert_uint_eq(out.rec[1].arg, 1u << 20);
		ck_assert_uint_eq(out.rec[2].count, 1);
		ck_assert_uint_eq(out.rec[2].len, 5);
		free(bytes);
	}
	sevm__buf_free(&b);
}
END_TEST

/* CANCEL ends the reading with the peer named; a damaged one is only damage. */
START_TEST(cancel_names_the_peer)
{
	struct sevm__buf b = { 0 };
	struct sevm__stream_writer w;
	static struct run out;
	uint8_t page[4096] = { 0 };

	ck_assert_int_eq(sevm__stream_begin(&w, &b, 0, 0), 0);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_SHARED, SEVM_STREAM_MANDATORY, 0, 1,
					  page, sizeof(page)), 0);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_CANCEL, SEVM_STREAM_MANDATORY, 0, 0,
					  NULL, 0), 0);
	ck_assert_int_eq(sevm__stream_put(&w, SEVM_REC_CANCEL, SEVM_STREAM_MANDATORY, 0, 0,
					  "x", 1), -EINVAL);
	ck_assert_int_eq(read_one(b.data, b.len, &out), -SEVM_ERR_PEER);
	ck_assert(has_msg("CANCEL (0x0008)"));
	ck_assert(has_msg("cancelled"));
	ck_assert_int_eq(out.nr, 1);
	b.data[b.len - 4] ^= 1;	/* its CRC */
	ck_assert_int_eq(read_one(b.data, b.len, &out), -SEVM_ERR_CHECKSUM);
	sevm__buf_free(&b);
}
END_TEST

/* A record written from where its pages lie reads the same as one built in the buffer. */
START_TEST(shared_header_and_unit_sizes)
{
	struct sevm__buf a = { 0 }, b = { 0 };
	struct sevm__stream_writer wa, wb;
	static uint8_t pages[3 * 4096];
	uint8_t hdr[SEVM_STREAM_REC_HDR_LEN], *p;
	static struct run out;

	tu_rng_fill(pages, sizeof(pages));
	ck_assert_int_eq(sevm__stream_begin(&wa, &a, 0, 0), 0);
	ck_assert_int_eq(sevm__stream_begin(&wb, &b, 0, 0), 0);
	ck_assert_uint_eq(sevm__stream_header_size(a.data), SEVM_STREAM_HEADER_LEN);
	p = sevm__stream_open_shared(&wa, 5, 3);
	memcpy(p, pages, sizeof(pages));
	sevm__stream_close(&wa);
	ck_assert_int_eq(sevm__stream_shared_header(&wb, 5, 3, pages, hdr), 0);
	memcpy(sevm__buf_grow(&b, sizeof(hdr)), hdr, sizeof(hdr));
	memcpy(sevm__buf_grow(&b, sizeof(pages)), pages, sizeof(pages));
	ck_assert_uint_eq(a.len, b.len);
	ck_assert_int_eq(memcmp(a.data, b.data, a.len), 0);
	ck_assert_uint_eq(sevm__stream_record_size(hdr), 24 + sizeof(pages));
	ck_assert_int_eq(sevm__stream_shared_header(&wb, 5, 0, pages, hdr), -EINVAL);
	ck_assert_int_eq(sevm__stream_end(&wa), 0);
	ck_assert_int_eq(sevm__stream_end(&wb), 0);
	ck_assert_int_eq(a.len, b.len);
	ck_assert_int_eq(memcmp(a.data, b.data, a.len), 0);
	ck_assert_int_eq(read_one(b.data, b.len, &out), 0);
	ck_assert(out.ended);
	/* A length beyond the bound gives the minimum, for the reader to refuse. */
	sevm__put32(hdr + 4, SEVM_STREAM_MAX_LEN + 8);
	ck_assert_uint_eq(sevm__stream_record_size(hdr), 24);
	sevm__put32(a.data + 12, 1u << 20);
	ck_assert_uint_eq(sevm__stream_header_size(a.data), SEVM_STREAM_HEADER_LEN);
	sevm__buf_free(&a);
	sevm__buf_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stream");
	TCase *fmt = tcase_create("format");
	TCase *bad = tcase_create("damage");

	tcase_add_test(fmt, layout_is_the_documented_one);
	tcase_add_test(fmt, round_trip_every_kind);
	tcase_add_test(fmt, any_split_reads_the_same);
	tcase_add_test(fmt, largest_record_byte_by_byte);
	tcase_add_test(fmt, unknown_records);
	tcase_add_test(fmt, writer_refuses_what_no_reader_takes);
	tcase_add_test(fmt, cancel_names_the_peer);
	tcase_add_test(fmt, shared_header_and_unit_sizes);
	suite_add_tcase(s, fmt);

	tcase_set_timeout(bad, 50);
	tcase_add_test(bad, truncation_at_every_byte);
	tcase_add_test(bad, flipped_bit_anywhere_is_rejected);
	tcase_add_test(bad, forged_lengths);
	tcase_add_test(bad, gfn_outside_the_map);
	tcase_add_test(bad, end_must_agree);
	tcase_add_test(bad, iterations_must_agree);
	tcase_add_test(bad, header_checked);
	tcase_add_test(bad, order_rules);
	tcase_add_test(bad, errors_are_sticky);
	suite_add_tcase(s, bad);
	return tu_run(s);
}
