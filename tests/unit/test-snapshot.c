/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The snapshot codec: CRC32C, the growable buffer, the byte layout, and a
 * reader that rejects every truncation and every flipped bit.
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
#include "core/le.h"
#include "testutil.h"

#define has_msg(s) (strstr(sevm_last_error(), (s)) != NULL)

/* Reseal the section at off after a forged edit, over len payload bytes. */
static void fix_crc(uint8_t *p, size_t off, size_t len)
{
	uint8_t *h = p + off;

	sevm__put32(h + 12, 0);
	sevm__put32(h + 12, sevm__crc32c(sevm__crc32c(0, h, 24), h + 24, len));
}

/*
 * Read a whole snapshot (or bare sections) as a consumer would: the last
 * return value (0 once the input is used up), sections seen, END seen.
 */
static int read_all(const void *p, size_t len, bool file, int *nr, bool *ended)
{
	struct sevm__snap_reader r;
	struct sevm__sect s;
	int rc = 0;

	*nr = 0;
	*ended = false;
	if (file)
		rc = sevm__snap_reader_init(&r, p, len);
	else
		sevm__snap_reader_sections(&r, p, len);
	if (rc)
		return rc;
	while ((rc = sevm__snap_next(&r, &s)) > 0)
		(*nr)++;
	*ended = r.ended;
	return rc;
}

/*
 * Header, GUEST, REGS (13 bytes: padded), VMM (empty), END; bounds[i] is
 * where section i starts, the input's end when i sections were read.
 */
#define SMALL_BOUNDS 4
static void build_small(struct sevm__buf *b, size_t bounds[SMALL_BOUNDS])
{
	struct sevm__sect_guest g = { .nr_vcpus = 1, .vm_type = 2, .vcpu_items = 0x18 };
	struct sevm__snap_writer w;

	ck_assert_int_eq(sevm__snap_begin(&w, b), 0);
	bounds[0] = b->len;
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_GUEST, SEVM_SNAP_MANDATORY, 0, &g, sizeof(g)), 0);
	bounds[1] = b->len;
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_REGS, SEVM_SNAP_MANDATORY, 0, "0123456789abc", 13), 0);
	bounds[2] = b->len;
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_VMM, 0, 0, NULL, 0), 0);
	bounds[3] = b->len;
	ck_assert_int_eq(sevm__snap_end(&w), 0);
}

/* ---- CRC32C ------------------------------------------------------------- */

START_TEST(crc_check_value)
{
	ck_assert_uint_eq(sevm__crc32c(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(sevm__crc32c_sw(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(sevm__crc32c(0, NULL, 0), 0);
	ck_assert_uint_eq(sevm__crc32c(0x12345678, "", 0), 0x12345678);
	/* RFC 3720 B.4: 32 bytes of zeros. */
	uint8_t z[32] = { 0 };
	ck_assert_uint_eq(sevm__crc32c(0, z, sizeof(z)), 0x8a9136aau);
}
END_TEST

START_TEST(crc_chains)
{
	uint8_t buf[1031];
	uint32_t whole, whole_sw;

	tu_rng_seed(1);
	tu_rng_fill(buf, sizeof(buf));
	whole = sevm__crc32c(0, buf, sizeof(buf));
	whole_sw = sevm__crc32c_sw(0, buf, sizeof(buf));
	ck_assert_uint_eq(whole, whole_sw);
	for (size_t cut = 0; cut <= sizeof(buf); cut++) {
		ck_assert_uint_eq(sevm__crc32c(sevm__crc32c(0, buf, cut), buf + cut,
					       sizeof(buf) - cut), whole);
		ck_assert_uint_eq(sevm__crc32c_sw(sevm__crc32c_sw(0, buf, cut), buf + cut,
						  sizeof(buf) - cut), whole);
	}
}
END_TEST

/* Long enough to take the hardware path's 3 x 8192 and 3 x 256 blocks. */
#define CRC_MAX_LEN (3 * 8192 * 2 + 3 * 256 + 100)

START_TEST(crc_hw_equals_sw)
{
	uint8_t *buf = malloc(CRC_MAX_LEN + 16);

	ck_assert_ptr_nonnull(buf);
	if (!__builtin_cpu_supports("sse4.2"))
		printf("note: no SSE4.2 here, sevm__crc32c takes the table path too\n");
	tu_rng_seed(2);
	tu_rng_fill(buf, CRC_MAX_LEN + 16);
	for (int i = 0; i < 3000; i++) {
		size_t align = tu_rng() % 16;
		size_t len = i < 100 ? (size_t)i : tu_rng() % (CRC_MAX_LEN + 1);
		uint32_t init = (uint32_t)tu_rng();

		ck_assert_msg(sevm__crc32c(init, buf + align, len) ==
			      sevm__crc32c_sw(init, buf + align, len),
			      "len %zu align %zu", len, align);
	}
	free(buf);
}
END_TEST

/* ---- Buffer ------------------------------------------------------------- */

START_TEST(buf_grows_and_keeps)
{
	struct sevm__buf b = { 0 };
	uint8_t *p;
	size_t cap;

	ck_assert_ptr_nonnull(sevm__buf_grow(&b, 0));
	ck_assert_uint_eq(b.len, 0);
	for (int i = 0; i < 5000; i++) {
		p = sevm__buf_grow(&b, 3);
		ck_assert_ptr_nonnull(p);
		memset(p, i & 0xff, 3);
	}
	ck_assert_uint_eq(b.len, 15000);
	ck_assert_uint_ge(b.cap, b.len);
	for (int i = 0; i < 5000; i++)
		ck_assert_uint_eq(b.data[3 * i + 2], i & 0xff);
	/* Overflow: NULL, nothing moved or changed. */
	p = b.data;
	cap = b.cap;
	ck_assert_ptr_null(sevm__buf_grow(&b, SIZE_MAX));
	ck_assert_ptr_null(sevm__buf_grow(&b, SIZE_MAX - b.len + 1));
	ck_assert_ptr_eq(b.data, p);
	ck_assert_uint_eq(b.cap, cap);
	ck_assert_uint_eq(b.len, 15000);
	ck_assert_uint_eq(b.data[14999], 4999 & 0xff);
	sevm__buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, cap);
	sevm__buf_free(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.cap, 0);
}
END_TEST

/* ---- Layout ------------------------------------------------------------- */

START_TEST(layout_is_the_documented_one)
{
	static const uint8_t header[32] = {
		'S', 'E', 'V', 'M', 'S', 'N', 'A', 'P', 1, 0, 0, 0, 32, 0, 0, 0,
	};
	uint8_t sect[24 + 8] = {
		0x04, 0x01, 0, 0,	/* id 0x104 */
		0x01, 0x00, 0, 0,	/* flags MANDATORY, reserved */
		0x02, 0, 0, 0,		/* instance 2 */
		0, 0, 0, 0,		/* crc, below */
		3, 0, 0, 0, 0, 0, 0, 0,	/* length 3 */
		'a', 'b', 'c', 0, 0, 0, 0, 0,
	};
	struct sevm__snap_writer w;
	struct sevm__buf b = { 0 };
	const uint8_t *end;

	sevm__put32(sect + 12, sevm__crc32c(sevm__crc32c(0, sect, 24), "abc", 3));
	ck_assert_int_eq(sevm__snap_begin(&w, &b), 0);
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_REGS, SEVM_SNAP_MANDATORY, 2, "abc", 3), 0);
	ck_assert_int_eq(sevm__snap_end(&w), 0);
	ck_assert_uint_eq(b.len, 32 + 32 + 24 + 16);
	ck_assert_mem_eq(b.data, header, 32);
	ck_assert_mem_eq(b.data + 32, sect, sizeof(sect));
	end = b.data + 64;
	ck_assert_uint_eq(end[0] | end[1] << 8, 0xffff);
	ck_assert_uint_eq(end[4], SEVM_SNAP_MANDATORY);
	ck_assert_uint_eq(end[16], 16);		/* length */
	ck_assert_uint_eq(end[24], 1);		/* nr_sections */
	ck_assert_uint_eq(end[32], 3);		/* payload_bytes */
	sevm__buf_free(&b);
}
END_TEST

/* ---- Round trips -------------------------------------------------------- */

#define RT_N 300

struct rt_sect {
	uint32_t id, instance;
	uint16_t flags;
	uint32_t len;
	uint8_t *data;
};

static void rt_make(struct rt_sect *t)
{
	tu_rng_seed(3);
	for (int i = 0; i < RT_N; i++) {
		t[i].id = (uint32_t)(tu_rng() % 0xffff);	/* anything but END */
		t[i].instance = (uint32_t)tu_rng();
		t[i].flags = tu_rng() & 1 ? SEVM_SNAP_MANDATORY : 0;
		t[i].len = (uint32_t)(tu_rng() % 5001);
		t[i].data = malloc(t[i].len + 1);
		tu_rng_fill(t[i].data, t[i].len);
	}
}

static void rt_check(const struct sevm__buf *b, const struct rt_sect *t)
{
	struct sevm__snap_reader r;
	struct sevm__sect s;
	uint64_t bytes = 0;

	ck_assert_uint_eq(b->len % 8, 0);
	ck_assert_int_eq(sevm__snap_reader_init(&r, b->data, b->len), 0);
	for (int i = 0; i < RT_N; i++) {
		ck_assert_int_eq(sevm__snap_next(&r, &s), 1);
		ck_assert_uint_eq(s.id, t[i].id);
		ck_assert_uint_eq(s.instance, t[i].instance);
		ck_assert_uint_eq(s.flags, t[i].flags);
		ck_assert_uint_eq(s.len, t[i].len);
		ck_assert_mem_eq(s.data, t[i].data, t[i].len);
		ck_assert_uint_eq(((const uint8_t *)s.data - b->data) % 8, 0);
		bytes += t[i].len;
	}
	ck_assert(!r.ended);
	ck_assert_int_eq(sevm__snap_next(&r, &s), 1);
	ck_assert_uint_eq(s.id, SEVM_SECT_END);
	ck_assert(r.ended);
	ck_assert_uint_eq(r.nr_sections, RT_N);
	ck_assert_uint_eq(r.payload_bytes, bytes);
	ck_assert_int_eq(sevm__snap_next(&r, &s), 0);
	ck_assert_int_eq(sevm__snap_next(&r, &s), 0);
}

START_TEST(round_trip_put_and_open)
{
	struct rt_sect t[RT_N];
	struct sevm__buf b1 = { 0 }, b2 = { 0 };
	struct sevm__snap_writer w1, w2;

	rt_make(t);
	ck_assert_int_eq(sevm__snap_begin(&w1, &b1), 0);
	ck_assert_int_eq(sevm__snap_begin(&w2, &b2), 0);
	for (int i = 0; i < RT_N; i++) {
		void *p;

		ck_assert_int_eq(sevm__snap_put(&w1, t[i].id, t[i].flags, t[i].instance,
						t[i].data, t[i].len), 0);
		p = sevm__snap_open(&w2, t[i].id, t[i].flags, t[i].instance, t[i].len);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(w2.open_at, b2.len - 24 - t[i].len - (-t[i].len & 7));
		memcpy(p, t[i].data, t[i].len);
		sevm__snap_close(&w2);
		ck_assert_uint_eq(w2.open_at, SIZE_MAX);
	}
	ck_assert_uint_eq(w1.nr_sections, RT_N);
	ck_assert_int_eq(sevm__snap_end(&w1), 0);
	ck_assert_int_eq(sevm__snap_end(&w2), 0);
	ck_assert_uint_eq(w1.nr_sections, RT_N);	/* END is not counted */
	ck_assert_uint_eq(b1.len, b2.len);
	ck_assert_mem_eq(b1.data, b2.data, b1.len);
	rt_check(&b1, t);
	rt_check(&b2, t);
	for (int i = 0; i < RT_N; i++)
		free(t[i].data);
	sevm__buf_free(&b1);
	sevm__buf_free(&b2);
}
END_TEST

START_TEST(bare_sections_in_a_message)
{
	struct sevm__snap_writer w;
	struct sevm__buf b = { 0 };
	struct sevm__snap_reader r;
	struct sevm__sect s;
	bool ended;
	int nr;

	/* A message header of the caller's, then one vCPU's sections. */
	memcpy(sevm__buf_grow(&b, 8), "MSGHDR!!", 8);
	sevm__snap_sections(&w, &b);
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_REGS, SEVM_SNAP_MANDATORY, 5, "r", 1), 0);
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_LAPIC, SEVM_SNAP_MANDATORY, 5, "l", 1), 0);
	ck_assert_mem_eq(b.data, "MSGHDR!!", 8);
	sevm__snap_reader_sections(&r, b.data + 8, b.len - 8);
	ck_assert_int_eq(sevm__snap_next(&r, &s), 1);
	ck_assert_uint_eq(s.instance, 5);
	ck_assert_int_eq(sevm__snap_next(&r, &s), 1);
	ck_assert_uint_eq(s.id, SEVM_SECT_LAPIC);
	ck_assert_int_eq(sevm__snap_next(&r, &s), 0);
	ck_assert(!r.ended);
	/* END is not expected in a message, but a stream may close with one. */
	ck_assert_int_eq(sevm__snap_end(&w), 0);
	ck_assert_int_eq(read_all(b.data + 8, b.len - 8, false, &nr, &ended), 0);
	ck_assert_int_eq(nr, 3);
	ck_assert(ended);
	sevm__buf_free(&b);
}
END_TEST

/*
 * The handoff's pattern: one writer's counts span several messages, one
 * reader is pointed at each message in turn, so END checks the whole stream.
 */
START_TEST(one_reader_across_messages)
{
	struct sevm__buf msg[3] = { { 0 } };
	struct sevm__snap_writer w;
	struct sevm__snap_reader r;
	struct sevm__sect s;
	int nr = 0, rc;

	for (int i = 0; i < 3; i++) {
		uint32_t nr_sections = i ? w.nr_sections : 0;
		uint64_t bytes = i ? w.payload_bytes : 0;

		sevm__snap_sections(&w, &msg[i]);
		w.nr_sections = nr_sections;
		w.payload_bytes = bytes;
		ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_REGS, SEVM_SNAP_MANDATORY, i, "regs", 4), 0);
		ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_XSAVE, SEVM_SNAP_MANDATORY, i, "xsave", 5), 0);
	}
	ck_assert_int_eq(sevm__snap_end(&w), 0);
	sevm__snap_reader_sections(&r, NULL, 0);
	ck_assert_int_eq(sevm__snap_next(&r, &s), 0);
	for (int i = 0; i < 3; i++) {
		r.p = msg[i].data;
		r.len = msg[i].len;
		r.off = 0;
		while ((rc = sevm__snap_next(&r, &s)) == 1) {
			ck_assert_uint_eq(s.instance, s.id == SEVM_SECT_END ? 0 : (uint32_t)i);
			nr++;
		}
		ck_assert_int_eq(rc, 0);
		ck_assert(r.ended == (i == 2));
	}
	ck_assert_int_eq(nr, 7);
	ck_assert_uint_eq(r.nr_sections, 6);
	ck_assert_uint_eq(r.payload_bytes, 27);
	/* The same last message read on its own: END disagrees. */
	sevm__snap_reader_sections(&r, msg[2].data, msg[2].len);
	while ((rc = sevm__snap_next(&r, &s)) == 1)
		;
	ck_assert_int_eq(rc, -SEVM_ERR_FORMAT);
	ck_assert(has_msg("END counts 6 sections of 27 bytes, the reader saw 2 of 9"));
	for (int i = 0; i < 3; i++)
		sevm__buf_free(&msg[i]);
}
END_TEST

START_TEST(writer_refuses_what_no_reader_takes)
{
	struct sevm__snap_writer w;
	struct sevm__buf b = { 0 };
	size_t len;

	ck_assert_int_eq(sevm__snap_begin(&w, &b), 0);
	len = b.len;
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_VMM, 0, 0, "", SEVM_SNAP_MAX_SECTION + 1ull),
			 -E2BIG);
	ck_assert(has_msg("section 0x1000 instance 0: 67108865 bytes, limit 67108864"));
	ck_assert_ptr_null(sevm__snap_open(&w, SEVM_SECT_VMM, 0, 0, UINT64_MAX));
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_VMM, 2, 0, "", 0), -EINVAL);
	ck_assert(has_msg("unknown flags 0x2"));
	ck_assert_uint_eq(b.len, len);
	ck_assert_uint_eq(w.nr_sections, 0);
	ck_assert_uint_eq(w.open_at, SIZE_MAX);
	sevm__buf_free(&b);
}
END_TEST

/* ---- Damage ------------------------------------------------------------- */

START_TEST(truncation_at_every_byte)
{
	struct sevm__buf b = { 0 };
	size_t bounds[SMALL_BOUNDS];
	bool ended;
	int nr;

	build_small(&b, bounds);
	ck_assert_int_eq(read_all(b.data, b.len, true, &nr, &ended), 0);
	ck_assert_int_eq(nr, 4);	/* END included */
	ck_assert(ended);
	for (size_t cut = 0; cut < b.len; cut++) {
		/* Exactly cut bytes on the heap, so an overread is caught by ASan. */
		uint8_t *p = malloc(cut ? cut : 1);
		int boundary = -1, rc;

		memcpy(p, b.data, cut);
		for (int i = 0; i < SMALL_BOUNDS; i++)
			if (cut == bounds[i])
				boundary = i;
		rc = read_all(p, cut, true, &nr, &ended);
		if (boundary >= 0) {
			ck_assert_msg(rc == 0 && !ended && nr == boundary, "cut %zu", cut);
		} else {
			ck_assert_msg(rc == -SEVM_ERR_FORMAT, "cut %zu: %d", cut, rc);
			ck_assert(!ended);
		}
		if (cut == 10)
			ck_assert(has_msg("10 bytes: shorter than its 32-byte header"));
		if (cut == bounds[1] + 10)
			ck_assert(has_msg("section header at offset 80 truncated: 10 of 24"));
		if (cut == bounds[1] + 30)
			ck_assert(has_msg("section 0x104 instance 0 at offset 80: truncated: "
					  "13 payload and 3 padding bytes, 6 left"));
		free(p);
	}
	sevm__buf_free(&b);
}
END_TEST

START_TEST(flipped_bit_anywhere_is_rejected)
{
	struct sevm__buf b = { 0 };
	size_t bounds[SMALL_BOUNDS];
	int seen[3] = { 0 };

	build_small(&b, bounds);
	for (size_t bit = 0; bit < 8 * b.len; bit++) {
		uint8_t *p = malloc(b.len);
		bool ended;
		int nr, rc;

		memcpy(p, b.data, b.len);
		p[bit / 8] ^= 1u << (bit % 8);
		rc = read_all(p, b.len, true, &nr, &ended);
		if (bit / 8 == 10 || bit / 8 == 11) {
			/* The minor version: a newer minor is read by design. */
			ck_assert_msg(rc == 0 && ended, "minor bit %zu: %d", bit, rc);
		} else {
			ck_assert_msg(rc == -SEVM_ERR_FORMAT || rc == -SEVM_ERR_CHECKSUM ||
				      rc == -SEVM_ERR_VERSION, "bit %zu accepted: %d", bit, rc);
			seen[-rc - SEVM_ERR_FORMAT]++;
		}
		free(p);
	}
	/* Each kind of rejection happened somewhere. */
	ck_assert_int_gt(seen[0], 0);
	ck_assert_int_gt(seen[1], 0);
	ck_assert_int_gt(seen[2], 0);
	sevm__buf_free(&b);
}
END_TEST

/* Header, REGS "ABCDEFGH" at offset 32 (length field at 48), END. */
static void build_one(struct sevm__buf *b)
{
	struct sevm__snap_writer w;

	ck_assert_int_eq(sevm__snap_begin(&w, b), 0);
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_REGS, SEVM_SNAP_MANDATORY, 0, "ABCDEFGH", 8), 0);
	ck_assert_int_eq(sevm__snap_end(&w), 0);
}

static int read_forged(uint64_t length, bool reseal)
{
	struct sevm__buf b = { 0 };
	bool ended;
	int nr, rc;

	build_one(&b);
	sevm__put64(b.data + 48, length);
	if (reseal)
		fix_crc(b.data, 32, length < 8 ? length : 8);
	rc = read_all(b.data, b.len, true, &nr, &ended);
	sevm__buf_free(&b);
	return rc;
}

START_TEST(forged_lengths)
{
	ck_assert_int_eq(read_forged(8, false), 0);
	ck_assert_int_eq(read_forged(0, false), -SEVM_ERR_CHECKSUM);
	ck_assert(has_msg("section 0x104 instance 0 at offset 32: CRC32C is 0x"));
	/* Resealed, the empty section passes; its old payload is no section. */
	ck_assert_int_eq(read_forged(0, true), -SEVM_ERR_FORMAT);
	ck_assert_int_eq(read_forged(0xffffffffull, true), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("section 0x104 instance 0 at offset 32: claims 4294967295 bytes, "
			  "limit 67108864"));
	ck_assert_int_eq(read_forged(UINT64_MAX, true), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("claims 18446744073709551615 bytes"));
	ck_assert_int_eq(read_forged(UINT64_MAX - 6, true), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("claims"));
	ck_assert_int_eq(read_forged(SEVM_SNAP_MAX_SECTION, true), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("truncated: 67108864 payload and 0 padding bytes, 48 left"));
	ck_assert_int_eq(read_forged(49, true), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("truncated: 49 payload and 7 padding bytes, 48 left"));
	/* In bounds, but its padding would be END's header. */
	ck_assert_int_eq(read_forged(9, true), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("padding not zero"));
}
END_TEST

START_TEST(section_header_fields_checked)
{
	struct sevm__snap_writer w;
	struct sevm__buf b = { 0 };
	bool ended;
	int nr;

	build_one(&b);
	b.data[32 + 6] = 1;	/* reserved */
	fix_crc(b.data, 32, 8);
	ck_assert_int_eq(read_all(b.data, b.len, true, &nr, &ended), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("section 0x104 instance 0 at offset 32: reserved field is 0x1"));
	b.data[32 + 6] = 0;
	b.data[32 + 4] = 0x81;	/* flags: MANDATORY and an unknown bit */
	fix_crc(b.data, 32, 8);
	ck_assert_int_eq(read_all(b.data, b.len, true, &nr, &ended), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("at offset 32: unknown flags 0x81"));
	sevm__buf_reset(&b);

	/* Padding is outside the CRC, so it is checked on its own. */
	ck_assert_int_eq(sevm__snap_begin(&w, &b), 0);
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_TSC_KHZ, SEVM_SNAP_MANDATORY, 0, "\1\2\3\4", 4), 0);
	ck_assert_int_eq(sevm__snap_end(&w), 0);
	b.data[32 + 24 + 7] = 1;
	ck_assert_int_eq(read_all(b.data, b.len, true, &nr, &ended), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("section 0x101 instance 0 at offset 32: padding not zero"));
	sevm__buf_free(&b);
}
END_TEST

/* The consumer pattern: dispatch on id, hand the rest to sevm__snap_unknown(). */
static int consume(const void *p, size_t len, int *known, int *skipped)
{
	struct sevm__snap_reader r;
	struct sevm__sect s;
	int rc = sevm__snap_reader_init(&r, p, len);

	while (rc == 0 && (rc = sevm__snap_next(&r, &s)) > 0) {
		switch (s.id) {
		case SEVM_SECT_GUEST:
		case SEVM_SECT_REGS:
		case SEVM_SECT_END:
			(*known)++;
			rc = 0;
			break;
		default:
			rc = sevm__snap_unknown(&s);
			(*skipped)++;
		}
	}
	if (rc == 0 && !r.ended)
		return -SEVM_ERR_FORMAT;
	return rc;
}

START_TEST(unknown_sections)
{
	struct sevm__snap_writer w;
	struct sevm__buf b = { 0 };
	int known = 0, skipped = 0;

	ck_assert_int_eq(sevm__snap_begin(&w, &b), 0);
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_GUEST, SEVM_SNAP_MANDATORY, 0, "g", 1), 0);
	ck_assert_int_eq(sevm__snap_put(&w, 0x7777, 0, 3, "future", 6), 0);
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_REGS, SEVM_SNAP_MANDATORY, 0, "r", 1), 0);
	ck_assert_int_eq(sevm__snap_end(&w), 0);
	ck_assert_int_eq(consume(b.data, b.len, &known, &skipped), 0);
	ck_assert_int_eq(known, 3);
	ck_assert_int_eq(skipped, 1);

	sevm__buf_reset(&b);
	known = skipped = 0;
	ck_assert_int_eq(sevm__snap_begin(&w, &b), 0);
	ck_assert_int_eq(sevm__snap_put(&w, 0x7778, SEVM_SNAP_MANDATORY, 4, "must", 4), 0);
	ck_assert_int_eq(sevm__snap_end(&w), 0);
	ck_assert_int_eq(consume(b.data, b.len, &known, &skipped), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("unknown mandatory section 0x7778 instance 4"));
	ck_assert_int_eq(known, 0);
	sevm__buf_free(&b);
}
END_TEST

START_TEST(nothing_after_end)
{
	struct sevm__snap_writer w;
	struct sevm__buf b = { 0 };
	size_t len;
	bool ended;
	int nr;

	build_one(&b);
	len = b.len;
	memset(sevm__buf_grow(&b, 8), 0, 8);
	ck_assert_int_eq(read_all(b.data, b.len, true, &nr, &ended), -SEVM_ERR_FORMAT);
	ck_assert_int_eq(nr, 2);
	ck_assert(ended);
	ck_assert(has_msg("8 bytes at offset 104 after the END section"));

	/* A second END, itself well formed. */
	b.len = len;
	sevm__snap_sections(&w, &b);
	ck_assert_int_eq(sevm__snap_end(&w), 0);
	ck_assert_int_eq(read_all(b.data, b.len, true, &nr, &ended), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("after the END"));
	ck_assert_int_eq(nr, 2);
	sevm__buf_free(&b);
}
END_TEST

/* A snapshot of one REGS section whose END is made by end_fn. */
static int read_with_end(void (*end_fn)(struct sevm__snap_writer *w))
{
	struct sevm__snap_writer w;
	struct sevm__buf b = { 0 };
	bool ended;
	int nr, rc;

	ck_assert_int_eq(sevm__snap_begin(&w, &b), 0);
	ck_assert_int_eq(sevm__snap_put(&w, SEVM_SECT_REGS, SEVM_SNAP_MANDATORY, 0, "abc", 3), 0);
	end_fn(&w);
	rc = read_all(b.data, b.len, true, &nr, &ended);
	ck_assert(rc != 0 || ended);
	sevm__buf_free(&b);
	return rc;
}

static void end_ok(struct sevm__snap_writer *w)
{
	ck_assert_int_eq(sevm__snap_end(w), 0);
}

static void end_count_more(struct sevm__snap_writer *w)
{
	w->nr_sections++;
	ck_assert_int_eq(sevm__snap_end(w), 0);
}

static void end_bytes_fewer(struct sevm__snap_writer *w)
{
	w->payload_bytes--;
	ck_assert_int_eq(sevm__snap_end(w), 0);
}

static void end_raw(struct sevm__snap_writer *w, uint16_t flags, uint32_t instance,
		    uint32_t reserved, size_t len)
{
	uint8_t e[24] = { 0 };

	sevm__put32(e, w->nr_sections);
	sevm__put32(e + 4, reserved);
	sevm__put64(e + 8, w->payload_bytes);
	ck_assert_int_eq(sevm__snap_put(w, SEVM_SECT_END, flags, instance, e, len), 0);
}

static void end_optional(struct sevm__snap_writer *w)
{
	end_raw(w, 0, 0, 0, 16);
}

static void end_long(struct sevm__snap_writer *w)
{
	end_raw(w, SEVM_SNAP_MANDATORY, 0, 0, 24);
}

static void end_reserved(struct sevm__snap_writer *w)
{
	end_raw(w, SEVM_SNAP_MANDATORY, 0, 1, 16);
}

static void end_instance(struct sevm__snap_writer *w)
{
	end_raw(w, SEVM_SNAP_MANDATORY, 1, 0, 16);
}

START_TEST(end_must_agree)
{
	ck_assert_int_eq(read_with_end(end_ok), 0);
	ck_assert_int_eq(read_with_end(end_count_more), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("section 0xffff instance 0 at offset 64: END counts 2 sections of 3 "
			  "bytes, the reader saw 1 of 3"));
	ck_assert_int_eq(read_with_end(end_bytes_fewer), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("END counts 1 sections of 2 bytes, the reader saw 1 of 3"));
	ck_assert_int_eq(read_with_end(end_optional), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("END is not flagged mandatory"));
	ck_assert_int_eq(read_with_end(end_long), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("END payload is 24 bytes, not 16"));
	ck_assert_int_eq(read_with_end(end_reserved), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("END instance or reserved not zero"));
	ck_assert_int_eq(read_with_end(end_instance), -SEVM_ERR_FORMAT);
}
END_TEST

/* ---- File header -------------------------------------------------------- */

static int read_patched(size_t at, const void *bytes, size_t n, bool *ended)
{
	struct sevm__buf b = { 0 };
	int nr, rc;

	build_one(&b);
	memcpy(b.data + at, bytes, n);
	rc = read_all(b.data, b.len, true, &nr, ended);
	sevm__buf_free(&b);
	return rc;
}

START_TEST(file_header_checked)
{
	bool ended;

	ck_assert_int_eq(read_patched(0, "SEVMSNAQ", 8, &ended), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("not a snapshot: bad magic"));
	ck_assert_int_eq(read_patched(8, "\2\0", 2, &ended), -SEVM_ERR_VERSION);
	ck_assert(has_msg("snapshot format version 2.0, this library reads 1.x"));
	ck_assert_int_eq(read_patched(8, "\0\0", 2, &ended), -SEVM_ERR_VERSION);
	ck_assert_int_eq(read_patched(10, "\7\0", 2, &ended), 0);
	ck_assert(ended);
	ck_assert_int_eq(read_patched(12, "\30\0\0\0", 4, &ended), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("snapshot header_len 24: not a multiple of 8 of at least 32"));
	ck_assert_int_eq(read_patched(12, "\44\0\0\0", 4, &ended), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("header_len 36"));
	ck_assert_int_eq(read_patched(12, "\0\1\0\0", 4, &ended), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("header_len 256: truncated, input is 104 bytes"));
	ck_assert_int_eq(read_patched(16, "\1", 1, &ended), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("snapshot header: unknown flags 0x1"));
	ck_assert_int_eq(read_patched(20, "\1", 1, &ended), -SEVM_ERR_FORMAT);
	ck_assert(has_msg("snapshot header: reserved field not zero"));
	ck_assert_int_eq(read_patched(31, "\x80", 1, &ended), -SEVM_ERR_FORMAT);
}
END_TEST

START_TEST(longer_header_is_skipped)
{
	struct sevm__buf b = { 0 }, big = { 0 };
	bool ended;
	int nr;

	build_one(&b);
	/* A future 1.x header with 16 more bytes, which this reader skips. */
	memcpy(sevm__buf_grow(&big, 32), b.data, 32);
	memset(sevm__buf_grow(&big, 16), 0xa5, 16);
	memcpy(sevm__buf_grow(&big, b.len - 32), b.data + 32, b.len - 32);
	sevm__put32(big.data + 12, 48);
	big.data[10] = 3;
	ck_assert_int_eq(read_all(big.data, big.len, true, &nr, &ended), 0);
	ck_assert_int_eq(nr, 2);
	ck_assert(ended);
	/* A header that reaches exactly to the end of the input: no sections, no END. */
	ck_assert_int_eq(read_all(big.data, 48, true, &nr, &ended), 0);
	ck_assert(!ended);
	sevm__buf_free(&b);
	sevm__buf_free(&big);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("snapshot");
	TCase *crc = tcase_create("crc32c");
	TCase *fmt = tcase_create("format");
	TCase *bad = tcase_create("damage");

	tcase_add_test(crc, crc_check_value);
	tcase_add_test(crc, crc_chains);
	tcase_add_test(crc, crc_hw_equals_sw);
	tcase_add_test(crc, buf_grows_and_keeps);
	suite_add_tcase(s, crc);

	tcase_add_test(fmt, layout_is_the_documented_one);
	tcase_add_test(fmt, round_trip_put_and_open);
	tcase_add_test(fmt, bare_sections_in_a_message);
	tcase_add_test(fmt, one_reader_across_messages);
	tcase_add_test(fmt, writer_refuses_what_no_reader_takes);
	tcase_add_test(fmt, unknown_sections);
	tcase_add_test(fmt, longer_header_is_skipped);
	suite_add_tcase(s, fmt);

	tcase_add_test(bad, truncation_at_every_byte);
	tcase_add_test(bad, flipped_bit_anywhere_is_rejected);
	tcase_add_test(bad, forged_lengths);
	tcase_add_test(bad, section_header_fields_checked);
	tcase_add_test(bad, nothing_after_end);
	tcase_add_test(bad, end_must_agree);
	tcase_add_test(bad, file_header_checked);
	suite_add_tcase(s, bad);
	return tu_run(s);
}
