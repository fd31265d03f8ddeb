/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Page bitmaps against a reference model (a byte per page): thousands of
 * random set/clear ranges over several ranges with gaps, then test, count,
 * runs of both polarities, the four merges and a serialize round trip must
 * all agree with the model.  Then the refusals, corrupted bytes at every
 * offset, the KVM_HC_MAP_GPA_RANGE rules and what memory a bitmap costs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sevmigrate.h>

#include "core/crc32c.h"
#include "testutil.h"

#define CHUNK	(1ull << 15)

/*
 * In the hot loops: Check writes a record for every passing ck_assert (no
 * fork), which would be most of the run time; this only reports failures.
 */
#define CHECK(cond, ...)							\
	do {									\
		if (!(cond))							\
			ck_abort_msg(#cond ": " __VA_ARGS__);		\
	} while (0)

/*
 * Short last chunks, two adjacent ranges (slots back to back), gaps, a range
 * smaller than one word and one far up.
 */
static const struct sevm_gfn_range map[] = {
	{ 0x100, 3 * CHUNK + 777 },
	{ 0x100 + 3 * CHUNK + 777, 40000 },	/* adjacent to the first */
	{ 0x200000, 70001 },
	{ 0x200000 + 70001 + 5, 37 },
	{ 1ull << 30, 2 * CHUNK },
};
#define NR_MAP	(sizeof(map) / sizeof(map[0]))

struct model {
	uint8_t *page[NR_MAP];
};

static uint64_t below(uint64_t n)
{
	return tu_rng() % n;
}

static void model_init(struct model *m)
{
	for (unsigned int i = 0; i < NR_MAP; i++)
		m->page[i] = calloc(map[i].npages, 1);
}

static void model_free(struct model *m)
{
	for (unsigned int i = 0; i < NR_MAP; i++)
		free(m->page[i]);
}

/* Set or clear [gfn, gfn + n), which lies inside the map, in the model. */
static void model_fill(struct model *m, uint64_t gfn, uint64_t n, uint8_t v)
{
	for (unsigned int i = 0; i < NR_MAP && n; i++) {
		uint64_t end = map[i].gfn + map[i].npages;

		if (gfn < map[i].gfn || gfn >= end)
			continue;
		uint64_t k = end - gfn < n ? end - gfn : n;

		memset(m->page[i] + (gfn - map[i].gfn), v, k);
		gfn += k;
		n -= k;
	}
	CHECK(n == 0, "");
}

static uint8_t model_get(const struct model *m, uint64_t gfn)
{
	for (unsigned int i = 0; i < NR_MAP; i++)
		if (gfn >= map[i].gfn && gfn - map[i].gfn < map[i].npages)
			return m->page[i][gfn - map[i].gfn];
	ck_abort_msg("gfn %#" PRIx64 " outside the model", gfn);
	return 0;
}

/* A random span inside the map: small, large, chunk-spanning or one whole chunk. */
static void random_span(uint64_t *gfn, uint64_t *n)
{
	unsigned int i = (unsigned int)below(NR_MAP);
	uint64_t off, len, room = map[i].npages;

	/* The first range runs on into the second. */
	if (i == 0)
		room += map[1].npages;
	switch (below(5)) {
	case 0:
		len = 1 + below(70);
		break;
	case 1:
		len = 1 + below(3000);
		break;
	case 2:
		len = 1 + below(3 * CHUNK);
		break;
	case 3:		/* exactly one chunk of the range */
		off = below((map[i].npages + CHUNK - 1) / CHUNK) * CHUNK;
		*gfn = map[i].gfn + off;
		*n = map[i].npages - off < CHUNK ? map[i].npages - off : CHUNK;
		return;
	default:
		len = room;
		break;
	}
	if (len > room)
		len = room;
	off = below(room - len + 1);
	*gfn = map[i].gfn + off;
	*n = len;
}

static void random_ops(struct sevm_bitmap *b, struct model *m, unsigned int nops)
{
	for (unsigned int k = 0; k < nops; k++) {
		uint64_t gfn, n;
		bool set = below(2);

		random_span(&gfn, &n);
		int r = set ? sevm_bitmap_set(b, gfn, n) : sevm_bitmap_clear(b, gfn, n);

		CHECK(r == 0, "%s", sevm_last_error());
		model_fill(m, gfn, n, set);
	}
}

/* Every page through test(), whole ranges and random spans through count(). */
static void check_points(const struct sevm_bitmap *b, const struct model *m)
{
	for (unsigned int i = 0; i < NR_MAP; i++) {
		int64_t ones = 0;

		for (uint64_t p = 0; p < map[i].npages; p++) {
			int t = sevm_bitmap_test(b, map[i].gfn + p);

			CHECK(t == m->page[i][p], "range %u page %" PRIu64 ": %d, model %d",
				      i, p, t, m->page[i][p]);
			ones += t;
		}
		CHECK(sevm_bitmap_count(b, map[i].gfn, map[i].npages) == ones, "range %u", i);
	}
	for (int k = 0; k < 30; k++) {
		uint64_t gfn, n;
		int64_t want = 0;

		random_span(&gfn, &n);
		for (uint64_t g = gfn; g < gfn + n; g++)
			want += model_get(m, g);
		CHECK(sevm_bitmap_count(b, gfn, n) == want, "gfn %#" PRIx64 " + %" PRIu64, gfn, n);
	}
}

/* The runs of one polarity over the whole map: exactly the model's, each maximal. */
static void check_runs(const struct sevm_bitmap *b, const struct model *m, bool set)
{
	struct sevm_gfn_range run, prev = { 0, 0 };
	uint64_t gfn = 0, covered = 0, want = 0;
	unsigned int i = 0;

	while (sevm_bitmap_next_run(b, gfn, set, &run) == 1) {
		CHECK(run.npages > 0, "");
		CHECK(run.gfn >= gfn, "");
		while (run.gfn >= map[i].gfn + map[i].npages)
			i++;
		CHECK(run.gfn + run.npages <= map[i].gfn + map[i].npages, "");
		/* Maximal: the page before is of the other kind, unless it starts a range. */
		CHECK(!(prev.npages && prev.gfn + prev.npages == run.gfn &&
			run.gfn != map[i].gfn), "");
		for (uint64_t p = run.gfn - map[i].gfn; p < run.gfn - map[i].gfn + run.npages; p++)
			CHECK(m->page[i][p] == set, "range %u page %" PRIu64, i, p);
		if (run.gfn > map[i].gfn && run.gfn > gfn)
			CHECK(m->page[i][run.gfn - map[i].gfn - 1] != set, "");
		if (run.gfn + run.npages < map[i].gfn + map[i].npages)
			CHECK(m->page[i][run.gfn + run.npages - map[i].gfn] != set, "");
		covered += run.npages;
		prev = run;
		gfn = run.gfn + run.npages;
	}
	for (i = 0; i < NR_MAP; i++)
		for (uint64_t p = 0; p < map[i].npages; p++)
			want += m->page[i][p] == set;
	CHECK(covered == want, "");
}

static void check_all(const struct sevm_bitmap *b, const struct model *m)
{
	check_points(b, m);
	check_runs(b, m, true);
	check_runs(b, m, false);
}

static struct sevm_bitmap *new_map(void)
{
	struct sevm_bitmap *b = NULL;

	ck_assert_int_eq(sevm_bitmap_new(map, NR_MAP, &b), 0);
	return b;
}

static struct sevm_bitmap *round_trip(const struct sevm_bitmap *b)
{
	ssize_t n = sevm_bitmap_serialize(b, NULL, 0);
	struct sevm_bitmap *c = NULL;
	uint8_t *buf;

	ck_assert_int_gt(n, 0);
	buf = malloc((size_t)n);
	ck_assert_int_eq(sevm_bitmap_serialize(b, buf, (size_t)n - 1), -ENOSPC);
	ck_assert_int_eq(sevm_bitmap_serialize(b, buf, (size_t)n), n);
	ck_assert_int_eq(sevm_bitmap_deserialize(buf, (size_t)n, &c), 0);
	free(buf);
	return c;
}

static void check_merges(const struct sevm_bitmap *a, const struct model *ma)
{
	struct sevm_bitmap *src = new_map();
	struct model ms;

	model_init(&ms);
	random_ops(src, &ms, 40);
	for (int op = SEVM_BITMAP_OR; op <= SEVM_BITMAP_COPY; op++) {
		struct sevm_bitmap *d = new_map();
		struct model md;

		model_init(&md);
		ck_assert_int_eq(sevm_bitmap_merge(d, a, SEVM_BITMAP_COPY), 0);
		ck_assert_int_eq(sevm_bitmap_merge(d, src, (enum sevm_bitmap_op)op), 0);
		for (unsigned int i = 0; i < NR_MAP; i++)
			for (uint64_t p = 0; p < map[i].npages; p++) {
				uint8_t x = ma->page[i][p], y = ms.page[i][p];

				md.page[i][p] = op == SEVM_BITMAP_OR ? x | y :
						op == SEVM_BITMAP_AND ? x & y :
						op == SEVM_BITMAP_ANDNOT ? x & !y : y;
			}
		check_all(d, &md);
		model_free(&md);
		sevm_bitmap_free(d);
	}
	model_free(&ms);
	sevm_bitmap_free(src);
}

START_TEST(random_against_model)
{
	struct sevm_bitmap *b = new_map();
	struct model m;

	model_init(&m);
	check_all(b, &m);
	for (int batch = 0; batch < 40; batch++) {
		struct sevm_bitmap *c;

		random_ops(b, &m, batch < 30 ? 100 : 500);
		check_all(b, &m);
		c = round_trip(b);
		check_all(c, &m);
		sevm_bitmap_free(c);
		if (batch % 5 == 0)
			check_merges(b, &m);
	}
	model_free(&m);
	sevm_bitmap_free(b);
}
END_TEST

START_TEST(merge_with_itself)
{
	struct sevm_bitmap *b = new_map();
	struct model m;

	model_init(&m);
	random_ops(b, &m, 200);
	ck_assert_int_eq(sevm_bitmap_merge(b, b, SEVM_BITMAP_OR), 0);
	ck_assert_int_eq(sevm_bitmap_merge(b, b, SEVM_BITMAP_AND), 0);
	ck_assert_int_eq(sevm_bitmap_merge(b, b, SEVM_BITMAP_COPY), 0);
	check_all(b, &m);
	ck_assert_int_eq(sevm_bitmap_merge(b, b, SEVM_BITMAP_ANDNOT), 0);
	for (unsigned int i = 0; i < NR_MAP; i++)
		memset(m.page[i], 0, map[i].npages);
	check_all(b, &m);
	model_free(&m);
	sevm_bitmap_free(b);
}
END_TEST

static void assert_msg_has(const char *s)
{
	ck_assert_msg(strstr(sevm_last_error(), s), "\"%s\" not in \"%s\"", s, sevm_last_error());
}

START_TEST(refusals)
{
	struct sevm_bitmap *b = new_map(), *other = NULL;
	struct sevm_gfn_range bad[2] = { { 100, 10 }, { 105, 10 } }, run;
	uint64_t gap = map[2].gfn + map[2].npages;	/* between ranges 2 and 3 */

	ck_assert_int_eq(sevm_bitmap_new(NULL, 1, &other), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_new(map, 0, &other), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_new(map, 1, NULL), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_new(bad, 2, &other), -EINVAL);	/* overlapping */
	bad[1].gfn = 50;
	ck_assert_int_eq(sevm_bitmap_new(bad, 2, &other), -EINVAL);	/* unsorted */
	bad[1] = (struct sevm_gfn_range){ 200, 0 };
	ck_assert_int_eq(sevm_bitmap_new(bad, 2, &other), -EINVAL);	/* empty */
	bad[1] = (struct sevm_gfn_range){ UINT64_MAX - 5, 10 };
	ck_assert_int_eq(sevm_bitmap_new(bad, 2, &other), -EINVAL);	/* wraps */
	bad[1] = (struct sevm_gfn_range){ 1ull << 40, 1 };
	ck_assert_int_eq(sevm_bitmap_new(bad, 2, &other), -EINVAL);	/* past 52-bit GPAs */
	ck_assert_ptr_null(other);

	ck_assert_int_eq(sevm_bitmap_set(NULL, 0x100, 1), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_set(b, 0x100, 0), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_set(b, 0xff, 1), -ERANGE);
	assert_msg_has("gfn 0xff ");
	ck_assert_int_eq(sevm_bitmap_clear(b, gap, 1), -ERANGE);
	ck_assert_int_eq(sevm_bitmap_set(b, gap - 1, 2), -ERANGE);	/* runs into the gap */
	assert_msg_has("is outside the map");
	ck_assert_int_eq(sevm_bitmap_set(b, map[2].gfn, UINT64_MAX), -ERANGE);	/* wraps */
	ck_assert_int_eq(sevm_bitmap_count(b, map[4].gfn + map[4].npages, 1), -ERANGE);
	ck_assert_int_eq(sevm_bitmap_count(b, map[4].gfn, 0), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_test(b, gap), -ERANGE);
	ck_assert_int_eq(sevm_bitmap_test(b, UINT64_MAX), -ERANGE);
	ck_assert_int_eq(sevm_bitmap_test(NULL, 0x100), -EINVAL);
	/* Nothing of a refused call happened. */
	ck_assert_int_eq(sevm_bitmap_test(b, gap - 1), 0);
	/* Across the two adjacent ranges is inside the map. */
	ck_assert_int_eq(sevm_bitmap_set(b, map[1].gfn - 5, 10), 0);
	ck_assert_int_eq(sevm_bitmap_count(b, map[0].gfn, map[0].npages + map[1].npages), 10);

	ck_assert_int_eq(sevm_bitmap_next_run(b, 0, true, NULL), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_next_run(NULL, 0, true, &run), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_next_run(b, UINT64_MAX, false, &run), 0);
	ck_assert_int_eq(sevm_bitmap_next_run(b, gap, false, &run), 1);	/* from a gap */
	ck_assert_uint_eq(run.gfn, map[3].gfn);
	ck_assert_uint_eq(run.npages, map[3].npages);

	ck_assert_int_eq(sevm_bitmap_new(map, NR_MAP - 1, &other), 0);
	ck_assert_int_eq(sevm_bitmap_merge(b, other, SEVM_BITMAP_OR), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_merge(b, NULL, SEVM_BITMAP_OR), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_merge(b, b, (enum sevm_bitmap_op)4), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_serialize(NULL, NULL, 0), -EINVAL);
	ck_assert_uint_eq(sevm_bitmap_memory(NULL), 0);
	sevm_bitmap_free(other);
	ck_assert_int_eq(sevm_bitmap_deserialize(NULL, 10, &other), -EINVAL);
	ck_assert_ptr_null(other);
	ck_assert_int_eq(sevm_bitmap_deserialize("x", 1, NULL), -EINVAL);
	sevm_bitmap_free(NULL);
	sevm_bitmap_free(b);
}
END_TEST

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static size_t small_bytes(uint8_t **out)
{
	static const struct sevm_gfn_range small[] = { { 0, 100 }, { 200, CHUNK + 64 } };
	struct sevm_bitmap *b = NULL;
	ssize_t n;

	ck_assert_int_eq(sevm_bitmap_new(small, 2, &b), 0);
	ck_assert_int_eq(sevm_bitmap_set(b, 3, 50), 0);			/* MIXED, short */
	ck_assert_int_eq(sevm_bitmap_set(b, 200 + CHUNK, 64), 0);	/* FULL, short */
	ck_assert_int_eq(sevm_bitmap_set(b, 300, 1), 0);
	n = sevm_bitmap_serialize(b, NULL, 0);
	*out = malloc((size_t)n);
	ck_assert_int_eq(sevm_bitmap_serialize(b, *out, (size_t)n), n);
	sevm_bitmap_free(b);
	return (size_t)n;
}

static void expect_refused(const uint8_t *buf, size_t len, const char *what, size_t at)
{
	struct sevm_bitmap *b = (struct sevm_bitmap *)1;
	int r = sevm_bitmap_deserialize(buf, len, &b);

	ck_assert_msg(r == -SEVM_ERR_FORMAT || r == -SEVM_ERR_CHECKSUM,
		      "%s at %zu: %d (%s)", what, at, r, sevm_last_error());
	ck_assert_ptr_null(b);
}

START_TEST(corrupted_bytes)
{
	uint8_t *buf, *bad;
	size_t n = small_bytes(&buf);
	struct sevm_bitmap *b = NULL;

	ck_assert_int_eq(sevm_bitmap_deserialize(buf, n, &b), 0);
	ck_assert_int_eq(sevm_bitmap_count(b, 0, 100), 50);
	ck_assert_int_eq(sevm_bitmap_count(b, 200, CHUNK + 64), 65);
	sevm_bitmap_free(b);
	bad = malloc(n);
	for (size_t at = 0; at < n; at++) {
		for (unsigned int flip = 1; flip < 256; flip <<= 1) {
			memcpy(bad, buf, n);
			bad[at] ^= (uint8_t)flip;
			expect_refused(bad, n, "bit flip", at);
		}
		expect_refused(buf, at, "truncated", at);
		/* With the CRC made right again the structure checks must hold on their own. */
		for (unsigned int flip = 1; flip < 256; flip <<= 1) {
			int r;

			memcpy(bad, buf, n);
			bad[at] ^= (uint8_t)flip;
			put_le(bad + n - 4, sevm__crc32c(0, bad, n - 4), 4);
			b = NULL;
			r = sevm_bitmap_deserialize(bad, n, &b);
			ck_assert_msg(r == 0 || r == -SEVM_ERR_FORMAT || r == -SEVM_ERR_VERSION,
				      "re-CRCed flip at %zu: %d", at, r);
			if (r == 0) {	/* a flip in a block: still a well-formed bitmap */
				struct sevm_gfn_range run;

				ck_assert_int_eq(sevm_bitmap_next_run(b, 0, true, &run), 1);
				ck_assert_int_eq(sevm_bitmap_serialize(b, NULL, 0), (ssize_t)n);
				sevm_bitmap_free(b);
			}
		}
	}
	free(bad);
	free(buf);
}
END_TEST

/* A header with a right CRC over lies: refused before anything is allocated for them. */
START_TEST(forged_lengths)
{
	uint8_t f[64] = "SEVMBMP1";
	struct sevm_bitmap *b = NULL;

	put_le(f + 8, 1, 4);
	put_le(f + 12, UINT32_MAX, 4);	/* every range count the field can hold */
	put_le(f + 16, sevm__crc32c(0, f, 16), 4);
	ck_assert_int_eq(sevm_bitmap_deserialize(f, 20, &b), -SEVM_ERR_FORMAT);
	put_le(f + 16, 0, 8);
	put_le(f + 24, 1ull << 39, 8);	/* 2^24 chunks ... */
	f[32] = 2;			/* ... all MIXED, with no bytes for them */
	put_le(f + 33, 1u << 24, 4);
	put_le(f + 37, sevm__crc32c(0, f, 37), 4);
	ck_assert_int_eq(sevm_bitmap_deserialize(f, 37 + 4, &b), -SEVM_ERR_FORMAT);
	ck_assert_int_eq(sevm_bitmap_deserialize(f, 13, &b), -SEVM_ERR_FORMAT);
	put_le(f + 12, 0x10000, 4);
	put_le(f + 37, sevm__crc32c(0, f, 37), 4);
	ck_assert_int_eq(sevm_bitmap_deserialize(f, 41, &b), -SEVM_ERR_FORMAT);
	put_le(f + 12, 1, 4);
	f[32] = 0;			/* all EMPTY: a well-formed 2^39-page map */
	put_le(f + 37, sevm__crc32c(0, f, 37), 4);
	ck_assert_int_eq(sevm_bitmap_deserialize(f, 41, &b), 0);
	ck_assert_int_eq(sevm_bitmap_test(b, (1ull << 39) - 1), 0);
	sevm_bitmap_free(b);
	put_le(f + 8, 2, 4);		/* a version this library does not know */
	put_le(f + 37, sevm__crc32c(0, f, 37), 4);
	ck_assert_int_eq(sevm_bitmap_deserialize(f, 41, &b), -SEVM_ERR_VERSION);
	ck_assert_ptr_null(b);
}
END_TEST

START_TEST(map_gpa_range_rules)
{
	struct sevm_bitmap *b = new_map();
	uint64_t base = map[2].gfn * 4096;
	uint64_t a[3] = { base + 4096, 8, 0x10 };	/* ENCRYPTED */

	ck_assert_int_eq(sevm_bitmap_map_gpa_range(b, a), 0);
	ck_assert_int_eq(sevm_bitmap_count(b, map[2].gfn, map[2].npages), 8);
	a[2] = 0x10 | 1;				/* the 2M hint: a1 still counts 4K pages */
	a[1] = 1;
	a[0] = base + 100 * 4096;
	ck_assert_int_eq(sevm_bitmap_map_gpa_range(b, a), 0);
	ck_assert_int_eq(sevm_bitmap_count(b, map[2].gfn, map[2].npages), 9);
	a[0] = base + 4096;				/* shared again: bits 63:5 ignored */
	a[1] = 4;
	a[2] = 0xffffffffffffffe0ull & ~0x10ull;
	ck_assert_int_eq(sevm_bitmap_map_gpa_range(b, a), 0);
	ck_assert_int_eq(sevm_bitmap_count(b, map[2].gfn, map[2].npages), 5);
	ck_assert_int_eq(sevm_bitmap_test(b, map[2].gfn + 5), 1);
	ck_assert_int_eq(sevm_bitmap_test(b, map[2].gfn + 4), 0);

	a[0] = base + 1;				/* unaligned */
	ck_assert_int_eq(sevm_bitmap_map_gpa_range(b, a), -22);
	a[0] = base;
	a[1] = 0;
	ck_assert_int_eq(sevm_bitmap_map_gpa_range(b, a), -22);
	a[1] = map[2].npages + 1;			/* past the slot */
	ck_assert_int_eq(sevm_bitmap_map_gpa_range(b, a), -22);
	a[0] = 0;					/* below the map */
	a[1] = 1;
	ck_assert_int_eq(sevm_bitmap_map_gpa_range(b, a), -22);
	a[0] = UINT64_MAX & ~4095ull;			/* wraps */
	a[1] = 2;
	ck_assert_int_eq(sevm_bitmap_map_gpa_range(b, a), -22);
	ck_assert_int_eq(sevm_bitmap_map_gpa_range(NULL, a), -22);
	ck_assert_int_eq(sevm_bitmap_map_gpa_range(b, NULL), -22);
	ck_assert_int_eq(sevm_bitmap_count(b, map[2].gfn, map[2].npages), 5);
	sevm_bitmap_free(b);
}
END_TEST

START_TEST(memory_costs)
{
	const struct sevm_gfn_range tib = { 0, 1ull << 28 }, gib = { 1ull << 20, 1ull << 18 };
	struct sevm_bitmap *b = NULL;
	size_t clear_cost, dense;
	uint64_t p = 0;

	ck_assert_int_eq(sevm_bitmap_new(&tib, 1, &b), 0);
	clear_cost = sevm_bitmap_memory(b);
	ck_assert_uint_lt(clear_cost, 64 << 10);
	ck_assert_int_eq(sevm_bitmap_set(b, 0, tib.npages), 0);
	ck_assert_uint_lt(sevm_bitmap_memory(b), 64 << 10);
	ck_assert_int_eq(sevm_bitmap_count(b, 0, tib.npages), (int64_t)tib.npages);
	/* A hole, then filled again: the block goes when its chunk is full. */
	ck_assert_int_eq(sevm_bitmap_clear(b, 12345, 1), 0);
	ck_assert_uint_ge(sevm_bitmap_memory(b), clear_cost + 4096);
	ck_assert_int_eq(sevm_bitmap_set(b, 12345, 1), 0);
	ck_assert_uint_lt(sevm_bitmap_memory(b), 64 << 10);
	ck_assert_int_eq(sevm_bitmap_clear(b, 0, tib.npages), 0);
	ck_assert_uint_lt(sevm_bitmap_memory(b), 64 << 10);
	sevm_bitmap_free(b);

	ck_assert_int_eq(sevm_bitmap_new(&gib, 1, &b), 0);
	while (p < gib.npages) {
		uint64_t n = 1 + below(8);

		if (n > gib.npages - p)
			n = gib.npages - p;
		if (below(2))
			ck_assert_int_eq(sevm_bitmap_set(b, gib.gfn + p, n), 0);
		p += n;
	}
	dense = sevm_bitmap_memory(b);
	ck_assert_msg(dense * 8 <= gib.npages * 105 / 100, "%zu bytes for %" PRIu64 " pages",
		      dense, gib.npages);
	sevm_bitmap_free(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bitmap");
	TCase *tc = tcase_create("bitmap");

	/* The sequence the checks were written with: reproducible from run to run. */
	tu_rng_seed(0x9e3779b97f4a7c15ull);

	tcase_add_test(tc, random_against_model);
	tcase_add_test(tc, merge_with_itself);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, corrupted_bytes);
	tcase_add_test(tc, forged_lengths);
	tcase_add_test(tc, map_gpa_range_rules);
	tcase_add_test(tc, memory_costs);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
